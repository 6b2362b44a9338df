"""What a fuzz run counts (requests, statuses, the 5xx that fail it) and how Hypothesis runs
its examples: shared by the HTTP fuzzers (harness/fuzzing.py) and the raw one
(harness/fuzz_raw.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import hypothesis
from hypothesis import HealthCheck

# Off in the fuzzed configuration, documented as 503 "not configured": counted apart.
FEATURE_OFF = {("/api/v1/drive/sync", "drive sync is not configured (DRIVE_FOLDER_ID)")}


@dataclass
class Tally:
    """What the fuzzer sent and what came back."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    unexpected_5xx: int = 0  # >= 500, not a feature that is off
    server_errors: list[str] = field(default_factory=list)  # the first of them, described
    feature_off: int = 0
    closed_without_answer: int = 0  # raw requests left incomplete (the server waits for more)
    no_answer: list[str] = field(default_factory=list)  # HTTP requests that got no answer
    conformance: Counter[str] = field(default_factory=Counter)  # answers unlike the document

    def record(self, source: str, method: str, path: str, status: int, detail: str = "") -> None:
        self.requests += 1
        self.by_source[source] += 1
        self.statuses[status] += 1
        if status >= 500:
            if status == 503 and (path, detail) in FEATURE_OFF:
                self.feature_off += 1
                return
            self.unexpected_5xx += 1
            if len(self.server_errors) < 50:
                self.server_errors.append(f"{status} {method} {path}: {detail[:200]}")

    def summary(self) -> str:
        top = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        sources = ", ".join(f"{name} {count}" for name, count in sorted(self.by_source.items()))
        return (f"{self.requests} requests ({sources}); statuses {top}; "
                f"unexpected >= 500: {self.unexpected_5xx}; documented 503 of features that "
                f"are off: {self.feature_off}; incomplete raw requests (no answer due): "
                f"{self.closed_without_answer}; answers unlike the document: "
                f"{sum(self.conformance.values())}")


def hypothesis_settings(examples: int) -> hypothesis.settings:
    return hypothesis.settings(max_examples=examples, deadline=None, database=None,
                               suppress_health_check=list(HealthCheck),
                               phases=[hypothesis.Phase.generate], derandomize=False,
                               print_blob=False, report_multiple_bugs=False)

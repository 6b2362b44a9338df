"""The lockout's tables stay bounded without a flood of addresses freeing anyone."""

from __future__ import annotations

from edge.lockout import FailureTracker


def tracker(now: list[float], max_entries: int = 100) -> FailureTracker:
    return FailureTracker(threshold=3, window=60.0, lockout=300.0, clock=lambda: now[0],
                          max_entries=max_entries)


def test_a_flood_of_addresses_does_not_reset_a_guessers_count() -> None:
    now = [1000.0]
    failures = tracker(now)
    failures.fail("guesser")
    failures.fail("guesser")
    for number in range(99):  # fills the table to its bound, the guesser included
        failures.fail(f"2001:db8::{number:x}")
    failures.fail("guesser")
    assert failures.locked_for("guesser") == 300


def test_the_failure_table_evicts_the_quietest_and_stays_bounded() -> None:
    now = [1000.0]
    failures = tracker(now)
    for number in range(1000):
        failures.fail(f"2001:db8::{number:x}")
    assert failures.tracked() == (100, 0)
    latest = f"2001:db8::{999:x}"
    failures.fail(latest)
    failures.fail(latest)  # its count survived the flood: the third failure locks it
    assert failures.locked_for(latest) == 300
    now[0] += 61
    failures.fail("late")  # everyone else's failures have aged out
    assert failures.tracked() == (1, 1)


def test_lockouts_are_dropped_once_over_and_active_ones_kept() -> None:
    now = [1000.0]
    failures = tracker(now)
    for _ in range(3):
        failures.fail("first")
    now[0] += 301
    for _ in range(3):
        failures.fail("second")
    assert failures.tracked() == (0, 1)  # the first lockout ended and is gone
    assert failures.locked_for("second") == 300
    for number in range(50):  # fewer active lockouts than the bound: none is lost
        for _ in range(3):
            failures.fail(f"2001:db8::{number:x}")
    assert failures.locked_for("second") == 300
    assert failures.tracked() == (0, 51)


def test_more_active_lockouts_than_the_bound_evict_the_one_ending_soonest() -> None:
    now = [1000.0]
    failures = tracker(now, max_entries=10)
    for number in range(11):
        now[0] += 1
        for _ in range(3):
            failures.fail(f"2001:db8::{number:x}")
    assert failures.tracked() == (0, 10)
    assert failures.locked_for("2001:db8::0") == 0
    assert failures.locked_for("2001:db8::a") == 300

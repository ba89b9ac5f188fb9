"""Speed decisions: the sign-test interval, the three verdicts, and a race between real workloads."""

import math
import time

import pytest

from gen.runtime.speed import (FASTER, NOT_FASTER, UNDECIDED, Estimate, Race, best_of, contenders_near, describe,
                               median_interval, settle)


def test_the_interval_covers_the_median_at_the_stated_confidence_and_needs_five_blocks():
    assert median_interval([1.0, 1.1, 1.2, 1.3]) == (0.0, math.inf)  # 4 blocks: even min..max covers only 87.5%
    assert median_interval([1.3, 1.0, 1.2, 1.4, 1.1]) == (1.0, 1.4)  # 5: min..max covers 93.75%
    ten = [0.9 + 0.05 * i for i in range(10)]
    low, high = median_interval(ten)
    assert (low, high) == (ten[1], ten[8])  # n=10: k=2 (97.9%); k=3 would be 89.1% < 90%
    assert median_interval(ten, confidence=0.5)[0] > low  # less confidence, a narrower interval


@pytest.mark.parametrize("ratios, decision", [
    ([1.3, 1.25, 1.4, 1.35, 1.32], FASTER),
    ([0.9, 0.95, 0.92, 1.0, 0.97], NOT_FASTER),
    ([0.8, 1.4, 0.9, 1.5, 1.2], UNDECIDED),  # median 1.2 clears 1.1, but the blocks disagree
])
def test_a_decision_is_taken_on_the_interval_not_the_median(ratios, decision):
    summary = Estimate(ratios).summary(threshold=1.1)
    assert summary["decision"] == decision and summary["blocks"] == 5
    assert describe(summary).endswith("undecided at 1.1x" if decision == UNDECIDED else f"{decision} than 1.1x")


def test_best_of_keeps_the_baseline_unless_a_contender_is_decided_faster():
    summaries = {"a": Estimate([1.5] * 5).summary(1.05), "b": Estimate([2.0, 0.5, 2.0, 0.5, 2.0]).summary(1.05),
                 "c": Estimate([1.2] * 5).summary(1.05)}
    assert best_of(summaries) == "a"  # b's median is higher, but undecided
    assert best_of({"b": summaries["b"]}) is None


def test_a_race_between_real_workloads_decides_and_stops_early():
    """Two sleeps of 4 and 2 ms: the faster is decided faster in the minimum of blocks; an equal pair
    is never called faster (timers and the scheduler are real here)."""
    race = Race({"slow": lambda: time.sleep(0.004), "fast": lambda: time.sleep(0.002), "same": lambda: time.sleep(0.004)},
                "slow", threshold=1.2, block_seconds=0.02, max_seconds=5)
    result = race.run()
    assert result["fast"]["decision"] == FASTER and 1.3 < result["fast"]["speedup"] < 2.5
    assert result["same"]["decision"] != FASTER
    assert result["fast"]["blocks"] >= 5 and result["fast"]["seconds"] < 10


def test_close_leaders_are_settled_head_to_head_not_by_their_medians():
    """Medians against the baseline put "a" first by a hair; raced against each other, "b" (half a's
    time, for real) is decided faster and takes the choice. A contender whose interval stays below the
    leader's median is not raced; a tie keeps the leader."""
    summaries = {"a": Estimate([1.50, 1.55, 1.45, 1.60, 1.52]).summary(1.05),
                 "b": Estimate([1.49, 1.40, 1.56, 1.51, 1.47]).summary(1.05),
                 "c": Estimate([1.10, 1.12, 1.15, 1.11, 1.13]).summary(1.05)}
    assert contenders_near(summaries, "a") == ["b"]
    work = {"a": lambda: time.sleep(0.004), "b": lambda: time.sleep(0.002), "c": lambda: time.sleep(0.008)}
    choice, duels = settle(summaries, work, block_seconds=0.02, max_seconds=5)
    assert choice == "b" and duels["b vs a"]["decision"] == FASTER and list(duels) == ["b vs a"]
    tie = {**work, "b": lambda: time.sleep(0.004)}
    choice, duels = settle(summaries, tie, block_seconds=0.02, max_seconds=5)
    assert choice == "a" and duels["b vs a"]["decision"] != FASTER
    assert settle({"c": Estimate([0.9] * 5).summary(1.05)}, work) == (None, {})

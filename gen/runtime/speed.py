"""Speed decisions that hold still: paired timing blocks in alternating order, and a bound, not a median.

One pair of medians on a shared 2-core machine is a coin toss: the same int8 candidate measured 1.06x
in one export and 1.32x in the next. So every speed decision gen takes (int8's gate, the per-host plan,
bench's flags) goes through here:

- A *block* times each contender back to back, long enough (`block_seconds`) that a small network's
  milliseconds are not lost in timer noise; the order rotates from block to block, so drift in the
  machine's speed (a neighbour starting, the clock changing) falls on every side alike.
- Each block gives each contender one *ratio*: the baseline's time over its own (above 1 = faster).
  A ratio within one block compares like with like; blocks that a neighbour slowed down do not bias it.
- The decision uses a distribution-free confidence interval for the median ratio (the sign test's
  order statistics; no assumption of normal timings): *faster* when its lower end clears the
  threshold, *not faster* when its upper end is below it, otherwise more blocks, until `max_blocks`
  or `max_seconds` — then *undecided*, which callers report as such ("too noisy: re-run on idle cores")
  and never turn into either answer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

FASTER, NOT_FASTER, UNDECIDED = "faster", "not faster", "undecided"
CONFIDENCE = 0.9  # two-sided: a decision is wrong about one time in twenty when the truth sits at the threshold
BLOCK_SECONDS = 0.2  # each contender's share of one block: a small network's milliseconds not lost in timer noise
MIN_BLOCKS = 5  # the fewest blocks whose sign-test interval exists at 90% (with 4, even min..max covers only 87.5%)


def median_interval(ratios: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The sign-test interval [r_(k), r_(n+1-k)] of the sorted ratios, which covers the true median
    with at least `confidence`; (0, inf) when there are too few ratios for any such interval."""
    r = sorted(ratios)
    n = len(r)
    tail, k = 0.0, 0
    for j in range(n // 2 + 1):  # largest k with 2 * P(Binom(n, 1/2) <= k - 1) <= 1 - confidence
        tail += math.comb(n, j) / 2 ** n
        if 2 * tail > 1 - confidence:
            break
        k = j + 1
    if k == 0:
        return 0.0, math.inf
    return r[k - 1], r[n - k]


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return float("nan") if n == 0 else (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2)


@dataclass
class Estimate:
    """How many times faster a contender ran than the baseline, block by block."""

    ratios: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # its own time per call, per block

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        return median_interval(self.ratios, confidence)

    def decision(self, threshold: float, confidence: float = CONFIDENCE) -> str:
        low, high = self.interval(confidence)
        return FASTER if low > threshold else NOT_FASTER if high < threshold else UNDECIDED

    def summary(self, threshold: float, confidence: float = CONFIDENCE) -> dict:
        low, high = self.interval(confidence)
        return {"speedup": round(median(self.ratios), 4), "interval": [round(low, 4), None if math.isinf(high) else round(high, 4)],
                "confidence": confidence, "blocks": len(self.ratios), "threshold": threshold,
                "decision": self.decision(threshold, confidence),
                "ms_per_call": round(1e3 * median(self.seconds), 4) if self.seconds else None,
                "ratios": [round(x, 4) for x in self.ratios]}


def describe(summary: dict) -> str:
    """`1.32x (90% interval 1.25-1.40, 7 blocks): faster than 1.1x` (or `undecided at 1.1x`) for logs and messages."""
    low, high = summary["interval"]
    span = f"{low:.2f}-{'inf' if high is None else f'{high:.2f}'}"
    verdict = ("no speed threshold" if not summary["threshold"]
               else f"{summary['decision']} than {summary['threshold']:g}x" if summary["decision"] != UNDECIDED
               else f"undecided at {summary['threshold']:g}x")
    return f"{summary['speedup']:.2f}x ({round(100 * summary['confidence'])}% interval {span}, {summary['blocks']} blocks): {verdict}"


@dataclass
class Race:
    """Contenders timed against one baseline in rotating blocks until each is decided or time is up.

    `contenders` maps names to zero-argument callables (one call = one unit of work: a component call,
    a whole sampling run); `baseline` names one of them. Each callable is called once untimed first
    (warm-up: compilation, first-touch allocation)."""

    contenders: dict[str, Callable[[], object]]
    baseline: str
    threshold: float = 1.0
    confidence: float = CONFIDENCE
    min_blocks: int = MIN_BLOCKS
    # 15: one run's blocks understate the spread between runs (the int8 export near its rule, repeated: 15
    # blocks said "undecided" 3 times of 3; 60 blocks said refused, refused, undecided; docs/RESULTS.md)
    max_blocks: int = 15
    max_seconds: float = 60.0
    block_seconds: float = field(default_factory=lambda: BLOCK_SECONDS)  # each contender's share of one block
    estimates: dict[str, Estimate] = field(default_factory=dict)
    baseline_seconds: list[float] = field(default_factory=list)  # the baseline's own time per call, per block
    elapsed: float = 0.0

    def run(self, progress: Callable[[str], None] | None = None) -> dict[str, dict]:
        """Every contender's summary (the baseline's own ratio is 1 by definition and left out)."""
        names = list(self.contenders)
        if self.baseline not in self.contenders:
            raise ValueError(f"baseline {self.baseline!r} is not among {names}")
        t0 = time.perf_counter()
        repeats = {}
        for name, fn in self.contenders.items():
            fn()  # warm-up, untimed
            s = time.perf_counter()
            fn()
            repeats[name] = max(1, math.ceil(self.block_seconds / max(time.perf_counter() - s, 1e-6)))
        others = [n for n in names if n != self.baseline]
        self.estimates = {n: Estimate() for n in others}
        for block in range(self.max_blocks):
            order = names[block % len(names):] + names[:block % len(names)]
            if block % 2:
                order.reverse()
            per_call = {}
            for name in order:
                fn, k = self.contenders[name], repeats[name]
                s = time.perf_counter()
                for _ in range(k):
                    fn()
                per_call[name] = (time.perf_counter() - s) / k
            self.baseline_seconds.append(per_call[self.baseline])
            for name in others:
                self.estimates[name].ratios.append(per_call[self.baseline] / per_call[name])
                self.estimates[name].seconds.append(per_call[name])
            self.elapsed = time.perf_counter() - t0
            if progress:
                progress(f"    block {block + 1}: " + ", ".join(f"{n} {self.estimates[n].ratios[-1]:.2f}x" for n in others))
            if block + 1 >= self.min_blocks and (
                    self.elapsed > self.max_seconds
                    or all(e.decision(self.threshold, self.confidence) != UNDECIDED for e in self.estimates.values())):
                break
        return {n: {**e.summary(self.threshold, self.confidence), "seconds": round(self.elapsed, 2)}
                for n, e in self.estimates.items()}


def compare(baseline: Callable[[], object], candidate: Callable[[], object], threshold: float = 1.0, **race) -> dict:
    """One candidate against one baseline: its summary (speedup, interval, decision)."""
    return Race({"baseline": baseline, "candidate": candidate}, "baseline", threshold, **race).run()["candidate"]


def best_of(summaries: dict[str, dict]) -> str | None:
    """The contender to choose: the fastest (by median) of those decided *faster* than the threshold;
    None when none is, so the caller keeps its baseline."""
    faster = {n: s for n, s in summaries.items() if s["decision"] == FASTER}
    return max(faster, key=lambda n: faster[n]["speedup"]) if faster else None


def contenders_near(summaries: dict[str, dict], leader: str) -> list[str]:
    """The other *faster* contenders that may be as fast as `leader`: their interval reaches its median.
    Two medians measured against a baseline are each a ratio of noisy times; their order is a guess when
    the intervals overlap (the DDPM plan took int8 at 7.7% behind int8-ov that way)."""
    top = summaries[leader]["speedup"]
    return sorted((n for n, s in summaries.items() if n != leader and s["decision"] == FASTER
                   and (s["interval"][1] is None or s["interval"][1] >= top)),
                  key=lambda n: -summaries[n]["speedup"])


def settle(summaries: dict[str, dict], contenders: dict[str, Callable[[], object]],
           **race) -> tuple[str | None, dict[str, dict]]:
    """`best_of`, then the leader raced head to head against each near contender (the leader as the
    baseline, threshold 1): a challenger takes the lead only when decided faster than it; a tie keeps the
    leader, since either is as fast as the blocks can tell. Returns the choice and the head-to-head figures
    (keyed "challenger vs leader")."""
    leader = best_of(summaries)
    duels: dict[str, dict] = {}
    if leader is None:
        return None, duels
    for challenger in contenders_near(summaries, leader):
        duel = Race({leader: contenders[leader], challenger: contenders[challenger]}, leader, 1.0, **race).run()
        duels[f"{challenger} vs {leader}"] = duel[challenger]
        if duel[challenger]["decision"] == FASTER:
            leader = challenger
    return leader, duels

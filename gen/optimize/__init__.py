"""`gen optimize`: the speed levers composed. A teacher run and a quality bar in, the fastest bundle that
meets the bar out, with the figures that chose it.

- gate: the quality bar (`fd:1.5x`, `accuracy:-2`), parsed and checked before any slow work;
- candidates: what the source allows (teacher schedulers and step counts, few-step students);
- measure: each candidate's quality (gen eval's metrics, same seeds) and its latency against the teacher,
  all in one race of alternating blocks (gen.runtime.speed), so the ratios hold still;
- search: the loop, resumable from its work directory, then the chosen bundle with its host plan;
- report: optimize.json and optimize.png (latency vs quality, the gate, the choice).
"""

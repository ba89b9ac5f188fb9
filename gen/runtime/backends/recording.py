"""ORT fp32 that keeps a copy of every feed it is given, per component, in call order: the real
inputs of real sampling runs, which int8 calibrates on (gen.export.calibration) and `gen tune` times
each component on (gen.runtime.tune). Not registered by name: it is built, not chosen."""

from __future__ import annotations

from gen.runtime.backends.ort import OrtBackend


class RecordingBackend(OrtBackend):
    def __init__(self, bundle, threads: int | None = None):
        super().__init__(bundle, "cpu", "fp32", threads)
        self.recorded: dict[str, list[dict]] = {}
        self.resident_loop = False  # every step's feeds must pass through _run to be recorded

    def _run(self, component, feeds):
        self.recorded.setdefault(component, []).append({k: v.copy() for k, v in feeds.items()})
        return super()._run(component, feeds)

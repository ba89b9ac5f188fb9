"""`compile` backend: the eager modules through torch.compile (TorchInductor kernels).

On CUDA it compiles with mode="reduce-overhead", which captures CUDA graphs for the static shapes a
bundle runs at; elsewhere with the default mode. Compilation happens on the first call of each
input shape and takes seconds to minutes, so that call says so on stderr; later calls reuse it.
Tested on CPU (parity with eager) and run on an H200 (benchmarks/gpu_check.sh, 2026-12-04): fp16 with
CUDA graphs ran 14x eager fp32 on the default DDPM, and 7x end to end on an SD model (220M-parameter
UNet) at 512x512 (docs/RESULTS.md, issue 16).
`GEN_COMPILE_BACKEND` picks torch.compile's backend (default inductor; "aot_eager" or "eager" to
debug a model, or to test gen's plumbing without a C++ build).
"""

from __future__ import annotations

import os
import sys

from gen.runtime.backends.eager import EagerBackend


class CompileBackend(EagerBackend):
    name = "compile"

    def __init__(self, bundle, device, precision, threads, modules: dict | None = None):
        super().__init__(bundle, device, precision, threads, modules)
        self.mode = "reduce-overhead" if device == "cuda" else "default"
        torch = self._torch
        self.compiler = os.environ.get("GEN_COMPILE_BACKEND", "inductor")
        options = {"mode": self.mode} if self.compiler == "inductor" else {}  # modes are inductor's
        self.modules = {k: torch.compile(m, backend=self.compiler, dynamic=False, **options) for k, m in self.modules.items()}
        self._seen: set = set()

    def forward(self, component, args):
        shapes = (component, tuple(sorted((k, tuple(v.shape)) for k, v in args.items())))
        if shapes not in self._seen:
            self._seen.add(shapes)
            print(f"compiling {component} for shapes {dict(shapes[1])} with torch.compile (mode {self.mode}); "
                  "the first call of each shape is slow ...", file=sys.stderr, flush=True)
        return super().forward(component, args)

    def describe(self):
        return {**super().describe(), "torch_compile_backend": self.compiler, "torch_compile_mode": self.mode}

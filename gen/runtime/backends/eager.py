"""Eager PyTorch backend: the bundle's weights in the same component modules export traced.

The modules come from the family's nets spec (gen.nets.families), so eager and ONNX cannot drift.
fp16 runs only on CUDA, which has not been verified on a GPU yet; fp32 on the CPU is tested.
"""

from __future__ import annotations

from gen.errors import GenError
from gen.runtime.backends import Backend


class EagerBackend(Backend):
    name = "eager"
    precisions = {"cpu": ("fp32",), "cuda": ("fp32", "fp16")}
    precision_notes = {"cpu/fp16": "eager fp16 needs device 'cuda' (PyTorch's CPU half-precision convs are slower than fp32)",
                       **{f"{d}/{p}": f"{p} is a calibrated ONNX variant: run it with backend 'ort'"
                          for d in ("cpu", "cuda") for p in ("int8", "int8-trt")}}

    def __init__(self, bundle, device, precision, threads, modules: dict | None = None):
        try:
            import torch
        except ImportError:
            raise GenError("backend 'eager' needs PyTorch: pip install 'gen[train]', or use --backend ort") from None
        if device == "cuda" and not torch.cuda.is_available():
            raise GenError("device 'cuda' requested but torch sees no CUDA GPU")
        super().__init__(bundle, device, precision, threads or torch.get_num_threads())
        # Process-wide in torch: the caller asked for this many threads (None keeps torch's setting).
        torch.set_num_threads(self.threads)
        self._torch = torch
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        if modules is None:
            from gen.nets.families import get_nets

            modules = get_nets(bundle.family).load(bundle)
        self.modules = {k: m.to(device=device, dtype=self._dtype) for k, m in modules.items()}

    def _run(self, component, feeds):
        torch = self._torch
        with torch.inference_mode():
            args = {}
            for k, v in feeds.items():
                t = torch.from_numpy(v).to(self.device)
                args[k] = t.to(self._dtype) if t.is_floating_point() else t
            out = self.modules[component](**args)
            outs = out if isinstance(out, (tuple, list)) else (out,)
            # float outputs as float32 whatever the compute precision; integer ones (VQ-VAE codes) kept
            return {name: (o.float() if o.is_floating_point() else o).cpu().numpy()
                    for name, o in zip(self.output_names(component), outs)}

    def describe(self):
        return {**super().describe(), "torch": self._torch.__version__}

    def close(self):
        self.modules = {}
        super().close()

"""Eager PyTorch backend: the bundle's weights in the same component modules export traced.

The modules come from the family's nets spec (gen.nets.families), so eager and ONNX cannot drift.
fp16 runs only on CUDA. fp32 on the CPU is tested; CUDA fp32 and fp16 ran on an H200 (issue 16,
docs/RESULTS.md), within 8.3e-4 and 1.4e-2 of CPU fp32 over 50 DDIM steps (cuDNN's TF32 convs
and fp16). Eager is launch-bound there: fp16 was no faster than fp32; `compile` is the fast path.
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

    # the denoising loop on the device (gen.runtime.backends.torch_loop); False steps on the host
    resident_loop = True

    def tensor(self, array):
        """A feed (numpy, or a tensor) on this backend's device, floats in the compute precision."""
        t = array if isinstance(array, self._torch.Tensor) else self._torch.from_numpy(array)
        t = t.to(self.device)
        return t.to(self._dtype) if t.is_floating_point() else t

    def forward(self, component: str, args: dict) -> tuple:
        """One module call on device tensors; every output, float ones as float32 (whatever the compute
        precision), integer ones (VQ-VAE codes) kept."""
        out = self.modules[component](**args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(o.float() if o.is_floating_point() else o for o in outs)

    def _run(self, component, feeds):
        with self._torch.inference_mode():
            outs = self.forward(component, {k: self.tensor(v) for k, v in feeds.items()})
            return {name: o.cpu().numpy() for name, o in zip(self.output_names(component), outs)}

    def denoise_resident(self, sched, x, rng, call, guidance, unconditional_first, on_step):
        """gen.runtime.denoise's loop with the sample kept on this backend's device, as torch tensors."""
        from gen.runtime.backends.torch_loop import denoise_on_device

        self.check_open()
        return denoise_on_device(self, sched, x, rng, call, guidance, unconditional_first, on_step)

    def describe(self):
        return {**super().describe(), "torch": self._torch.__version__}

    def close(self):
        self.modules = {}
        super().close()

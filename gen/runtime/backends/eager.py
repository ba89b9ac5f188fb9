"""Eager PyTorch backend: the bundle's safetensors weights in the same component modules export used.

fp16 runs only on CUDA, which has not been verified on a GPU yet; fp32 on the CPU is tested.
"""

from __future__ import annotations


from gen.errors import GenError
from gen.fileio import load_safetensors, read_json
from gen.runtime.backends import Backend


class EagerBackend(Backend):
    name = "eager"

    def __init__(self, bundle, device, precision, threads):
        try:
            import torch
        except ImportError:
            raise GenError("backend 'eager' needs PyTorch: pip install 'gen[train]', or use --backend ort") from None
        if device == "cuda" and not torch.cuda.is_available():
            raise GenError("device 'cuda' requested but torch sees no CUDA GPU")
        if precision == "fp16" and device == "cpu":
            raise GenError("eager fp16 needs device 'cuda' (PyTorch's CPU half-precision convs are slower than fp32)")
        super().__init__(bundle, device, precision, threads or torch.get_num_threads())
        torch.set_num_threads(self.threads)
        self._torch = torch
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self.modules = {k: m.to(device=device, dtype=self._dtype) for k, m in _components(bundle).items()}

    def _run(self, component, feeds):
        torch = self._torch
        with torch.inference_mode():
            args = {}
            for k, v in feeds.items():
                t = torch.from_numpy(v).to(self.device)
                args[k] = t.to(self._dtype) if t.is_floating_point() else t
            out = self.modules[component](**args)
            return out.float().cpu().numpy()

    def describe(self):
        return {**super().describe(), "torch": self._torch.__version__}


def _components(bundle) -> dict:
    """The bundle's modules: gen's own nets from weights/ + config, or diffusers folders for SD."""
    w = bundle.manifest["weights"]
    if bundle.family == "sd":
        from gen.nets.sd import load_components

        return load_components(bundle.resolve(w["diffusers"]))
    from gen.nets.components import build_components

    tensors, _ = load_safetensors(bundle.resolve(w["tensors"]))
    return build_components(read_json(bundle.resolve(w["config"]), "bundle weights config"), tensors)

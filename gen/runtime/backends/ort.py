"""ONNX Runtime backend: one lazily created session per component, providers chosen and reported.

Providers are tried in order TensorRT, CUDA, CPU (the GPU ones only for device="cuda"); ORT drops a
provider it cannot initialise without failing, so `describe()` reports what each session really
got rather than what was asked for.

Verified here on the CPU provider only: the CUDA and TensorRT providers and the IO-binding path have
not run on a GPU yet (no GPU was available while this was written). The TensorRT provider gets its
engine and timing caches under the bundle's cache directory. Inputs are bound from the host each
call and outputs copied back: the schedulers are numpy on the host (a deployment host needs no
torch), so the latent crosses PCIe twice per step (128 KB each way for SD at 512x512, microseconds
against a UNet call); a device-resident loop would need a device-side scheduler and is not built.
"""

from __future__ import annotations

import os

import numpy as np

from gen.errors import GenError
from gen.runtime.backends import Backend

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def trt_provider_options(bundle, precision: str) -> dict:
    """ORT's TensorRT provider with its engine and timing caches on, in the bundle's cache directory
    (gen.runtime.engines.cache_dir_for), so a session after the first skips the engine build. fp16
    kernels only for fp16 bundles: an fp32 bundle stays fp32."""
    from gen.runtime.engines import cache_dir_for

    where = str(cache_dir_for(bundle) / "ort-trt")
    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": where, "trt_timing_cache_enable": True,
            "trt_timing_cache_path": where, "trt_fp16_enable": precision == "fp16"}


class OrtBackend(Backend):
    name = "ort"
    # int8 (QDQ) runs fused integer kernels on the CPU provider; on GPUs that is TensorRT's job
    precisions = {"cpu": ("fp32", "fp16", "int8", "int8-trt"), "cuda": ("fp32", "fp16")}
    precision_notes = {f"cuda/{p}": f"{p} on a GPU needs TensorRT's explicit-quantization path, which gen does not "
                                    "run yet; use device 'cpu' or fp16 on 'cuda'" for p in ("int8", "int8-trt")}

    def __init__(self, bundle, device, precision, threads):
        try:
            import onnxruntime as ort
        except ImportError:
            raise GenError("backend 'ort' needs onnxruntime: pip install 'gen[runtime]'") from None
        super().__init__(bundle, device, precision, threads or os.cpu_count() or 1)
        self._ort = ort
        available = ort.get_available_providers()
        wanted = [p for p in GPU_PROVIDERS if p in available] if device == "cuda" else []
        if device == "cuda" and not wanted:
            raise GenError(f"device 'cuda' needs onnxruntime-gpu; this onnxruntime has only {available}")
        self.providers = [(p, trt_provider_options(bundle, precision)) if p == "TensorrtExecutionProvider" else p
                          for p in wanted] + ["CPUExecutionProvider"]
        self._sessions: dict = {}

    def session(self, component: str):
        if component not in self._sessions:
            from gen.runtime.ort_session import ort_session

            path = self.bundle.onnx_path(component, self.precision)
            try:
                self._sessions[component] = ort_session(path, self.threads, self.providers)
            except Exception as e:  # onnxruntime raises its own exception types
                raise GenError(f"onnxruntime cannot load {path}: {str(e).splitlines()[0]}") from None
        return self._sessions[component]

    def _run(self, component, feeds):
        sess = self.session(component)
        names = [o.name for o in sess.get_outputs()]
        if self.device == "cuda":
            return dict(zip(names, self._run_iobinding(sess, names, feeds)))
        return dict(zip(names, sess.run(names, feeds)))

    def _run_iobinding(self, sess, names, feeds):
        """On a GPU, bind outputs on the device so ORT allocates once per shape, not per copy."""
        binding = sess.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in names:
            binding.bind_output(name, "cuda")
        sess.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def describe(self):
        for component in self.bundle.components:
            self.session(component)
        return {**super().describe(), "providers": {c: s.get_providers() for c, s in self._sessions.items()},
                "onnxruntime": self._ort.__version__}

    def close(self):
        self._sessions.clear()
        super().close()

"""ONNX Runtime backend: one lazily created session per component, providers chosen and reported.

Providers are tried in order TensorRT, CUDA, CPU (the GPU ones only for device="cuda"); ORT drops a
provider it cannot initialise without failing, so `describe()` reports what each session really
got rather than what was asked for.

The denoising loop runs on the device (`resident_loop`, gen.runtime.backends.ort_loop): the sample,
the network's output and the scheduler step stay in ORT's memory across steps, bound by IO binding.
Other calls bind their inputs from the host and copy their outputs back.

Verified on the CPU provider only: the CUDA and TensorRT providers and the IO-binding paths have not
run on a GPU (the one GPU host lent, an H200, had only the CPU onnxruntime; there device="cuda" was
refused with the install line, as tested here). The TensorRT provider gets its
engine and timing caches under the bundle's cache directory.
"""

from __future__ import annotations

import numpy as np

from gen.errors import GenError
from gen.runtime.backends import Backend

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def cuda_provider_fix(installed: dict) -> str:
    """What to run for ORT's CUDA provider. onnxruntime and onnxruntime-gpu write the same `onnxruntime`
    package, so with both installed the last one written wins, and uninstalling one breaks the other:
    the fix removes both first. `installed` maps the two distribution names to versions or None."""
    fix = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
    if installed.get("onnxruntime") and installed.get("onnxruntime-gpu"):
        return (f"onnxruntime {installed['onnxruntime']} and onnxruntime-gpu {installed['onnxruntime-gpu']} are "
                f"both installed and share one package folder, which holds the CPU build now; run: {fix}")
    return f"install the GPU build alone (the two must never be installed together): {fix}"


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
        # a session per thread count on the CPU (ORT fixes its threads when a session opens); on a GPU the
        # host threads barely matter and a second session would load the weights onto it again
        self.adapts_threads = device == "cpu"
        super().__init__(bundle, device, precision, threads)
        self._ort = ort
        available = ort.get_available_providers()
        wanted = [p for p in GPU_PROVIDERS if p in available] if device == "cuda" else []
        if device == "cuda" and not wanted:
            from gen.versions import versions

            fix = cuda_provider_fix(versions(("onnxruntime", "onnxruntime-gpu")))
            raise GenError(f"device 'cuda' needs onnxruntime-gpu; this onnxruntime has only {available}: {fix}")
        self.providers = [(p, trt_provider_options(bundle, precision)) if p == "TensorrtExecutionProvider" else p
                          for p in wanted] + ["CPUExecutionProvider"]
        self._sessions: dict = {}
        self._loop = None
        # the denoising loop on the device; False runs it on the host, step by step (for comparison)
        self.resident_loop = True

    def session(self, component: str):
        """The component's session for the thread count its next call runs on (Backend.threads_for)."""
        key = (component, self.threads_for(component))
        if key in self._sessions:
            return self._sessions[key]
        with self._opening:
            if key not in self._sessions:
                from gen.runtime.ort_session import ort_session

                path = self.bundle.onnx_path(component, self.precision)
                try:
                    self._sessions[key] = ort_session(path, key[1], self.providers)
                except Exception as e:  # onnxruntime raises its own exception types
                    raise GenError(f"onnxruntime cannot load {path}: {str(e).splitlines()[0]}") from None
            return self._sessions[key]

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

    def denoise_resident(self, sched, x, rng, call, guidance, unconditional_first, on_step):
        """gen.runtime.denoise's loop with the sample kept on this backend's device."""
        self.check_open()
        if self._loop is None:
            from gen.runtime.backends.ort_loop import ResidentLoop

            self._loop = ResidentLoop(self)
        return self._loop.run(sched, x, rng, call, guidance, unconditional_first, on_step)

    def describe(self):
        for component in self.bundle.components:
            self.session(component)
        return {**super().describe(), "providers": {c: s.get_providers() for (c, _), s in self._sessions.items()},
                "onnxruntime": self._ort.__version__}

    def close(self):
        self._sessions.clear()
        if self._loop is not None:
            self._loop.close()
        super().close()

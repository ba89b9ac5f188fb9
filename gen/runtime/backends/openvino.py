"""OpenVINO backend: the bundle's ONNX components compiled by OpenVINO's CPU plugin, per static shape.

Why a second CPU runtime: on large, compute-bound models (an SD UNet) OpenVINO's kernels beat ONNX
Runtime's on the same file (1.31x at f32, 2.54x in bf16 on an AVX-512 BF16 host), while on tiny convs
it can lose; gen's per-host plan (gen.runtime.plan) measures which wins where.

- Static shapes: each component is read once, then reshaped and compiled for the exact input shapes
  of a call (OpenVINO's own advice for speed); the last few compiled shapes per component are kept
  (SHAPES_KEPT). OpenVINO's model cache lives under gen's cache directory (`openvino/`), so a second
  process skips compilation; `describe()` reports each compile's time and whether the cache served it.
- Precisions: fp32 (f32 kernels), bf16 (the fp32 file computed in bfloat16; refused where the CPU
  lacks bf16 instructions, where OpenVINO would quietly run f32), int8 (the bundle's int8 QDQ file,
  which OpenVINO runs with its own int8 kernels), int8-ov (IR quantized for OpenVINO by NNCF:
  `gen export --int8 --int8-openvino`, gen.export.int8_openvino). What really ran is read back from the compiled model.
- Threads (`INFERENCE_NUM_THREADS`) are fixed per compiled model; a small component gets one per thread
  count it runs on, so it can give way to another job (gen.runtime.threads). One stream, latency hint.
- The denoising loop runs on the host (gen.runtime.denoise): on a CPU OpenVINO's tensors are host
  memory already, so a device-resident loop (ORT's) would save only a few element-wise numpy ops.

torch-free: `pip install 'gen[openvino]'` adds it to the runtime-only install.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np

from gen.errors import GenError
from gen.runtime.backends import Backend

SHAPES_KEPT = 4  # compiled shapes per component (n and image size vary little in one process)
# int8 nodes run int8 whatever the float hint; int8-bf16 computes the int8 file's float nodes in bfloat16
HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32", "int8-ov": "f32", "int8-bf16": "bf16"}
EXTRA = "pip install 'gen[openvino]'"


def load_openvino():
    try:
        import openvino
    except ImportError:
        raise GenError(f"backend 'openvino' needs OpenVINO, which is not installed: {EXTRA}") from None
    return openvino


def compile_config(threads: int, precision: str = "fp32") -> dict:
    """How gen compiles for OpenVINO's CPU plugin: pinned threads, one stream, one request at a time."""
    return {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": HINTS[precision]}


def cpu_capabilities(core) -> list[str]:
    """OpenVINO's own list of what the CPU runs natively: FP32, BF16, INT8, FP16 ..."""
    try:
        return list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # an old or odd plugin: assume the plain f32 set
        return ["FP32"]


_CORE = None


def shared_core():
    """One OpenVINO Core per process (it owns the plugins and their thread pools), with gen's model cache."""
    global _CORE
    if _CORE is None:
        ov = load_openvino()
        from gen.cache import cache_dir

        _CORE = ov.Core()
        where = cache_dir() / "openvino"
        try:
            where.mkdir(parents=True, exist_ok=True)
            _CORE.set_property({"CACHE_DIR": str(where)})
        except (OSError, RuntimeError):
            pass  # an unwritable cache costs compile time, not correctness
    return _CORE


class OpenVinoBackend(Backend):
    name = "openvino"
    adapts_threads = True  # a compiled model per thread count (OpenVINO fixes its threads at compile)
    devices = ("cpu",)
    precisions = {"cpu": ("fp32", "bf16", "int8", "int8-ov", "int8-bf16")}
    precision_notes = {"cpu/fp16": "backend 'openvino' computes fp32, bf16 (on CPUs with bf16 instructions) or int8 "
                                   "on a CPU; fp16 files are for GPUs (use --backend ort --device cuda)",
                       "cpu/int8-trt": "int8-trt is TensorRT's form; backend 'openvino' runs the bundle's int8 files"}

    def __init__(self, bundle, device, precision, threads):
        self._ov = load_openvino()
        super().__init__(bundle, device, precision, threads)
        self.core = shared_core()
        self.capabilities = cpu_capabilities(self.core)
        if HINTS[precision] == "bf16" and "BF16" not in self.capabilities:
            raise GenError(f"this CPU has no bfloat16 instructions (OpenVINO reports {', '.join(self.capabilities)}), so "
                           f"{precision} would quietly run f32; use precision 'fp32' (or 'int8' with an int8 bundle)", "precision")
        self._models: dict = {}  # component -> ov.Model as read from the ONNX file
        self._compiled: dict[str, OrderedDict] = {}  # component -> {shape key: (compiled, request, output names)}
        self.compiles: list[dict] = []  # what each compile cost, for describe() and bench

    def _model(self, component: str):
        if component not in self._models:
            path = self.bundle.onnx_path(component, self.precision)
            try:
                self._models[component] = self.core.read_model(str(path))
            except Exception as e:  # OpenVINO raises RuntimeError with a C++ message
                raise GenError(f"OpenVINO cannot read {path}: {str(e).strip().splitlines()[0]}") from None
        return self._models[component]

    def compiled(self, component: str, feeds: dict[str, np.ndarray]):
        """The compiled model and its infer request for these feeds' shapes and the thread count the
        call runs on (Backend.threads_for), compiled on first use."""
        shapes = tuple((name, a.shape) for name, a in sorted(feeds.items()))
        threads = self.threads_for(component)
        with self._opening:  # request threads sharing this backend: one compile per key, no racing evictions
            return self._compiled_for(component, shapes, threads)

    def _compiled_for(self, component: str, shapes: tuple, threads: int):
        key = (threads, shapes)
        kept = self._compiled.setdefault(component, OrderedDict())
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
        model = self._model(component).clone()
        try:
            model.reshape({name: self._ov.PartialShape(list(shape)) for name, shape in shapes})
            t0 = time.perf_counter()
            compiled = self.core.compile_model(model, "CPU", compile_config(threads, self.precision))
        except Exception as e:
            raise GenError(f"OpenVINO cannot compile {component} for shapes {dict(shapes)}: "
                           f"{str(e).strip().splitlines()[0]}") from None
        seconds = time.perf_counter() - t0
        ran = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower().replace("<type: '", "").rstrip("'>")
        self.compiles.append({"component": component, "shapes": {n: list(s) for n, s in shapes}, "threads": threads,
                              "compile_s": round(seconds, 3), "inference_precision": ran})
        outputs = [o.get_any_name() for o in compiled.outputs]
        kept[key] = (compiled, compiled.create_infer_request(), outputs)
        if len(kept) > SHAPES_KEPT:
            kept.popitem(last=False)
        return kept[key]

    def _run(self, component, feeds):
        _, request, names = self.compiled(component, feeds)
        request.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()})
        # copies: the request's output buffers are reused by its next call
        return {name: np.array(request.get_output_tensor(i).data, copy=True) for i, name in enumerate(names)}

    def describe(self):
        for component in self.bundle.components:  # compile each once at a typical shape, as ort's describe opens each
            if component not in self._compiled:
                self.compiled(component, self.bundle.spec.example_feeds(self.bundle, component, 1))
        precisions = sorted({c["inference_precision"] for c in self.compiles})
        return {**super().describe(), "openvino": self._ov.__version__, "device_name": self._device_name(),
                "cpu_capabilities": self.capabilities, "inference_precision": precisions, "compiles": self.compiles}

    def _device_name(self) -> str:
        try:
            return str(self.core.get_property("CPU", "FULL_DEVICE_NAME"))
        except Exception:
            return "CPU"

    def close(self):
        self._compiled.clear()
        self._models.clear()
        super().close()

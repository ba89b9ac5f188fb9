"""TensorRT backend: engines built from the bundle's ONNX, cached by what they were built for.

**Unverified**: no machine of this work has TensorRT (it is not installable from the package
registries here, nor on the one GPU host lent, an H200, where `backend="trt"` was refused with the
install line as tested here). What is tested on CPU is everything
decided before TensorRT runs (gen.runtime.engines: profiles, cache keys, the refusal of an engine
built elsewhere) and the refusals when TensorRT or a GPU is absent.

- Engines are strongly typed networks (TensorRT 11 has no FP16/INT8 builder flags): fp32 engines from
  the fp32 ONNX, fp16 from the bundle's fp16 file, int8-trt from its explicit Q/DQ file.
- One optimisation profile per component from the manifest (engines.profile_for); a timing cache
  beside the engines, so a rebuild (another GPU of the same kind, another profile) is faster.
- Lookup: a shipped engine in BUNDLE/trt/ (written by `gen export BUNDLE --trt`) whose recorded key
  must match this host, else gen's cache (engines.cache_dir_for), building on first use.
- The first call of each set of input shapes (up to 8 per component) captures a CUDA graph around
  execute_async_v3; later calls of those shapes (every step of a sampling loop) replay it. Shapes
  outside the engine's profile are refused before TensorRT runs, naming the range.
- `refit_from_onnx(component, onnx_path)` swaps in the weights of a re-export of the same graph (a
  UNet with another LoRA fused) with trt.Refitter: UNet engines are built refittable, so a new LoRA
  needs no rebuild.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.runtime.backends import Backend

INSTALL = ("{what} needs TensorRT and a CUDA GPU: pip install tensorrt-cu12 (NVIDIA's wheels, CUDA 12) "
           "with a CUDA build of torch; {instead}")
INSTEAD = {  # what to do without TensorRT, in the words of the command that needed it
    "backend 'trt'": "or use --backend ort --device cuda (its TensorRT execution provider) or --backend ort on the CPU",
    "gen export --trt": "without it, run the bundle as it is: gen generate BUNDLE --backend ort (add --device cuda "
                        "for ORT's TensorRT execution provider)",
}
SHIPPED = "trt"  # BUNDLE/trt/: engines written by `gen export BUNDLE --trt`
REFITTABLE = ("unet",)  # components whose weights a LoRA swap replaces
GRAPHS_PER_COMPONENT = 8  # CUDA graphs kept per component, one per set of input shapes (a sampling loop has one)


def import_tensorrt(what: str = "backend 'trt'"):
    try:
        import tensorrt
    except ImportError:
        raise GenError(INSTALL.format(what=what, instead=INSTEAD[what])) from None
    return tensorrt


def host_facts() -> dict:
    """What an engine is specific to, on this host."""
    import torch

    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise GenError("backend 'trt' needs a CUDA GPU, and torch sees none (a CUDA build of torch is needed too)")
    major, minor = torch.cuda.get_device_capability()
    return {"tensorrt": trt.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(),
            "compute_capability": f"{major}.{minor}"}


class TrtBackend(Backend):
    name = "trt"
    devices = ("cuda",)
    precisions = {"cuda": ("fp32", "fp16", "int8-trt")}
    precision_notes = {"cuda/int8": "TensorRT runs the symmetric explicit-quantization variant: precision 'int8-trt'"}

    def __init__(self, bundle, device, precision, threads):
        self._trt = import_tensorrt()
        import torch

        self.host = host_facts()
        super().__init__(bundle, device, precision, threads)
        self._torch = torch
        self._logger = self._trt.Logger(self._trt.Logger.WARNING)
        self._runtime = self._trt.Runtime(self._logger)
        self._engines: dict = {}
        self._graphs: dict = {}
        self._profiles: dict = {}
        self.stream = torch.cuda.Stream()

    # -- engines ------------------------------------------------------------------------------
    def profile(self, component: str) -> dict:
        """The component's min/opt/max shapes, derived once (every call checks its feeds against them)."""
        if component not in self._profiles:
            from gen.runtime.engines import profile_for

            self._profiles[component] = profile_for(self.bundle, component)
        return self._profiles[component]

    def key(self, component: str):
        from gen.runtime.engines import engine_key

        entry = self.bundle.manifest.components[component].files[self.precision]
        onnx = entry.sha256 + (f"+{entry.external_data.sha256}" if entry.external_data else "")
        return engine_key(onnx, self.precision, self.profile(component), self.host)

    def engine(self, component: str):
        if component not in self._engines:
            from gen.runtime.engines import cache_dir_for, check_engine_key

            key = self.key(component)
            shipped = Path(self.bundle.path) / SHIPPED / key.file_name(component)
            recorded = sorted((Path(self.bundle.path) / SHIPPED).glob(f"{component}-{self.precision}-*.json"))
            if recorded and not shipped.is_file():  # shipped for another host: say so rather than rebuild silently
                check_engine_key(json.loads(recorded[0].read_text()), key, recorded[0].with_suffix(".engine"),
                                 host_only=True)  # another profile (other limits) is built in the cache instead
            path = shipped if shipped.is_file() else cache_dir_for(self.bundle) / key.file_name(component)
            if not path.is_file():
                build_engine(self.bundle, component, self.precision, path, key, self._trt, self._logger)
            engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise GenError(f"TensorRT could not load {path}; delete it and gen rebuilds it")
            self._engines[component] = (engine, engine.create_execution_context())
        return self._engines[component]

    # -- running ------------------------------------------------------------------------------
    def _run(self, component, feeds):
        from gen.runtime.engines import check_in_profile

        torch = self._torch
        check_in_profile(component, self.profile(component), {k: v.shape for k, v in feeds.items()})
        engine, context = self.engine(component)
        with torch.cuda.stream(self.stream):
            inputs = {k: torch.from_numpy(v).to("cuda", non_blocking=True) for k, v in feeds.items()}
            shapes = tuple((k, tuple(v.shape)) for k, v in sorted(inputs.items()))
            graph = self._graphs.get((component, shapes))
            if graph is not None:  # these shapes ran before: replay their CUDA graph on its fixed buffers
                for k, v in inputs.items():
                    graph["inputs"][k].copy_(v)
                graph["graph"].replay()
                outputs = graph["outputs"]
            else:
                outputs = self._execute(engine, context, inputs)
                if sum(k[0] == component for k in self._graphs) < GRAPHS_PER_COMPONENT:
                    self._graphs[(component, shapes)] = self._capture(engine, context, inputs)
            self.stream.synchronize()
        return {k: v.float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy() for k, v in outputs.items()}

    def _execute(self, engine, context, inputs):
        torch, trt = self._torch, self._trt
        for name, tensor in inputs.items():
            context.set_input_shape(name, tuple(tensor.shape))
            context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) != trt.TensorIOMode.OUTPUT:
                continue
            dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(engine.get_tensor_dtype(name)))).dtype
            outputs[name] = torch.empty(tuple(context.get_tensor_shape(name)), dtype=dtype, device="cuda")
            context.set_tensor_address(name, outputs[name].data_ptr())
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise GenError("TensorRT execution failed (see its log above)")
        return outputs

    def _capture(self, engine, context, inputs):
        """A CUDA graph of one execute_async_v3 on fixed buffers, replayed for later calls of these shapes."""
        torch = self._torch
        static_in = {k: v.clone() for k, v in inputs.items()}
        self._execute(engine, context, static_in)  # settles TensorRT's lazy allocations before capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            outputs = self._execute(engine, context, static_in)
        return {"graph": graph, "inputs": static_in, "outputs": outputs}

    def refit_from_onnx(self, component: str, onnx_path: str) -> None:
        """Replace the engine's weights by those of a re-export of the same graph (TensorRT's ONNX
        refitter maps the parser's weight names), refusing a partial refit."""
        engine, _ = self.engine(component)
        refitter = self._trt.Refitter(engine, self._logger)
        if not self._trt.OnnxParserRefitter(refitter, self._logger).refit_from_file(str(onnx_path)):
            raise GenError(f"TensorRT could not read the weights of {onnx_path} for {component} (another graph?)")
        missing = refitter.get_missing_weights()
        if missing or not refitter.refit_cuda_engine():
            raise GenError(f"TensorRT could not refit {component} from {onnx_path}: "
                           f"{len(missing)} weights missing (e.g. {list(missing)[:3]})")
        self._graphs = {k: v for k, v in self._graphs.items() if k[0] != component}

    def describe(self):
        return {**super().describe(), **self.host}

    def close(self):
        self._graphs.clear()
        self._engines.clear()
        super().close()


def build_engine(bundle, component: str, precision: str, path: Path, key, trt, logger) -> None:
    """Build one strongly typed engine with its profile and the bundle's timing cache; write it and
    its key (as JSON beside it) atomically."""
    from gen.fileio import write_bytes, write_json

    onnx_path = bundle.onnx_path(component, precision)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise GenError(f"TensorRT cannot parse {onnx_path}: {parser.get_error(0).desc() if parser.num_errors else '?'}")
    config = builder.create_builder_config()
    timing = path.parent / "timing.cache"
    cache = config.create_timing_cache(timing.read_bytes() if timing.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if component in REFITTABLE:
        config.set_flag(trt.BuilderFlag.REFIT)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in json.loads(key.profile).items():  # the profile the key names
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise GenError(f"TensorRT could not build {component} (see its log above)")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, bytes(serialized))
    write_json(path.with_suffix(".json"), {**dataclasses.asdict(key), "component": component})
    write_bytes(timing, bytes(config.get_timing_cache().serialize()))


def build_engines(bundle_path: str, precision: str = "fp32", progress=print) -> list[Path]:
    """`gen export BUNDLE --trt`: every component's engine into BUNDLE/trt/ for this host."""
    from gen.runtime.bundle import load_bundle

    trt = import_tensorrt("gen export --trt")
    host_facts()
    bundle = load_bundle(bundle_path)
    backend = TrtBackend(bundle, "cuda", precision, None)
    out = []
    for component in bundle.components:
        key = backend.key(component)
        path = Path(bundle.path) / SHIPPED / key.file_name(component)
        progress(f"building the TensorRT engine of {component} ({precision}) ...")
        build_engine(bundle, component, precision, path, key, trt, backend._logger)
        out.append(path)
    return out

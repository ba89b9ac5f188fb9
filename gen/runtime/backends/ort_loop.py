"""The denoising loop with its sample kept on ONNX Runtime's device (IO binding), for OrtBackend.

Per step, three sessions run on the backend's providers, passing OrtValues that stay where the
providers put them: `prepare` (the model input: x / divisor, doubled for guidance, the condition
appended), the denoiser, and `step` (guidance's mix and the scheduler step, as the scheduler's
`StepCoefficients`, gen/runtime/graphs). Timesteps, coefficients and the constant feeds are put on
the device once per call, and so is the noise of stochastic schedulers (drawn on the host with
numpy, so a seed gives the same images on every backend; all steps' at once, up to NOISE_BYTES, and
step by step past that). What comes back to the host each step is the preview, when an `on_step`
callback wants one; the sample itself comes back once, at the end. Previews reach `on_step` as float32 (the host loop's are float64).

On the CPU provider the OrtValues live in host memory and the loop is checked there: it gives the host
loop's images bit for bit (tests/runtime/test_resident_loop.py). On CUDA it is unverified: the one
GPU host lent (an H200, 2026-12-04) had only the CPU build of onnxruntime, and onnxruntime-gpu's
wheel is too large to carry there. It runs where the network's session really runs (ORT drops a GPU
provider it cannot start); its own graphs take CUDA's provider, never TensorRT's.
"""

from __future__ import annotations

import time

import numpy as np

from gen.errors import GenError
from gen.runtime.denoise import DenoiserCall, model_input
from gen.runtime.graphs import COEFFICIENTS, graph_path
from gen.runtime.validate import check_feeds

UNCLIPPED = float("inf")  # the step graph's clip bound for "no clip": Max/Min with it change nothing
GPU = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
NOISE_BYTES = 256 << 20  # all steps' noise up front up to this much device memory (SD at 50 steps: 3 MB an image)


class ResidentLoop:
    """The loop's sessions, opened once per backend; `run` is one sampling call."""

    def __init__(self, backend):
        self.backend = backend
        self.ort = backend._ort
        self.where = ("cpu", 0)  # set per call from the providers the network's session really got
        self._graphs: dict = {}

    def graph(self, name: str):
        """The small graphs run on CUDA (or the CPU), never TensorRT: it would build an engine per
        shape for a few element-wise ops, and fp16 ones for an fp16 bundle. One per thread count the
        network runs on (it adapts to other jobs' load: gen.runtime.threads)."""
        key = (name, self.backend.threads)
        if key not in self._graphs:
            from gen.runtime.ort_session import ort_session

            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.where[0] == "cuda" else None
            self._graphs[key] = ort_session(graph_path(name), key[1], providers)
        return self._graphs[key]

    def put(self, array: np.ndarray, host: bool = False):
        """`array` on the loop's device (`host`: in host memory, for inputs CUDA kernels read there)."""
        where = ("cpu", 0) if host else self.where
        return self.ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), *where)

    def run_graph(self, session, inputs: dict, output_names) -> list:
        binding = session.io_binding()
        for name, value in inputs.items():
            binding.bind_ortvalue_input(name, value)
        for name in output_names:
            binding.bind_output(name, *self.where)
        binding.synchronize_inputs()
        session.run_with_iobinding(binding)
        return binding.get_outputs()

    def run(self, sched, x: np.ndarray, rng, call: DenoiserCall, guidance: float | None,
            unconditional_first: bool, on_step) -> np.ndarray:
        backend, guided = self.backend, guidance is not None
        n, steps = len(x), len(sched.timesteps)
        # the first step's feeds are checked on the host as every backend call is; later ones are
        # this loop's own outputs, in the same shapes
        first = call.feeds(model_input(sched, x, sched.timesteps[0], guided), sched.timesteps[0])
        check_feeds(call.component, backend.bundle.signature(call.component), first)
        network = backend.session(call.component)
        net_outputs = [o.name for o in network.get_outputs()]
        if len(net_outputs) != 1:
            raise GenError(f"{call.component} has {len(net_outputs)} outputs; the denoising loop needs one")
        if self.where[0] == "cpu" and set(GPU) & set(network.get_providers()):
            self.where = ("cuda", 0)
            self._graphs.clear()  # opened for the CPU before
        constant = {name: self.put(value) for name, value in call.constant.items()}
        per_step = [self.step_inputs(sched, i, t, n, guidance, call) for i, t in enumerate(sched.timesteps)]
        noises = self.noises(sched, x, rng, steps)
        prepare = None
        if guided or call.condition is not None or any(s["divisor"] is not None for s in per_step):
            prepare_name = "prepare_condition" if call.condition is not None else "prepare"
            prepare = self.graph(prepare_name)
            prepare_constant = {"repeats": self.put(np.array([2 if guided else 1, 1, 1, 1], np.int64), host=True)}
            unit_divisor = self.put(np.array(1.0, np.float32))
            if call.condition is not None:
                prepare_constant["condition"] = self.put(call.condition)
        halves = (0, 1) if unconditional_first else (1, 0)
        step_constant = {"halves": self.put(np.array(halves if guided else (0, 0), np.int64)),
                         "noise": self.put(np.zeros(x.shape, np.float32))}
        sample, previous = self.put(x), self.put(np.zeros(x.shape, np.float64))
        for i, inputs in enumerate(per_step):
            if i:  # the thread count may have changed (another job came or went): the sessions for it
                network = backend.session(call.component)
                if prepare is not None:
                    prepare = self.graph(prepare_name)
            step_graph = self.graph("step")
            if prepare is not None:
                divisor = inputs["divisor"] or unit_divisor
                model_in = self.run_graph(prepare, {"sample": sample, "divisor": divisor, **prepare_constant},
                                          ["model_input"])[0]
            else:
                model_in = sample
            t0 = time.perf_counter()
            out = self.run_graph(network, {"sample": model_in, "timestep": inputs["timestep"], **constant}, net_outputs)[0]
            backend.count(call.component, time.perf_counter() - t0)
            if i == 0:
                expected = [len(first["sample"]), *x.shape[1:]]
                if out.shape() != expected:  # the step graph would reshape a wrong output silently
                    raise GenError(f"{call.component} returned shape {out.shape()} for an input of shape "
                                   f"{list(first['sample'].shape)}; the denoising loop needs {expected}")
            feeds = {"sample": sample, "model_output": out, "previous_x0": previous,
                     "coefficients": inputs["coefficients"], **step_constant}
            if sched.needs_noise:  # drawn every step, used or not, as the host loop draws it
                feeds["noise"] = noises[i] if noises else self.put(rng.standard_normal(x.shape, dtype=np.float32))
            sample, previous, preview = self.run_graph(step_graph, feeds, ["next_sample", "x0", "preview"])
            if on_step is not None:
                on_step(i, steps, preview.numpy())
        result = sample.numpy()
        if not np.isfinite(result).all():
            raise GenError(f"{call.component} produced NaN or infinite values while sampling")
        return result

    def noises(self, sched, x: np.ndarray, rng, steps: int) -> list:
        """Every step's noise on the device before the loop starts (one draw of all of them gives the
        per-step draws' values), so no step waits on a copy; per step instead past NOISE_BYTES."""
        if not sched.needs_noise or steps * x.nbytes > NOISE_BYTES:
            return []
        drawn = rng.standard_normal((steps, *x.shape), dtype=np.float32)
        return [self.put(step) for step in drawn]

    def step_inputs(self, sched, i: int, t, n: int, guidance: float | None, call: DenoiserCall) -> dict:
        """Step i's device-side inputs: its timestep feed, its coefficients, and its input divisor
        (None where it is 1)."""
        c = sched.coefficients(i, history=i > 0)._asdict()
        if c["next_noise"] and not sched.needs_noise:
            raise GenError(f"scheduler {sched.name!r} adds noise but says needs_noise=False: no noise would be drawn")
        c["clip"] = UNCLIPPED if c["clip"] is None else c["clip"]
        c["guidance"] = 0.0 if guidance is None else guidance
        batch = 2 * n if guidance is not None else n
        divisor = c["input_divisor"]
        return {"timestep": self.put(np.full(batch, t, dtype=call.timestep_dtype)),
                "coefficients": self.put(np.array([c[k] for k in COEFFICIENTS], np.float64)),
                "divisor": None if divisor == 1.0 else self.put(np.array(divisor, np.float32))}

    def close(self) -> None:
        self._graphs.clear()

"""The code that runs inside Triton's python backend: component models and the sampling pipeline.

Each model directory's model.py is a few-line shim that puts gen's environment on sys.path and
exposes one of these as TritonPythonModel. `triton_python_backend_utils` exists only inside the backend stub, so it is
imported lazily.

- ComponentModel runs one ONNX component with onnxruntime. With dynamic batching Triton hands it
  several requests at once; they are concatenated into one ORT call and split back.
- PipelineModel runs the family's sampling loop with gen's own Sampler. With components="bls" its
  backend sends each network call to the component model by business-logic scripting, where
  Triton's dynamic batching merges concurrent requests' calls (throughput); with "inline" it runs
  the ONNX files itself, one round trip less per call (latency). Same code, same noise, same images
  as the in-process Sampler either way.

  With batching="step" (the default) execute() hands each request to a thread of its own and returns
  at once; the request is answered through its response sender (Triton's python backend allows that
  in the default, non-decoupled mode since 24.07, and the clients see an ordinary response). The
  requests' denoising steps meet in a StepBatcher (gen.runtime.step_batch): a request that arrives
  while others are mid-sampling joins their batch at the next step. With batching="request" each
  instance samples one request at a time, start to end, as before.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from gen.errors import GenError
from gen.runtime.arguments import ARGUMENTS
from gen.runtime.remote import PROBE_REFUSAL  # what the health probe (n = 0) must hear from a live model

ARGUMENTS_BY_SERVED = {a.served: a for a in ARGUMENTS.values() if a.served}
RAISE_BATCH = "; `gen serve build --max-batch N` raises it"  # the fix, in the batch refusals
MAX_ACTIVE = 32  # requests one step-batching instance samples at once (threads); more wait for one
# a cancelled request stops within about this (CancelCheck: why it is not every step)
CANCEL_CHECK_SECONDS = 0.1

def _pb():
    import triton_python_backend_utils as pb_utils

    return pb_utils


def _params(args) -> dict:
    config = json.loads(args["model_config"])
    return {k: v["string_value"] for k, v in config.get("parameters", {}).items()}, config


class ComponentModel:
    """One network. Each request is checked on its own against the component's signature (dtypes,
    shapes, value ranges such as class labels and token ids, finite floats) before it joins a
    batch, so one client's bad request is answered with its own error and never fails the others'."""

    def initialize(self, args):
        from gen.runtime.ort_session import ort_session

        params, config = _params(args)
        self.name = config["name"]
        self.outputs = [o["name"] for o in config["output"]]
        root = Path(args["model_repository"]) / args["model_version"]
        self.session = ort_session(root / "model.onnx", int(params.get("threads", 0)) or None)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.ranks = {i.name: len(i.shape) for i in self.session.get_inputs()}
        sig_path = root / "signature.json"
        self.signature = json.loads(sig_path.read_text()) if sig_path.is_file() else None

    def _arrays(self, request) -> dict:
        from gen.runtime.validate import check_feeds

        pb = _pb()
        arrays = {}
        for name in self.inputs:
            t = pb.get_input_tensor_by_name(request, name)
            if t is None:
                raise GenError(f"{self.name}: input '{name}' is required")
            a = t.as_numpy()
            arrays[name] = a.reshape(-1) if self.ranks[name] == 1 else a
        if self.signature is not None:
            check_feeds(self.name, self.signature, arrays)
        return arrays

    def execute(self, requests):
        pb = _pb()
        checked, responses = [], [None] * len(requests)
        for i, r in enumerate(requests):
            try:
                checked.append((i, self._arrays(r)))
            except GenError as e:
                responses[i] = pb.InferenceResponse(output_tensors=[], error=pb.TritonError(str(e)))
        if checked:
            merged = {k: np.concatenate([a[k] for _, a in checked]) for k in self.inputs}
            results = self.session.run(self.outputs, merged)
            start = 0
            for i, arrays in checked:
                size = len(arrays[self.inputs[0]])
                outs = [np.ascontiguousarray(out[start : start + size]) for out in results]
                responses[i] = pb.InferenceResponse(output_tensors=[pb.Tensor(n, a) for n, a in zip(self.outputs, outs)])
                start += size
        return responses


class PipelineModel:
    def initialize(self, args):
        from gen.runtime.backends import Backend
        from gen.runtime.bundle import Bundle
        from gen.runtime.manifest import read_manifest
        from gen.runtime.sampler import Sampler

        params, _ = _params(args)
        root = Path(args["model_repository"]) / args["model_version"]
        bundle = Bundle(root, read_manifest(json.loads((root / "gen.json").read_text()), str(root / "gen.json")))
        self.spec = bundle.spec
        # request input name -> the generate() argument it carries, as the family serves them
        self.inputs = {ARGUMENTS_BY_SERVED[i["name"]].name: i["name"] for i in self.spec.served_inputs(bundle)}
        prefix = params["component_prefix"]
        self.max_n = int(params["max_n"])
        pb = _pb()

        class BlsBackend(Backend):
            name = "triton-bls"

            def _run(self, component, feeds):
                names = self.output_names(component)
                # Per-sample scalars travel as [batch, 1] (config dims [1], reshaped to [batch] for the model)
                request = pb.InferenceRequest(
                    model_name=f"{prefix}{component}", requested_output_names=names,
                    inputs=[pb.Tensor(k, np.ascontiguousarray(v.reshape(-1, 1) if v.ndim == 1 else v)) for k, v in feeds.items()],
                )
                response = request.exec()
                if response.has_error():
                    raise GenError(f"{prefix}{component}: {response.error().message()}")
                return {n: pb.get_output_tensor_by_name(response, n).as_numpy() for n in names}

        if params.get("components") == "inline":
            # Latency mode: this instance runs the networks in its own onnxruntime sessions (the ONNX
            # files sit beside gen.json), one server round trip less per network call.
            from gen.runtime.backends import create_backend

            threads = int(params.get("threads", 0)) or None
            if params.get("backend") == "auto":  # gen serve build found this bundle's plan (gen tune) and copied it
                from gen.runtime.plan import planned_backend

                backend, note = planned_backend(bundle, threads)
                print(f"gen pipeline {args['model_name']}: {note}", file=sys.stderr, flush=True)  # into Triton's log
            else:
                backend = create_backend("ort", bundle, "cpu", params.get("precision", "fp32"), threads)
        else:
            backend = BlsBackend(bundle, "cpu", "fp32", None)
        limits = {"n": self.max_n, **{k: int(params[f"max_{k}"]) for k in ("steps", "pixels", "prompt_chars")
                                      if params.get(f"max_{k}")}}
        self.pool = None
        if params.get("batching", "request") == "step":
            from concurrent.futures import ThreadPoolExecutor

            from gen.runtime.step_batch import MAX_ROWS, StepBatcher

            backend = StepBatcher(backend, int(params.get("max_rows", 0)) or MAX_ROWS)  # a network call's rows at most
            # requests sampled at once (their steps batched); later ones wait for a thread
            self.pool = ThreadPoolExecutor(int(params.get("max_active", 0)) or MAX_ACTIVE, thread_name_prefix="gen-request")
        self.sampler = Sampler(bundle, backend=backend, limits=limits)

    def finalize(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        self.sampler.close()

    def execute(self, requests):
        if self.pool is None:
            return [self._respond(r) for r in requests]
        pb = _pb()
        for r in requests:  # answered from the pool through the sender: execute() returns at once
            self.pool.submit(_send, r.get_response_sender(), self._respond, r, pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None

    def _respond(self, r):
        """The response to one request: its images, or its error (never a stack trace, never a dead instance)."""
        from gen.images import to_uint8

        pb = _pb()
        try:
            images = self.sampler.generate(**self._arguments(r), output="np", on_step=_stop_if_cancelled(r))
            arrays = {"images": to_uint8(images), "images_float": np.ascontiguousarray(images, dtype=np.float32)}
            return pb.InferenceResponse(output_tensors=[pb.Tensor(k, a) for k, a in arrays.items()])
        except GenError as e:
            return pb.InferenceResponse(output_tensors=[], error=pb.TritonError(str(e)))
        except Exception as e:  # noqa: BLE001
            return pb.InferenceResponse(output_tensors=[], error=pb.TritonError(
                f"internal error ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                "the server log has details"))

    def _arguments(self, request) -> dict:
        """The request's inputs as generate() keywords, decoded as the family serves them; the
        Sampler then validates them like any in-process call."""
        pb = _pb()
        values = {}
        for argument, served in self.inputs.items():
            t = pb.get_input_tensor_by_name(request, served)
            if t is not None:
                values[argument] = ARGUMENTS_BY_SERVED[served].decode(t.as_numpy())
        if "n" not in values:
            raise GenError("input 'n' is required")
        n, count = values["n"], self.spec.images_per_request(values)
        if n < 1 or n > self.max_n:
            raise GenError(f"n = {n} {PROBE_REFUSAL}{self.max_n} (the largest batch this model serves{RAISE_BATCH})")
        if count > self.max_n:
            raise GenError(f"n x prompts = {count} images is over {self.max_n} (the largest batch this model serves"
                           f"{RAISE_BATCH})")
        return values


def _send(sender, respond, request, final_flag) -> None:
    """Answer one request from a pool thread; a sender that fails (the client went away) is logged, not raised."""
    try:
        sender.send(respond(request), flags=final_flag)
    except Exception as e:  # noqa: BLE001 - nothing to answer to; the instance goes on
        print(f"gen pipeline: could not send a response: {e}", file=sys.stderr, flush=True)


def _stop_if_cancelled(request):
    """A step hook that ends the sampling loop of a request its client has cancelled (gRPC cancel,
    a closed stream), so an abandoned expensive request stops costing the instance others wait for."""
    is_cancelled = getattr(request, "is_cancelled", None)
    if is_cancelled is None:  # python backends before 23.10
        return None
    return CancelCheck(is_cancelled)


class CancelCheck:
    """The hook of _stop_if_cancelled. Asking the server (`is_cancelled()`, a round trip to it) on every
    step of every request, on the step batch's one thread, cost step-level batching about a fifth of its
    throughput (8 clients, 8x8 DDPM, 2 instances x 1 thread), so a request asks at most every
    CANCEL_CHECK_SECONDS, counting from its arrival (a short request never asks). The asking stays on the
    thread that runs the steps: asked from each request's own thread at once, the python backend's stub
    crashed (a segfault in 1 of 3 test runs), which one asker at a time never did. A failed ask counts as
    not cancelled (logged once): the request goes on rather than fail on a question about its client."""

    def __init__(self, is_cancelled):
        self._ask, self.cancelled, self.asked_at, self._failed = is_cancelled, False, time.monotonic(), False

    def poll(self) -> None:
        self.asked_at = time.monotonic()
        try:
            if self._ask():
                self.cancelled = True
        except Exception as e:  # noqa: BLE001 - see the class docstring
            if not self._failed:
                self._failed = True
                print(f"gen pipeline: could not ask whether a request was cancelled (goes on): {e}", file=sys.stderr,
                      flush=True)

    def __call__(self, i, steps, x0):
        if not self.cancelled and time.monotonic() - self.asked_at >= CANCEL_CHECK_SECONDS:
            self.poll()
        if self.cancelled:
            message = f"request cancelled by its client after {i + 1} of {steps} steps"
            print(f"gen pipeline: {message}", file=sys.stderr, flush=True)  # into Triton's log: no one hears the answer
            raise GenError(message)

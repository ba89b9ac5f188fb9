"""HTTP and gRPC clients for a gen pipeline served by Triton (tritonclient underneath).

Part of the runtime, beside the in-process backends: `Sampler(url, backend="triton")` holds a
`ServedSource` (gen.runtime.sources says why a source and not a Backend), which asks a
`RemoteGenerator`, the client; a client host needs tritonclient, not the server side in gen.serving.
"""

from __future__ import annotations

import threading
from urllib.parse import urlparse

import numpy as np

from gen.errors import GenError
from gen.runtime.names import check_model_name
from gen.runtime.source import Source

SCHEMES = ("http", "grpc")


def parse_url(url: str, option: str = "--url") -> tuple[str, str]:
    """'http://host:port' or 'grpc://host:port' -> (scheme, 'host:port'); `option` names where it was given."""
    u = urlparse(url)
    try:
        port = u.port
    except ValueError:  # out-of-range or non-numeric port
        port = None
    if u.scheme not in SCHEMES or not u.hostname or not port:
        raise GenError(f"{option} {url!r} is not a server URL: it must look like http://127.0.0.1:8000 or grpc://127.0.0.1:8001")
    return u.scheme, f"{u.hostname}:{u.port}"


def client_module(scheme: str):
    try:
        if scheme == "http":
            import tritonclient.http as tc
        else:
            import tritonclient.grpc as tc
    except ImportError:
        raise GenError("talking to Triton needs tritonclient: pip install 'gen[serving]'") from None
    return tc


def connect(url: str, option: str = "--url"):
    scheme, address = parse_url(url, option)
    tc = client_module(scheme)
    return scheme, tc, tc.InferenceServerClient(address)


class RemoteGenerator:
    """A served gen pipeline's client: generate()'s arguments in, the images out (`ServedSource` and
    the load test use it), and raw requests (`infer`)."""

    def __init__(self, url: str, model: str | None):
        if not model:
            raise GenError("backend 'triton' needs model=NAME (--model on the command line): the pipeline model's name in the repository")
        self.model = check_model_name(model, "--model")
        self.url = url
        self.scheme, self.tc, client = connect(url)
        self.family = "remote"
        # tritonclient's HTTP client runs on gevent: a client made in one thread fails in any other
        # ("Cannot switch to a different thread"), so a threaded caller (the demo's request handlers)
        # gets one client per thread, keyed by the thread object: Linux reuses a dead thread's id. The
        # gRPC client is thread-safe and shared.
        self._clients = [(threading.current_thread(), client)]
        self._lock = threading.Lock()

    @property
    def client(self):
        """This thread's client (the one client, for gRPC); clients of threads that have ended are closed."""
        me, stale = threading.current_thread(), []
        with self._lock:
            for owner, client in self._clients:
                if owner is me or self.scheme == "grpc":
                    return client
            stale = [c for owner, c in self._clients if not owner.is_alive()]
            client = self.tc.InferenceServerClient(parse_url(self.url)[1])
            self._clients = [(o, c) for o, c in self._clients if o.is_alive()] + [(me, client)]
        for old in stale:  # closing only drops its sockets: safe from another thread
            old.close()
        return client

    def generate(self, **arguments) -> np.ndarray:
        """The same keywords as `Sampler.generate`, encoded as the served pipeline's request inputs
        (gen.runtime.arguments); the server validates them against its bundle."""
        from gen.runtime.arguments import ARGUMENTS, given

        served = ", ".join(a for a, spec in ARGUMENTS.items() if spec.served)
        values = {spec.served or name: spec.encode(value)
                  for name, (spec, value) in given(arguments, f"served models take {served}").items()}
        return self.infer(values)["images_float"]

    def close(self) -> None:
        """Closes every thread's client: an open keep-alive connection makes a stopping Triton wait."""
        with self._lock:
            clients, self._clients = [c for _, c in self._clients], []
        for client in clients:
            client.close()

    def infer(self, values: dict[str, np.ndarray], outputs=("images_float",)) -> dict[str, np.ndarray]:
        """One raw request: any input names and dtypes (the server validates them)."""
        inputs = []
        for name, a in values.items():
            dtype = "BYTES" if a.dtype == np.object_ else self.tc_dtype(a)
            t = self.tc.InferInput(name, list(a.shape), dtype)
            t.set_data_from_numpy(a)
            inputs.append(t)
        requested = [self.tc.InferRequestedOutput(o) for o in outputs]
        try:
            result = self.client.infer(self.model, inputs, outputs=requested)
        except Exception as e:  # tritonclient.utils.InferenceServerException, connection errors
            message = _message(e)
            if "unexpected inference output" in message:  # a component model answers other outputs
                message += (f"; {self.model} is not a gen pipeline (a component?): give a pipeline's name, "
                            f"`gen serve status {self.url}` lists them")
            elif "unexpected inference input" in message:  # an argument of another family, e.g. psi to a DDPM
                message += f"; {self.model} does not take this argument"
            elif "is not found" in message:
                message += f"; `gen serve status {self.url}` lists the served models"
            from gen.runtime.arguments import argument_in

            raise GenError(f"{self.url} model {self.model}: {message}", argument_in(message)) from None
        return {o: result.as_numpy(o) for o in outputs}

    @staticmethod
    def tc_dtype(a: np.ndarray) -> str:
        from tritonclient.utils import np_to_triton_dtype

        return np_to_triton_dtype(a.dtype)


class ServedSource(Source):
    """What `Sampler(url, backend="triton", model=NAME)` generates from: same arguments, same images.

    The server fixes what a local bundle lets the caller choose (device, precision, threads,
    limits: `gen serve build` sets them) and checks the arguments itself; it reports no steps."""

    family = "remote"

    def __init__(self, url: str, model: str | None, device: str = "cpu", precision: str | None = None,
                 threads: int | None = None, limits: dict | None = None):
        given = {k: v for k, v in (("device", device != "cpu"), ("precision", precision), ("threads", threads),
                                   ("limits", limits)) if v}
        if given:  # the server decides these; silently dropping them would mislead
            raise GenError(f"backend 'triton' runs on the server, which fixes {', '.join(given)}; "
                           "set them in `gen serve build` instead")
        self.generator = RemoteGenerator(url, model)
        self.url, self.model = url, self.generator.model
        self.served_arguments: list[str] | None = None  # as last read from the server's config (unavailable())
        self.last_timing: dict = {}

    def generate(self, arguments: dict, on_step=None) -> np.ndarray:
        if on_step is not None:
            raise GenError("on_step runs in process; a served model reports no steps")
        return self.generator.generate(**arguments)

    def reconstruct(self, images) -> np.ndarray:
        raise GenError("reconstruct() runs in process on a bundle; a served model answers generate() requests")

    def unavailable(self) -> str:
        """Why the served model cannot take requests now ("" when it can); its arguments are read on the way."""
        from gen.runtime.arguments import ARGUMENTS

        client = self.generator.client
        try:
            try:
                config = client.get_model_config(self.model, as_json=True)  # gRPC: {"config": {...}}
            except TypeError:
                config = client.get_model_config(self.model)  # HTTP: the config itself
        except Exception as e:  # noqa: BLE001 - tritonclient's errors: refused connection, unknown model, ...
            return f"model {self.model} does not answer ({_message(e).splitlines()[0]})"
        served = {i["name"] for i in config.get("config", config)["input"]}
        self.served_arguments = [a.name for a in ARGUMENTS.values() if a.served in served]
        return ""

    def info(self) -> dict:
        return {"family": self.family, "source": f"a model served by Triton ({self.model})",
                "arguments": list(self.served_arguments or []), "precisions": [], "image": None, "previews": False,
                "limits": None}

    def describe(self) -> dict:
        return {"backend": "triton", "url": self.url, "model": self.model}

    def close(self) -> None:
        self.generator.close()


def _message(e: Exception) -> str:
    msg = e.message() if hasattr(e, "message") and callable(e.message) else str(e)
    return (msg or repr(e)).strip()


def server_status(url: str, probe: bool = False, option: str = "URL") -> dict:
    """Liveness, readiness and each model's state. Triton reports a python-backend model READY even
    after its stub process died (e.g. killed for memory); with `probe`, each gen pipeline also gets
    one request its own code refuses at once (n = 0): that refusal proves the model's process is
    alive and answering, at no cost, and `healthy` says whether it came."""
    scheme, tc, client = connect(url, option)
    try:  # closed at the end: an open keep-alive connection makes a stopping Triton wait out its exit timeout
        try:
            live, ready = client.is_server_live(), client.is_server_ready()
            index = client.get_model_repository_index()
        except Exception as e:
            raise GenError(f"cannot reach Triton at {url}: {_message(e)}") from None
        if scheme == "grpc":
            index = [{"name": m.name, "state": m.state, "reason": m.reason} for m in index.models]
        models = {m["name"]: {"state": m.get("state", ""), "reason": m.get("reason", "")} for m in index}
        if probe:
            for name, info in models.items():
                if info["state"] == "READY":
                    _probe(url, scheme, client, name, info)
            ready = ready and all(i.get("healthy", True) for i in models.values())
    finally:
        client.close()
    return {"url": url, "live": live, "ready": ready, "models": models}


PROBE_REFUSAL = "is outside 1.."  # what a live gen pipeline answers to n = 0 (triton_models.PipelineModel)


def _filler(spec: dict) -> np.ndarray:
    """The smallest input of a config's data type and dims (variable sizes as 1) that Triton accepts,
    e.g. a 1x1x1x1 uint8 image: the pipeline refuses n = 0 before reading it."""
    from tritonclient.utils import triton_to_np_dtype

    shape = [max(int(d), 1) for d in spec.get("dims", [1])]
    kind = spec.get("data_type", "TYPE_INT32").removeprefix("TYPE_")
    if kind == "STRING":
        return np.full(shape, b"a", np.object_)
    return np.ones(shape, triton_to_np_dtype(kind))


def _probe(url: str, scheme: str, client, name: str, info: dict) -> None:
    """Ask a gen pipeline model (one whose config names its components) for n = 0 images."""
    try:
        config = client.get_model_config(name, as_json=True)["config"] if scheme == "grpc" else client.get_model_config(name)
    except Exception:  # not reachable as a model: leave it to the state Triton reports
        return
    if "component_prefix" not in config.get("parameters", {}):
        return
    values = {"n": np.array([0], np.int32)}
    for spec in config.get("input", []):  # Triton itself refuses a request without its required inputs
        if spec["name"] != "n" and not spec.get("optional"):
            values[spec["name"]] = _filler(spec)
    remote = RemoteGenerator(url, name)
    try:
        remote.infer(values)
        answer = "it returned images for n = 0"
    except GenError as e:
        answer = str(e)
    finally:
        remote.close()
    info["healthy"] = PROBE_REFUSAL in answer
    if not info["healthy"]:
        info["reason"] = f"does not answer: {answer}"

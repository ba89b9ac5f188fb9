"""Run a real `tritonserver` on a model repository: find it, set its environment, wait until ready.

The binary comes from PATH or from the nvidia-pytriton wheel (pip install --no-deps
nvidia-pytriton==0.7.0), which ships tritonserver with the python backend only. Its python-backend
stub is picked for this interpreter's version and placed in a private backend directory, and
LD_LIBRARY_PATH gets the wheel's libraries and libpython's directory, without which the stub hangs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from gen.errors import GenError
from gen.ports import check_port, host_literal, http_url

INSTALL_HINT = "pip install -c constraints.txt -e '.[serving]' && pip install --no-deps nvidia-pytriton==0.7.0 (the server binary and its clients)"
BACKENDS_PREFIX = "gen-triton-backends-"
PR_SET_PDEATHSIG = 1


def _remove_stale_backend_dirs() -> None:
    """Backend directories of gen processes that were killed before they could clean up."""
    for d in Path(tempfile.gettempdir()).glob(f"{BACKENDS_PREFIX}*"):
        pid = d.name[len(BACKENDS_PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_ports_free(host: str, ports) -> None:
    """Refuse to start where something already listens: Triton would fail to bind, or worse, the
    readiness probe would find the other server and report it as ours."""
    from gen.ports import bind

    for port in ports:
        bind(host, port, "--http-port, --grpc-port").close()


def _can_tie_lifetime() -> bool:
    """PR_SET_PDEATHSIG fires when the *thread* that started the child exits: only tie the server's
    life to ours from the main thread, where that thread is the process."""
    import threading

    return sys.platform == "linux" and threading.current_thread() is threading.main_thread()


def _die_with(parent: int):
    """A preexec_fn for the child: the kernel sends it SIGTERM when gen dies, even by SIGKILL
    (Linux), so tritonserver never outlives its `gen serve start` and cleans its shared memory on
    the way out. A parent that died before the request was made is caught by the pid check."""

    def tie() -> None:
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            return  # no prctl: stop() still ends it on any exit gen survives
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
    return tie


def _pytriton_root() -> Path | None:
    spec = importlib.util.find_spec("pytriton")  # locate without importing: its imports need extra deps
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_tritonserver() -> tuple[Path, Path | None]:
    """(binary, pytriton package root or None when the binary came from PATH)."""
    root = _pytriton_root()
    if root and (root / "tritonserver" / "bin" / "tritonserver").is_file():
        return root / "tritonserver" / "bin" / "tritonserver", root
    on_path = shutil.which("tritonserver")
    if on_path:
        return Path(on_path), None
    raise GenError(f"no tritonserver found on PATH or in nvidia-pytriton; install it with: {INSTALL_HINT}")


def _backend_dir(root: Path) -> Path:
    """A backend directory whose python backend carries the stub built for this Python."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    src = root / "tritonserver" / "backends" / "python"
    stub = root / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise GenError(f"nvidia-pytriton has no python-backend stub for Python {version}")
    _remove_stale_backend_dirs()
    d = Path(tempfile.mkdtemp(prefix=f"{BACKENDS_PREFIX}{os.getpid()}-"))
    (d / "python").mkdir()
    for f in src.iterdir():
        if f.is_file():
            os.symlink(f, d / "python" / f.name)
    os.symlink(stub, d / "python" / stub.name)
    return d


def _environment(root: Path | None) -> dict:
    env = dict(os.environ)
    libs = [sysconfig.get_config_var("LIBDIR") or ""]
    if root is not None:
        libs.insert(0, str(root.parent / "nvidia_pytriton.libs"))
    env["LD_LIBRARY_PATH"] = ":".join(p for p in [*libs, env.get("LD_LIBRARY_PATH", "")] if p)
    return env


class TritonServer:
    """A tritonserver process bound to one host; use as a context manager or start()/stop()."""

    def __init__(self, repository: str, host: str = "127.0.0.1", http_port: int = 8000, grpc_port: int = 8001,
                 metrics_port: int | None = None, log_file: str | None = None, verbose: bool = False):
        self.repository = Path(repository).resolve()
        if not self.repository.exists():
            raise GenError(f"model repository not found: {repository} (build one with `gen serve build BUNDLE --out {repository}`)")
        if not (self.repository / "gen-repository.json").is_file() and not any(self.repository.glob("*/config.pbtxt")):
            raise GenError(f"{repository} is not a model repository (build one with `gen serve build`)")
        ports = {"--http-port": http_port, "--grpc-port": grpc_port, "metrics_port": metrics_port or None}  # 0: off
        used = {}
        for option, port in ports.items():
            if port is None:
                continue
            check_port(port, option)
            if port in used:
                raise GenError(f"{used[port]} and {option} must differ, both are {port}")
            used[port] = option
        self.host, self.http_port, self.grpc_port, self.metrics_port = host, http_port, grpc_port, metrics_port
        self.log_file = Path(log_file) if log_file else self.repository.parent / f"{self.repository.name}.tritonserver.log"
        self.verbose = verbose
        self.process: subprocess.Popen | None = None
        self._backends: Path | None = None

    @property
    def http_url(self) -> str:
        return http_url(self.host, self.http_port)

    @property
    def grpc_url(self) -> str:
        return f"grpc://{host_literal(self.host)}:{self.grpc_port}"

    def command(self, binary: Path) -> list[str]:
        cmd = [str(binary), f"--model-repository={self.repository}", f"--http-address={self.host}",
               f"--grpc-address={self.host}", f"--http-port={self.http_port}", f"--grpc-port={self.grpc_port}",
               "--exit-on-error=false", "--strict-readiness=false", "--log-verbose=" + ("1" if self.verbose else "0"),
               # explicit control with everything loaded at start: the same models as the default
               # mode, and a model whose python process died can be reloaded (restart_unhealthy)
               "--model-control-mode=explicit", "--load-model=*"]
        if self.metrics_port:
            cmd += [f"--metrics-port={self.metrics_port}", f"--metrics-address={self.host}"]
        else:
            cmd.append("--allow-metrics=false")
        if self._backends is not None:
            cmd.append(f"--backend-directory={self._backends}")
        return cmd

    def start(self, timeout: float = 120.0) -> "TritonServer":
        binary, root = find_tritonserver()
        check_ports_free(self.host, [p for p in (self.http_port, self.grpc_port, self.metrics_port) if p])
        if root is not None:
            self._backends = _backend_dir(root)
        try:
            with open(self.log_file, "wb") as log:
                # own session: a Ctrl-C in the terminal reaches gen, which then stops the server itself
                self.process = subprocess.Popen(self.command(binary), stdout=log, stderr=subprocess.STDOUT,
                                                env=_environment(root), start_new_session=True,
                                                preexec_fn=_die_with(os.getpid()) if _can_tie_lifetime() else None)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise GenError(f"tritonserver exited with code {self.process.returncode} during start-up; "
                                   f"log {self.log_file}:\n{self.log_tail()}")
                if self.ready():
                    return self
                time.sleep(0.2)
            raise GenError(f"tritonserver was not ready after {timeout:.0f} s; see {self.log_file}")
        except OSError as e:
            self.stop()
            raise GenError(f"cannot start {binary}: {e}") from None
        except BaseException:  # includes KeyboardInterrupt during the wait: never leave an orphan
            self.stop()
            raise

    def _probe(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}{path}", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def live(self) -> bool:
        return self._probe("/v2/health/live")

    def ready(self) -> bool:
        return self._probe("/v2/health/ready")

    def model_ready(self, name: str) -> bool:
        return self._probe(f"/v2/models/{name}/ready")

    def restart_unhealthy(self) -> list[str]:
        """Reload every gen pipeline that does not answer its probe (Triton keeps reporting a python
        model READY after its stub process died, e.g. killed for memory). Returns the names reloaded."""
        from gen.runtime.remote import connect, server_status

        status = server_status(self.http_url, probe=True)
        dead = [name for name, info in status["models"].items() if info.get("healthy") is False]
        if dead:
            _, _, client = connect(self.http_url)
            try:
                for name in dead:
                    try:
                        client.load_model(name)  # a fresh instance, with a fresh stub process
                    except Exception as e:  # tritonclient's own exception type
                        raise GenError(f"cannot reload model {name}: {e}") from None
            finally:
                client.close()
        return dead

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Triton drains in-flight requests, then exits
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._backends is not None:
            shutil.rmtree(self._backends, ignore_errors=True)
            self._backends = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

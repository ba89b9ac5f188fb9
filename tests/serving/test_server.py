"""A real tritonserver on 127.0.0.1: same images as in-process, concurrency, and bad requests."""

import shutil
import socket
import threading

import numpy as np
import pytest

from gen.errors import GenError
from gen.runtime.sampler import Sampler
from gen.runtime.remote import RemoteGenerator, server_status
from gen.serving.loadtest import run_load
from gen.serving.repository import build_repository
from gen.serving.server import TritonServer, find_tritonserver

try:
    find_tritonserver()
    HAVE_TRITON = True
except GenError:
    HAVE_TRITON = False

pytestmark = pytest.mark.skipif(not HAVE_TRITON, reason="no tritonserver: pip install --no-deps nvidia-pytriton==0.7.0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(bundles, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    broken = root / "broken-bundle"
    shutil.copytree(bundles["vae"], broken)
    repo = build_repository([str(bundles["gan"]), str(bundles["cddpm"]), str(bundles["cd-student"]), str(bundles["pix2pix"]),
                             str(bundles["cyclegan"]), str(bundles["vqvae-prior"]), str(bundles["stylegan"]), str(bundles["ddpm-guided"]), str(broken)],
                            str(root / "repo"), names=["gan", "cddpm", "student", "pix2pix", "cyclegan", "vqvae", "stylegan", "guided", "broken"], max_batch=16, instances=1, threads=1,
                            components="bls")
    (repo / "broken_decoder" / "1" / "model.onnx").write_bytes(b"this is not an onnx model")
    srv = TritonServer(str(repo), http_port=free_port(), grpc_port=free_port()).start(timeout=120)
    yield srv
    srv.stop()


@pytest.mark.parametrize("scheme", ["http", "grpc"])
@pytest.mark.parametrize("model,bundle,kwargs", [
    ("gan", "gan", {"n": 5}),
    ("cddpm", "cddpm", {"n": 3, "steps": 12, "labels": 4, "guidance": 2.0}),
    ("cddpm", "cddpm", {"n": 2, "steps": 6, "labels": [1, 9], "scheduler": "dpm++"}),
    ("student", "cd-student", {"n": 3, "labels": 4}),  # a consistency student: LCM at 4 steps by default
    ("student", "cd-student", {"n": 2, "steps": 1, "labels": [0, 7]}),
    # image-to-image: the input travels as uint8 NHWC
    ("pix2pix", "pix2pix", {"image": np.random.default_rng(5).integers(0, 256, (3, 32, 32, 1), dtype=np.uint8)}),
    ("vqvae", "vqvae-prior", {"n": 3}),  # the prior's 16 calls run inside the pipeline model
    ("stylegan", "stylegan", {"n": 3, "psi": 0.7, "mix_seed": 11, "mix_layer": 1}),  # truncation and mixing as inputs
    ("stylegan", "stylegan", {"n": 4, "interpolate": 3}),
    ("guided", "ddpm-guided", {"n": 3, "steps": 6, "labels": [1, 2, 3], "classifier_scale": 3.0}),  # classifier guidance
    ("cyclegan", "cyclegan", {"image": np.random.default_rng(6).integers(0, 256, (2, 16, 16, 1), dtype=np.uint8),
                              "direction": "BtoA"}),
])
def test_served_images_equal_in_process_ort(server, bundles, scheme, model, bundle, kwargs):
    url = server.http_url if scheme == "http" else server.grpc_url
    remote = Sampler(url, backend="triton", model=model).generate(seed=7, **kwargs)
    local = Sampler(str(bundles[bundle]), backend="ort").generate(seed=7, **kwargs)
    assert remote.shape == local.shape
    assert np.abs(remote - local).max() <= 1e-5
    u8 = Sampler(url, backend="triton", model=model).generate(seed=7, output="uint8", **kwargs)
    assert np.array_equal(u8, Sampler(str(bundles[bundle])).generate(seed=7, output="uint8", **kwargs))


def test_inline_pipeline_serves_the_same_images(bundles, tmp_path):
    repo = build_repository([str(bundles["cddpm"])], str(tmp_path / "repo"), names=["cddpm"], instances=1, threads=1)  # inline: the default
    assert (repo / "cddpm" / "1" / "denoiser.onnx").is_file()
    kwargs = {"n": 2, "steps": 8, "labels": [3, 5], "guidance": 1.5}
    with TritonServer(str(repo), http_port=free_port(), grpc_port=free_port()) as srv:
        remote = Sampler(srv.grpc_url, backend="triton", model="cddpm").generate(seed=1, **kwargs)
    assert np.abs(remote - Sampler(str(bundles["cddpm"])).generate(seed=1, **kwargs)).max() <= 1e-5


def test_an_int8_repository_serves_the_int8_images(bundles, tmp_path):
    """`gen serve build --precision int8`: the pipeline runs the int8 files, equal to in-process int8."""
    repo = build_repository([str(bundles["cddpm"])], str(tmp_path / "repo"), names=["q"], instances=1, threads=1, precision="int8")
    assert (repo / "q" / "1" / "denoiser.int8.onnx").is_file()
    kwargs = {"n": 2, "steps": 6, "labels": [3, 5]}
    with TritonServer(str(repo), http_port=free_port(), grpc_port=free_port()) as srv:
        remote = Sampler(srv.http_url, backend="triton", model="q").generate(seed=2, **kwargs)
    int8 = Sampler(str(bundles["cddpm"]), precision="int8").generate(seed=2, **kwargs)
    assert np.abs(remote - int8).max() <= 1e-5
    assert np.abs(remote - Sampler(str(bundles["cddpm"])).generate(seed=2, **kwargs)).max() > 1e-4  # not the fp32 files
    with pytest.raises(GenError, match=r"has no int8 generator .*re-export with --int8"):
        build_repository([str(bundles["gan"])], str(tmp_path / "repo2"), precision="int8")
    assert not (tmp_path / "repo2").exists()


def test_200_requests_from_8_concurrent_clients_all_correct(server, bundles):
    local = Sampler(str(bundles["gan"]), backend="ort")
    expected = {i: local.generate(n=2, seed=i) for i in range(200)}

    def check(i, images):
        return True if np.abs(images - expected[i]).max() <= 1e-5 else "images differ from in-process"

    (row,) = run_load(server.grpc_url, "gan", [8], 200, n=2, check=check, log=lambda *_: None)
    assert row["errors"] == 0, row["error_examples"]
    assert row["completed"] == 200



def test_gen_bench_load_tests_an_image_to_image_model_with_its_image(server, bundles, tmp_path):
    from PIL import Image

    from tests.cli.test_cli import gen_here

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / "in.png")
    p = gen_here("bench", "--url", server.grpc_url, "--model", "pix2pix", "--image", tmp_path / "in.png",
                 "--concurrency", "2", "--requests", "6", "--json", tmp_path / "load.json")
    import json

    (row,) = json.loads((tmp_path / "load.json").read_text())["rows"]
    assert row["completed"] == 6 and row["errors"] == 0, row
    p = gen_here("bench", "--url", server.grpc_url, "--model", "pix2pix", "--requests", "2", check=False)
    assert p.returncode == 2 and "this is an image-to-image bundle: pass image=" in p.stderr, p.stderr
    p = gen_here("bench", str(bundles["pix2pix"]), "--image", tmp_path / "in.png", check=False)
    assert p.returncode == 2 and "--image applies with --url" in p.stderr


@pytest.mark.parametrize("values,message", [
    ({"n": np.array([2.0], np.float32)}, "input 'n' data-type is 'FP32', but model 'cddpm' expects 'INT32'"),
    ({"n": np.array([1, 2], np.int32)}, r"unexpected shape for input 'n' for model 'cddpm'. Expected \[1\], got \[2\]"),
    ({"seed": np.array([1], np.int64)}, "input 'n' is required"),
    ({"n": np.array([9], np.int32)}, r"n = 9 is outside 1..8 \(the largest batch this model serves; `gen serve build --max-batch N` raises it\)"),
    ({"n": np.array([1], np.int32), "label": np.array([10], np.int32)}, "label 10 is out of range"),
    ({"n": np.array([1], np.int32), "steps": np.array([0], np.int32)}, "steps must be at least 1"),
    ({"n": np.array([1], np.int32), "scheduler": np.array([b"heun"], np.object_)}, "unknown scheduler 'heun'"),
    ({"n": np.array([2], np.int32), "label": np.array([1, 2, 3], np.int32)}, "expected one label or 2"),
    ({"n": np.array([1], np.int32), "psi": np.array([0.5], np.float32)},
     "unexpected inference input 'psi' for model 'cddpm'.*; cddpm does not take this argument"),
])
def test_malformed_requests_get_a_named_error_and_the_server_stays_up(server, values, message):
    for url in (server.http_url, server.grpc_url):
        with pytest.raises(GenError, match=message):
            RemoteGenerator(url, "cddpm").infer(values)
    assert server.live() and server.ready() and server.model_ready("cddpm")


def test_status_probes_and_a_closed_sampler_leave_no_connection_open(server):
    """An open keep-alive connection makes a stopping Triton wait out its 30 s exit timeout (and a
    supervisor probing every minute would pile them up): gen closes every client it opens."""
    import psutil

    port = int(server.http_url.rsplit(":", 1)[1])

    def open_to_server():  # this process's connections to the server, by local port
        return {c.laddr.port for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port
                and c.status == psutil.CONN_ESTABLISHED}

    before = open_to_server()  # earlier tests' unclosed RemoteGenerators may still hold some
    models = server_status(server.http_url, probe=True)["models"]
    pipelines = ["gan", "cddpm", "student", "pix2pix", "cyclegan", "vqvae", "stylegan", "guided"]  # image inputs too
    assert {m: models[m].get("healthy") for m in pipelines} == dict.fromkeys(pipelines, True), models
    with Sampler(server.http_url, backend="triton", model="gan") as served:
        served.generate(n=1, seed=0)
        answers = []
        for _ in range(2):  # each thread a client of its own, the second often with the first's thread id
            worker = threading.Thread(target=lambda: answers.append(served.generate(n=1, seed=1).shape))
            worker.start()
            worker.join()
        assert len(answers) == 2  # a thread's exception would only be a warning
    assert open_to_server() <= before  # none opened above is left


def test_a_served_student_keeps_its_step_range(server):
    with pytest.raises(GenError, match=r"steps = 9 is past this student's range of 1..8: it was distilled to sample in [24] steps"):
        RemoteGenerator(server.http_url, "student").infer({"n": np.array([1], np.int32), "steps": np.array([9], np.int32)})
    assert server.model_ready("student")


def test_corrupt_model_is_not_ready_but_the_server_is(server):
    status = server_status(server.http_url)
    assert status["live"] and status["ready"]
    assert status["models"]["broken_decoder"]["state"] == "UNAVAILABLE"
    assert status["models"]["gan"]["state"] == "READY"
    assert not server.model_ready("broken_decoder") and server.model_ready("gan_generator")
    assert "broken_decoder" in server.log_file.read_text()
    with pytest.raises(GenError, match="broken_decoder"):
        Sampler(server.http_url, backend="triton", model="broken").generate(n=1)


@pytest.fixture(scope="module")
def sd_server(sd_bundle, tmp_path_factory):
    repo = build_repository([str(sd_bundle)], str(tmp_path_factory.mktemp("sd-serving") / "repo"), names=["sd"],
                            max_batch=8, instances=1, threads=2)
    srv = TritonServer(str(repo), http_port=free_port(), grpc_port=free_port()).start(timeout=120)
    yield srv
    srv.stop()


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_text_to_image_served_equals_in_process_ort(sd_server, sd_bundle, scheme):
    url = sd_server.http_url if scheme == "http" else sd_server.grpc_url
    kwargs = {"n": 2, "steps": 6, "scheduler": "dpm++", "negative_prompt": "blurry", "width": 96}
    remote = Sampler(url, backend="triton", model="sd").generate(["a red house", "a cat"], seed=4, **kwargs)
    local = Sampler(str(sd_bundle), backend="ort").generate(["a red house", "a cat"], seed=4, **kwargs)
    assert remote.shape == local.shape == (4, 3, 64, 96)
    assert np.abs(remote - local).max() <= 1e-5


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_img2img_and_inpainting_served_equal_in_process_ort(sd_server, sd_bundle, scheme):
    """image and mask travel as uint8 NHWC request inputs, strength as a float."""
    url = sd_server.http_url if scheme == "http" else sd_server.grpc_url
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[8:40, 16:48] = 255
    for kwargs in ({"image": image, "strength": 0.6}, {"image": image, "mask": mask, "strength": 0.8}):
        remote = Sampler(url, backend="triton", model="sd").generate("a red house", seed=3, steps=6, **kwargs)
        local = Sampler(str(sd_bundle)).generate("a red house", seed=3, steps=6, **kwargs)
        assert remote.shape == local.shape == (1, 3, 64, 64)
        assert np.abs(remote - local).max() <= 1e-5
    with pytest.raises(GenError, match="mask is 64x32 but the image is 64x64"):
        Sampler(url, backend="triton", model="sd").generate("x", image=image, mask=mask[:32], steps=2)
    bad = {"n": np.array([1], np.int32), "prompt": np.array([b"x"], np.object_),
           "image": np.zeros((1, 64, 64, 5), np.uint8)}  # a raw request the client did not check
    with pytest.raises(GenError, match=r"image: an array of shape \[1, 64, 64, 5\] is not an image"):
        RemoteGenerator(url, "sd").infer(bad)
    assert sd_server.live() and sd_server.model_ready("sd")


@pytest.mark.parametrize("values,message", [
    ({"n": np.array([1], np.int32)}, "prompt"),
    ({"n": np.array([1], np.int32), "prompt": np.array([b"\xff\xfe"], np.object_)}, "not valid UTF-8"),
    ({"n": np.array([1], np.int32), "prompt": np.array([b"x"], np.object_), "height": np.array([60], np.int32)},
     "height must be a positive multiple of 16"),
    ({"n": np.array([3], np.int32), "prompt": np.array([b"a", b"b"], np.object_)}, "n x prompts = 6 images is over 4"),
    ({"n": np.array([1], np.int32), "prompt": np.array([b"x"], np.object_), "steps": np.array([0], np.int32)},
     "steps must be at least 1"),
])
def test_malformed_text_requests_get_a_named_error(sd_server, values, message):
    for url in (sd_server.http_url, sd_server.grpc_url):
        with pytest.raises(GenError, match=message):
            RemoteGenerator(url, "sd").infer(values)
    assert sd_server.live() and sd_server.ready() and sd_server.model_ready("sd")


# -- hardening: bounded requests, per-request component checks, truthful health, ports, lifetime ----

def test_over_limit_request_is_refused_before_any_allocation_and_the_server_stays_correct(sd_server, sd_bundle):
    """1024 x 1024 on tiny-sd once grew the stub to ~24 GB until the OOM killer took it; now the
    pipeline refuses it from the numbers alone, and later requests are still served correctly."""
    big = {"n": np.array([1], np.int32), "prompt": np.array([b"a red house"], np.object_),
           "height": np.array([1024], np.int32), "width": np.array([1024], np.int32)}
    for url in (sd_server.http_url, sd_server.grpc_url):
        with pytest.raises(GenError, match=r"height x width = 1024 x 1024 = 1048576 pixels is over this model's limit of 16384"):
            RemoteGenerator(url, "sd").infer(big)
        with pytest.raises(GenError, match="a prompt of 100000 characters is over this model's limit of 2000 characters"):
            RemoteGenerator(url, "sd").infer({"n": np.array([1], np.int32), "prompt": np.array([b"x" * 100000], np.object_)})
        with pytest.raises(GenError, match="guidance must be a finite number, got nan"):
            RemoteGenerator(url, "sd").infer({"n": np.array([1], np.int32), "prompt": np.array([b"a"], np.object_),
                                              "guidance": np.array([np.nan], np.float32)})
    assert sd_server.live() and sd_server.ready() and sd_server.model_ready("sd")
    kwargs = {"n": 1, "steps": 3}
    remote = Sampler(sd_server.http_url, backend="triton", model="sd").generate("a cat", seed=2, **kwargs)
    assert np.abs(remote - Sampler(str(sd_bundle)).generate("a cat", seed=2, **kwargs)).max() <= 1e-5
    assert server_status(sd_server.http_url, probe=True)["models"]["sd"]["healthy"] is True


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_a_component_or_unknown_model_name_points_to_the_served_pipelines(server, scheme):
    url = server.http_url if scheme == "http" else server.grpc_url
    for model, message in (("gan_generator", r"gan_generator is not a gen pipeline \(a component\?\)"),
                           ("ganx", "`gen serve status")):
        with Sampler(url, backend="triton", model=model) as s, pytest.raises(GenError, match=message):
            s.generate(n=1, seed=0)


def test_a_bad_direct_component_request_fails_alone(server, bundles):
    """Component models are reachable by clients; one with class_labels out of range gets its own
    error while 24 concurrent correct requests all succeed."""
    import threading

    local = Sampler(str(bundles["cddpm"]))
    expected = {i: local.generate(n=1, seed=i, steps=3, labels=2) for i in range(24)}
    failures, bad_errors = [], []

    def good(i):
        try:
            got = Sampler(server.grpc_url, backend="triton", model="cddpm").generate(n=1, seed=i, steps=3, labels=2)
            if np.abs(got - expected[i]).max() > 1e-5:
                failures.append(f"{i}: images differ")
        except GenError as e:
            failures.append(f"{i}: {e}")

    def bad():
        feeds = {"sample": np.zeros((1, 1, 8, 8), np.float32), "timestep": np.zeros((1, 1), np.int64),
                 "class_labels": np.array([[999999]], np.int64)}
        for _ in range(10):
            try:
                RemoteGenerator(server.grpc_url, "cddpm_denoiser").infer(feeds, outputs=("model_output",))
            except GenError as e:
                bad_errors.append(str(e))

    threads = [threading.Thread(target=good, args=(i,)) for i in range(24)] + [threading.Thread(target=bad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(bad_errors) == 10 and "class_labels: value 999999 is outside [0, 11)" in bad_errors[0]


def test_start_refuses_a_port_in_use(tmp_path, bundles):
    repo = build_repository([str(bundles["gan"])], str(tmp_path / "repo"), threads=1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(GenError, match=f"port {port} on 127.0.0.1 is already in use"):
            TritonServer(str(repo), http_port=port, grpc_port=free_port()).start(timeout=30)


def test_tritonserver_dies_with_a_killed_gen_serve_start(tmp_path, bundles):
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = build_repository([str(bundles["gan"])], str(tmp_path / "repo"), instances=1, threads=1)
    http = free_port()
    shm_before = set(os.listdir("/dev/shm"))
    p = subprocess.Popen([sys.executable, "-m", "gen", "serve", "start", str(repo), "--http-port", str(http),
                          "--grpc-port", str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "tritonserver ready" not in line and time.monotonic() < deadline:
            line = p.stdout.readline()
            assert line or p.poll() is None, "gen serve start exited early"
        children = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        assert children, "no tritonserver child"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        # tritonserver unloads its models on SIGTERM for up to its --exit-timeout-secs (30 s) before it exits:
        # a slow unload on busy cores is still an exit, so wait past that bound
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{c}") and
                                                  "zombie" not in open(f"/proc/{c}/status").read() for c in children):
            time.sleep(0.2)
        assert not any(os.path.exists(f"/proc/{c}") and "zombie" not in open(f"/proc/{c}/status").read()
                       for c in children), "tritonserver outlived gen serve start"
        left = sorted(set(os.listdir("/dev/shm")) - shm_before)
        assert not left, f"shared memory left behind: {left}"
    finally:
        if p.poll() is None:
            p.kill()


def test_a_model_whose_stub_died_is_reported_and_reloaded(tmp_path, bundles):
    """Triton reports the model READY after its python process is killed; the probe says it does not
    answer, and restart_unhealthy reloads it so the next request is served correctly again."""
    import os
    import signal
    import subprocess
    import time

    repo = build_repository([str(bundles["gan"])], str(tmp_path / "repo"), names=["gan"], instances=1, threads=1)
    with TritonServer(str(repo), http_port=free_port(), grpc_port=free_port()) as srv:
        stubs = subprocess.run(["pgrep", "-f", f"{repo}/gan/1/model.py"], capture_output=True, text=True).stdout.split()
        assert stubs, "no python-backend stub found for the pipeline"
        for pid in stubs:
            os.kill(int(pid), signal.SIGKILL)
        time.sleep(1)
        status = server_status(srv.http_url, probe=True)
        assert status["models"]["gan"]["state"] == "READY"  # what Triton alone says
        assert status["models"]["gan"]["healthy"] is False and not status["ready"]
        assert "does not answer" in status["models"]["gan"]["reason"]
        assert srv.restart_unhealthy() == ["gan"]
        with Sampler(srv.http_url, backend="triton", model="gan") as served:
            remote = served.generate(n=2, seed=3)
        assert np.abs(remote - Sampler(str(bundles["gan"])).generate(n=2, seed=3)).max() <= 1e-5
        assert server_status(srv.http_url, probe=True)["ready"]
        # Triton waits out its exit timeout (30 s) for the killed stub's instance on a graceful stop;
        # this test is not about draining, so it stops the server without that wait
        srv.stop(timeout=3)


def test_a_cancelled_request_stops_sampling_and_frees_the_instance(tmp_path):
    """A client that gives up (gRPC cancel) no longer holds the only instance for the rest of its
    1000 steps: the pipeline checks for cancellation between steps (every CANCEL_CHECK_SECONDS at most)."""
    import time
    from pathlib import Path

    import tritonclient.grpc as grpcclient

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "bundle-v1-cddpm"
    # request-level: with step batching a short request never waits for a long one (the next test)
    repo = build_repository([str(fixture)], str(tmp_path / "repo"), names=["m"], instances=1, threads=2, batching="request")
    with TritonServer(str(repo), http_port=free_port(), grpc_port=free_port()) as srv:
        remote = RemoteGenerator(srv.grpc_url, "m")
        t0 = time.perf_counter()
        remote.infer({"n": np.array([32], np.int32), "steps": np.array([200], np.int32)})
        long_s = 5 * (time.perf_counter() - t0)  # what 1000 steps would take
        client = grpcclient.InferenceServerClient(srv.grpc_url.split("//")[1])
        inputs = []
        for name, value in (("n", 32), ("steps", 1000)):
            inputs.append(grpcclient.InferInput(name, [1], "INT32"))
            inputs[-1].set_data_from_numpy(np.array([value], np.int32))
        call = client.async_infer("m", inputs, callback=lambda *_: None)
        time.sleep(long_s / 5)
        call.cancel()
        t0 = time.perf_counter()
        remote.infer({"n": np.array([1], np.int32), "steps": np.array([2], np.int32)})
        assert time.perf_counter() - t0 < long_s / 3, "the cancelled request kept the instance busy"
        client.close()


def test_the_cancel_check_asks_the_server_at_most_every_interval_and_stops_a_cancelled_request():
    """is_cancelled() is a round trip to Triton; asked every step of every request it cost step-level
    batching a fifth of its throughput, so the step hook asks at most every CANCEL_CHECK_SECONDS, from
    the request's arrival; a cancel it has seen stops the next step; a failed ask is not a cancel."""
    import time

    from gen.serving.triton_models import CANCEL_CHECK_SECONDS, _stop_if_cancelled

    class Request:  # the one method the hook reads off Triton's InferenceRequest
        asked, cancelled, broken = 0, False, False

        def is_cancelled(self):
            self.asked += 1
            if self.broken:
                raise RuntimeError("stub gone")
            return self.cancelled

    request = Request()
    check = _stop_if_cancelled(request)
    t0 = time.monotonic()
    for i in range(2000):
        check(i, 5000, None)
    elapsed = time.monotonic() - t0
    assert request.asked <= 1 + elapsed / CANCEL_CHECK_SECONDS
    time.sleep(CANCEL_CHECK_SECONDS * 1.2)
    check(1999, 5000, None)
    assert request.asked >= 1  # the interval passed: the hook asked
    request.cancelled, asked = True, request.asked
    check.poll()  # one ask sees the cancel: the next step stops without asking again
    with pytest.raises(GenError, match="cancelled by its client after 2001 of 5000 steps"):
        check(2000, 5000, None)
    assert request.asked == asked + 1
    other = Request()
    other.broken = True
    hook = _stop_if_cancelled(other)
    hook.poll()
    hook(0, 10, None)  # no exception: the request goes on
    assert other.asked == 1


def test_step_batching_answers_each_its_own_images_past_a_cancelled_and_a_bad_request(server, bundles):
    """The served pipeline's step batch (gen serve build --batching step, the default): concurrent
    requests of 3 and 24 steps get their in-process images while a 1000-step request is cancelled by
    its client mid-run (it stops: the log says after how many steps) and a bad one is refused alone;
    the model answers its health probe after."""
    import time

    import tritonclient.grpc as grpcclient

    from tests.runtime.test_step_batch import run_all

    local = Sampler(str(bundles["cddpm"]), backend="ort")
    requests = [{"n": 1 + i % 2, "seed": i, "steps": 3 if i % 2 else 24, "labels": i} for i in range(6)]
    requests.append({"n": 1, "steps": 3, "labels": 42})  # past the model's 10 classes
    expected = [local.generate(**r) for r in requests[:-1]]
    client = grpcclient.InferenceServerClient(server.grpc_url.split("//")[1])
    inputs = []
    for name, value in (("n", 8), ("steps", 1000)):
        inputs.append(grpcclient.InferInput(name, [1], "INT32"))
        inputs[-1].set_data_from_numpy(np.array([value], np.int32))
    call = client.async_infer("cddpm", inputs, callback=lambda *_, **__: None)
    results = run_all(Sampler(server.grpc_url, backend="triton", model="cddpm"), requests)  # each in its own thread
    call.cancel()
    client.close()
    for got, want in zip(results, expected):
        assert np.abs(got - want).max() <= 1e-5
    assert isinstance(results[-1], GenError) and "label 42 is out of range" in str(results[-1])
    deadline = time.monotonic() + 30
    while "cancelled by its client after" not in server.log_tail(200) and time.monotonic() < deadline:
        time.sleep(0.2)
    line = next(x for x in server.log_tail(200).splitlines() if "cancelled by its client after" in x)
    assert int(line.split("after ")[1].split(" of")[0]) < 1000
    assert server_status(server.http_url, probe=True)["ready"]
    assert np.abs(Sampler(server.grpc_url, backend="triton", model="cddpm").generate(**requests[0]) - expected[0]).max() <= 1e-5


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_the_demo_serves_a_triton_model(server, bundles, scheme):
    """`gen demo --url URL --model NAME`: the page's arguments come from the served model's inputs."""
    import threading

    from gen.demo.models import open_models

    url = server.http_url if scheme == "http" else server.grpc_url
    model = open_models([], url, "cddpm", "ort", 1, 0)["cddpm"]
    names = {a["name"] for a in model.describe()["arguments"]}
    assert {"n", "seed", "steps", "labels", "guidance", "scheduler"} <= names and "prompt" not in names
    images, _ = model.run({"n": 2, "seed": 4, "steps": 5, "labels": 3}, None, threading.Event())
    assert np.array_equal(images, Sampler(str(bundles["cddpm"])).generate(n=2, seed=4, steps=5, labels=3, output="uint8"))
    # the demo answers each request on a worker thread: HTTP's gevent-based client must not be shared
    # across them ("Cannot switch to a different thread" broke every other request), even by a thread
    # that reuses an ended one's id (Linux does, for threads started one after another)
    answers = []

    def request():
        try:
            answers.append((model.describe()["name"],
                            model.run({"n": 1, "seed": 4, "steps": 5, "labels": 3}, None, threading.Event())[0]))
        except Exception as e:  # a thread's exception would only be a warning
            answers.append((repr(e), None))

    try:
        for _ in range(4):
            worker = threading.Thread(target=request)
            worker.start()
            worker.join()
    finally:
        model.close()
    assert [name for name, _ in answers] == ["cddpm"] * 4, answers
    assert all(np.array_equal(a, images[:1]) for _, a in answers)


@pytest.mark.slow  # ~40 s: its own Triton server, whose shutdown waits for the demo's keep-alive connection
def test_the_demo_marks_a_server_that_went_away_unavailable_and_keeps_its_bundles(bundles, tmp_path):
    """`gen demo BUNDLE --url URL`: the Triton server stops; the pages and /api/models still answer,
    the served model says why it is unavailable (503 to a request), the bundle still generates. A
    served model's refusal names its argument."""
    import json
    import urllib.error
    import urllib.request

    from tests.demo.test_demo import start_demo

    repo = build_repository([str(bundles["cddpm"])], str(tmp_path / "repo"), names=["served"], max_batch=4, instances=1,
                            threads=1, components="bls")
    srv = TritonServer(str(repo), http_port=free_port(), grpc_port=free_port()).start(timeout=120)
    try:
        demo, url = start_demo([bundles["cddpm"], "--url", srv.http_url, "--model", "served", "--threads", "1"],
                               tmp_path / "demo.log")
    except BaseException:
        srv.stop()
        raise

    def call(path, body=None):
        req = urllib.request.Request(url + path, json.dumps(body).encode() if body else None, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    try:
        status, body = call("/api/generate", {"model": "served", "labels": 99})
        assert status == 422 and json.loads(body)["argument"] == "labels", body
        srv.stop()
        assert call("/")[0] == 200
        models = {m["name"]: m for m in json.loads(call("/api/models")[1])["models"]}
        assert models["served"]["available"] is False and "does not answer" in models["served"]["reason"]
        assert models["cddpm"]["available"] is True
        status, body = call("/api/generate", {"model": "served", "steps": 2})
        assert status == 503 and "served is unavailable" in json.loads(body)["detail"]
        assert call("/api/generate", {"model": "cddpm", "steps": 2})[0] == 200
    finally:
        demo.terminate()
        demo.wait(10)
        srv.stop()

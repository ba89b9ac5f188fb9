"""`gen demo` as a user meets it: a real server (`gen demo` in a subprocess on 127.0.0.1), its pages
driven in Debian's headless chromium through Selenium, and its JSON API over HTTP. The picture the
page shows must be the Sampler's, byte for byte."""

import base64
import html
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from gen.runtime.sampler import Sampler

HOSTILE = "x\"><img src=x onerror=document.title='pwned'>"  # a folder name, hence a model name: never markup
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
HAVE_BROWSER = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
browser_only = pytest.mark.skipif(not HAVE_BROWSER, reason="no headless browser: apt-get install chromium chromium-driver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict, timeout: float = 60):
    req = urllib.request.Request(url + "/api/generate", json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())


def post_raw(url: str, data: bytes, headers: dict | None = None):
    req = urllib.request.Request(url + "/api/generate", data, {"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _bmp() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="BMP")  # Pillow reads it; the API promises PNG, JPEG and WebP only
    return buf.getvalue()


BMP = _bmp()


def decode(png_b64: str) -> np.ndarray:
    a = np.asarray(Image.open(io.BytesIO(base64.b64decode(png_b64))))
    return a[..., None] if a.ndim == 2 else a


def start_demo(args: list, log_path) -> tuple[subprocess.Popen, str]:
    """`gen demo ARGS` in a subprocess on a free port, once it answers: (the process, its URL)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gen", "demo", *map(str, args), "--port", str(port)],
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "2"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/api/models", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(open(log_path).read()) from None
            time.sleep(0.2)
    proc.terminate()
    raise AssertionError(f"gen demo did not answer in 60 s: {open(log_path).read()}")


@pytest.fixture(scope="module")
def demo(bundles, sd_bundle, tmp_path_factory):
    """`gen demo` on a class-conditional DDPM, tiny-sd, pix2pix and StyleGAN; one run at a time, one waiting; one
    ORT thread, as the Samplers it is compared with (another count can change a float's last bit)."""
    root = tmp_path_factory.mktemp("demo")
    names = {"cddpm": bundles["cddpm"], "sd": sd_bundle, "pix2pix": bundles["pix2pix"], "stylegan": bundles["stylegan"],
             HOSTILE: bundles["gan"]}
    for name, path in names.items():  # the page names a model by its folder
        shutil.copytree(path, root / name)
    proc, url = start_demo([*(str(root / n) for n in names), "--concurrency", "1", "--queue", "1", "--threads", "1"],
                           root / "demo.log")
    yield url, {n: str(root / n) for n in names}, root
    proc.terminate()
    proc.wait(10)
    assert "this machine only" in (root / "demo.log").read_text()  # it said where it listens


@pytest.fixture(scope="module")
def browser():
    if not HAVE_BROWSER:
        pytest.skip("no headless browser: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def fill_and_generate(driver, url, model, values: dict, files: dict | None = None, expect: int = 1):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(f"{url}/m/{model}")
    for name, value in values.items():
        el = driver.find_element(By.ID, f"arg-{name}")
        if el.tag_name == "select":
            Select(el).select_by_value(str(value))
        else:
            el.clear()
            el.send_keys(str(value))
    for name, path in (files or {}).items():
        driver.find_element(By.ID, f"arg-{name}").send_keys(str(path))
    driver.find_element(By.ID, "generate").click()
    WebDriverWait(driver, 120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "img.result")) == expect
                                     or d.find_element(By.ID, "status").text.startswith("error"))
    status = driver.find_element(By.ID, "status").text
    assert status.startswith("done"), status
    shown = [el.get_attribute("src") for el in driver.find_elements(By.CSS_SELECTOR, "img.result")]
    return np.stack([decode(src.split(",", 1)[1]) for src in shown]), status


@browser_only
def test_class_conditional_ddpm_page_shows_the_samplers_images(demo, browser):
    url, paths, _ = demo
    shown, status = fill_and_generate(browser, url, "cddpm", {"n": 3, "seed": 5, "steps": 8, "labels": 7, "guidance": 2,
                                                              "scheduler": "dpm++"}, expect=3)
    expected = Sampler(paths["cddpm"], threads=1).generate(n=3, seed=5, steps=8, labels=7, guidance=2.0, scheduler="dpm++", output="uint8")
    assert np.array_equal(shown, expected) and "(seed 5)" in status


@browser_only
def test_text_to_image_page_shows_the_samplers_images(demo, browser):
    url, paths, _ = demo
    shown, _ = fill_and_generate(browser, url, "sd", {"prompt": "a red house", "negative_prompt": "blurry", "n": 2,
                                                      "seed": 3, "steps": 4, "guidance": 5}, expect=2)
    expected = Sampler(paths["sd"], threads=1).generate("a red house", negative_prompt="blurry", n=2, seed=3, steps=4, guidance=5.0,
                                             output="uint8")
    assert np.array_equal(shown, expected)


@browser_only
def test_image_to_image_page_uploads_and_shows_the_samplers_image(demo, browser, tmp_path):
    url, paths, _ = demo
    photo = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "in.png")
    shown, _ = fill_and_generate(browser, url, "pix2pix", {}, files={"image": tmp_path / "in.png"})
    assert np.array_equal(shown, Sampler(paths["pix2pix"], threads=1).generate(image=photo, output="uint8"))


@browser_only
def test_stylegan_page_mixes_and_truncates(demo, browser):
    url, paths, _ = demo
    shown, _ = fill_and_generate(browser, url, "stylegan", {"n": 2, "seed": 1, "psi": 0.7, "mix_seed": 3, "mix_layer": 1},
                                 expect=2)
    expected = Sampler(paths["stylegan"], threads=1).generate(n=2, seed=1, psi=0.7, mix_seed=3, mix_layer=1, output="uint8")
    assert np.array_equal(shown, expected)
    shown, _ = fill_and_generate(browser, url, "stylegan", {"n": 1, "seed": 2}, expect=1)  # other seeds left empty
    assert np.array_equal(shown, Sampler(paths["stylegan"], threads=1).generate(n=1, seed=2, output="uint8"))


@browser_only
def test_random_seed_is_shown_and_reproduces(demo, browser):
    from selenium.webdriver.common.by import By

    url, paths, _ = demo
    browser.get(f"{url}/m/cddpm")
    browser.find_element(By.ID, "random-seed").click()
    browser.find_element(By.ID, "arg-steps").clear()
    browser.find_element(By.ID, "arg-steps").send_keys("4")
    browser.find_element(By.ID, "generate").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "img.result"))
    seed = int(browser.find_element(By.ID, "arg-seed").get_attribute("value"))
    shown = decode(browser.find_element(By.CSS_SELECTOR, "img.result").get_attribute("src").split(",", 1)[1])
    assert np.array_equal(shown, Sampler(paths["cddpm"], threads=1).generate(n=1, seed=seed, steps=4, output="uint8")[0])


def test_api_equals_the_sampler_and_names_bad_arguments(demo):
    url, paths, root = demo
    status, _, body = post(url, {"model": "cddpm", "n": 2, "seed": 9, "steps": 6, "labels": [1, 4]})
    assert status == 200 and body["seed"] == 9
    expected = Sampler(paths["cddpm"], threads=1).generate(n=2, seed=9, steps=6, labels=[1, 4], output="uint8")
    assert np.array_equal(np.stack([decode(im["png"]) for im in body["images"]]), expected)
    for request, argument, message in [
        ({"model": "cddpm", "steps": 0}, "steps", "steps must be at least 1"),
        ({"model": "cddpm", "n": 100000}, "n", "n = 100000 is over this demo's limit of 256; whoever runs the demo can "
                                               "raise it with `gen demo --max-batch N`"),
        ({"model": "cddpm", "steps": 1001}, "steps", "`gen demo --max-steps N`"),
        ({"model": "cddpm", "labels": [[1, 2], [3]]}, "labels", "labels must be an integer or a list of integers"),
        ({"model": "cddpm", "labels": [True]}, "labels", "labels must be an integer or a list of integers"),
        ({"model": "sd", "prompt": "a \ud800 house"}, "prompt", "prompt: the text holds a lone surrogate"),
        ({"model": "cddpm", "stream": "no"}, "stream", "stream must be true or false (a JSON boolean)"),
        ({"model": "sd", "prompt": "x", "image": base64.b64encode(BMP).decode()}, "image", "not a PNG, JPEG, WebP image"),
        ({"model": "cddpm", "labels": 99}, "labels", "label 99 is out of range"),
        ({"model": "cddpm", "stepz": 3}, "stepz", "stepz: unknown argument"),
        ({"model": "sd", "prompt": "x", "image": "/etc/passwd"}, "image", "file paths are not accepted"),
        ({"model": "sd", "prompt": "x", "image": base64.b64encode(b"just text").decode()}, "image",
         "the base64 decodes to 9 bytes that are not a readable image"),
        ({"model": "pix2pix"}, "image", "image: this model translates an input image; send it as base64"),
        ({"model": "cddpm", "scheduler": "foo"}, "scheduler", "unknown scheduler 'foo'"),
        ({"model": "sd"}, "prompt", "pass a prompt"),
        ({"model": "nope"}, "model", "unknown model 'nope'"),
        ({"model": ["cddpm"]}, "model", "unknown model"),
        ({"model": "cddpm", "seed": "abc"}, "seed", "seed must be an integer"),
        ({"model": "cddpm", "seed": 1e999}, "seed", "seed must be an integer"),
        ({"model": "stylegan", "precision": 7}, "precision", "precision must be a name"),
    ]:
        status, _, body = post(url, request)
        assert status == 422 and body["argument"] == argument and message in body["detail"], (request, body)
        assert "Sampler" not in body["detail"] and "gen serve" not in body["detail"]  # nothing a demo user can use
    status, body = post_raw(url, b"[" * 100000 + b"]" * 100000)  # deeper than the JSON parser's recursion
    assert status == 422 and "nested too deeply" in body["detail"]
    for _ in range(4):  # the refused requests above held no place: the model still takes work
        assert post(url, {"model": "cddpm", "steps": 2})[0] == 200
    listing = urllib.request.urlopen(url + "/api/models").read().decode()
    models = json.loads(listing)["models"]
    assert {m["name"] for m in models} >= {"cddpm", "sd", "pix2pix", "stylegan"}
    assert str(root) not in listing and "/tmp" not in listing  # no path on the server is shown
    steps = next(a for a in next(m for m in models if m["name"] == "cddpm")["arguments"] if a["name"] == "steps")
    n = next(a for a in next(m for m in models if m["name"] == "cddpm")["arguments"] if a["name"] == "n")
    assert (n["high"], steps["high"]) == (256, 1000)  # the limits that apply
    assert {a["name"] for a in next(m for m in models if m["name"] == "sd")["arguments"]} >= {"prompt", "image", "mask", "strength"}
    assert "/api/generate" in json.loads(urllib.request.urlopen(url + "/openapi.json").read())["paths"]
    assert b"/api/generate" in urllib.request.urlopen(url + "/api").read()
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:  # a body over the cap is refused from its header
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 9437184\r\n\r\n{")
        assert s.recv(100).startswith(b"HTTP/1.1 413")
    with socket.create_connection(("127.0.0.1", port)) as s:  # and a chunked one once it passes the cap
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 2**20
        try:
            for _ in range(9):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass  # the server may answer and close before the last chunk
        assert s.recv(100).startswith(b"HTTP/1.1 413")


def test_busy_model_answers_429_and_a_dropped_client_cancels_its_run(demo):
    url, _, _ = demo
    # seconds of UNet calls on 2 cores: 1.6 s on an AVX-512 EPYC, where n = 1 (0.8 s) finished before the
    # third request came; the three arrive 0.15 s apart
    slow = {"model": "sd", "prompt": "a boat", "steps": 400, "n": 2}
    results = []

    def call():
        results.append(post(url, slow, timeout=300))

    threads = [threading.Thread(target=call) for _ in range(3)]  # one runs, one waits, one is refused
    for t in threads:
        t.start()
        time.sleep(0.15)
    for t in threads:
        t.join()
    codes = sorted(r[0] for r in results)
    assert codes == [200, 200, 429], codes
    refused = next(r for r in results if r[0] == 429)
    assert int(refused[1].get("Retry-After")) >= 1 and "busy" in refused[2]["detail"]

    def runs():
        return next(m for m in json.loads(urllib.request.urlopen(url + "/api/models").read())["models"]
                    if m["name"] == "sd")["runs"]

    before = runs()
    req = urllib.request.Request(url + "/api/generate", json.dumps({**slow, "stream": True}).encode(),
                                 {"Content-Type": "application/json"})
    stream = urllib.request.urlopen(req, timeout=60)
    assert stream.readline().startswith(b"event: step")  # it started ...
    stream.close()  # ... and the client goes away
    deadline = time.time() + 30
    while runs()["cancelled"] == before["cancelled"] and time.time() < deadline:
        time.sleep(0.2)
    assert runs()["cancelled"] == before["cancelled"] + 1 and runs()["completed"] == before["completed"]
    status, _, _ = post(url, {"model": "sd", "prompt": "a boat", "steps": 2})  # the server is still up and free
    assert status == 200


def test_a_port_in_use_is_refused_before_the_demo_announces_itself(bundles):
    from tests.cli.test_cli import gen_here

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = gen_here("demo", bundles["gan"], "--port", port, check=False)
    assert p.returncode == 2 and f"port {port} on 127.0.0.1 is already in use" in p.stderr and "(--port)" in p.stderr
    assert "gen demo:" not in p.stdout


# -- hostile callers: markup in names, other sites' pages, rebinding, dropped clients, bad options ----

def http(url: str, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """One request with exactly these headers (as a browser would send them), by http.client."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.putrequest(method, path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    out = r.status, r.getheader("Content-Type") or "", r.read()
    conn.close()
    return out


def runs(url: str) -> int:
    """Every generation the demo has started, whatever came of it."""
    models = json.loads(urllib.request.urlopen(url + "/api/models").read())["models"]
    return sum(sum(m["runs"].values()) for m in models)


def test_a_name_in_a_url_or_a_folder_is_never_markup(demo):
    from urllib.parse import quote

    url, _, _ = demo
    status, kind, body = http(url, "/m/" + quote("<img src=x onerror=alert(document.domain)>"))
    assert status == 404 and kind.startswith("text/plain") and b"no model" in body
    index = urllib.request.urlopen(url + "/").read().decode()
    assert HOSTILE not in index and html.escape(HOSTILE) in index


@browser_only
def test_a_hostile_model_name_stays_text_on_its_page(demo, browser):
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    url, _, _ = demo
    browser.get(f"{url}/m/{quote(HOSTILE)}")
    browser.find_element(By.ID, "generate").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "img.result"))
    assert browser.title != "pwned" and len(browser.find_elements(By.CSS_SELECTOR, "#results img")) == 1
    assert browser.find_element(By.CSS_SELECTOR, "#results a").get_attribute("download") == f"{HOSTILE}-seed0-0.png"


FOREIGN_PAGE = """<!doctype html><html><body><script>
const demo = "__DEMO__", outcome = {};
async function attempt(name, path, init) {
  try { const r = await fetch(demo + path, init); outcome[name] = "read " + r.status + " " + (await r.text()).slice(0, 40); }
  catch (e) { outcome[name] = "blocked"; }
}
(async () => {
  const body = JSON.stringify({model: "cddpm", steps: 2});
  await attempt("text", "/api/generate", {method: "POST", headers: {"Content-Type": "text/plain"}, body});
  await attempt("json", "/api/generate", {method: "POST", headers: {"Content-Type": "application/json"}, body});
  await attempt("opaque", "/api/generate", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body});
  await attempt("models", "/api/models", {});
  document.title = "done " + JSON.stringify(outcome);
})();
</script></body></html>"""


@pytest.fixture
def foreign_site(demo):
    """A second local server on another port: the page of some other site the user has open."""
    import http.server

    url, _, _ = demo
    page = FOREIGN_PAGE.replace("__DEMO__", url).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@browser_only
def test_a_page_from_another_origin_cannot_generate_or_read_a_result(demo, browser, foreign_site):
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, _ = demo
    before = runs(url)
    browser.get(foreign_site + "/")
    WebDriverWait(browser, 60).until(lambda d: d.title.startswith("done"))
    outcome = json.loads(browser.title[5:])
    opaque = outcome.pop("opaque")  # no-cors: the browser hands the page no status and no body
    assert opaque == "read 0 " and all(v == "blocked" for v in outcome.values()), outcome  # no answer reaches the page ...
    assert runs(url) == before  # ... and nothing ran: the text/plain POSTs went out, and were refused


def test_cross_site_and_rebinding_requests_are_refused(demo):
    """The requests a browser sends for another site's page, and for a rebinding name, as real HTTP."""
    url, _, _ = demo
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"model": "cddpm", "steps": 2}).encode()
    before = runs(url)
    for headers, status in [
        ({"Host": f"127.0.0.1:{port}", "Content-Type": "text/plain", "Origin": "http://evil.example"}, 403),
        ({"Host": "evil.example", "Content-Type": "text/plain", "Origin": "http://evil.example"}, 400),
        ({"Host": f"evil.example:{port}", "Content-Type": "application/json"}, 400),  # rebinding: same origin, other name
        ({"Host": f"127.0.0.1:{port}", "Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port + 1}"}, 403),
        ({"Host": f"127.0.0.1:{port}", "Content-Type": "text/plain"}, 415),  # a form's enctype
        ({"Host": f"127.0.0.1:{port}", "Content-Type": "application/x-www-form-urlencoded"}, 415),
    ]:
        got, _, answer = http(url, "/api/generate", "POST", body, headers)
        assert got == status, (headers, got, answer)
    for path in ("/api/models", "/", "/m/cddpm"):  # a rebinding page reads nothing either
        assert http(url, path, headers={"Host": f"evil.example:{port}"})[0] == 400
    assert http(url, "/api/models", headers={"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"})[0] == 403
    assert runs(url) == before
    got, _, answer = http(url, "/api/generate", "POST", body, {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}",
                                                               "Content-Type": "application/json; charset=utf-8"})
    assert got == 200 and json.loads(answer)["images"]  # the demo's own page, by another local name
    assert b"access-control" not in urllib.request.urlopen(url + "/api/models").headers.as_bytes().lower()


def test_a_dropped_client_cancels_its_non_streamed_run(demo):
    url, _, _ = demo
    port = int(url.rsplit(":", 1)[1])

    def sd_runs():
        return next(m for m in json.loads(urllib.request.urlopen(url + "/api/models").read())["models"]
                    if m["name"] == "sd")["runs"]

    before = sd_runs()
    # the limits' most (500 steps, 8 images): seconds on any CPU, so the client's 1 s is well inside the run
    # (400 steps of one image took 0.8 s on an AVX-512 EPYC and finished first); the cancel stops it at once
    body = json.dumps({"model": "sd", "prompt": "a boat", "steps": 500, "n": 8}).encode()
    with socket.create_connection(("127.0.0.1", port)) as s:  # a real client that gives up and closes
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        time.sleep(1.0)
    deadline = time.time() + 20
    while sd_runs()["cancelled"] == before["cancelled"] and time.time() < deadline:
        time.sleep(0.2)
    assert sd_runs()["cancelled"] == before["cancelled"] + 1 and sd_runs()["completed"] == before["completed"]


@pytest.mark.parametrize("options,message", [
    (["--max-body-mb", "nan"], "--max-body-mb must be from 0.1 to 1024, got nan"),
    (["--max-body-mb", "inf"], "--max-body-mb must be from 0.1 to 1024, got inf"),
    (["--max-body-mb", "1e-9"], "--max-body-mb must be from 0.1 to 1024, got 1e-09"),
    (["--port", "70000"], "--port must be from 1 to 65535, got 70000"),
    (["--port", "-5"], "--port must be from 1 to 65535, got -5"),
    (["--host", "999.1.1.1"], "--host 999.1.1.1 is not an address or a name this machine can resolve"),
    (["--allowed-host", "http://example.org:80"], "--allowed-host 'http://example.org:80' is not a host name"),
    (["--max-steps", "0"], "--max-steps must be from 1 to 10000, got 0"),
])
def test_bad_demo_options_are_refused_by_name(bundles, options, message):
    from tests.cli.test_cli import gen_here

    p = gen_here("demo", bundles["gan"], *options, check=False)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_a_url_where_no_server_answers_is_refused_at_start(bundles):
    pytest.importorskip("tritonclient.http")
    # a subprocess with a timeout: a demo that started anyway would serve (and block) forever
    p = subprocess.run([sys.executable, "-m", "gen", "demo", str(bundles["gan"]), "--url", f"http://127.0.0.1:{free_port()}",
                        "--model", "gan", "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--url http://127.0.0.1:" in p.stderr and "does not answer" in p.stderr, p.stderr
    assert "gen demo:" not in p.stdout


def test_an_ipv6_wildcard_is_shown_as_a_url_that_works():
    from gen.demo.guard import allowed_hosts
    from gen.ports import http_url

    assert http_url("::", 7890) == "http://[::]:7890" and http_url("::1", 7890) == "http://[::1]:7890"
    assert allowed_hosts("::", ["Demo.Example.org", "::1", "10.0.0.5"]) == ["127.0.0.1", "localhost", "[::1]",
                                                                           "demo.example.org", "10.0.0.5"]


def test_a_missing_recipe_bundle_names_the_command_that_makes_it(tmp_path):
    from tests.cli.test_cli import gen_here

    p = gen_here("demo", tmp_path / "bundles" / "sd-lora", "--port", free_port(), check=False)
    assert p.returncode == 2 and f"`gen export --model sd-lora --out {tmp_path / 'bundles' / 'sd-lora'}`" in p.stderr, p.stderr


def test_the_demos_limit_options_set_what_pages_show_and_requests_may_ask(bundles):
    from gen.demo.models import open_models
    from gen.errors import GenError

    model = open_models([str(bundles["cddpm"])], None, None, "ort", 1, 0, limits={"n": 3, "steps": 5})["cddpm"]
    try:
        highs = {a["name"]: a["high"] for a in model.describe()["arguments"]}
        assert (highs["n"], highs["steps"]) == (3, 5)
        model.check({"n": 3, "steps": 5})
        with pytest.raises(GenError, match=r"steps = 6 is over this demo's limit of 5; .*`gen demo --max-steps N`") as e:
            model.check({"steps": 6})
        assert e.value.argument == "steps"
    finally:
        model.close()


def test_concurrent_demo_runs_share_a_step_batch_and_keep_their_images(bundles):
    """`gen demo --concurrency 3`: the runs meet in one step batch (gen.runtime.step_batch); each gets
    the Sampler's images and its own step events, and one cancelled mid-run leaves the others be."""
    from gen.demo.models import Cancelled, DemoModel

    model = DemoModel("cddpm", str(bundles["cddpm"]), {"backend": "ort", "threads": 1}, concurrency=3, queue=0)
    requests = [{"n": 2, "seed": 1, "steps": 20, "labels": [3, 4]}, {"n": 1, "seed": 2, "steps": 12, "labels": 7},
                {"n": 1, "seed": 3, "steps": 20, "labels": 1}]
    events, outcomes, gate = [[], [], []], [None] * 3, threading.Barrier(3)
    cancels = [threading.Event() for _ in requests]

    def go(k):
        def on_step(i, steps, x0):
            events[k].append(i + 1)
            if k == 2 and i == 4:
                cancels[k].set()  # as a client that went away

        model.admit()
        gate.wait()
        try:
            outcomes[k] = model.run(requests[k], None, cancels[k], on_step)[0]
        except Cancelled as e:
            outcomes[k] = e

    threads = [threading.Thread(target=go, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    local = Sampler(str(bundles["cddpm"]), backend="ort", threads=1)
    for k in (0, 1):
        assert np.array_equal(outcomes[k], local.generate(output="uint8", **requests[k]))
        assert events[k] == list(range(1, requests[k]["steps"] + 1))
    assert isinstance(outcomes[2], Cancelled) and events[2] == [1, 2, 3, 4, 5]
    assert model.runs == {"completed": 2, "cancelled": 1, "failed": 0}
    assert max(model.sampler().backend.calls_by_rows) == 4  # all three runs in one call (2 + 1 + 1 rows)
    model.close()

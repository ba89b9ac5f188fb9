"""`gen demo` as a user meets it: a real server (`gen demo` in a subprocess on 127.0.0.1), its pages
driven in Debian's headless chromium through Selenium, and its JSON API over HTTP. The picture the
page shows must be the Sampler's, byte for byte."""

import base64
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


def decode(png_b64: str) -> np.ndarray:
    a = np.asarray(Image.open(io.BytesIO(base64.b64decode(png_b64))))
    return a[..., None] if a.ndim == 2 else a


@pytest.fixture(scope="module")
def demo(bundles, sd_bundle, tmp_path_factory):
    """`gen demo` on a class-conditional DDPM, tiny-sd, pix2pix and StyleGAN; one run at a time, one waiting; one
    ORT thread, as the Samplers it is compared with (another count can change a float's last bit)."""
    root = tmp_path_factory.mktemp("demo")
    names = {"cddpm": bundles["cddpm"], "sd": sd_bundle, "pix2pix": bundles["pix2pix"], "stylegan": bundles["stylegan"]}
    for name, path in names.items():  # the page names a model by its folder
        shutil.copytree(path, root / name)
    port = free_port()
    log = open(root / "demo.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gen", "demo", *(str(root / n) for n in names), "--port", str(port),
                             "--concurrency", "1", "--queue", "1", "--threads", "1"], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/api/models", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError((root / "demo.log").read_text())
            time.sleep(0.2)
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
    url, paths, _ = demo
    status, _, body = post(url, {"model": "cddpm", "n": 2, "seed": 9, "steps": 6, "labels": [1, 4]})
    assert status == 200 and body["seed"] == 9
    expected = Sampler(paths["cddpm"], threads=1).generate(n=2, seed=9, steps=6, labels=[1, 4], output="uint8")
    assert np.array_equal(np.stack([decode(im["png"]) for im in body["images"]]), expected)
    for request, argument, message in [
        ({"model": "cddpm", "steps": 0}, "steps", "steps must be at least 1"),
        ({"model": "cddpm", "n": 100000}, "n", "over this model's limit"),
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
    for _ in range(4):  # the refused requests above held no place: the model still takes work
        assert post(url, {"model": "cddpm", "steps": 2})[0] == 200
    models = json.loads(urllib.request.urlopen(url + "/api/models").read())["models"]
    assert {m["name"] for m in models} == {"cddpm", "sd", "pix2pix", "stylegan"}
    assert {a["name"] for a in next(m for m in models if m["name"] == "sd")["arguments"]} >= {"prompt", "image", "mask", "strength"}
    assert "/api/generate" in json.loads(urllib.request.urlopen(url + "/openapi.json").read())["paths"]
    assert b"/api/generate" in urllib.request.urlopen(url + "/api").read()
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:  # a body over the cap is refused from its header
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 9437184\r\n\r\n{")
        assert s.recv(100).startswith(b"HTTP/1.1 413")
    with socket.create_connection(("127.0.0.1", port)) as s:  # and a chunked one once it passes the cap
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 2**20
        try:
            for _ in range(9):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass  # the server may answer and close before the last chunk
        assert s.recv(100).startswith(b"HTTP/1.1 413")


def test_busy_model_answers_429_and_a_dropped_client_cancels_its_run(demo):
    url, _, _ = demo
    slow = {"model": "sd", "prompt": "a boat", "steps": 400, "n": 1}  # seconds of UNet calls on 2 cores
    results = []

    def call():
        results.append(post(url, slow, timeout=300))

    threads = [threading.Thread(target=call) for _ in range(3)]  # one runs, one waits, one is refused
    for t in threads:
        t.start()
        time.sleep(0.3)
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

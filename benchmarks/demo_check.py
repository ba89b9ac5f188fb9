"""`gen demo`: time to first image, and a screenshot of each page for the docs.

    python benchmarks/demo_check.py --ttfi bundles/ddpm --pages bundles/ddpm bundles/colorize build/demo-sd \
        --shots docs --json benchmarks/results/demo.json

Time to first image: from starting `gen demo BUNDLE` (a fresh process: imports, session loading,
uvicorn) to the first image of a default request (POST /api/generate {"model": NAME}) answered,
repeated `--repeats` times. Screenshots drive each page in Debian's headless chromium (Selenium):
fill a few controls, Generate, wait for the images, save docs/demo_<model>.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

GEN = [sys.executable, "-m", "gen"]
# what each family's screenshot fills in (control id suffix -> value)
FILL = {"ddpm": {"n": 8, "seed": 1, "steps": 30}, "sd": {"prompt": "a red house by a lake", "n": 2, "steps": 10},
        "pix2pix": {}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(bundles: list[str], port: int):
    return subprocess.Popen([*GEN, "demo", *bundles, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(url: str, proc, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/api/models", timeout=2)
            return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("gen demo exited before it was ready")
            time.sleep(0.05)
    raise SystemExit("gen demo was not ready in time")


def time_to_first_image(bundle: str, repeats: int) -> list[dict]:
    name = Path(bundle).resolve().name
    runs = []
    for _ in range(repeats):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        proc = start([bundle], port)
        try:
            wait_ready(url, proc)
            ready = time.perf_counter() - t0
            req = urllib.request.Request(url + "/api/generate", json.dumps({"model": name}).encode(),
                                         {"Content-Type": "application/json"})
            body = json.loads(urllib.request.urlopen(req, timeout=300).read())
            first = time.perf_counter() - t0
            runs.append({"ready_s": round(ready, 3), "first_image_s": round(first, 3), "generate_s": body["seconds"]})
        finally:
            proc.terminate()
            proc.wait(10)
    return runs


def screenshots(bundles: list[str], out: Path) -> list[str]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(bundles, port)
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,1250"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    saved = []
    try:
        wait_ready(url, proc)
        models = json.loads(urllib.request.urlopen(url + "/api/models").read())["models"]
        for m in models:
            driver.get(f"{url}/m/{m['name']}")
            for key, value in FILL.get(m["family"], {}).items():
                el = driver.find_element(By.ID, f"arg-{key}")
                el.clear()
                el.send_keys(str(value))
            if m["family"] == "pix2pix":  # a photo to colorize: a gray crop of scikit-image's astronaut
                from PIL import Image
                from skimage import data

                path = out / ".demo-input.png"
                Image.fromarray(data.astronaut()[40:200, 150:310]).convert("L").resize((32, 32)).save(path)
                driver.find_element(By.ID, "arg-image").send_keys(str(path.resolve()))
            driver.find_element(By.ID, "generate").click()
            WebDriverWait(driver, 300).until(lambda d: d.find_elements(By.CSS_SELECTOR, "img.result"))
            driver.execute_script("window.scrollTo(0, 0)")
            shot = out / f"demo_{m['family']}.png"
            driver.save_screenshot(str(shot))
            saved.append(str(shot))
        (out / ".demo-input.png").unlink(missing_ok=True)
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(10)
    return saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ttfi", help="bundle whose time to first image is measured")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pages", nargs="*", default=[], help="bundles to screenshot")
    ap.add_argument("--shots", default="docs", help="folder for the screenshots")
    ap.add_argument("--json", help="results file")
    a = ap.parse_args()
    result = {"command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]), "machine": platform.platform(),
              "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    if a.ttfi:
        result["time_to_first_image"] = {"bundle": a.ttfi, "runs": time_to_first_image(a.ttfi, a.repeats)}
        print(json.dumps(result["time_to_first_image"], indent=2))
    if a.pages:
        result["screenshots"] = screenshots(a.pages, Path(a.shots))
        print("screenshots:", ", ".join(result["screenshots"]))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

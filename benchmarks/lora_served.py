"""8 concurrent requests over 4 LoRA adapters on a real tritonserver (BLS pipeline, dynamic batching of
the slot UNet's component model): each image against the same request in process, and how many slot
UNet executions answered the requests' calls (fewer executions than calls = merged across requests).
An adapter is added while the server runs and used by the next request. Not a timing.

    python benchmarks/lora_served.py BUNDLE ADAPTER.safetensors --steps 10 --instances 8
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def variants(adapter: Path, folder: Path) -> dict[str, Path]:
    """The adapter and three of its scalings (x0.5, x-1, x2 on the up factors), as files."""
    from safetensors.numpy import load_file, save_file

    t = load_file(str(adapter))
    out = {}
    for name, f in (("a", 1.0), ("half", 0.5), ("neg", -1.0), ("double", 2.0)):
        out[name] = folder / f"{name}.safetensors"
        save_file({k: v * np.float32(f) if ".up." in k or "lora_B" in k else v for k, v in t.items()}, str(out[name]))
    return out


def main() -> None:
    from tritonclient import http

    from gen.runtime.lora_store import add_lora
    from gen.runtime.sampler import Sampler
    from gen.serving.repository import build_repository
    from gen.serving.server import TritonServer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("adapter")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--instances", type=int, default=8)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lora-served-"))
    bundle = work / "bundle"
    shutil.copytree(args.bundle, bundle, ignore=shutil.ignore_patterns("loras"))
    files = variants(Path(args.adapter), work)
    for name in ("a", "half", "neg"):
        add_lora(str(bundle), str(files[name]), name)
    repo = build_repository([str(bundle)], str(work / "repo"), names=["sd"], max_batch=32, instances=args.instances,
                            threads=2, components="bls")
    server = TritonServer(str(repo), http_port=18230, grpc_port=18231).start(timeout=180)
    try:
        add_lora(str(repo / "sd" / "1"), str(files["double"]), "double")  # while it runs
        add_lora(str(bundle), str(files["double"]), "double")
        kw = {"steps": args.steps, "scheduler": "ddim"}
        jobs = [(f"a handwritten digit {i}", ["a", "half", "neg", "double"][i % 4], i) for i in range(8)]

        def request(job):
            prompt, lora, seed = job
            with Sampler(server.http_url, backend="triton", model="sd") as remote:
                return remote.generate(prompt, lora=lora, seed=seed, **kw)

        with ThreadPoolExecutor(len(jobs)) as pool:  # all 8 in flight at once
            results = list(pool.map(request, jobs))
        with Sampler(str(bundle), backend="ort") as local:
            diffs = [float(np.abs(results[i] - local.generate(p, lora=lora, seed=s, **kw)).max()) for i, (p, lora, s) in enumerate(jobs)]
        client = http.InferenceServerClient(server.http_url.removeprefix("http://"))
        stats = client.get_inference_statistics("sd_unet_lora")["model_stats"][0]
        client.close()
        calls, executions = int(stats["inference_stats"]["success"]["count"]), int(stats["execution_count"])
        print(f"8 requests over 4 adapters (one added while serving), {args.steps} steps, {args.instances} pipeline instances:")
        print(f"  max |served - in process| per request: {', '.join(f'{d:.1e}' for d in diffs)}")
        print(f"  slot UNet: {calls} request calls answered by {executions} executions ({calls / executions:.2f} calls each)")
        print(f"  server live {server.live()}, ready {server.ready()}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

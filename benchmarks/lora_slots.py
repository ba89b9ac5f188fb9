"""What LoRA slots cost per UNet call: the slot UNet (gen.nets.lora_slots, adapter factors fed as
inputs) against the same adapter fused into the weights (gen export --model sd-lora), on the sd_peers
model (benchmarks/sd_peers.py builds it: UNet at half SD 1.5's width), ONNX Runtime CPU, batch 2
(one guided image), 32x32 latents (256 px), one random rank-R adapter on every attention projection.

Both ONNX files are exported here with gen's own steps (gen.export.onnx_io.export_component; the fused
one through gen.recipes.registry.fuse_lora, as `gen export --model sd-lora` fuses), once per work folder.
The outputs are compared first (same adapter: fused vs slots), then the two sessions are timed in
alternating blocks (A B, B A, ...), every call kept, and the slot/fused ratio of each block pair
reported with its median and quartiles. `uptime`'s load is recorded before and after.

    python benchmarks/lora_slots.py --threads 2 --blocks 8 --calls 3 --out benchmarks/results/lora_slots.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MARKER = "lora_slots: timing starts"


def make_lora(unet, rank: int, path: Path, seed: int = 0) -> None:
    """A random rank-`rank` adapter on every slot layer, in diffusers' key format, of a trained LoRA's size."""
    from safetensors.numpy import save_file

    from gen.nets.lora_slots import slot_layers

    rng = np.random.default_rng(seed)
    modules = dict(unet.named_modules())
    tensors = {}
    for layer in slot_layers(unet):
        m = modules[layer]
        tensors[f"unet.{layer}.lora.down.weight"] = (rng.standard_normal((rank, m.in_features)) / np.sqrt(m.in_features)).astype(np.float32)
        tensors[f"unet.{layer}.lora.up.weight"] = (rng.standard_normal((m.out_features, rank)) * 0.05).astype(np.float32)
    save_file(tensors, str(path))


def export_both(base: Path, work: Path, rank: int) -> tuple[Path, Path, Path]:
    """(fused.onnx, slots.onnx, lora.safetensors) in `work`, made once."""
    from gen.export.onnx_io import export_component
    from gen.nets.families.sd import UNet, components_of, signatures
    from gen.nets.lora_slots import slot_layers
    from gen.recipes.registry import _load_base, fuse_lora
    from gen.runtime.validate import example_feeds

    fused, slots, lora = work / "fused" / "unet.onnx", work / "slots" / "unet_lora.onnx", work / "lora.safetensors"
    if fused.is_file() and slots.is_file() and lora.is_file():
        return fused, slots, lora
    pipe = _load_base(str(base))
    sigs = signatures(pipe, rank)

    def example(sig):
        def feeds(batch, seed):
            f = example_feeds(sig, batch, seed=seed, num_classes=pipe.text_encoder.config.vocab_size,
                              dims={"latent_height": 32, "latent_width": 32})
            return {k: v * np.float32(0.05) if k.startswith("lora_") else v for k, v in f.items()}
        return feeds

    work.mkdir(parents=True, exist_ok=True)
    make_lora(pipe.unet, rank, lora)
    (work / "layers.json").write_text(json.dumps(slot_layers(pipe.unet)))
    for path, name, module in ((slots, "unet_lora", components_of(pipe, rank)["unet_lora"]),):
        path.parent.mkdir(exist_ok=True)
        print(f"exporting {name} ...", flush=True)
        export_component(module, sigs[name], path, 17, example(sigs[name]))
    fuse_lora(pipe, lora, 1.0)
    fused.parent.mkdir(exist_ok=True)
    print("exporting the fused unet ...", flush=True)
    export_component(UNet(pipe.unet).eval(), sigs["unet"], fused, 17, example(sigs["unet"]))
    return fused, slots, lora


def feeds_for(slots_path: Path, lora: Path, rank: int, batch: int) -> tuple[dict, dict]:
    import onnx

    from gen.runtime.loras import Slots, read_factors

    rng = np.random.default_rng(1)
    base = {"sample": rng.standard_normal((batch, 4, 32, 32), dtype=np.float32),
            "timestep": np.full(batch, 500, np.float32),
            "encoder_hidden_states": rng.standard_normal((batch, 77, 768), dtype=np.float32)}
    model = onnx.load(str(slots_path), load_external_data=False)
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    count = sum(1 for n in shapes if n.startswith("lora_down_"))
    layers = json.loads((lora.parent / "layers.json").read_text())  # module order, as the slot inputs
    assert len(layers) == count, (len(layers), count)
    sizes = [(shapes[f"lora_down_{k}"][1], shapes[f"lora_up_{k}"][2]) for k in range(count)]
    factors = read_factors(lora, Slots(layers, sizes, rank))
    slot = {**base}
    for k, (down, up) in enumerate(factors):
        slot[f"lora_down_{k}"] = np.stack([down] * batch)
        slot[f"lora_up_{k}"] = np.stack([up] * batch)
    return base, slot


def timed(session, feeds, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        session.run(None, feeds)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=str(REPO / "build" / "sd-peers" / "base"), help="the sd_peers base (diffusers folder)")
    ap.add_argument("--work", default=str(REPO / "build" / "lora-slots"))
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=8, help="block pairs (A B then B A alternate)")
    ap.add_argument("--calls", type=int, default=3, help="UNet calls per block")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    base = Path(args.base)
    if not (base / "model_index.json").is_file():
        from benchmarks.sd_peers import build_base

        print(f"building the sd_peers base in {base} ...", flush=True)
        build_base(base, (160, 320, 640, 640))
    fused_path, slots_path, lora = export_both(base, Path(args.work) / f"rank{args.rank}", args.rank)
    from gen.runtime.ort_session import ort_session

    fused, slots = ort_session(fused_path, args.threads), ort_session(slots_path, args.threads)
    plain, slot_feeds = feeds_for(slots_path, lora, args.rank, args.batch)
    a, b = fused.run(None, plain)[0], slots.run(None, slot_feeds)[0]
    parity = float(np.abs(a - b).max())
    print(f"fused vs slots, same adapter: max |diff| {parity:.2e} (output max |x| {np.abs(a).max():.2f})", flush=True)
    load_before = os.getloadavg()
    print(MARKER, flush=True)
    time.sleep(3)  # the guard stops the other processes
    for session, feeds in ((fused, plain), (slots, slot_feeds)):  # warm-up, untimed: first calls allocate
        timed(session, feeds, 2)
    ratios, times = [], {"fused": [], "slots": []}
    for block in range(args.blocks):
        order = (("fused", fused, plain), ("slots", slots, slot_feeds))
        med = {}
        for name, session, feeds in (order if block % 2 == 0 else order[::-1]):
            t = timed(session, feeds, args.calls)
            times[name] += t
            med[name] = statistics.median(t)
        ratios.append(med["slots"] / med["fused"])
        print(f"block {block}: fused {med['fused']:.3f} s, slots {med['slots']:.3f} s, ratio {ratios[-1]:.3f}", flush=True)
    q = statistics.quantiles(ratios, n=4)
    report = {"rank": args.rank, "threads": args.threads, "batch": args.batch, "latent": [32, 32], "parity_max_abs": parity,
              "fused_median_s": statistics.median(times["fused"]), "slots_median_s": statistics.median(times["slots"]),
              "ratio_median": statistics.median(ratios), "ratio_quartiles": [q[0], q[2]], "ratios": ratios,
              "times": times, "load_before": load_before, "load_after": os.getloadavg()}
    print(json.dumps({k: v for k, v in report.items() if k != "times"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

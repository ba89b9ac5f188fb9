"""Time optimum-intel's OpenVINO Stable Diffusion pipeline (OVStableDiffusionPipeline) the way its docs advise.

Run it with the optimum-intel venv's python (benchmarks/optimum_intel_venv.sh), not the main one:

    .venv-optimum-intel/bin/python benchmarks/optimum_intel_sd_runner.py --convert-from BASE --model IR [--hybrid-int8 PROMPTS.json]
    .venv-optimum-intel/bin/python benchmarks/optimum_intel_sd_runner.py --model IR --out result.json ...

Why a separate venv: optimum-intel 2.2.0 pins huggingface-hub<1.22 and transformers<5.6, while the main venv
has huggingface-hub 2.x and diffusers 0.42 (which needs hub>=1.32); this script talks to the main side only
through files (the diffusers-format base model, latents .npy in, images .npy out).

1. Convert (once; `--convert-from`): optimum-intel's own torch -> OpenVINO export of the diffusers model
   (`from_pretrained(export=True)`, its default weight format for a model this size), with `--hybrid-int8`
   its hybrid quantization (OVWeightQuantizationConfig(bits=8, quant_method="hybrid"): int8 weights for
   MatMuls/embeddings everywhere, int8 activations too in the UNet, calibrated by sampling the pipeline on
   the given local prompts, as the hub datasets it names are out of reach offline), saved as OpenVINO IR.
2. Time: load the IR, reshape to the static benchmark shape (batch 1, HxW, one image per prompt), compile
   with INFERENCE_NUM_THREADS, then benchmarks/peer_runner.py's loop. Reported apart: load, reshape+compile,
   the first call, and the steady runs; per stage, time inside each component's compiled-model call; what
   OpenVINO really ran (each compiled model's INFERENCE_PRECISION_HINT) and the IR's weight types.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import peer_runner

PACKAGES = ("optimum-intel", "optimum", "openvino", "nncf", "diffusers", "transformers", "torch", "numpy")


def readable_base(base: Path, scratch: Path) -> Path:
    """`base` as this venv's transformers reads it.

    The main venv's transformers (5.23) saves CLIPTextModel's weights without the `text_model.` prefix
    that optimum-intel's pinned transformers (5.5) expects, and 5.5 then initialises the whole text
    encoder at random (a "LOAD REPORT" warning, nothing more): the images would come from another model.
    Then this returns a copy with the keys renamed (every other folder linked, nothing big copied)."""
    import torch
    from safetensors.numpy import load_file, save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    files = list((base / "text_encoder").glob("*.safetensors"))
    with torch.device("meta"):
        expected = set(CLIPTextModel(CLIPTextConfig.from_pretrained(str(base / "text_encoder"))).state_dict())
    weights = load_file(str(files[0])) if len(files) == 1 else {}
    if len(files) != 1 or set(weights) <= expected:
        return base
    renamed = {("text_model." + k if "text_model." + k in expected else k): v for k, v in weights.items()}
    if not set(renamed) <= expected:
        raise SystemExit(f"{files[0]}: weights {sorted(set(renamed) - expected)[:3]} ... fit no CLIPTextModel layout this "
                         "venv's transformers knows")
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "text_encoder").mkdir(parents=True)
    for entry in base.iterdir():
        if entry.name != "text_encoder":
            (scratch / entry.name).symlink_to(entry.resolve())
    shutil.copy(base / "text_encoder" / "config.json", scratch / "text_encoder" / "config.json")
    save_file(renamed, str(scratch / "text_encoder" / files[0].name), metadata={"format": "pt"})
    return scratch


def convert(base: str, out: Path, prompts_file: str | None, threads: int) -> dict:
    """optimum-intel's export (+ hybrid int8 quantization) of the diffusers model, saved as IR at `out`."""
    from optimum.intel import OVStableDiffusionPipeline, OVWeightQuantizationConfig

    source = readable_base(Path(base), out.with_name(out.name + ".base"))

    quantization = None
    if prompts_file:
        prompts = json.loads(Path(prompts_file).read_text())
        quantization = OVWeightQuantizationConfig(bits=8, quant_method="hybrid", dataset=prompts)
    t0 = time.perf_counter()
    pipe = OVStableDiffusionPipeline.from_pretrained(str(source), export=True, compile=False, quantization_config=quantization,
                                                     ov_config={"INFERENCE_NUM_THREADS": threads})
    seconds = time.perf_counter() - t0
    staged = out.with_name(out.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    pipe.save_pretrained(str(staged))
    shutil.rmtree(out, ignore_errors=True)
    staged.rename(out)  # a half-written IR never passes for a finished one
    if source != Path(base):
        shutil.rmtree(source)
    return {"convert_s": seconds, "quantization": quantization.to_dict() if quantization else None,
            "text_encoder_keys_renamed": source != Path(base)}


def weight_types(model) -> dict[str, int]:
    """Element types of the IR's Constant nodes: f32, f16 (compressed weights), i8/u8 (quantized)."""
    return dict(Counter(op.get_element_type().get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant"))


def main() -> None:
    p = peer_runner.parser(__doc__.splitlines()[0])
    p.add_argument("--convert-from", help="diffusers-format model to convert into --model (then exit)")
    p.add_argument("--hybrid-int8", metavar="PROMPTS_JSON", help="with --convert-from: hybrid int8, calibrated on these prompts")
    a = p.parse_args()
    peer_runner.start()
    import torch

    torch.set_num_threads(a.threads)  # scheduler math and CFG combine run in torch inside the pipeline
    if a.convert_from:
        return peer_runner.finish(a, convert(a.convert_from, Path(a.model).resolve(), a.hybrid_int8, a.threads), None, PACKAGES)
    from optimum.intel import OVStableDiffusionPipeline

    t0 = time.perf_counter()
    pipe = OVStableDiffusionPipeline.from_pretrained(str(Path(a.model).resolve()), compile=False, ov_config={"INFERENCE_NUM_THREADS": a.threads})
    load_s = time.perf_counter() - t0
    peer_runner.set_scheduler(pipe, a.scheduler)
    t0 = time.perf_counter()
    pipe.reshape(batch_size=1, height=a.height, width=a.width, num_images_per_prompt=1)
    pipe.compile()
    compile_s = time.perf_counter() - t0
    parts = {name: getattr(pipe, name) for name in peer_runner.STAGES}
    openvino = {name: {"inference_precision": part.request.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
                       "threads": int(part.request.get_property("INFERENCE_NUM_THREADS")),
                       "weight_types": weight_types(part.model)} for name, part in parts.items()}
    acc = peer_runner.add_stage_timers({name: (part, "request") for name, part in parts.items()})
    result, images = peer_runner.measure(peer_runner.generator(pipe, a), acc, a.repeats)
    peer_runner.finish(a, {"runner": "optimum-intel OVStableDiffusionPipeline", "load_s": load_s, "compile_s": compile_s,
                           "openvino": openvino, **result}, images, PACKAGES)


if __name__ == "__main__":
    main()

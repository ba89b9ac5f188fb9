"""Tiny trained runs exported once per session: real weights, real ONNX, seconds to build."""

import pytest

from gen.export.int8_options import Int8Options
from gen.export.onnx_export import export_run
from gen.trainkit.distill import distill
from gen.trainkit.families.ddpm.classifier import train_noisy_classifier
from gen.trainkit.train import train
from gen.trainkit.families.vqvae.prior import train_prior

FAST = {"log_every": 50, "sample_every": 1000, "checkpoint_every": 1000}
PRECISIONS = {"gan": ("fp32", "fp16"), "cddpm": ("fp32", "fp16", "int8"), "pix2pix": ("fp32", "fp16"),
              "cyclegan": ("fp32", "fp16"), "stylegan": ("fp32", "fp16")}
# a small calibration set; quantized whatever the speed, since timings of so tiny a net are noise
INT8 = Int8Options(calibration=16, min_psnr=20.0, min_speedup=0.0)
RUNS = {
    "gan": ("gan", {"width": 16, "batch_size": 16, "steps": 20}),
    "cgan": ("gan", {"width": 16, "batch_size": 16, "steps": 20, "conditional": True}),
    "vae": ("vae", {"width": 8, "batch_size": 16, "steps": 20}),
    "ddpm": ("ddpm", {"widths": [16, 32], "batch_size": 16, "steps": 30}),
    "cddpm": ("ddpm", {"widths": [16, 32], "batch_size": 16, "steps": 30, "conditional": True, "schedule": "cosine", "prediction": "v"}),
    "pix2pix": ("pix2pix", {"width": 8, "batch_size": 8, "steps": 10, "data": "colorize"}),
    "cyclegan": ("cyclegan", {"width": 4, "blocks": 1, "batch_size": 4, "steps": 10, "data": "digits-thin"}),
    "stylegan": ("stylegan", {"width": 8, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "batch_size": 8, "steps": 10}),
}


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    out = {}
    for name, (family, opts) in RUNS.items():
        opts = dict(opts)
        run = train(family, opts.pop("data", "digits"), str(root / f"run-{name}"), {**opts, **FAST}, progress=False)
        out[name] = export_run(str(run.path), str(root / name), precisions=PRECISIONS.get(name, ("fp32",)),
                               int8=INT8, progress=lambda *_: None)
    # a VQ-VAE with its transformer prior: generate() samples codes one cell at a time
    train("vqvae", "digits", str(root / "run-vqvae"), {"width": 8, "batch_size": 8, "codebook_size": 16, "code_dim": 4,
                                                        "steps": 20, **FAST}, progress=False)
    prior = train_prior(str(root / "run-vqvae"), str(root / "run-vqvae-prior"),
                        {"prior_dim": 16, "prior_layers": 1, "prior_heads": 2, "batch_size": 8, "steps": 20, **FAST}, progress=False)
    out["vqvae-prior"] = export_run(str(prior.path), str(root / "vqvae-prior"), precisions=("fp32", "fp16"),
                                    progress=lambda *_: None)
    # classifier guidance: a noisy classifier trained beside the unconditional DDPM, exported as one bundle
    guided = train_noisy_classifier(str(root / "run-ddpm"), str(root / "run-ddpm-guided"),
                                    {"steps": 20, "batch_size": 16, "classifier_width": 8, **FAST}, progress=False)
    out["ddpm-guided"] = export_run(str(guided.path), str(root / "ddpm-guided"), precisions=("fp32", "fp16"),
                                    progress=lambda *_: None)
    # a few-step student of the conditional teacher: served, benched and sampled like any bundle
    student = distill(str(root / "run-cddpm"), str(root / "run-cd-student"), {"steps": 3, "batch_size": 8, "guidance": 2.0},
                      method="consistency", progress=False)
    out["cd-student"] = export_run(str(student.path), str(root / "cd-student"), precisions=("fp32", "fp16"), progress=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def sd_bundle(tmp_path_factory):
    """`gen export --model sd-lora --fp16` with no --base/--lora: tiny-sd plus the seeded demo LoRA."""
    from gen.export.sd_export import export_sd

    return export_sd("sd-lora", str(tmp_path_factory.mktemp("sd") / "sd-lora"), precisions=("fp32", "fp16"), progress=lambda *_: None)


@pytest.fixture(scope="session")
def sd_slots_bundle(tmp_path_factory):
    """`gen export --model tiny-sd --lora-slots 4` (fp32), and adapter files: the seeded demo LoRA (the
    very adapter sd_bundle has fused: same seed, same sha256, so each is the other's reference) and
    variants of it: its up factors x0.5 (half), x-1 (neg), x1/3 (third), and its first 2 ranks (r2)."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from gen.export.sd_export import export_sd
    from gen.recipes.registry import demo_lora
    from gen.recipes.tiny_sd import build_tiny_sd

    root = tmp_path_factory.mktemp("sd-slots")
    bundle = export_sd("tiny-sd", str(root / "tiny-sd-slots"), lora_slots=4, progress=lambda *_: None)
    (root / "demo").mkdir()
    files = {"demo": demo_lora(build_tiny_sd(), root / "demo")}
    t = load_file(str(files["demo"]))

    def up(f):
        return {k: v * np.float32(f) if ".up." in k else v for k, v in t.items()}

    variants = {"half": up(0.5), "neg": up(-1.0), "third": up(1 / 3),
                "r2": {k: v[:2] if ".down." in k else v[:, :2] if ".up." in k else v for k, v in t.items()}}
    for name, tensors in variants.items():
        files[name] = root / f"{name}.safetensors"
        save_file(tensors, str(files[name]))
    return bundle, files

"""Train the sd_peers model's VAE (benchmarks/sd_peers.py builds it with random weights) into a real
autoencoder of photos, so a tiny decoder can be distilled from a decoder whose images are natural ones.

    python benchmarks/train_peers_vae.py --base build/sd-peers/base --out build/sd-peers/base-vae

Why: a random-weight decoder maps latents to noise-like textures, a chaotic function no small net
copies (gen distill decoder reaches 16.7 dB on it, below a constant image); TAESD's premise, and what a
user's SD VAE is, is a trained decoder whose images are smooth. The OUT folder is BASE with the VAE
replaced (the UNet and text encoder are linked, unchanged), so `gen export --model sd --base OUT` gives
the same architecture and speed with a trained VAE. Data: random 64x64 crops of 256x256 crops of
scikit-image's bundled photos (the same photos and scale gen distill decoder encodes; another seed);
loss: MSE + 1e-6 x KL, as SD's VAE training weighs them (without its perceptual and GAN terms);
Adam, warm-up then cosine decay. Reconstruction PSNR on 16 other 256x256 crops of the same photos (another
seed: unseen crops, not unseen photos) goes to OUT/vae_train.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="build/sd-peers/base")
    ap.add_argument("--out", default="build/sd-peers/base-vae")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kl", type=float, default=1e-6)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    import torch
    from diffusers import AutoencoderKL

    from gen.trainkit.sd.tiny_decoder import photo_crops

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    base, out = Path(args.base), Path(args.out)
    if out.resolve() == base.resolve():
        raise SystemExit("--out must differ from --base: OUT is rewritten, BASE is read")
    vae = AutoencoderKL.from_pretrained(str(base / "vae"))
    vae.train()
    pool = photo_crops(256, 256, 448, args.seed).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
    held = torch.from_numpy(photo_crops(256, 256, 16, args.seed + 100).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    rng = np.random.default_rng(args.seed)
    opt = torch.optim.Adam(vae.parameters(), lr=args.lr)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    t0, log = time.time(), []
    for step in range(args.steps):
        idx = rng.integers(0, len(pool), args.batch)
        ys, xs = rng.integers(0, 256 - args.crop + 1, (2, args.batch))
        batch = np.stack([pool[i, :, y:y + args.crop, x:x + args.crop] for i, y, x in zip(idx, ys, xs)])
        flip = rng.random(args.batch) < 0.5
        batch[flip] = batch[flip][..., ::-1]
        x = torch.from_numpy(np.ascontiguousarray(batch))
        post = vae.encode(x).latent_dist
        recon = vae.decode(post.sample()).sample
        mse = torch.nn.functional.mse_loss(recon, x)
        loss = mse + args.kl * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            el = time.time() - t0
            eta = el / (step + 1) * (args.steps - step - 1)
            print(f"step {step}/{args.steps} mse {mse.item():.4f} psnr {10 * math.log10(4 / max(mse.item(), 1e-12)):.2f} dB"
                  f"  {el:.0f} s, ~{eta / 60:.1f} min left", flush=True)
            log.append({"step": step, "mse": mse.item()})
    vae.eval()
    with torch.no_grad():
        recon = torch.cat([vae.decode(vae.encode(held[i:i + 4]).latent_dist.mode()).sample for i in range(0, len(held), 4)])
        mse = torch.mean((recon.clamp(-1, 1) - held) ** 2).item()
    psnr = 10 * math.log10(4 / mse)
    print(f"reconstruction PSNR on other 256x256 crops of the photos: {psnr:.2f} dB", flush=True)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for item in base.iterdir():
        if item.name != "vae":
            (out / item.name).symlink_to(item.resolve())
    vae.save_pretrained(str(out / "vae"), safe_serialization=True)
    (out / "vae_train.json").write_text(json.dumps({
        "command": " ".join(sys.argv), "args": vars(args), "held_out_psnr_db": psnr, "seconds": time.time() - t0,
        "log": log}, indent=1))


if __name__ == "__main__":
    main()

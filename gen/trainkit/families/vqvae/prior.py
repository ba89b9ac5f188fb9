"""The VQ-VAE's prior (stage 2): a causal transformer over a trained VQ-VAE's code grid.

A prior run is a VQ-VAE run's config plus `stage: prior`; it carries a copy of the VQ-VAE's weights
(frozen: encoder for the targets, codebook and decoder for its samples) and the hash of the codebook
it was trained on, so a bundle whose codebook is not the prior's is refused instead of decoding
codes that mean something else. Tokens are [start, c_0, .., c_{T-2}] with start = K; the logits at
position i are those of code i.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gen.errors import GenError
from gen.nets.components import sub_state
from gen.nets.vqvae import build_prior, build_vqvae, check_codebook, codebook_hash
from gen.trainkit.defaults import PRIOR_DEFAULTS
from gen.trainkit.trainer import Trainer



class PriorTrainer(Trainer):
    SAMPLED = {"vqvae": "model.vqvae", "prior": "model.prior"}  # the VQ-VAE travels with its prior: one bundle

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        self.vqvae = build_vqvae(c).requires_grad_(False)
        self.prior = build_prior(c)
        self.start = c["codebook_size"]
        self.modules = {"vqvae": self.vqvae, "prior": self.prior}
        self.optimizers = {"prior": torch.optim.AdamW(self.prior.parameters(), c["lr"], betas=(0.9, 0.95), weight_decay=0.01)}

    def initialize(self) -> None:
        """A fresh prior run starts from its VQ-VAE run's weights."""
        from gen.trainkit.rundir import RunDir

        tensors = RunDir(self.config["source_run"]).load_weights()
        check_codebook(self.config, tensors, self.config["source_run"])
        self.vqvae.load_state_dict(sub_state(tensors, "model.vqvae"))

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        x, _ = batch(g)
        with torch.no_grad():
            codes = self.vqvae.eval().encode(x).flatten(1)
        tokens = torch.cat([torch.full((len(codes), 1), self.start), codes[:, :-1]], 1)
        self.prior.train()
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=g)))  # dropout: replayed on resume
        logits = self.prior(tokens)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.reshape(-1))
        self.optimizers["prior"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["prior"].step()
        return {"loss": loss.item(), "bits_per_code": loss.item() / float(np.log(2))}

    def load_sampling_weights(self, tensors: dict) -> None:
        check_codebook(self.config, tensors, "the prior run's weights")
        super().load_sampling_weights(tensors)

    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, temperature: float = 1.0, **_) -> torch.Tensor:
        self.prior.eval(), self.vqvae.eval()
        cells = self.config["grid"] ** 2
        tokens = torch.full((n, cells), self.start)
        codes = torch.zeros((n, cells), dtype=torch.int64)
        for i in range(cells):
            p = F.softmax(self.prior(tokens)[:, i] / temperature, -1)
            codes[:, i] = torch.multinomial(p, 1, generator=g)[:, 0]
            if i + 1 < cells:
                tokens[:, i + 1] = codes[:, i]
        return self.vqvae.decode(codes.view(n, self.config["grid"], self.config["grid"]))


def train_prior(vqvae_run: str, out: str, options: dict, resume: bool = False, force: bool = False,
                progress: bool = True):
    """Train the prior of the VQ-VAE run `vqvae_run` into a new run at `out` (options: PRIOR_DEFAULTS' keys, seed)."""
    from gen.trainkit.train import train_with

    def fresh():
        return prior_config(vqvae_run, {k: v for k, v in options.items() if v is not None})

    return train_with(out, "vqvae", fresh, {"steps": options.get("steps") if resume else None}, resume=resume,
                      force=force, progress=progress, label="train vqvae-prior", sources=[vqvae_run])


def prior_config(vqvae_run: str, options: dict):
    """The prior run's config (the VQ-VAE run's, plus the prior's options and the codebook's hash)
    and the VQ-VAE's data, after every check."""
    from gen.trainkit.train import load_run_data, stage_source

    source, config, o = stage_source(vqvae_run, "vqvae", "vqvae-prior", "the prior is trained on a finished VQ-VAE run "
                                     "(gen train vqvae)", PRIOR_DEFAULTS, options,
                                     ("steps", "batch_size", "prior_dim", "prior_layers", "prior_heads"))
    if o["prior_dim"] % o["prior_heads"]:
        raise GenError(f"--prior-dim ({o['prior_dim']}) must be a multiple of --prior-heads ({o['prior_heads']})")
    if not 0 <= o["prior_dropout"] < 1:
        raise GenError(f"--prior-dropout must be in [0, 1), got {o['prior_dropout']!r}")
    config.update(o, stage="prior", source_run=str(source.path.resolve()), codebook_sha256=codebook_hash(source.load_weights()))
    return config, load_run_data(config)

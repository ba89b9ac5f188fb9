"""Classifier guidance's classifier (`gen train noisy-classifier RUN`): p(y | x_t, t) trained on the
DDPM run's labelled data, noised by the DDPM's own forward process at uniformly drawn timesteps.

A classifier run is the DDPM run's config plus `stage: classifier` and carries a copy of the DDPM's
sampling weights (frozen) beside the classifier's, so `gen export RUN` writes one bundle with both
the denoiser and the classifier's input gradient (gen.nets.noisy_classifier), and `gen eval RUN
--classifier-scale S` scores guided samples. The hash of the DDPM weights it was trained beside is
recorded; `gen export DDPM_RUN --classifier RUN` attaches the classifier to another DDPM run with the
same images and noise schedule (a retrained or distilled one), and refuses one that differs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gen.errors import GenError, with_article
from gen.nets.components import is_conditional, sub_state
from gen.trainkit.defaults import CLASSIFIER_DEFAULTS
from gen.trainkit.trainer import Trainer

GRID_ROW = 8  # sample grids: one requested class per row


class NoisyClassifierTrainer(Trainer):
    SAMPLED = {"unet": "unet", "classifier": "classifier"}  # the DDPM's weights travel with it: one guided bundle

    def __init__(self, config: dict):
        from gen.nets.families.ddpm import build_denoiser_unet, build_noisy_classifier, noise_scheduler

        super().__init__(config)
        c = config
        self.num_classes = c["num_classes"]
        self.unet = build_denoiser_unet(c).requires_grad_(False)
        self.classifier = build_noisy_classifier(c)
        self.scheduler = noise_scheduler(c)
        self.modules = {"unet": self.unet, "classifier": self.classifier}
        self.optimizers = {"classifier": torch.optim.AdamW(self.classifier.parameters(), c["lr"], weight_decay=0.05)}

    def initialize(self) -> None:
        """A fresh classifier run starts with its DDPM run's sampling weights."""
        from gen.trainkit.rundir import RunDir

        self.unet.load_state_dict(sub_state(RunDir(self.config["source_run"]).load_weights(), "unet"))

    def train_step(self, batch, g: torch.Generator, step: int) -> dict:
        c = self.config
        x, y = batch(g)
        t = torch.randint(0, c["timesteps"], (len(x),), generator=g)
        x_t = self.scheduler.add_noise(x, torch.randn(x.shape, generator=g), t)
        for group in self.optimizers["classifier"].param_groups:  # cosine decay to 0 over the run
            group["lr"] = c["lr"] * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * step / c["steps"]))).item()
        self.classifier.train()
        logits = self.classifier(x_t, t)
        loss = F.cross_entropy(logits, y)
        self.optimizers["classifier"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["classifier"].step()
        return {"loss": loss.item(), "accuracy": (logits.argmax(1) == y).float().mean().item()}

    @torch.no_grad()
    def sample(self, n: int, labels, g: torch.Generator, steps: int | None = None, classifier_scale: float | None = None, **_):
        """Ancestral DDPM sampling (trailing spacing, the bundle's default with classifier guidance)
        guided by the classifier, its gradient from torch.autograd. Without labels, row r of the grid
        asks for class r."""
        from diffusers import DDPMScheduler

        from gen.runtime.schedulers import classifier_guided

        c = self.config
        scale = c["classifier_scale"] if classifier_scale is None else classifier_scale
        if labels is None:
            labels = (torch.arange(n) // GRID_ROW) % self.num_classes
        sched = DDPMScheduler.from_config(self.scheduler.config, timestep_spacing="trailing")
        sched.set_timesteps(steps or c["sample_steps"])
        self.unet.eval(), self.classifier.eval()
        x = torch.randn(n, c["channels"], c["image_size"], c["image_size"], generator=g)
        cond = labels if is_conditional(c) else None
        for t in sched.timesteps:
            tt = torch.full((n,), int(t), dtype=torch.long)
            out = self.unet(x, tt, class_labels=cond).sample
            if scale:
                grad = log_prob_gradient(self.classifier, x, tt, labels)
                out = classifier_guided(out, grad, scale, float(sched.alphas_cumprod[int(t)]), sched.config.prediction_type)
            x = sched.step(out, t, x, generator=g).prev_sample
        return x.clamp(-1.0, 1.0)


def log_prob_gradient(classifier, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """grad_x log p(labels | x, t) by torch.autograd (the reference for gen.nets.noisy_classifier.InputGradient)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        log_p = torch.log_softmax(classifier(x, t), dim=1).gather(1, labels[:, None]).sum()
        return torch.autograd.grad(log_p, x)[0]


def train_noisy_classifier(ddpm_run: str, out: str, options: dict, resume: bool = False, force: bool = False,
                           progress: bool = True):
    """Train the classifier of the DDPM run `ddpm_run` into a new run at `out`
    (options: CLASSIFIER_DEFAULTS' keys and the loop's)."""
    from gen.trainkit.train import train_with

    def fresh():
        return classifier_config(ddpm_run, {k: v for k, v in options.items() if v is not None})

    return train_with(out, "ddpm", fresh, {"steps": options.get("steps") if resume else None}, resume=resume,
                      force=force, progress=progress, label="train noisy-classifier", sources=[ddpm_run])


def classifier_config(ddpm_run: str, options: dict):
    """The classifier run's config (the DDPM run's, plus the classifier's options) and the DDPM's
    data, after every check."""
    import math

    from gen.cache import sha256_of
    from gen.trainkit.train import load_run_data, stage_source

    source, config, o = stage_source(ddpm_run, "ddpm", "noisy-classifier", "the noisy classifier is trained for a "
                                     "finished DDPM run (gen train ddpm)", CLASSIFIER_DEFAULTS, options,
                                     ("steps", "batch_size", "classifier_width"))
    if o["batch_size"] < 2:
        raise GenError(f"--batch-size must be at least 2, got {o['batch_size']}")
    if not (isinstance(o["classifier_scale"], (int, float)) and 0 <= o["classifier_scale"] < math.inf):
        raise GenError(f"--classifier-scale must be a finite number >= 0, got {o['classifier_scale']!r}")
    data = load_run_data(config)
    if data.num_classes < 2:
        raise GenError(f"{ddpm_run} was trained on {config['data']}, which has no class labels: a classifier needs "
                       "labelled data (class sub-folders)")
    config.update(o, stage="classifier", source_run=str(source.path.resolve()),
                  denoiser_sha256=sha256_of(source.weights_path))
    return config, data


# what must agree for a classifier to guide a DDPM: what it reads (x_t at the DDPM's size and noise
# levels, which the schedule and its length fix) and what it names (the classes)
MUST_MATCH = (("image_size", "image size"), ("channels", "channels"), ("num_classes", "classes"),
              ("timesteps", "training timesteps"), ("schedule", "noise schedule"))


def with_classifier(ddpm_run: str, classifier_run: str) -> tuple[dict, dict]:
    """(config, weights) of the DDPM run `ddpm_run` (a teacher, a retrained or a distilled one) with
    the classifier of `classifier_run` attached, as if the classifier had been trained beside it;
    refused, naming the difference, where the classifier was trained for other images or noise levels."""
    from gen.trainkit.rundir import RunDir

    run, source = RunDir(ddpm_run), RunDir(classifier_run)
    config = run.read_config()
    try:
        theirs = source.read_config()
    except GenError as e:
        raise GenError(f"--classifier: {e}") from None
    if theirs.get("family") != "ddpm" or theirs.get("stage") != "classifier":
        raise GenError(f"--classifier {classifier_run} is not a run of `gen train noisy-classifier`")
    if config["family"] != "ddpm" or config.get("stage"):
        what = "a classifier run already" if config.get("stage") else f"{with_article(config['family'])} run"
        raise GenError(f"--classifier attaches a noisy classifier to a DDPM run; {ddpm_run} is {what}")
    for key, what in MUST_MATCH:
        if config[key] != theirs[key]:
            raise GenError(f"--classifier {classifier_run} was trained for {what} {theirs[key]!r}, but the DDPM "
                           f"{ddpm_run} has {config[key]!r}; train one for it: gen train noisy-classifier {ddpm_run}")
    kept = ("classifier_width", "classifier_scale", "class_names")
    config = {**config, **{k: theirs[k] for k in kept}, "stage": "classifier", "classifier_run": str(source.path.resolve())}
    weights = run.load_weights()
    weights.update({k: v for k, v in source.load_weights().items() if k.startswith("classifier.")})
    return config, weights

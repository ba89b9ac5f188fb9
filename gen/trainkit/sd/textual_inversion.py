"""`gen train textual-inversion`: a new word for a subject, learned as token embeddings alone
(Gal et al. 2022).

The base stays frozen: one row per new token is added to the text encoder's embedding table and
only those rows train (the others get zero gradient, and Adam without weight decay leaves a
zero-gradient row exactly as it was), so prompts without the token give the base's images bit for
bit. Prompts come from a few templates ("a photo of a {token}"); instance latents are encoded once.

    RUN/learned_embeds.safetensors  {token: [num_vectors, hidden]}: diffusers' format, so
                                    `pipe.load_textual_inversion(RUN / "learned_embeds.safetensors")` loads it
    RUN/config.json                 base, token, init token and hyper-parameters
    RUN/samples_before.png, samples_after.png   the token's prompts, then an unrelated prompt, fixed seed
    RUN/metrics.jsonl               loss per logged step, then the change to each prompt's images

`gen export --model sd --textual-inversion RUN` folds the rows and the tokenizer entry into a bundle.
"""

from __future__ import annotations

from gen.errors import GenError
from gen.recipes.registry import EMBEDDINGS_FILE
from gen.trainkit.sd import SdRunKind


FAMILY = "textual-inversion"
RUN_KIND = SdRunKind(FAMILY, "gen export --model sd --textual-inversion RUN")  # how its runs are exported
DEFAULTS = {"steps": 300, "lr": 5e-3, "batch_size": 4, "num_vectors": 1, "seed": 0, "resolution": None,
            "sample_steps": 20, "log_every": 10, "weight_decay": 0.0}
# the subject in a few plain contexts, so the embedding learns the subject rather than one sentence
TEMPLATES = ("a photo of a {}", "a rendering of a {}", "a close-up photo of a {}", "a bright photo of the {}",
             "a cropped photo of a {}", "a photo of one {}")
UNRELATED = "a red house by a lake"  # its images must not change


def check_token(tokenizer, token: str, option: str = "--token") -> None:
    """A new token must be a string the tokenizer does not already read as one known token."""
    if not token or any(c.isspace() for c in token):
        raise GenError(f"{option} must be one word with no spaces, got {token!r}", option.lstrip("-"))
    known = tokenizer.tokenize(token)
    if token in tokenizer.get_vocab() or len(known) == 1:
        raise GenError(f"{option} {token!r} is already in the tokenizer's vocabulary ({known[0]!r}): training it would "
                       "change what every prompt using it means; pick a new string such as <my-cat>", option.lstrip("-"))


def train_textual_inversion(base: str | None, data: str, out: str, token: str, init_token: str | None, options: dict,
                            force: bool = False, progress: bool = True):
    """Textual inversion into `out`, one writer at a time; returns (RunDir, changes per prompt group)."""
    from gen.runtime.prompts import check_text
    from gen.trainkit.sd.base import run_output

    for text, option in ((token, "--token"), (init_token, "--init-token")):
        if text is not None:
            check_text(text, option)  # before a byte is written: no run to clean up
    with run_output(out, "train textual-inversion"):
        return _train(base, data, out, token, init_token, options, force, progress)


def _train(base, data, out, token, init_token, options, force, progress):
    import torch
    from diffusers import DDPMScheduler

    from gen.fileio import save_safetensors, write_json
    from gen.trainkit.data.instances import load_instances
    from gen.trainkit.sd.base import (begin, denoising_loss, latents, native_size, prompt_changes, sample, save_grid,
                                     token_ids, train_adapter)

    config, run, _, resolved = begin(DEFAULTS, options, ("steps", "batch_size", "num_vectors"), out, base, force,
                                     progress, data=data)
    pipe = resolved.pipe
    tokenizer, text_encoder = pipe.tokenizer, pipe.text_encoder
    check_token(tokenizer, token)
    size = native_size(pipe, config["resolution"])
    images = load_instances(data, size)
    init_ids = _init_ids(tokenizer, init_token)
    config.update(base=resolved.base, data=data, resolution=size, images=len(images), family=FAMILY, token=token,
                  init_token=init_token)
    final, run = run, run.claim(force)
    write_json(run.config_path, config)

    tokens = [token] + [f"{token}_{i}" for i in range(1, config["num_vectors"])]  # diffusers' multi-vector names
    phrase = " ".join(tokens)
    prompts = [TEMPLATES[0].format(token), TEMPLATES[2].format(token), UNRELATED, UNRELATED.replace("red", "blue")]
    before = sample(pipe, prompts, config["seed"], size, config["sample_steps"])
    save_grid(run.path / "samples_before.png", before, len(prompts))

    tokenizer.add_tokens(tokens)
    new_ids = tokenizer.convert_tokens_to_ids(tokens)
    text_encoder.resize_token_embeddings(len(tokenizer))
    table = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        start = table[init_ids].mean(0) if init_ids else table[:-len(tokens)].mean(0)
        table[new_ids] = start
    text_encoder.requires_grad_(False)
    pipe.unet.requires_grad_(False)
    table.requires_grad_(True)
    trained = torch.zeros(len(table), 1)
    trained[new_ids] = 1.0
    table.register_hook(lambda grad: grad * trained)  # only the new rows learn

    torch.manual_seed(config["seed"])
    instance_latents = latents(pipe, images)
    ids = token_ids(tokenizer, [t.format(phrase) for t in TEMPLATES])
    noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)

    def step_loss(g):
        idx = torch.randint(len(instance_latents), (config["batch_size"],), generator=g)
        which = torch.randint(len(ids), (config["batch_size"],), generator=g)
        return denoising_loss(pipe.unet, noise_sched, instance_latents[idx], text_encoder(ids[which])[0], g)

    train_adapter(pipe.unet, [table], config, step_loss, run, "train textual-inversion", progress)
    table.requires_grad_(False)
    learned = table[new_ids].detach().clone()
    save_safetensors(run.path / EMBEDDINGS_FILE, {token: learned}, {"format": "pt"})
    after = sample(pipe, prompts, config["seed"], size, config["sample_steps"])
    save_grid(run.path / "samples_after.png", after, len(prompts))
    changes = prompt_changes(before, after, {"token": 2, "unrelated": 2})
    run.log({"step": config["steps"], "sample_change_mean_abs": changes})
    final.commit(run)
    return final, changes


def _init_ids(tokenizer, init_token: str | None) -> list[int]:
    """The ids the new embedding starts from: the init word's tokens (averaged when it is several)."""
    if init_token is None:
        return []
    ids = tokenizer(init_token, add_special_tokens=False).input_ids
    if not ids:
        raise GenError(f"--init-token {init_token!r} has no tokens", "init_token")
    return ids

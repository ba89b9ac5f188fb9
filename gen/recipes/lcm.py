"""Is this LoRA an LCM-LoRA? Then its bundle samples with the LCM scheduler at 4 steps, no guidance.

An LCM-LoRA (Luo et al. 2023) turns a base into a consistency model: sampled any other way (DPM++
at 20 steps, guidance 7.5) it gives poor images, so export has to know. The rule, first match wins:

    1. a `gen distill lcm-lora` run: its config.json says "family": "lcm-lora" and records its
       scheduler settings (original_inference_steps = T / skip, timestep_scaling);
    2. a diffusers-format folder whose README.md (a Hugging Face model card) lists `lcm` under
       `tags:` in its YAML front matter;
    3. the name of the --lora folder or file contains "lcm" (latent-consistency/lcm-lora-sdv1-5,
       or the `lcm-lora-sdv1-5.safetensors` its users rename the download to).

2 and 3 get LCMScheduler's defaults (50 original steps, timestep scaling 10), the settings
latent-consistency's LoRAs were distilled with.
"""

from __future__ import annotations

from pathlib import Path

from gen.errors import GenError

LCM_FAMILY = "lcm-lora"  # a distilled LoRA run's config family
KEYS = ("original_inference_steps", "timestep_scaling")
HUB_SETTINGS = {"original_inference_steps": 50, "timestep_scaling": 10.0}
MODEL_CARD = "README.md"


def recognise(lora: str | None, run_config: dict) -> dict | None:
    """{original_inference_steps, timestep_scaling, recognised_by} for an LCM-LoRA, else None."""
    if lora is None:
        return None
    given = Path(lora)
    if run_config.get("family") == LCM_FAMILY:
        missing = [k for k in KEYS if k not in run_config]
        if missing:
            raise GenError(f"--lora {lora}: its config.json is an LCM-LoRA run's but lacks {', '.join(missing)}; "
                           "re-create the run with `gen distill lcm-lora`")
        return {**{k: run_config[k] for k in KEYS}, "recognised_by": "gen distill lcm-lora run config"}
    folder = given if given.is_dir() else given.parent
    if "lcm" in [str(t).lower() for t in _card_tags(folder / MODEL_CARD)]:
        return {**HUB_SETTINGS, "recognised_by": f"tag 'lcm' in {MODEL_CARD}"}
    if "lcm" in given.resolve().name.lower():
        return {**HUB_SETTINGS, "recognised_by": f"'lcm' in the name {given.resolve().name!r}"}
    return None


def _card_tags(card: Path) -> list:
    if not card.is_file():
        return []
    import yaml
    from huggingface_hub.repocard import metadata_load

    try:
        meta = metadata_load(card) or {}
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as e:
        raise GenError(f"--lora: {card} has a YAML front matter that cannot be read ({str(e).splitlines()[0]}); "
                       "fix or remove it") from None
    tags = meta.get("tags") or []
    return [tags] if isinstance(tags, str) else list(tags) if isinstance(tags, list) else []


def check_fits(settings: dict | None, run_config: dict, pipe, lora: str) -> None:
    """An LCM-LoRA distilled on one noise schedule is a consistency model only on that schedule."""
    if settings is None or "num_train_timesteps" not in run_config:
        return
    base_t = int(pipe.scheduler.config.num_train_timesteps)
    if int(run_config["num_train_timesteps"]) != base_t:
        raise GenError(f"--lora {lora} is an LCM-LoRA distilled on {run_config['num_train_timesteps']} training "
                       f"timesteps; this base has {base_t}, so it does not fit this base model")

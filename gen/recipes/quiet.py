"""Hugging Face libraries log warnings and progress bars meant for notebooks (safety-checker notices,
per-shard progress); gen reports its own progress, so it turns theirs down to errors."""

from __future__ import annotations


def quiet_hf_logs() -> None:
    import diffusers.utils.logging as dl
    import transformers.utils.logging as tl

    for logging in (dl, tl):
        logging.set_verbosity_error()
        logging.disable_progress_bar()

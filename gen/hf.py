"""Hugging Face libraries log warnings and progress bars meant for notebooks (safety-checker notices,
per-shard progress, optional image backends); gen reports its own progress, so when it loads their
models it turns theirs down to errors. This changes those libraries' process-wide log levels:
set GEN_HF_LOGS=1 to keep them as they are.

Called where gen loads Hugging Face models, never at import: importing gen changes nothing.
"""

from __future__ import annotations

import os

OPT_OUT = "GEN_HF_LOGS"


def quiet_hf_logs() -> None:
    if os.environ.get(OPT_OUT) == "1":
        return
    # before transformers is first imported: it warns at import about image backends SD never uses
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import diffusers.utils.logging as dl
    import transformers.utils.logging as tl

    for logging in (dl, tl):
        logging.set_verbosity_error()
        logging.disable_progress_bar()

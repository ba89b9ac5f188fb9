"""Option checks every trainer and later stage makes, before anything is loaded, worded with the
CLI flag so the message names what to fix."""

from __future__ import annotations

import math

from gen.errors import GenError, flag


def check_positive_ints(options: dict, keys) -> None:
    """Counts (steps, batch sizes, widths): whole numbers >= 1; a bool is not a count."""
    for key in keys:
        value = options.get(key)
        if key in options and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise GenError(f"{flag(key)} must be a positive integer, got {value!r}")


def check_lr(options: dict) -> None:
    """--lr: positive and finite (0 trains nothing, inf or NaN trains NaN weights)."""
    lr = options["lr"]
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and 0 < lr < math.inf):
        raise GenError(f"--lr must be a positive finite number, got {lr!r}")

"""Model names that are safe as Triton model names, directory names and URL path segments."""

from __future__ import annotations

import re

from gen.errors import GenError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_model_name(name: str, option: str = "--name") -> str:
    if not _NAME.match(name or "") or ".." in name:
        raise GenError(
            f"{option} {name!r} is not a valid model name: use letters, digits, '_', '-' or '.', "
            "start with a letter or digit, no '..', path separators, spaces or shell characters"
        )
    return name

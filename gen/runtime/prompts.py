"""Prompt -> token ids on a deployment host: the bundle's tokenizer.json through the `tokenizers`
library (Rust, no torch, no transformers), padded and truncated the way the pipeline that trained
the text encoder did (CLIP: BOS ... EOS, cut at max_length keeping EOS, padded with pad_id)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gen.errors import GenError


class PromptTokenizer:
    def __init__(self, path, max_length: int, pad_id: int, expand: dict[str, str] | None = None):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise GenError("text-to-image bundles need the `tokenizers` package: pip install 'gen[runtime]'") from None
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises its own exception type
            raise GenError(f"cannot read the bundle's tokenizer {path}: {str(e).splitlines()[0]}") from None
        self.max_length = max_length
        self.expand = dict(expand or {})  # a multi-vector token stands for its vectors' tokens
        self._tok.enable_truncation(max_length=max_length)
        self._tok.enable_padding(length=max_length, pad_id=pad_id, pad_token=self._tok.id_to_token(pad_id) or "")

    def __call__(self, prompts: Sequence[str]) -> np.ndarray:
        """(len(prompts), max_length) int64 token ids."""
        return np.array([e.ids for e in self._tok.encode_batch([self._expanded(p) for p in prompts])], dtype=np.int64)

    def _expanded(self, prompt: str) -> str:
        for token, phrase in self.expand.items():
            prompt = prompt.replace(token, phrase)
        return prompt


TEXT_CHARS = 2000  # the longest text any option takes (the prompt limit's default; CLIP reads 77 tokens)


def check_text(text: str, name: str, max_chars: int | None = TEXT_CHARS) -> str:
    """Text a user typed (a prompt, a token): valid UTF-8 and at most `max_chars` long. A command line's
    bytes that are not UTF-8 arrive as lone surrogates (Python's surrogateescape), which no tokenizer,
    JSON or file name takes; named here instead of failing deep inside one of them. `name`: the
    argument (prompt) or flag (--token) as the user knows it."""
    argument = name.lstrip("-").replace("-", "_")
    bad = next((i for i, c in enumerate(text) if "\ud800" <= c <= "\udfff"), None)
    if bad is not None:
        code = ord(text[bad])
        what = f"the byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"a lone surrogate U+{code:04X}"
        raise GenError(f"{name} is not valid UTF-8 text: character {bad + 1} is {what}; retype it as UTF-8 "
                       "(check the terminal's or file's encoding)", argument)
    if max_chars is not None and len(text) > max_chars:
        raise GenError(f"{name} is {len(text)} characters long; at most {max_chars} are taken", argument)
    return text


def check_prompts(prompt, name: str = "prompt") -> list[str]:
    """A string or a non-empty list of strings, as a list; each valid UTF-8 (its length is the limits')."""
    if isinstance(prompt, str):
        return [check_text(prompt, name, None)]
    if isinstance(prompt, (list, tuple)):
        if not prompt:
            raise GenError(f"{name}: the list is empty; give at least one prompt")
        bad = [p for p in prompt if not isinstance(p, str)]
        if bad:
            raise GenError(f"{name}: every entry must be a string, got {type(bad[0]).__name__}")
        return [check_text(p, name, None) for p in prompt]
    raise GenError(f"{name} must be a string or a list of strings, got {type(prompt).__name__}")

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


def check_prompts(prompt, name: str = "prompt") -> list[str]:
    """A string or a non-empty list of strings, as a list."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, (list, tuple)):
        if not prompt:
            raise GenError(f"{name}: the list is empty; give at least one prompt")
        bad = [p for p in prompt if not isinstance(p, str)]
        if bad:
            raise GenError(f"{name}: every entry must be a string, got {type(bad[0]).__name__}")
        return list(prompt)
    raise GenError(f"{name} must be a string or a list of strings, got {type(prompt).__name__}")

"""The runtime's torch-free tokenizer gives the token ids transformers' CLIPTokenizer gives."""

import numpy as np
import pytest
from transformers import CLIPTokenizer

from gen.recipes.clip_vocab import BOS, EOS, vocabulary, write_tokenizer_files
from gen.runtime.prompts import PromptTokenizer

PROMPTS = ["a red house", "", "A  Photo of   the Moon!", "naïve café — 東京 🌸", "word " * 60,
           "it's 3.14, isn't it?"]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    hf = CLIPTokenizer.from_pretrained(str(write_tokenizer_files(d / "files")))
    hf.save_pretrained(str(d / "saved"))
    return hf, PromptTokenizer(d / "saved" / "tokenizer.json", 77, hf.pad_token_id)


def test_same_ids_as_transformers(tokenizers):
    hf, ours = tokenizers
    ref = hf(PROMPTS, padding="max_length", max_length=77, truncation=True).input_ids
    got = ours(PROMPTS)
    assert got.dtype == np.int64 and got.shape == (len(PROMPTS), 77)
    assert got.tolist() == ref


def test_long_prompt_is_cut_keeping_eos(tokenizers):
    _, ours = tokenizers
    ids = ours(["word " * 60])[0]
    vocab = vocabulary()
    assert ids[0] == vocab[BOS] and ids[-1] == vocab[EOS] and len(ids) == 77


def test_vocabulary_covers_every_byte():
    vocab = vocabulary()
    assert len(vocab) == 514 and len(set(vocab.values())) == 514

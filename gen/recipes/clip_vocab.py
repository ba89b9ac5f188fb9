"""An offline CLIP tokenizer: byte-level BPE vocabulary with no merges, written as the files
`CLIPTokenizer.from_pretrained(dir)` reads.

No CLIP vocabulary ships in any wheel and nothing may be downloaded, so `tiny-sd` spells every word
byte by byte (a word's last byte carries CLIP's end-of-word marker `</w>`). It tokenizes any text
the way a real CLIP tokenizer would, only into more pieces; a real base model brings its own files.
"""

from __future__ import annotations

from pathlib import Path

from gen.fileio import write_json, write_bytes

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 77


def byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-in for each of the 256 bytes, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = {}, 0
    for b in range(256):
        if b in printable:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def vocabulary() -> dict[str, int]:
    """Byte symbols, then the same with `</w>`, then BOS and EOS: 514 tokens."""
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + [BOS, EOS]
    return {t: i for i, t in enumerate(tokens)}


def write_tokenizer_files(directory: str | Path) -> Path:
    """vocab.json, merges.txt and a tokenizer_config.json that pads with EOS to 77, as SD's does."""
    d = Path(directory)
    write_json(d / "vocab.json", vocabulary())
    write_bytes(d / "merges.txt", b"#version: 0.2\n")
    write_json(d / "tokenizer_config.json", {
        "tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_LENGTH, "do_lower_case": True,
        "bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS})
    return d

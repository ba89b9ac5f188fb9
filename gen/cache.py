"""gen's cache directory (`$GEN_CACHE_DIR`, else `$XDG_CACHE_HOME/gen`, else ~/.cache/gen) and the
file digests cached in it.

A bundle's manifest records each file's sha256; checking it at every load would re-read gigabytes
(SD 1.5's UNet is 3.4 GB), so a verified digest is remembered by the file's identity (path, size,
modification time, inode). A file changed in place gets a new mtime and is hashed again; one altered
with its mtime forged back is the one case this does not catch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("GEN_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "gen")
    return Path(root).absolute()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_MEMO: dict = {}


def cached_sha256(path: Path) -> str:
    """The file's sha256, hashed at most once per identity (memory, then the on-disk cache)."""
    real = Path(path).resolve()
    st = real.stat()
    identity = f"{real}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    if identity in _MEMO:
        return _MEMO[identity]
    entry = cache_dir() / "sha256" / (hashlib.sha1(identity.encode()).hexdigest() + ".json")
    try:
        digest = json.loads(entry.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        digest = sha256_of(real)
        try:
            from gen.fileio import write_json

            write_json(entry, {"identity": identity, "sha256": digest})
        except OSError:
            pass  # an unwritable cache costs time, not correctness
    _MEMO[identity] = digest
    return digest

"""Atomic file writes and safe checkpoint loading, shared by every layer.

Writes go to a temporary file in the destination directory and are renamed into place, so a crash
never leaves a half-written file where a good one stood. Checkpoints are safetensors only: anything
that looks like a pickle is refused before a byte of it is interpreted.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from gen.errors import GenError

# A pickle stream starts with the PROTO opcode; torch.save writes a zip archive of pickles.
_PICKLE_MAGIC = b"\x80"
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_HEADER = 100 * 1024 * 1024


def _umask() -> int:
    """The process umask, read without changing it where the kernel reports it (Linux: /proc);
    elsewhere the classic set-and-restore, done at the moment of use, not at import."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp (and writers that swap in their own temp file) leave 0600; readers such as a
        # Triton server under another user need the permissions a plain open() would have given.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def json_bytes(obj: Any) -> bytes:
    """How gen writes every JSON file: indented, keys sorted, one final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_bytes(path, json_bytes(obj))


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise GenError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        fix = "re-export the bundle" if what.startswith("bundle") else "restore it or re-create the run"
        raise GenError(f"{what} {path} is not valid JSON ({e}); {fix}") from None


def check_safetensors(path: str | os.PathLike) -> dict:
    """Validate a safetensors file's framing without unpickling anything; return its header.

    Catches the usual accidents up front with a message that names the file: a torch.save/pickle
    checkpoint renamed to .safetensors, a truncated download, a header that is not JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise GenError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        raw = f.read(n) if 0 <= n <= min(_MAX_HEADER, size - 8) else b""
    try:
        header = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict):
        # Only now look for pickle/zip magic: a valid header length can itself start with 0x80.
        if head.startswith(_PICKLE_MAGIC) or head.startswith(_ZIP_MAGIC):
            raise GenError(
                f"{path} is a pickled (torch.save) checkpoint; gen never unpickles files. "
                "Convert it with safetensors.torch.save_file in a trusted environment."
            )
        if len(head) < 8:
            raise GenError(f"{path} is truncated ({size} bytes): not a safetensors file")
        if n > _MAX_HEADER or 8 + n > size:
            raise GenError(f"{path} is corrupt or truncated (header length {n}, file size {size})")
        raise GenError(f"{path} is corrupt: its safetensors header is not JSON")
    end = 8 + n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            stop = info["data_offsets"][1]
        except (TypeError, KeyError, IndexError):
            raise GenError(f"{path} is corrupt: bad entry for tensor {name!r}") from None
        if end + stop > size:
            raise GenError(f"{path} is truncated: tensor {name!r} runs past the end of the file")
    return header


def load_safetensors(path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """Load torch tensors and the string metadata from a validated safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    header = check_safetensors(path)
    try:
        tensors = load_file(str(path))
    except SafetensorError as e:
        raise GenError(f"{path} is corrupt: {e}") from None
    return tensors, dict(header.get("__metadata__") or {})


def save_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())

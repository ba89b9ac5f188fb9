"""Output directories that cannot be destroyed or mixed: one writer at a time, `--force` replaces only
what gen wrote, never the command's own input, and only once the new result is complete.

Every command that writes a directory (train, export, serve build, train sd-lora) holds
`output_lock(out)` while it works: an advisory `fcntl` lock on `.<name>.lock` beside the output
(removed when the writer is done), so a second concurrent writer fails at once instead of
interleaving files. Under the lock, temporary
siblings left by a killed earlier run (`.<name>.export-PID`, `.build-`, `.new-`, `.old-`) are
known to be stale and are removed.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gen.errors import GenError

STAGING = ("export", "build", "new", "old")  # temporary sibling kinds (see staged_dir, replace_dir)


@contextmanager
def output_lock(out: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = out.parent / f".{out.name}.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise GenError(f"{option} {out}: cannot create {lock.name} beside it ({e.strerror}); is the folder writable?") from None
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise GenError(f"{option} {out} is being written by another gen process (pid {holder}); "
                           f"wait for it to finish or choose another {option}") from None
        if not _same_file(fd, lock):  # the holder removed it between our open and our lock: it is taken
            raise GenError(f"{option} {out} is being written by another gen process; wait for it to finish "
                           f"or choose another {option}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            remove_stale(out)
            yield out
        finally:
            lock.unlink(missing_ok=True)  # while still holding it; a late opener sees the inode change
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def remove_stale(out: Path) -> None:
    """Temporary siblings of `out` from killed runs; only safe while holding out's lock."""
    for kind in STAGING:
        prefix = f".{out.name}.{kind}-"
        for p in out.parent.glob(f"{prefix}*"):
            if p.name[len(prefix):].isdigit():  # ours: a pid, never another output's own staging name
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def check_replaceable(out: Path, markers: tuple[str, ...], what: str, force: bool, sources=()) -> None:
    """Refuse to write over anything but an earlier result of the same kind, and never over a source.

    `markers`: files that make a directory gen's own (gen.json for a bundle, ...); `sources`: the
    command's inputs, which `out` may neither be, nor contain, nor lie inside."""
    out_r = out.resolve()
    for src in sources:
        if src is None:
            continue
        s = Path(src).resolve()
        if out_r == s or s in out_r.parents or out_r in s.parents:
            raise GenError(f"--out {out} is, contains or lies inside the input {src}; writing there would "
                           "destroy it: choose another --out")
    if not out.exists():
        return
    if not out.is_dir():
        raise GenError(f"--out {out} exists and is not a directory; remove it or choose another --out")
    if not force:
        raise GenError(f"--out {out} already exists; pass --force to replace it")
    if any(out.iterdir()) and not any((out / m).is_file() for m in markers):
        raise GenError(f"--out {out} holds files that are not a gen {what} (no {' or '.join(markers)}); "
                       "--force replaces only what gen wrote: remove them yourself or choose another --out")


def replace_dir(tmp: Path, out: Path) -> None:
    """Swap a finished directory (bundle, repository, run) into place; the old one goes only after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        if old is not None:
            os.replace(old, out)  # put the previous directory back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(out: Path, kind: str) -> Iterator[Path]:
    """A temporary sibling of `out` to build in; it replaces `out` only if the block succeeds."""
    tmp = out.parent / f".{out.name}.{kind}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

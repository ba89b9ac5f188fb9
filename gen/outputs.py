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


def absolute(out: str | os.PathLike) -> Path:
    """`out` made absolute and normalised, so `.` and `runs/x/` have a real name and parent for the
    siblings (lock, staging) that live beside them."""
    return Path(os.path.abspath(out))


@contextmanager
def output_lock(out: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    shown, out = out, absolute(out)
    lock = out.parent / f".{out.name}.lock"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise GenError(f"{option} {shown}: cannot create {lock.name} beside it ({e.strerror}); is the folder "
                       "writable, and not a file?") from None
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise GenError(busy_message(option, out, holder)) from None
        if not _same_file(fd, lock):  # the holder removed it between our open and our lock: it is taken
            raise GenError(busy_message(option, out, None))
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for the next writer's message
        except OSError as e:  # a full disk (ENOSPC), a quota: no lock file is left behind
            lock.unlink(missing_ok=True)
            raise GenError(f"{option} {shown}: cannot write {lock.name} beside it ({e.strerror or e}); "
                           "free some space there (or choose another place) and run it again") from None
        try:
            remove_stale(out)
            yield out
        finally:
            lock.unlink(missing_ok=True)  # while still holding it; a late opener sees the inode change
    finally:
        os.close(fd)


def busy_message(option: str, out: Path, holder: str | None) -> str:
    pid = f" (pid {holder})" if holder else ""
    other = f" or choose another {option}" if option == "--out" else ""  # an input (eval's RUN) has no other
    return f"{option} {out} is being written by another gen process{pid}; wait for it to finish{other}"


def writer_of(out: str | os.PathLike) -> str | None:
    """The pid of the gen process writing `out` now, or None: for a check that failed on a half-written
    output, to name the writer instead of what is missing."""
    import fcntl

    lock = absolute(out).parent / f".{absolute(out).name}.lock"
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except OSError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _siblings(out: Path, kind: str) -> list[Path]:
    """out's temporary siblings of one kind: `.NAME.KIND-PID`, matched literally (a name may hold
    glob characters) and only with a pid suffix (never another output's own name)."""
    prefix = f".{out.name}.{kind}-"
    return sorted((p for p in out.parent.iterdir() if p.name.startswith(prefix) and p.name[len(prefix):].isdigit()),
                  key=lambda p: p.stat().st_mtime)


def remove_stale(out: Path) -> None:
    """Temporary siblings of `out` from killed runs; only safe while holding out's lock.

    Work in progress (export, build, new) is removed. A previous result set aside by a swap that was
    killed half-way (`.NAME.old-PID`) is put back when `out` is missing, and otherwise kept: it may
    hold the only copy of someone's files."""
    if not out.parent.is_dir():
        return
    for kind in ("export", "build", "new"):
        for p in _siblings(out, kind):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    olds = _siblings(out, "old")
    if olds and not out.exists():
        os.replace(olds[-1], out)


def refuse_current_dir(out: Path) -> None:
    """Results are swapped in by renaming folders: never the one this process (a shell) stands in."""
    out_r, cwd = Path(out).resolve(), Path.cwd()
    if out_r == cwd or out_r in cwd.parents:
        raise GenError(f"--out {out} is (or contains) the current directory; results are swapped in by renaming "
                       "the folder, which would leave this shell in a deleted one: give a folder below it")


def refuse_sources(out, sources, option: str = "--out") -> None:
    """`out` may neither be, nor contain, nor lie inside any of the command's inputs (None, or a name
    that is no path here, such as `digits` or a model id: nothing to protect)."""
    out_r = Path(out).resolve()
    for src in sources:
        if src is None or not Path(src).exists():
            continue
        s = Path(src).resolve()
        if out_r == s or s in out_r.parents or out_r in s.parents:
            raise GenError(f"{option} {out} is, contains or lies inside the input {src}; writing there would "
                           f"destroy it: choose another {option}")


def check_output_file(path, option: str, ours, force: bool, sources=()) -> None:
    """Before any work, a file a command will write (--json, --plot, generate's --out): never a folder,
    never inside (or over) one of the command's inputs, and never over a file gen did not write unless
    `force`. `ours(path)` says whether an existing file is one gen wrote of this kind (a results JSON, an
    image gen saved), which is replaced as results are, and said so by the command."""
    if not str(path):
        raise GenError(f"{option} is empty; give a file name")
    p = Path(path)
    if p.is_dir() or str(path).endswith(("/", os.sep)):
        raise GenError(f"{option} {path} is a folder; give a file name inside it")
    refuse_sources(p, sources, option)
    if p.exists() and not force and not ours(p):
        raise GenError(f"{option} {path} exists and is not a file gen wrote of this kind; pass --force to replace "
                       f"it, or choose another {option}")
    parent = next((d for d in p.absolute().parents if d.exists()), None)
    if parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK)):
        raise GenError(f"{option} {path}: {parent} is {'not a folder' if not parent.is_dir() else 'not writable'}; "
                       f"choose another {option}")


def gen_json(path) -> bool:
    """A results file a gen command wrote: a JSON object whose `command` is a gen command line."""
    import json

    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("command", "")).startswith("gen ")


def write_output(path, data: bytes, option: str) -> None:
    """Write a checked output file atomically; a failure (a full disk, a folder in the way) is a GenError
    naming the option, and whatever stood there is left as it was."""
    from gen.fileio import write_bytes

    try:
        write_bytes(path, data)
    except OSError as e:
        raise GenError(f"{option} {path}: cannot write ({e.strerror or e}); nothing was replaced") from None


def check_replaceable(out: Path, markers: tuple[str, ...], what: str, force: bool, sources=()) -> None:
    """Refuse to write over anything but an earlier result gen wrote, and never over a source.

    `markers`: files that make a directory gen's own (gen.json for a bundle, ...); `sources`: the
    command's inputs, which `out` may neither be, nor contain, nor lie inside."""
    refuse_current_dir(out)
    refuse_sources(out, sources)
    if not out.exists():
        return
    if not out.is_dir():
        raise GenError(f"--out {out} exists and is not a directory; remove it or choose another --out")
    if not any(out.iterdir()):
        return  # an empty folder: nothing to lose
    if not force:
        raise GenError(f"--out {out} already exists; pass --force to replace it")
    if not any((out / m).is_file() for m in markers):
        raise GenError(f"--out {out} holds files that are not a gen {what} (no {' or '.join(markers)}); "
                       "--force replaces only what gen wrote: remove them yourself or choose another --out")


def refuse_foreign(out: Path, foreign: list[str]) -> None:
    """--force over a gen output that holds something gen did not write (named): refused, not deleted."""
    if foreign:
        raise GenError(f"--force: {out} holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}, which gen "
                       "did not write; --force replaces only what gen wrote: move them out or choose another --out")


def replace_dir(tmp: Path, out: Path, keep=None) -> None:
    """Swap a finished directory (bundle, repository, run) into place; the old one goes only after.
    `keep(old, new)` may move what should survive from the old directory into the new one first."""
    tmp, out = absolute(tmp), absolute(out)
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
        if keep is not None:
            keep(old, out)
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(out: Path, kind: str) -> Iterator[Path]:
    """A temporary sibling of `out` to build in; it replaces `out` only if the block succeeds."""
    out = absolute(out)
    tmp = out.parent / f".{out.name}.{kind}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

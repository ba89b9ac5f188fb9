"""Ctrl-C and SIGTERM end every command the same way: as a KeyboardInterrupt, so each `finally` and
`except BaseException` cleanup runs (staged directories, locks, a run stopped before its first
checkpoint), then the command says what was kept and what continues it, and exits 128 + the signal.
(SIGTERM's default action would end the process with no cleanup at all.)"""

from __future__ import annotations

import shlex
import signal
import sys
from contextlib import contextmanager
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, as Ctrl-C's KeyboardInterrupt is."""


@contextmanager
def stops_as_interrupts() -> Iterator[dict]:
    """While the block runs, SIGTERM raises Terminated; yields a dict that gets `signum` once one came."""
    received: dict = {}

    def on_term(signum, frame):
        received["signum"] = signum
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread (gen.cli.main called from a worker): leave signals alone
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_record(exc: BaseException | None):
    """The training progress (gen.trainkit.train.Stopped) attached to the interrupt behind `exc`: the
    CLI framework turns KeyboardInterrupt into its own exit, chained to it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "gen_stopped", None) is not None:
            return exc.gen_stopped
        exc = exc.__cause__ or exc.__context__
    return None


def stop_notice(stopped, argv: list[str]) -> str:
    """What a stopped training run kept and lost, and the command that continues it."""
    command = "gen " + shlex.join(a for a in argv if a not in ("--force", "--resume"))
    of = f" of {stopped.total}" if stopped.total else ""
    if stopped.total is None:
        return f"stopped before training began; nothing was written to {stopped.out}; start again with: {command}"
    if stopped.replacing:
        return (f"stopped at step {stopped.step}{of}: the new run was discarded and the run it was replacing in "
                f"{stopped.out} is untouched; start again with: {command} --force")
    if stopped.checkpoint:
        after = stopped.step - stopped.checkpoint
        lost = ("" if after <= 0 else f"; step {stopped.step} is lost" if after == 1 else
                f"; steps {stopped.checkpoint + 1}-{stopped.step} are lost")
        return (f"stopped at step {stopped.step}{of}; kept the checkpoint at step {stopped.checkpoint} "
                f"({stopped.state_path}){lost}; resume with: {command} --resume")
    return (f"stopped at step {stopped.step}{of}, before the first checkpoint (every {stopped.every} steps): "
            f"nothing to resume, so what it wrote in {stopped.out} was removed; start again with: {command}")


def report_stop(exc: SystemExit, received: dict) -> None:
    """On the way out of an interrupted command: print its stop notice, if it has one, and exit 128 +
    the signal (typer exits 130, Ctrl-C's status, for both)."""
    stopped = stop_record(exc)
    if stopped is not None:
        print(stop_notice(stopped, sys.argv[1:]), file=sys.stderr, flush=True)
    if received.get("signum"):
        sys.exit(128 + received["signum"])

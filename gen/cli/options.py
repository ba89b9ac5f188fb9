"""Small pieces several commands share."""

from __future__ import annotations

import shlex
import sys

from gen.errors import GenError


def require_bundle_or_url(bundle: str | None, url: str | None) -> None:
    """Commands that run either a local bundle or a served model take exactly one of the two."""
    if (bundle is None) == (url is None):
        raise GenError("give either a BUNDLE directory or --url (with --model), not both")


def command_line() -> str:
    """The command as typed, for results files."""
    return "gen " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def report_written(message: str) -> None:
    """A training command's last line, said once: under torchrun / accelerate launch every process
    runs the command, but rank 0 alone wrote the run, so it alone reports it, with the process count."""
    import typer

    from gen.trainkit.distributed import launched_processes, launched_rank

    processes = launched_processes()
    if launched_rank() == 0:
        typer.echo(message + (f"\ntrained by {processes} processes (data-parallel)" if processes > 1 else ""))

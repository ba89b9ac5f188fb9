"""The `gen` command line: one module per verb, each thin (parse, call, print).

Only Typer is imported here; each command imports torch, diffusers or onnxruntime inside its body,
so `gen --help` stays instant and a runtime-only host never loads the training stack.
"""

from __future__ import annotations

import sys

import typer

from gen.cli import bench as bench_cmd
from gen.cli import demo as demo_cmd
from gen.cli import distill as distill_cmd
from gen.cli import eval as eval_cmd
from gen.cli import export as export_cmd
from gen.cli import generate as generate_cmd
from gen.cli import info as info_cmd
from gen.cli import lora as lora_cmd
from gen.cli import optimize as optimize_cmd
from gen.cli import serve as serve_cmd
from gen.cli import train as train_cmd
from gen.cli import tune as tune_cmd
from gen.cli.ranges import declare_ranges
from gen.errors import GenError

app = typer.Typer(
    name="gen",
    help="Train, distill, export, run and serve image generators.\n\n"
    "Start with:  gen train ddpm --data digits --out runs/ddpm  then  gen eval runs/ddpm",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(train_cmd.app, name="train")
app.add_typer(distill_cmd.app, name="distill")
app.command("eval")(eval_cmd.eval_run)
app.command("export")(export_cmd.export)
app.command("generate")(generate_cmd.generate)
app.command("bench")(bench_cmd.bench)
app.command("tune")(tune_cmd.tune)
app.command("optimize")(optimize_cmd.optimize)
app.add_typer(serve_cmd.app, name="serve")
app.add_typer(lora_cmd.app, name="lora")
app.command("demo")(demo_cmd.demo)
app.command("info")(info_cmd.info)
declare_ranges(app)  # every numeric option's range, shown in --help and checked before work


def main() -> None:
    if len(sys.argv) == 1:  # bare `gen` is a request for help, not a usage error
        sys.argv.append("--help")
    from gen.cli.stops import report_stop, stops_as_interrupts

    from gen.cli.helptext import plain_help

    command = typer.main.get_command(app)
    plain_help(command)
    with stops_as_interrupts() as received:
        try:
            command(prog_name="gen")
        except GenError as e:
            from gen.trainkit.distributed import launched_rank

            if launched_rank() == 0:  # under torchrun every process parses the same command: one says what is wrong
                print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except SystemExit as e:
            if e.code == 130:  # typer's exit for KeyboardInterrupt: Ctrl-C, or SIGTERM (gen.cli.stops)
                report_stop(e, received)
            raise

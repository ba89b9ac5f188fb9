"""`gen eval RUN`: sample from a trained run and score it against the held-out split."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from gen.trainkit.defaults import EVAL_N


def eval_run(
    run: Annotated[str, typer.Argument(help="Run directory written by `gen train`, or a bundle exported from one (scored on its ONNX files at --precision).")],
    n: Annotated[Optional[int], typer.Option(help=f"Samples to generate and score (>= 1000 for stable figures; default {EVAL_N}).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed (default 0).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Diffusion sampling steps; default from the run.")] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="Diffusion scheduler (ddim, dpm++, euler, ddpm, lcm); default from the run.")] = None,
    guidance: Annotated[Optional[float], typer.Option(help="Classifier-free guidance scale for conditional diffusion.")] = None,
    classifier_scale: Annotated[Optional[float], typer.Option(help="Classifier guidance scale, for a run of `gen train noisy-classifier` (default: the run's; 0 = unguided).")] = None,
    psi: Annotated[Optional[float], typer.Option(help="StyleGAN truncation in [0, 1] for the samples scored (default 1: none).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="With a bundle: the backend that samples it (default ort).")] = None,
    precision: Annotated[Optional[str], typer.Option(help="With a bundle: which files to score, e.g. int8 after `gen export --int8` (default fp32).")] = None,
    json_out: Annotated[Optional[str], typer.Option("--json", help="Also write the result here (a run's always goes to RUN/eval.json; a bundle is never written into).")] = None,
    inception: Annotated[Optional[str], typer.Option(help="Local Inception-v3 feature network as ONNX (N,3,299,299 in [-1,1] -> N,2048): adds a real FID.")] = None,
    force: Annotated[bool, typer.Option(help="Let --json replace an existing file that is not a results file gen wrote.")] = False,
) -> None:
    """Score a run: fd_<data> and is_<data> on a classifier gen trains on the data, k-NN precision/recall, label accuracy.

    Prints JSON and writes it to RUN/eval.json. The classifier is trained once per dataset and cached.

    Examples:  gen eval runs/ddpm
               gen eval bundles/ddpm --precision int8 --json int8-eval.json     (an int8 bundle as deployed)
               gen eval runs/stylegan --psi 0.7 --json psi07.json               (truncation: precision up, recall down)
               gen eval runs/noisy-classifier --classifier-scale 2              (classifier guidance: label accuracy)
    """
    from gen.cli.options import command_line, library_errors_as_flags
    from gen.outputs import check_output_file, gen_json, write_output
    from gen.trainkit.eval.evaluate import evaluate_run

    if json_out is not None:  # before the minutes of sampling: never over an input, nor a file gen did not write
        check_output_file(json_out, "--json", gen_json, force, sources=(run, inception))
    with library_errors_as_flags():  # "steps must be ..." from the sampler reads "--steps must be ..."
        result = evaluate_run(run, n=n, seed=seed, steps=steps, guidance=guidance, scheduler=scheduler, psi=psi,
                              inception=inception, classifier_scale=classifier_scale, backend=backend,
                              precision=precision, progress=lambda message: typer.echo(message, err=True))
    if json_out is not None:
        from gen.fileio import json_bytes

        write_output(json_out, json_bytes({**result, "command": command_line()}), "--json")
    typer.echo(json.dumps(result, indent=2))

"""`gen export RUN --out BUNDLE` or `gen export --model NAME --out BUNDLE`: a parity-checked ONNX bundle."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from gen.cli.options import given_options
from gen.export.defaults import DEFAULT_OPSET, DEFAULT_TOLERANCE, OPSETS
from gen.export.int8_options import Int8Options


def export(
    ctx: typer.Context,
    run: Annotated[Optional[str], typer.Argument(help="Run directory written by `gen train` or `gen distill`, any family (or use --model for Stable Diffusion).")] = None,
    model: Annotated[Optional[str], typer.Option(help="A named recipe instead of a run: sd (a base), sd-lora (base + LoRA, fused) or tiny-sd (built-in toy SD).")] = None,
    base: Annotated[Optional[str], typer.Option(help="With --model: base Stable Diffusion, a diffusers-format folder or a model id already in the HF cache. sd-lora without it uses tiny-sd.")] = None,
    lora: Annotated[Optional[str], typer.Option(help="With --model sd-lora: a diffusers-format LoRA .safetensors or folder (pytorch_lora_weights.safetensors), or a run from `gen train sd-lora` or `gen distill lcm-lora`. An LCM-LoRA (a gen lcm-lora run, a model card tagged lcm, or 'lcm' in its name) makes the bundle default to the lcm scheduler, 4 steps, guidance 1.")] = None,
    lora_scale: Annotated[float, typer.Option(help="LoRA strength when fusing (1 = as trained).")] = 1.0,
    textual_inversion: Annotated[Optional[List[str]], typer.Option(help="With --model: a textual inversion to fold in (repeatable): a run of `gen train textual-inversion`, a diffusers-format folder or its learned_embeds.safetensors. Its token joins the bundle's tokenizer and its vectors the text encoder, so prompts on a gen[runtime] host can use it.")] = None,
    lora_slots: Annotated[int, typer.Option(help="With --model: also export unet_lora, the UNet with LoRA adapter slots of this rank (0: none). Adapters are then data: `gen lora add BUNDLE FILE --name N` adds one without re-exporting, generate(lora='N', lora_scale=0.8) uses it, and requests with different adapters share UNet calls.")] = 0,
    out: Annotated[Optional[str], typer.Option(help="Bundle directory to write (gen.json + one .onnx per component + weights/). Default: bundles/<run name>, or bundles/<model>.")] = None,
    fp16: Annotated[Optional[bool], typer.Option("--fp16/--no-fp16", help="Also write fp16 components (fp32 inputs/outputs kept) and record fp16-vs-fp32 parity. Onto an existing bundle (--force, or one exported from this same run, which needs no --force) the precisions it has are kept, made again: --no-fp16, --no-int8, --no-int8-trt leave them out.")] = None,
    int8: Annotated[Optional[bool], typer.Option("--int8/--no-int8", help="Also write int8 components (<component>.int8.onnx): static QDQ calibrated on the components' real inputs recorded while the fp32 bundle samples, op types and float-kept layers chosen by measurement, gated on whole sampling runs against fp32. A component int8 does not speed up keeps its float file.")] = None,
    calibration: Annotated[Optional[int], typer.Option(help="With --int8: images whose whole sampling runs are recorded for calibration (every step of each; one prompt each for text-to-image). Default: 64, or 8 prompts for text-to-image (a UNet call costs seconds on a CPU).")] = None,
    calibration_method: Annotated[str, typer.Option(help="With --int8: how ranges are read from the recorded activations: minmax, entropy or percentile (99.999).")] = Int8Options.method,
    int8_groups: Annotated[Optional[str], typer.Option(help="With --int8: pin what is quantized instead of timing every combination: comma-separated from conv, convtranspose, linear (MatMul/Gemm with weights), attention (activation-by-activation MatMul).")] = None,
    int8_exclude: Annotated[Optional[List[str]], typer.Option(help="With --int8: keep nodes whose name matches this pattern in float (fnmatch, e.g. '*conv_in*'; repeatable). Export names the costliest layers when the gate fails.")] = None,
    int8_min_psnr: Annotated[float, typer.Option(help="With --int8: the gate. int8 images from the same noise as fp32 must reach this PSNR (dB) or export fails, writing nothing.")] = Int8Options.min_psnr,
    int8_min_speedup: Annotated[float, typer.Option(help="With --int8: quantize a component only if int8 runs it at least this much faster than fp32 per call, as measured during export (0: always, e.g. for size).")] = Int8Options.min_speedup,
    int8_openvino: Annotated[bool, typer.Option(help="With --int8: also write <component>.int8-ov.xml/.bin for --backend openvino, quantized by NNCF on the same recorded inputs (conv, conv+linear or hybrid: linear weights-only), each timed against OpenVINO f32 and gated on image PSNR; needs pip install 'gen[openvino-int8]'.")] = False,
    int8_openvino_only: Annotated[bool, typer.Option(help="With --int8 --int8-openvino: write only the OpenVINO int8 files, not ONNX Runtime's.")] = False,
    int8_trt: Annotated[Optional[bool], typer.Option("--int8-trt/--no-int8-trt", help="With --int8: also write <component>.int8-trt.onnx with symmetric int8 activations, the explicit-quantization form TensorRT builds from (precision int8-trt; gated on image PSNR, not on CPU speed; TensorRT itself is unverified here).")] = None,
    opset: Annotated[int, typer.Option(help=f"ONNX opset ({OPSETS[0]}-{OPSETS[1]}).")] = DEFAULT_OPSET,
    tolerance: Annotated[float, typer.Option(help="Largest eager-vs-ONNX Runtime difference accepted (max abs).")] = DEFAULT_TOLERANCE,
    classifier: Annotated[Optional[str], typer.Option(help="With a DDPM RUN: a run of `gen train noisy-classifier` (for this or another DDPM with the same image size, classes and noise schedule, e.g. its distilled student) whose classifier joins the bundle, for generate(labels=, classifier_scale=).")] = None,
    tiny_decoder: Annotated[Optional[str], typer.Option(help="With a Stable Diffusion BUNDLE directory as RUN: add the tiny decoder a `gen distill decoder` run distilled from that bundle, as its optional component tiny_decoder (generate(decoder='tiny'), gen generate --decoder tiny); --force replaces one already there.")] = None,
    trt: Annotated[bool, typer.Option("--trt", help="With a BUNDLE directory as RUN: build its TensorRT engines for this GPU into BUNDLE/trt/ (profiles from its manifest; needs TensorRT and a CUDA GPU; unverified here). Without it the trt backend builds them into gen's cache on first use.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle at --out.")] = False,
) -> None:
    """Export to ONNX, check every component with onnx.checker and against eager, and write a bundle.

    Examples:  gen export runs/ddpm --out bundles/ddpm --fp16
               gen export runs/ddpm --out bundles/ddpm --int8             (then: gen bench bundles/ddpm --backends ort --precisions fp32,int8)
               gen export runs/noisy-classifier --out bundles/ddpm-guided  (DDPM + its noisy classifier: classifier guidance)
               gen export runs/p4 --classifier runs/noisy-classifier      (the same classifier on a distilled student)
               gen export --model sd-lora --fp16                          (tiny-sd + a demo LoRA, offline)
               gen export --model sd-lora --base ./sd15 --lora runs/pets --out bundles/pets --fp16
               gen export --model sd-lora --base ./sd15 --lora ./lcm-lora-sdv1-5 --out bundles/sd15-lcm   (4 steps)
               gen export --model sd --textual-inversion runs/cat-toy --out bundles/cat-toy   (then: --prompt "a photo of a <cat-toy>")
               gen export --model sd --base ./sd15 --lora-slots 16 --out bundles/sd15   (then: gen lora add bundles/sd15 pets.safetensors --name pets)
               gen export --model sd --base runs/dreambooth --out bundles/sks   (a full DreamBooth run is a base folder)
               gen export bundles/sd --tiny-decoder runs/sd-tiny-decoder  (add a `gen distill decoder` run's tiny decoder)
    """
    precisions = ("fp32",) + (("fp16",) if fp16 else ()) + (("int8",) if int8 and not int8_openvino_only else ()) \
        + (("int8-trt",) if int8_trt else ()) + (("int8-ov",) if int8_openvino else ())
    # --no-X: leave out a precision an existing bundle has (export keeps them otherwise)
    drop = tuple(p for p, on in (("fp16", fp16), ("int8", int8), ("int8-trt", False if int8 is False else int8_trt)) if on is False)
    int8_options = _int8_options(int8, int8_trt, int8_openvino, int8_openvino_only, calibration, calibration_method,
                                 int8_groups, int8_exclude, int8_min_psnr, int8_min_speedup)
    if trt:
        return _build_engines(ctx, run, fp16)
    if tiny_decoder is not None:
        return _add_tiny_decoder(ctx, run, tiny_decoder, opset, tolerance, force)
    _check_what_to_export(run, model, base, lora, lora_scale, tolerance, textual_inversion, out, classifier)
    if run is not None:
        if lora_slots:
            from gen.errors import GenError

            raise GenError("--lora-slots applies to Stable Diffusion exports (--model sd, sd-lora or tiny-sd)")
        return _export_run(run, out, classifier, precisions=precisions, opset=opset, force=force, tolerance=tolerance,
                           int8=int8_options, drop=drop)
    _export_model(model, out, base=base, lora=lora, lora_scale=lora_scale, precisions=precisions, opset=opset, force=force,
                  tolerance=tolerance, int8=int8_options, embeddings=tuple(textual_inversion or ()), drop=drop,
                  lora_slots=lora_slots)


def _int8_options(int8, int8_trt, int8_openvino, int8_openvino_only, calibration, calibration_method, int8_groups,
                  int8_exclude, int8_min_psnr, int8_min_speedup) -> Int8Options:
    """The --int8 options, checked; the ones given without --int8 are refused."""
    from gen.errors import GenError

    int8_options = Int8Options(calibration=calibration, method=calibration_method, exclude=tuple(int8_exclude or ()),
                               groups=tuple(g.strip() for g in (int8_groups or "").split(",") if g.strip()),
                               min_psnr=int8_min_psnr, min_speedup=int8_min_speedup)
    int8_options.check()
    given = [flag for flag, on in (("--int8-trt", int8_trt is True), ("--int8-openvino", int8_openvino),
                                   ("--int8-openvino-only", int8_openvino_only), ("--int8-exclude", int8_exclude), ("--int8-groups", int8_groups), ("--calibration", calibration is not None),
                                   ("--calibration-method", calibration_method != Int8Options.method),
                                   ("--int8-min-psnr", int8_min_psnr != Int8Options.min_psnr),
                                   ("--int8-min-speedup", int8_min_speedup != Int8Options.min_speedup)) if on]
    if given and not int8:
        raise GenError(f"{', '.join(given)}: these options apply only with --int8")
    if int8_openvino_only and not int8_openvino:
        raise GenError("--int8-openvino-only goes with --int8-openvino (it drops ONNX Runtime's int8 files, not OpenVINO's)")
    return int8_options


def _build_engines(ctx: typer.Context, run: Optional[str], fp16: Optional[bool]) -> None:
    """`gen export BUNDLE --trt`: the bundle's TensorRT engines for this GPU, into BUNDLE/trt/."""
    from pathlib import Path

    from gen.errors import GenError
    from gen.runtime.manifest import MANIFEST

    if run is None or not (Path(run) / MANIFEST).is_file():
        raise GenError("--trt builds the engines of an exported bundle: gen export BUNDLE --trt")
    unused = given_options(ctx, ("model", "base", "lora", "lora_scale", "textual_inversion", "out", "int8", "opset",
                                 "tolerance", "classifier", "force"))
    if unused:  # only --fp16 (the engines' precision) goes with --trt
        raise GenError(f"{', '.join(unused)}: not used by --trt, which writes the engines into BUNDLE/trt/ "
                       "(--fp16 picks their precision); drop them")
    from gen.runtime.backends.trt import build_engines

    for path in build_engines(run, "fp16" if fp16 else "fp32", progress=typer.echo):
        typer.echo(f"engine written to {path}")


def _add_tiny_decoder(ctx: typer.Context, run: Optional[str], tiny_decoder: str, opset: int, tolerance: float,
                      force: bool) -> None:
    """`gen export BUNDLE --tiny-decoder RUN`: a distilled tiny decoder added onto the bundle it came from."""
    from pathlib import Path

    from gen.errors import GenError
    from gen.runtime.manifest import MANIFEST

    if run is None or not (Path(run) / MANIFEST).is_file():
        raise GenError("--tiny-decoder adds a distilled decoder to an exported bundle: gen export BUNDLE --tiny-decoder RUN")
    unused = given_options(ctx, ("model", "base", "lora", "lora_scale", "textual_inversion", "out", "fp16", "int8",
                                 "classifier", "trt"))
    if unused:
        raise GenError(f"{', '.join(unused)}: not used by --tiny-decoder, which adds one component to BUNDLE in place "
                       "(at the precisions it has); drop them")
    from gen.export.tiny_decoder import add_tiny_decoder

    record = add_tiny_decoder(run, tiny_decoder, opset=opset, tolerance=tolerance, force=force, progress=typer.echo)
    typer.echo(f"tiny decoder added to {run} (held-out PSNR {record.get('psnr_db_vs_vae_decoder')} dB against its "
               f"vae_decoder): gen generate {run} --prompt \"a red house\" --decoder tiny")


def _check_what_to_export(run, model, base, lora, lora_scale, tolerance, textual_inversion, out, classifier) -> None:
    """A RUN or a --model, not both, with only the options that apply to it."""
    import math

    from gen.errors import GenError
    from gen.recipes.registry import LORA

    if lora_scale != 1.0 and lora is None and model != LORA:  # nothing would be fused at that scale
        raise GenError("--lora-scale applies when a LoRA is fused: with --lora RUN, or --model sd-lora")
    if run is None and model is None:
        raise GenError("give a RUN directory (written by `gen train`) or --model NAME (sd, sd-lora, tiny-sd)")
    if run is not None and model is not None:
        raise GenError(f"give either a RUN directory or --model NAME, not both (got {run} and --model {model})")
    if not (math.isfinite(tolerance) and tolerance >= 0):  # a negative one refuses every export after minutes of work
        raise GenError(f"--tolerance is a largest max |difference|: give a finite number >= 0, got {tolerance}")
    if textual_inversion and run is not None:
        raise GenError("--textual-inversion applies to Stable Diffusion exports (--model sd, sd-lora or tiny-sd)")
    if out is not None and not out.strip():  # --out "" (an unset shell variable) is not a request for the default
        raise GenError("--out is empty; give the bundle folder to write, or leave --out out for bundles/<name>")
    if classifier and run is None:
        raise GenError("--classifier attaches a noisy classifier to a DDPM RUN; it does not apply to --model exports")
    if run is not None and (base or lora):
        raise GenError("--base and --lora apply to --model exports; a RUN directory already holds its weights")


def _export_run(run: str, out: Optional[str], classifier: Optional[str], **options) -> None:
    """`gen export RUN`: a trained run's bundle, with a noisy classifier's run attached when given."""
    from pathlib import Path

    from gen.export.onnx_export import export_run

    out = out or str(Path("bundles") / Path(run).resolve().name)
    attached = {}
    if classifier:
        from gen.trainkit.families.ddpm.classifier import with_classifier

        attached = {"state": with_classifier(run, classifier), "also_from": (classifier,)}
    _written(export_run(run, out, progress=typer.echo, **options, **attached))


def _export_model(model: str, out: Optional[str], **options) -> None:
    """`gen export --model NAME`: a Stable Diffusion recipe's bundle (gen.recipes)."""
    from pathlib import Path

    from gen.export.sd_export import export_sd
    from gen.recipes.registry import check_model

    check_model(model)
    out = out or str(Path("bundles") / model)
    _written(export_sd(model, out, progress=typer.echo, **options))


def _written(path) -> None:
    from gen.runtime.bundle import load_bundle

    bundle = load_bundle(path)
    typer.echo(f"bundle written to {path}  (try: gen generate {path} {bundle.spec.example_for(bundle)})")

"""`gen info`: versions, devices and backends found, for bug reports and deployment checks."""

from __future__ import annotations

import json
import os
import platform

import typer

from gen.versions import versions
from typing import Annotated

PACKAGES = ("gen", "numpy", "torch", "diffusers", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "tritonclient", "typer")


def info(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Show versions, devices and backends."""
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": versions(PACKAGES),
        "torch_devices": _torch_devices(),
        "onnxruntime_providers": _ort_providers(),
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for key in ("python", "platform", "cpu_count"):
        typer.echo(f"{key:22} {report[key]}")
    for name, version in report["packages"].items():
        typer.echo(f"{name:22} {version or '-'}")
    typer.echo(f"{'torch devices':22} {', '.join(report['torch_devices']) or '- (torch not installed)'}")
    typer.echo(f"{'onnxruntime providers':22} {', '.join(report['onnxruntime_providers']) or '- (onnxruntime not installed)'}")


def _torch_devices() -> list[str]:
    try:
        import torch
    except ImportError:
        return []
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    return devices


def _ort_providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())

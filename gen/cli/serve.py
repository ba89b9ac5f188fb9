"""`gen serve build|start|status`: Triton model repositories from bundles, and a real server."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

app = typer.Typer(help="Serve bundles with Triton Inference Server (HTTP and gRPC).", no_args_is_help=True)


@app.command()
def build(
    bundles: Annotated[List[str], typer.Argument(help="One or more bundle directories.")],
    out: Annotated[str, typer.Option(help="Model repository directory to write.")] = "model_repository",
    flavour: Annotated[str, typer.Option(help="python: components run in onnxruntime inside python-backend models (any Triton, CPU-only too); native: onnxruntime_onnx component configs for GPU hosts with that backend.")] = "python",
    max_batch: Annotated[int, typer.Option(help="Largest batch a component model accepts (guided diffusion serves half of it per request).")] = 64,
    instances: Annotated[Optional[int], typer.Option(help="Pipeline model instances. Default: 1 with --batching step (its batch is where concurrent requests meet; more instances split them), 4 with --batching request (each instance serves one request at a time).")] = None,
    name: Annotated[Optional[List[str]], typer.Option(help="Model name per bundle (default: the bundle directory's name).")] = None,
    dynamic_batching: Annotated[bool, typer.Option(help="Let Triton merge concurrent component calls into one batch.")] = True,
    components: Annotated[str, typer.Option(help="inline: the pipeline runs the ONNX files itself (no round trip per network call; fastest on CPUs); bls: it calls the component models through Triton, whose dynamic batching merges concurrent requests' calls (for GPUs, where batching pays).")] = "inline",
    threads: Annotated[Optional[int], typer.Option(help="Threads per served model instance (default: all cores; an inline pipeline runs on fewer while other jobs share them, bls component models stay on all cores; a count given here is pinned).")] = None,
    batching: Annotated[str, typer.Option(help="step: concurrent requests' diffusion steps run as one network call per step, and a request arriving mid-run joins at the next step (no waiting behind long requests); request: each pipeline instance samples one request at a time, start to end.")] = "step",
    precision: Annotated[Optional[str], typer.Option(help="Which of the bundles' variants to serve: fp32, fp16 (GPU hosts), int8 (CPU hosts; export with --int8). Default: a bundle's plan for this host (gen tune) in inline python pipelines, else fp32.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Most diffusion steps one request may ask for (default: the family's, 1000; 500 for SD).")] = None,
    max_pixels: Annotated[Optional[int], typer.Option(help="Most height x width per image for text-to-image requests (default: 4x the model's native size).")] = None,
    max_prompt_chars: Annotated[Optional[int], typer.Option(help="Longest prompt accepted, in characters (default 2000).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing repository at --out.")] = False,
) -> None:
    """Write a Triton model repository: per bundle, a `pipeline` model plus one model per component.

    Example:  gen serve build bundles/ddpm bundles/gan --out model_repository
    """
    from gen.serving.repository import build_repository

    path = build_repository(bundles, out, flavour=flavour, max_batch=max_batch, instances=instances, names=name,
                            dynamic_batching=dynamic_batching, threads=threads, force=force, components=components, precision=precision,
                            batching=batching, limits={"steps": max_steps, "pixels": max_pixels, "prompt_chars": max_prompt_chars},
                            log=typer.echo)
    typer.echo(f"model repository written to {path}  (start it: gen serve start {path})")


@app.command()
def start(
    repository: Annotated[str, typer.Argument(help="Model repository written by `gen serve build`.")],
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1 keeps it local).")] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    grpc_port: Annotated[int, typer.Option(help="gRPC port.")] = 8001,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 120.0,
    watch: Annotated[float, typer.Option(help="Every this many seconds, probe each pipeline (a request it refuses at once) and reload one that does not answer (its python process died); 0 turns it off.")] = 30.0,
) -> None:
    """Run tritonserver on the repository until Ctrl-C or SIGTERM, then shut it down cleanly."""
    import signal
    import threading
    import time

    from gen.errors import GenError

    from gen.runtime.remote import client_module, server_status
    from gen.serving.server import TritonServer

    client_module("http")  # before starting anything: the status below needs the client
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = TritonServer(repository, host=host, http_port=http_port, grpc_port=grpc_port).start(timeout)
    try:
        status = server_status(server.http_url)
        typer.echo(f"tritonserver ready: HTTP {server.http_url}  gRPC {server.grpc_url}  (log: {server.log_file})")
        for model, info in sorted(status["models"].items()):
            typer.echo(f"  {model:32} {info['state']} {info['reason']}".rstrip())
        next_watch = time.monotonic() + watch
        while not stop.is_set() and server.process.poll() is None:
            stop.wait(0.5)
            if watch and time.monotonic() >= next_watch and not stop.is_set():
                next_watch = time.monotonic() + watch
                try:
                    for name in server.restart_unhealthy():
                        typer.echo(f"reloaded {name}: it did not answer its probe (its python process had died)")
                except GenError as e:
                    typer.echo(f"watch: {e}", err=True)
    finally:
        typer.echo("stopping tritonserver ...")
        server.stop()
        typer.echo("stopped")
    if server.process.returncode not in (0, -15, None) and not stop.is_set():
        typer.echo(f"tritonserver exited with {server.process.returncode}; see {server.log_file}", err=True)
        raise typer.Exit(1)


@app.command()
def status(url: Annotated[str, typer.Argument(help="Server URL, e.g. http://127.0.0.1:8000 or grpc://127.0.0.1:8001.")],
           probe: Annotated[bool, typer.Option(help="Also ask each gen pipeline for n = 0 images, which its own code refuses at once: Triton keeps reporting a model READY after its python-backend process died; this says whether it really answers.")] = True) -> None:
    """Liveness, readiness and every model's state (exit 1 when a probed model does not answer)."""
    import json

    from gen.runtime.remote import server_status

    report = server_status(url, probe=probe)
    typer.echo(json.dumps(report, indent=2))
    if probe and not report["ready"]:
        raise typer.Exit(1)

"""`gen demo BUNDLE...`: serve a page per bundle (and a JSON API) on 127.0.0.1."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gen.cli.options import BACKENDS_HELP



def demo(
    bundles: Annotated[Optional[list[str]], typer.Argument(help="Bundle directories written by `gen export`; one page each.")] = None,
    url: Annotated[Optional[str], typer.Option(help="Also a model served by Triton: http://HOST:PORT or grpc://HOST:PORT (with --model).")] = None,
    model: Annotated[Optional[str], typer.Option(help="The pipeline model's name on --url.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on. 127.0.0.1 keeps the demo on this machine; 0.0.0.0 exposes it to the network.")] = "127.0.0.1",
    allowed_host: Annotated[Optional[list[str]], typer.Option(help="A name or address others reach the demo by (repeatable), beside 127.0.0.1, localhost and --host: requests addressed to any other name are refused (DNS rebinding).")] = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    concurrency: Annotated[int, typer.Option(help="Generations one model runs at a time.")] = 1,
    queue: Annotated[int, typer.Option(help="Requests one model lets wait beyond those; more get 429 with Retry-After.")] = 2,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body (an uploaded image travels in it), in MiB (under 0.1 not even a small PNG fits).")] = 8.0,
    max_batch: Annotated[Optional[int], typer.Option(help="Most images per request (n) a bundle's page may ask for (default 256).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Most diffusion steps a request may ask for (default 1000).")] = None,
    backend: Annotated[str, typer.Option(help=f"Backend for the bundles: {BACKENDS_HELP}.")] = "ort",
    threads: Annotated[Optional[int], typer.Option(help="CPU threads per model (default: the backend's). The same count as a local Sampler gives the same bytes.")] = None,
) -> None:
    """Try bundles in a browser: each gets a page with its own controls (prompt, label, steps, scheduler,
    guidance, seed, image upload, psi, ...), progress while it runs, the images with their seeds and timing,
    and download links. Beside it, a JSON API: POST /api/generate, GET /api/models; described at /api.

    Example:  gen demo bundles/ddpm bundles/colorize      then open http://127.0.0.1:7860
              curl -s 127.0.0.1:7860/api/generate -H 'Content-Type: application/json' -d '{"model": "ddpm", "n": 4}'
    """
    from gen.errors import GenError

    try:
        import uvicorn

        from gen.demo.app import create_app
    except ImportError:
        raise GenError("gen demo needs FastAPI and uvicorn, in the demo extra: from the clone, "
                       "pip install -c constraints.txt -e '.[demo]'") from None
    from gen.demo.guard import allowed_hosts
    from gen.demo.models import open_models
    from gen.ports import bind, host_literal, http_url

    limits = {}
    for option, key, value in (("--max-batch", "n", max_batch), ("--max-steps", "steps", max_steps)):
        if value is not None:
            if value < 1:
                raise GenError(f"{option} must be at least 1, got {value}", option)
            limits[key] = value
    hosts = allowed_hosts(host, allowed_host)
    sock = bind(host, port, "--port")  # before the models load and the banner says where it listens
    try:
        models = open_models(bundles or [], url, model, backend, concurrency, queue, threads, limits or None)
    except BaseException:
        sock.close()
        raise
    app = create_app(models, max_body=int(max_body_mb * 2**20), hosts=hosts)
    where = "this machine only" if host in ("127.0.0.1", "localhost", "::1") else "THE NETWORK: anyone who can reach it can generate"
    address = http_url("127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host, port)
    typer.echo(f"gen demo: {', '.join(models)} on {address}  (listening on {host_literal(host)}: {where}; --host changes it)  "
               f"API: {address}/api\n  answers requests addressed to {', '.join(hosts)} (--allowed-host adds a name)",
               err=False)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    finally:
        sock.close()
        for m in models.values():
            m.close()

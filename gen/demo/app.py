"""The demo's web app (FastAPI): one page per model, and a JSON API beside it.

    GET  /                  the models, linked
    GET  /m/{model}         the model's page: controls from its declared generate() arguments
    GET  /api/models        every model and its arguments (name, kind, rule, bounds, choices)
    POST /api/generate      {"model": NAME, ...generate() arguments, "precision"?, "stream"?}
                            -> {"images": [{"png": base64, "seed", "index"}], "seconds", ...};
                            with "stream": true, server-sent events: step (progress, a preview of x0
                            every few steps where the model has one), then done or error
    GET  /api               the API described (from the OpenAPI schema at /openapi.json)

(This module imports FastAPI: it is loaded only by `gen demo`, which needs the `demo` extra.)
FastAPI because the API is typed JSON with an OpenAPI schema for free, streams server-sent events
with the standard library's asyncio, and runs on uvicorn; gradio would bring its own front end, a
far larger install, and a page we could not shape from the family's own argument declarations.
Its Swagger and ReDoc pages load their scripts from a CDN, so they are off (the demo works offline);
/api renders the same schema as plain HTML.

Limits: n and steps are the bundle's (gen.runtime.families.Limits, enforced by the Sampler); the
request body is capped (`max_body`), which bounds an uploaded image; a model runs `concurrency`
generations at a time with `queue` more waiting, and answers 429 with Retry-After beyond that; a
client that disconnects cancels its run between diffusion steps. Images arrive as base64 data
(a data URL or bare base64); strings that are not are refused, so no path on the server is read.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from gen.errors import GenError
from gen.runtime.arguments import ARGUMENTS

PREVIEW_EVERY = 5  # a preview of x0 every this many diffusion steps (and at the last)
MAX_UPLOAD_PIXELS = 4096 * 4096  # an uploaded image is refused before decoding past this (a tiny PNG can be huge)
IMAGE_ARGUMENTS = ("image", "mask")
DEMO_KEYS = ("model", "precision", "stream")


def png_base64(image: np.ndarray) -> str:
    """uint8 HWC -> base64 PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def decode_image(value, name: str) -> np.ndarray:
    """A base64 image (data URL or bare) as uint8 NHWC; anything else is refused, paths included."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(value, str):
        raise GenError(f"{name} must be an image as base64 (a data URL such as data:image/png;base64,...)", name)
    data = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        looks_like_path = value.startswith(("/", "~")) or "." in value  # never in base64
        raise GenError(f"{name} is not valid base64; send the image's bytes as base64 (a data URL such as "
                       f"data:image/png;base64,...){'; file paths are not accepted' if looks_like_path else ''}",
                       name) from None
    try:
        with Image.open(io.BytesIO(raw)) as im:
            if im.width * im.height > MAX_UPLOAD_PIXELS:
                raise GenError(f"{name} is {im.width}x{im.height}; uploads are limited to {MAX_UPLOAD_PIXELS} pixels", name)
            im.load()
            pic = im.convert("RGB" if im.mode not in ("L", "RGB") else im.mode)
    except (ValueError, UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise GenError(f"{name}: the base64 decodes to {len(raw)} bytes that are not a readable image "
                       f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); send a PNG, JPEG or WebP", name) from None
    a = np.asarray(pic, dtype=np.uint8)
    return (a[..., None] if a.ndim == 2 else a)[None]


def argument_of(message: str, names) -> str | None:
    """The argument a validation message is about (messages name it first, as gen's errors do)."""
    first = message.split(" ", 1)[0].rstrip(":,")
    return first if first in names else next((n for n in names if message.startswith(f"{n} ")), None)


def parse_request(body: dict, models: dict):
    """(model, generate() arguments, precision, stream) from a request body, or a GenError naming the key."""
    if not isinstance(body, dict):
        raise GenError("the request body must be a JSON object")
    name = body.get("model")
    if not isinstance(name, str) or name not in models:
        raise GenError(f"model: unknown model {name!r}; this demo serves {', '.join(models)}", "model")
    unknown = [k for k in body if k not in ARGUMENTS and k not in DEMO_KEYS]
    if unknown:
        raise GenError(f"{unknown[0]}: unknown argument; arguments are generate()'s ({', '.join(ARGUMENTS)}) "
                       "plus model, precision, stream", unknown[0])
    arguments = {k: v for k, v in body.items() if k in ARGUMENTS and v is not None}
    for k in IMAGE_ARGUMENTS:
        if k in arguments:
            arguments[k] = decode_image(arguments[k], k)
        elif k in models[name].required:  # the library's own message speaks of paths and --image
            raise GenError(f"{k}: this model translates an input image; send it as base64 (a data URL such as "
                           "data:image/png;base64,...)", k)
    if isinstance(arguments.get("negative_prompt"), str) and not arguments["negative_prompt"].strip():
        arguments.pop("negative_prompt")  # an empty box on the page means none
    if "seed" in arguments:  # checked here too: the response echoes it
        arguments["seed"] = ARGUMENTS["seed"].check(arguments["seed"])
    precision = body.get("precision")
    if precision is not None:
        if not isinstance(precision, str):
            raise GenError(f"precision must be a name such as fp32, got {precision!r}", "precision")
        if models[name].url:
            raise GenError("precision applies to bundles; a served model runs the precision its repository was built with",
                           "precision")
    return models[name], arguments, precision, bool(body.get("stream"))


def create_app(models: dict, max_body: int = 8 * 2**20) -> FastAPI:
    from gen.demo.models import Busy, Cancelled
    from gen.demo.page import api_page, index_page, model_page

    app = FastAPI(title="gen demo", version="1", docs_url=None, redoc_url=None,
                  description="Generate images from gen bundles. POST /api/generate with a model and its "
                              "generate() arguments; GET /api/models lists them.")

    def error(status: int, message: str, headers: dict | None = None, argument: str | None = None):
        argument = argument or argument_of(message, [*ARGUMENTS, *DEMO_KEYS])
        return JSONResponse({"detail": message, "argument": argument}, status_code=status, headers=headers)

    @app.middleware("http")
    async def cap_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return JSONResponse({"detail": f"the request body is over the limit of {max_body} bytes "
                                           "(gen demo --max-body-mb)", "argument": None}, status_code=413)
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    def index():
        return index_page([m.describe() for m in models.values()])

    @app.get("/m/{name}", response_class=HTMLResponse)
    def page(name: str):
        if name not in models:
            return HTMLResponse(f"no model {name!r} here", status_code=404)
        return model_page(models[name].describe())

    @app.get("/api", response_class=HTMLResponse)
    def api():
        return api_page(app.openapi(), [m.describe() for m in models.values()])

    @app.get("/api/models")
    def list_models():
        """Every model this demo serves, with the generate() arguments it takes."""
        return {"models": [m.describe() for m in models.values()]}

    @app.post("/api/generate")
    async def generate(request: Request):
        """Generate images: {"model": NAME, ...arguments}; 422 names a bad argument, 429 means busy."""
        raw = b""
        async for chunk in request.stream():  # a chunked body has no Content-Length to check up front
            raw += chunk
            if len(raw) > max_body:
                return error(413, f"the request body is over the limit of {max_body} bytes (gen demo --max-body-mb)")
        loop = asyncio.get_running_loop()
        try:
            body = json.loads(raw or b"null")
            # decoding an uploaded image costs CPU: off the event loop, so other clients are not stalled
            model, arguments, precision, stream = await loop.run_in_executor(None, parse_request, body, models)
        except json.JSONDecodeError as e:
            return error(422, f"the request body is not JSON: {e.msg}")
        except ValueError as e:  # e.g. an integer too long for the JSON parser
            return error(422, f"the request body is not usable JSON: {e}")
        except GenError as e:
            return error(422, str(e), argument=e.argument)
        seed = int(arguments.get("seed", 0))
        try:
            model.admit()
        except Busy as e:
            return error(429, f"{model.name} is busy ({model.concurrency} running, {model.queue} waiting); retry later",
                         headers={"Retry-After": str(int(np.ceil(e.retry_after)))})
        cancel = threading.Event()  # from here on, model.run releases the admission place whatever happens

        def result(images, seconds):
            return {"model": model.name, "seed": seed, "seconds": round(seconds, 3),
                    "seconds_per_image": round(seconds / max(len(images), 1), 4),
                    "images": [{"png": png_base64(im), "index": i, "seed": seed} for i, im in enumerate(images)]}

        if not stream:
            task = loop.run_in_executor(model.executor, model.run, arguments, precision, cancel)
            while not task.done():  # a client that goes away cancels its run
                if await request.is_disconnected():
                    cancel.set()
                    break
                await asyncio.wait({task}, timeout=0.1)
            try:
                images, seconds = await task
            except Cancelled:
                return error(499, "cancelled: the client disconnected")
            except GenError as e:
                return error(422, str(e), argument=e.argument)
            return result(images, seconds)

        events: asyncio.Queue = asyncio.Queue()
        preview = model.previews

        def on_step(i, steps, x0):
            event = {"step": i + 1, "steps": steps}
            if preview and x0 is not None and ((i + 1) % PREVIEW_EVERY == 0 or i + 1 == steps):
                from gen.images import to_uint8

                event["preview"] = png_base64(to_uint8(np.asarray(x0[:1]).clip(-1, 1))[0])
            loop.call_soon_threadsafe(events.put_nowait, ("step", event))

        def work():
            try:
                images, seconds = model.run(arguments, precision, cancel, on_step)
                loop.call_soon_threadsafe(events.put_nowait, ("done", result(images, seconds)))
            except Cancelled:
                loop.call_soon_threadsafe(events.put_nowait, ("cancelled", {}))
            except GenError as e:
                loop.call_soon_threadsafe(events.put_nowait, ("error", {"detail": str(e), "argument": e.argument}))
            except Exception as e:  # noqa: BLE001 - the page shows it; the server stays up
                loop.call_soon_threadsafe(events.put_nowait, ("error", {"detail": f"{type(e).__name__}: {e}"}))

        loop.run_in_executor(model.executor, work)

        async def sse():
            try:
                while True:
                    try:
                        kind, data = await asyncio.wait_for(events.get(), timeout=0.2)
                    except asyncio.TimeoutError:
                        if await request.is_disconnected():
                            cancel.set()
                            return
                        continue
                    yield f"event: {kind}\ndata: {json.dumps(data)}\n\n"
                    if kind in ("done", "error", "cancelled"):
                        return
            finally:
                cancel.set()  # the stream ended (or the client left): nothing more to compute

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return app

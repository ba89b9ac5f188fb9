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

Limits: n and steps are the bundle's (gen.runtime.families.Limits, checked before a request queues;
`gen demo --max-batch/--max-steps` change them); the request body is capped (`max_body`), which
bounds an uploaded image; a model runs `concurrency` generations at a time with `queue` more
waiting, and answers 429 with Retry-After beyond that; a client that disconnects, streamed or not,
cancels its run between diffusion steps. Images arrive as base64 PNG, JPEG or WebP (a data URL or
bare base64); strings that are not are refused, so no path on the server is read. Who may call at
all (Host, Origin, content type) is gen.demo.guard's; errors are JSON or plain text, never markup.
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
from gen.runtime.arguments import ARGUMENTS, argument_in

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
    from gen.runtime.image_input import UPLOAD_FORMATS, from_pil, open_image

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
    return from_pil(open_image(io.BytesIO(raw), name, f"the base64 decodes to {len(raw)} bytes that are not a readable image",
                                UPLOAD_FORMATS, MAX_UPLOAD_PIXELS), name)


def check_json(value, key: str, depth: int = 0) -> None:
    """Refuse what JSON can carry but no argument can use: a lone surrogate ("\\ud800", which no
    UTF-8 answer could even quote back) and nesting deeper than any argument's (a list of lists)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise GenError(f"{key}: the text holds a lone surrogate ({value.encode('utf-8', 'backslashreplace')[:40]!r}); "
                           "send valid Unicode text", key) from None
    elif isinstance(value, list):
        if depth >= 2:
            raise GenError(f"{key}: lists nested {depth + 1} deep; no argument takes more than a list", key)
        for v in value:
            check_json(v, key, depth + 1)
    elif isinstance(value, dict):
        raise GenError(f"{key}: an object; no argument takes one", key)


def check_labels(value) -> None:
    """labels as JSON carries them: one integer, or a flat list of integers (the family checks the range)."""
    flat = value if isinstance(value, list) else [value]
    if not flat or any(isinstance(v, bool) or not isinstance(v, int) for v in flat):
        raise GenError(f"labels must be an integer or a list of integers (one per image), got {json.dumps(value)[:80]}",
                       "labels")


def parse_request(body: dict, models: dict):
    """(model, generate() arguments, precision, stream) from a request body, or a GenError naming the key."""
    if not isinstance(body, dict):
        raise GenError("the request body must be a JSON object")
    for key, value in body.items():
        check_json(key, "the request body's keys")
        check_json(value, key)
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
    if "labels" in arguments:
        check_labels(arguments["labels"])
    precision = body.get("precision")
    if precision is not None:
        if not isinstance(precision, str):
            raise GenError(f"precision must be a name such as fp32, got {precision!r}", "precision")
        if not models[name].precisions:  # nothing to choose between: a served model's
            raise GenError("precision applies to bundles; a served model runs the precision its repository was built with",
                           "precision")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise GenError(f"stream must be true or false (a JSON boolean), got {json.dumps(stream)[:40]}", "stream")
    models[name].check(arguments)  # before it takes a place in the queue: 422 at once
    return models[name], arguments, precision, stream


def error(status: int, message: str, headers: dict | None = None, argument: str | None = None) -> JSONResponse:
    """A JSON error naming the argument at fault (found in the message where not given)."""
    argument = argument or argument_in(message, DEMO_KEYS)
    return JSONResponse({"detail": message, "argument": argument}, status_code=status, headers=headers)


def create_app(models: dict, max_body: int = 8 * 2**20, hosts: list[str] | None = None) -> FastAPI:
    """The app for `models`; requests must address it by one of `hosts` (default: 127.0.0.1,
    localhost, [::1]), come from its own pages or from no page at all, and be no larger than `max_body`."""
    from fastapi.responses import PlainTextResponse
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from gen.demo.guard import LOCAL_HOSTS, RequestGuard
    from gen.demo.page import api_page, index_page, model_page

    app = FastAPI(title="gen demo", version="1", docs_url=None, redoc_url=None,
                  description="Generate images from gen bundles. POST /api/generate with a model and its "
                              "generate() arguments; GET /api/models lists them.")

    app.add_middleware(RequestGuard, max_body=max_body)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts or LOCAL_HOSTS))  # outermost: checked first

    @app.get("/", response_class=HTMLResponse)
    def index():
        return index_page([m.describe() for m in models.values()])

    @app.get("/m/{name}", response_class=HTMLResponse)
    def page(name: str):
        if name not in models:  # plain text: the name is the requester's, never markup
            return PlainTextResponse(f"no model {name!r} here; this demo serves {', '.join(models)}", status_code=404)
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
        return await generate_request(request, models, max_body)

    return app


async def generate_request(request: Request, models: dict, max_body: int):
    """POST /api/generate: read and check the request, admit it to its model, then answer at once or
    as server-sent events (`"stream": true`)."""
    from gen.demo.models import Busy

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
    except RecursionError:
        return error(422, "the request body is nested too deeply; no argument takes more than a list")
    except GenError as e:
        return error(422, str(e), argument=e.argument)
    except ValueError as e:  # e.g. an integer too long for the JSON parser
        return error(422, f"the request body is not usable JSON: {e}")
    reason = await loop.run_in_executor(None, model.unavailable)  # a server that went away: said at once, with why
    if reason:
        return error(503, f"{model.name} is unavailable: {reason}", argument="model")
    run = Run(request, model, arguments, precision)
    try:
        model.admit()
    except Busy as e:
        return error(429, f"{model.name} is busy ({model.concurrency} running, {model.queue} waiting); retry later",
                     headers={"Retry-After": str(int(np.ceil(e.retry_after)))})
    return await run.answer() if not stream else run.stream()  # from here on, model.run releases the admission place


class Run:
    """One admitted generation: answered whole when done, or streamed step by step; a client that
    goes away cancels it between diffusion steps."""

    def __init__(self, request: Request, model, arguments: dict, precision):
        self.request, self.model, self.arguments, self.precision = request, model, arguments, precision
        self.seed = int(arguments.get("seed", 0))
        self.cancel = threading.Event()
        self.loop = asyncio.get_running_loop()

    def result(self, images, seconds) -> dict:
        return {"model": self.model.name, "seed": self.seed, "seconds": round(seconds, 3),
                "seconds_per_image": round(seconds / max(len(images), 1), 4),
                "images": [{"png": png_base64(im), "index": i, "seed": self.seed} for i, im in enumerate(images)]}

    async def answer(self):
        from gen.demo.models import Cancelled

        task = self.loop.run_in_executor(self.model.executor, self.model.run, self.arguments, self.precision, self.cancel)
        while not task.done():  # a client that goes away cancels its run
            if await self.request.is_disconnected():
                self.cancel.set()
                break
            await asyncio.wait({task}, timeout=0.1)
        try:
            images, seconds = await task
        except Cancelled:
            return error(499, "cancelled: the client disconnected")
        except GenError as e:
            return error(422, str(e), argument=e.argument)
        except Exception as e:  # noqa: BLE001 - a JSON answer naming it; the server stays up
            return error(500, f"{type(e).__name__}: {e}")
        return self.result(images, seconds)

    def stream(self) -> StreamingResponse:
        events: asyncio.Queue = asyncio.Queue()
        self.loop.run_in_executor(self.model.executor, self._work, events)
        return StreamingResponse(self._events(events), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    def _work(self, events: asyncio.Queue) -> None:
        from gen.demo.models import Cancelled

        put = lambda kind, data: self.loop.call_soon_threadsafe(events.put_nowait, (kind, data))
        preview = self.model.previews

        def on_step(i, steps, x0):
            event = {"step": i + 1, "steps": steps}
            if preview and x0 is not None and ((i + 1) % PREVIEW_EVERY == 0 or i + 1 == steps):
                event["preview"] = png_base64(self.model.preview(x0, self.precision))
            put("step", event)

        try:
            images, seconds = self.model.run(self.arguments, self.precision, self.cancel, on_step)
            put("done", self.result(images, seconds))
        except Cancelled:
            put("cancelled", {})
        except GenError as e:
            put("error", {"detail": str(e), "argument": e.argument})
        except Exception as e:  # noqa: BLE001 - the page shows it; the server stays up
            put("error", {"detail": f"{type(e).__name__}: {e}"})

    async def _events(self, events: asyncio.Queue):
        try:
            while True:
                try:
                    kind, data = await asyncio.wait_for(events.get(), timeout=0.2)
                except asyncio.TimeoutError:
                    if await self.request.is_disconnected():
                        self.cancel.set()
                        return
                    continue
                yield f"event: {kind}\ndata: {json.dumps(data)}\n\n"
                if kind in ("done", "error", "cancelled"):
                    return
        finally:
            self.cancel.set()  # the stream ended (or the client left): nothing more to compute

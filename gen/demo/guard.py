"""Who may talk to the demo: the conventions of a server on localhost that a browser can reach.

Any page the user opens can send requests to 127.0.0.1, and a hostile name can be made to resolve
there (DNS rebinding). So:
- the Host header must name this server: 127.0.0.1, localhost, [::1], the --host it listens on, or
  an --allowed-host (Starlette's TrustedHostMiddleware; a rebinding page sends its own name);
- a request that carries an Origin must come from this server's own origin (403 otherwise): a
  cross-site page's fetch or form is refused before it does anything;
- a POST must be JSON (415 otherwise): a cross-site page can send text/plain without the browser
  asking first, never application/json; and there are no CORS headers, so a browser shows no
  other origin an answer;
- a body larger than `max_body` is refused from its Content-Length (413).
A plain ASGI middleware, not FastAPI's @app.middleware: that one wraps `receive`, and a handler
behind it never learns that its client went away (a non-streamed run would go on).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from gen.errors import GenError
from gen.ports import host_literal

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


def allowed_hosts(host: str, extra: list[str] | None = None) -> list[str]:
    """The names a request may address this server by: the local ones, the address it listens on
    (unless it is a wildcard such as 0.0.0.0), and each --allowed-host."""
    names = list(LOCAL_HOSTS)
    if host not in WILDCARDS:
        names.append(host_literal(host).lower())
    for name in extra or []:
        bare = name.strip().lower()
        try:
            names.append(host_literal(str(ipaddress.ip_address(bare.strip("[]")))))
            continue
        except ValueError:
            pass
        if not bare or any(c in bare for c in "/:@ \t") or ("*" in bare and bare != "*" and not bare.startswith("*.")) \
                or "*" in bare[1:]:
            raise GenError(f"--allowed-host {name!r} is not a host name: give a name or address such as "
                           "demo.example.org, 192.168.1.20 or *.example.org (no scheme, no port)", "--allowed-host")
        names.append(bare)
    return list(dict.fromkeys(names))


def _netloc(value: str) -> tuple[str | None, int | None] | None:
    try:
        u = urlsplit(value if "//" in value else f"//{value}")
        return u.hostname, u.port
    except ValueError:
        return None


def same_origin(origin: str, host_header: str) -> bool:
    """Whether an Origin header names the server that the (already checked) Host header names."""
    u = urlsplit(origin)
    if u.scheme not in ("http", "https"):
        return False  # "null" (a sandboxed page, a file), or anything else
    mine, theirs = _netloc(host_header), _netloc(origin)
    if mine is None or theirs is None:
        return False
    default = 443 if u.scheme == "https" else 80
    return (theirs[0], theirs[1] or default) == (mine[0], mine[1] or default)


class RequestGuard:
    """Origin, content type and body size, checked before the app sees a request (see the module)."""

    def __init__(self, app, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                from fastapi.responses import JSONResponse

                status, message = refusal
                await JSONResponse({"detail": message, "argument": None}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is not None and not same_origin(origin, headers.get("host", "")):
            return 403, (f"requests from another origin ({origin}) are refused: use the demo's own pages, or call "
                         "the API from a program (which sends no Origin)")
        if scope["method"] == "POST":
            kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind != "application/json":
                return 415, f"the request body must be JSON, sent with Content-Type: application/json (got {kind or 'none'})"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return 413, f"the request body is over the limit of {self.max_body} bytes (gen demo --max-body-mb)"
        return None

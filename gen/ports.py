"""Listening ports, bound before a server starts: a port in use is refused naming the option to
change, instead of a server's raw bind error after it has announced itself."""

from __future__ import annotations

import socket

from gen.errors import GenError


def bind(host: str, port: int, option: str) -> socket.socket:
    """A TCP socket bound to (host, port), or a GenError naming `option`; the caller listens on it or closes it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closing socket (TIME_WAIT) is fine
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise GenError(f"port {port} on {host} is already in use ({e.strerror}); stop what listens there "
                       f"or choose another ({option})") from None
    return sock

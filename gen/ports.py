"""Listening ports, checked and bound before a server starts: a bad port, an address that is not
this machine's, or a port in use is refused naming the option to change, instead of a server's raw
bind error (or an OverflowError) after it has announced itself."""

from __future__ import annotations

import errno
import socket

from gen.errors import GenError


def check_port(port: int, option: str) -> int:
    """A port number from 1 to 65535, or a GenError naming `option`."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise GenError(f"{option} must be a port number from 1 to 65535, got {port}", option)
    return port


def host_literal(host: str) -> str:
    """A host as it appears in a URL or a Host header: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def http_url(host: str, port: int) -> str:
    """http://HOST:PORT, with an IPv6 host in brackets (http://[::]:7860, not http://:::7860)."""
    return f"http://{host_literal(host)}:{port}"


def bind(host: str, port: int, option: str, host_option: str = "--host") -> socket.socket:
    """A TCP socket bound to (host, port), or a GenError naming the option at fault; the caller
    listens on it or closes it."""
    check_port(port, option)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)  # else bind() says only "not known"
    except (socket.gaierror, UnicodeError) as e:
        raise GenError(f"{host_option} {host} is not an address or a name this machine can resolve "
                       f"({getattr(e, 'strerror', None) or e}); give an address such as 127.0.0.1 or 0.0.0.0",
                       host_option) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closing socket (TIME_WAIT) is fine
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRNOTAVAIL:
            raise GenError(f"{host_option} {host} is not an address of this machine ({e.strerror}); give one of its "
                           "addresses, 127.0.0.1 or 0.0.0.0", host_option) from None
        if e.errno == errno.EACCES:
            raise GenError(f"port {port} on {host} needs privileges ({e.strerror}); choose a port above 1023 ({option})",
                           option) from None
        raise GenError(f"port {port} on {host} is already in use ({e.strerror}); stop what listens there "
                       f"or choose another ({option})", option) from None
    return sock

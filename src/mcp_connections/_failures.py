"""Failures of the remote transports in words: what happened, and what to do about it.

Pure functions from an HTTP status or an exception (httpx2's, the network's, TLS's) to a ``Failure``: no
URL and no secret ever goes into one, since some exception texts carry the URL with its query.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import NamedTuple

import httpx2

from .base import describe_exception

__all__ = ["SESSION_GONE", "Failure", "describe_http_error", "describe_network_error", "describe_status"]


class Failure(NamedTuple):
    """What went wrong, and what to do about it when this failure alone says."""

    what: str
    hint: str | None = None
    status: int | None = None  # the HTTP status it was about, if any


SESSION_GONE = Failure(
    "the server no longer knows this session (HTTP 404): it restarted or expired it",
    "Start the connection again for a new session.",
)


def describe_status(status: int, reason: str, method: str, usual_paths: str = "the path") -> Failure:
    """What an HTTP error status from an MCP endpoint means, and what to do about it."""
    return _status_words(status, reason, method, usual_paths)._replace(status=status)


def _status_words(status: int, reason: str, method: str, usual_paths: str) -> Failure:
    text = f"HTTP {status} {reason}".rstrip()
    if status == 401:
        return Failure(f"the server rejected the credentials ({text})", "Check the token in the headers or auth.")
    if status == 403:
        return Failure(f"access denied ({text})", "The credentials lack permission for this endpoint.")
    if status == 404:
        return Failure(f"no MCP endpoint at this URL ({text})", f"Check the path: servers usually serve {usual_paths}.")
    if status == 405:
        return Failure(
            f"the server does not accept {method} at this URL ({text})",
            "Is it the endpoint of another MCP transport (streamable HTTP, SSE, WebSocket)?",
        )
    if status == 407:
        return Failure(f"the proxy requires authentication ({text})", "Configure the proxy's credentials.")
    if 300 <= status < 400:
        return Failure(f"redirected ({text}) and not followed", "Use the final URL if it is the intended server.")
    return Failure(f"the server answered {text}")


def describe_http_error(exc: BaseException, timeout: float, usual_paths: str = "the path") -> Failure:
    """An httpx2 (or network) failure in words, without the URL that some exception texts carry."""
    if isinstance(exc, httpx2.HTTPStatusError):
        response = exc.response
        return describe_status(response.status_code, response.reason_phrase, response.request.method, usual_paths)
    if isinstance(exc, httpx2.ConnectTimeout):
        return Failure(f"timed out after {timeout:g}s connecting")
    if isinstance(exc, httpx2.TimeoutException):
        return Failure(f"timed out waiting for the server ({type(exc).__name__})")
    network = describe_network_error(exc)
    if network is not None:
        return network
    if isinstance(exc, httpx2.RemoteProtocolError):
        return Failure(f"the connection ended early: {exc}")
    if isinstance(exc, httpx2.InvalidURL | httpx2.UnsupportedProtocol):
        return Failure(f"invalid URL ({type(exc).__name__})")
    return Failure(describe_exception(exc))


def describe_network_error(exc: BaseException) -> Failure | None:
    """Connection refused, unknown host, TLS failure: the cause found anywhere in ``exc``'s chain."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Failure(
                f"TLS certificate verification failed ({cause.verify_message or cause})",
                "Check the server's certificate, or the CA bundle (SSL_CERT_FILE) that should trust it.",
            )
        if isinstance(cause, ssl.SSLError):
            return Failure(
                f"TLS handshake failed ({cause.reason or cause})",
                "Check that the URL's scheme (https/wss or http/ws) matches what the server speaks.",
            )
        if isinstance(cause, socket.gaierror):
            return Failure(f"unknown host ({cause.strerror or cause})", "Check the host name in the URL.")
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return Failure(
                "connection refused: nothing listens at that address and port",
                "Check that the server is running and the URL's host and port.",
            )
        if isinstance(cause, ConnectionResetError):
            return Failure("the server reset the connection")
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return Failure(f"host unreachable ({cause.strerror})")
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and the members of any exception group among them."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending and len(seen) < 50:
        current = pending.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
    return seen

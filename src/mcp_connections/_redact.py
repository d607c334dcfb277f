"""Keeping credentials out of names, logs and errors (pure functions, no I/O).

A server URL is also how errors and logs name the server, but URLs carry secrets: userinfo
(``https://user:password@host``) and tokens in the query (``?api_key=...``). ``redact_url`` gives the
form that is safe to show; ``split_userinfo`` takes the userinfo out of a URL so that it can travel as an
``Authorization`` header instead, where no library puts it into a log line or an exception.
"""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "UrlRedactingFilter",
    "basic_authorization",
    "install_url_redaction",
    "redact_url",
    "split_userinfo",
]

REDACTED = "REDACTED"

# Query parameter names that carry credentials, as whole words of the name (api_key, X-Amz-Signature).
_SECRET_NAME = re.compile(
    r"(^|[^a-z])(token|key|secret|password|passwd|pwd|auth|authorization|credential|credentials|"
    r"signature|sig|session|sessionid|code|jwt|bearer)([^a-z]|$)|apikey|accesstoken|sessionid",
    re.IGNORECASE,
)

# A value that looks like a token whatever its name: long and with no spaces.
_TOKEN_VALUE = re.compile(r"[A-Za-z0-9_\-.~+/=%]{24,}")


def redact_url(url: str) -> str:
    """``url`` without userinfo and fragment, with credential-like query values replaced by ``REDACTED``.

    Never raises: text that does not parse as a URL still loses anything that looks like userinfo.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        query = _redact_query(parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        # Not a URL we can parse (a bad port, brackets): cut anything between "//" and "@".
        return re.sub(r"//[^/?#]*@", "//", url).partition("#")[0]


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its userinfo, and the decoded ``(user, password)`` it carried, if any."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return bare, (unquote(user), unquote(password))


def basic_authorization(credentials: tuple[str, str]) -> str:
    """The ``Authorization`` header value for HTTP Basic authentication with ``(user, password)``."""
    user, password = credentials
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _redact_query(query: str) -> str:
    pieces = query.split("&")
    redacted = [_redact_pair(piece) for piece in pieces]
    return query if redacted == pieces else "&".join(redacted)  # as written when nothing is secret


def _redact_pair(piece: str) -> str:
    name, eq, value = piece.partition("=")
    if not eq:  # a bare value, as in "?abcdef..."
        return REDACTED if _TOKEN_VALUE.fullmatch(unquote(name)) else piece
    secret = value and (_SECRET_NAME.search(unquote(name)) or _TOKEN_VALUE.fullmatch(unquote(value)))
    return f"{name}={REDACTED}" if secret else piece


_URL_IN_TEXT = re.compile(r"\b(?:https?|wss?)://[^\s\"'<>]+")

# Third-party loggers that write the URLs they request, query tokens included.
_URL_LOGGERS = ("httpx2", "mcp.client.streamable_http", "mcp.client.sse")


class UrlRedactingFilter(logging.Filter):
    """Rewrites every URL in a log record through ``redact_url``: the HTTP libraries log the URLs they ask."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "://" in str(record.msg) or any("://" in str(arg) for arg in _args(record)):
            record.msg = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), record.getMessage())
            record.args = None
        return True


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    args = record.args
    if isinstance(args, tuple):
        return args
    return () if args is None else (args,)


def install_url_redaction() -> None:
    """Put the redacting filter on the loggers of httpx2 and the SDK's HTTP clients (once)."""
    for name in _URL_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, UrlRedactingFilter) for f in target.filters):
            target.addFilter(UrlRedactingFilter())

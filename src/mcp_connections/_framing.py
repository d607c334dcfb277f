"""JSON-RPC framing shared by the transports (pure logic, no I/O).

stdio carries one message per line and WebSocket one per text frame; both end in ``parse_message``, so a
message that one transport accepts the other accepts too, and a bad one comes back the same way: as the
exception, handed to the session in place of the message (the SDK's session logs it and carries on).
"""

from __future__ import annotations

import codecs
import logging

import mcp_types
from mcp.shared.message import SessionMessage

__all__ = ["LineReader", "parse_message"]

logger = logging.getLogger(__name__)


class LineReader:
    """Splits a byte stream into decoded lines (pure logic, no I/O).

    ``feed()`` returns the complete lines found so far; a decoding error comes back as the exception
    in place of the bytes it spoiled. Lines of any length are fine: pieces are joined once, when the
    line ends.
    """

    def __init__(self, encoding: str = "utf-8", errors: str = "strict") -> None:
        self._decoder_factory = codecs.getincrementaldecoder(encoding)
        self._errors = errors
        self._decoder = self._decoder_factory(errors=errors)
        self._pending: list[str] = []

    def feed(self, data: bytes) -> list[str | Exception]:
        try:
            text = self._decoder.decode(data)
        except UnicodeDecodeError as exc:
            self._decoder = self._decoder_factory(errors=self._errors)
            self._pending.clear()
            return [exc]
        if "\n" not in text:
            if text:
                self._pending.append(text)
            return []
        lines: list[str | Exception] = []
        parts = text.split("\n")
        if self._pending:
            parts[0] = "".join(self._pending) + parts[0]
            self._pending.clear()
        if parts[-1]:
            self._pending.append(parts[-1])
        for line in parts[:-1]:
            if line.strip():
                lines.append(line)
        return lines


def parse_message(text: str | bytes, unit: str = "line", log: logging.Logger = logger) -> SessionMessage | Exception:
    """One ``unit`` (a stdout line, a WebSocket frame) as a message; one that is not JSON-RPC comes back as the
    error, for the session, and is logged to the transport's ``log``."""
    try:
        return SessionMessage(mcp_types.jsonrpc_message_adapter.validate_json(text, by_name=False))
    except ValueError as exc:
        log.warning("server sent a %s that is not JSON-RPC: %.200r", unit, text)
        return exc

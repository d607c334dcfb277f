"""Where text goes that the library passes on (a stdio server's stderr): anything with ``write`` and ``flush``.

``TextSink`` is what the library needs of such a target, no more: ``sys.stderr``, an open text file and an
``io.StringIO`` all are one, and so is a small class of your own. ``None`` means "discard".
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["PrefixedTextSink", "TextSink"]


class TextSink(Protocol):
    """A target for text: ``write(text)`` then ``flush()``; what ``write`` returns is ignored."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class PrefixedTextSink:
    """Text with a prefix before each line, so many servers can share one sink (a group's ``errlog``)."""

    def __init__(self, prefix: str, target: TextSink) -> None:
        self._prefix = prefix
        self._target = target

    def write(self, text: str) -> int:
        lines = text.splitlines(keepends=True)
        self._target.write("".join(self._prefix + line for line in lines))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

"""The one place where exceptions from other libraries become this library's, with their cause chained.

Design: as httpcore's ``map_exceptions``, a transport wraps the code that calls a third-party library in
``with map_exceptions(translate):``; whatever escapes is handed to ``translate``, and the error it returns is
raised ``from`` the original, so ``__cause__`` keeps the detail. Code that builds an error outside an
``except`` block (an error reported later, or raised from another task) chains it with ``chain()``. Nothing
else in the library assigns ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .errors import MCPConnectionError

__all__ = ["chain", "map_exceptions"]

E = TypeVar("E", bound=BaseException)


def chain(error: E, cause: BaseException | None) -> E:
    """``error`` with ``cause`` as its ``__cause__``, unless it already has one or is the cause itself."""
    if cause is not None and cause is not error and error.__cause__ is None:
        error.__cause__ = cause
    return error


@contextmanager
def map_exceptions(translate: Callable[[Exception], MCPConnectionError | None]) -> Iterator[None]:
    """Raise ``translate(exc)`` from ``exc`` for any ``Exception`` that escapes the block.

    This library's own errors pass through untouched; ``translate`` returning ``None`` (or the exception
    itself) re-raises the original. Cancellation and other ``BaseException``s are never translated.
    """
    try:
        yield
    except MCPConnectionError:
        raise
    except Exception as exc:
        error = translate(exc)
        if error is None or error is exc:
            raise
        raise chain(error, exc) from exc

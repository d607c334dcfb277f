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

__all__ = ["chain", "leaf_exception", "map_exceptions"]

E = TypeVar("E", bound=BaseException)


def chain(error: E, cause: BaseException | None) -> E:
    """``error`` with ``cause`` as its ``__cause__``, unless it already has one or is the cause itself."""
    if cause is not None and cause is not error and error.__cause__ is None:
        error.__cause__ = cause
    return error


def leaf_exception(exc: BaseException) -> BaseException:
    """The one exception that explains a (possibly nested) exception group: its first leaf that is not a
    cancellation (asyncio's and trio's are ``BaseException``s, not ``Exception``s)."""
    while isinstance(exc, BaseExceptionGroup):
        members: list[BaseException] = [e for e in exc.exceptions if isinstance(e, Exception)]
        exc = (members or list(exc.exceptions))[0]
    return exc


@contextmanager
def map_exceptions(translate: Callable[[Exception], MCPConnectionError | None]) -> Iterator[None]:
    """Raise ``translate(leaf)``, chained to ``leaf``, for any ``Exception`` that escapes the block.

    ``leaf`` is the exception itself, or the one that explains an exception group (``leaf_exception``).
    This library's own errors pass through untouched, also from inside a group (which is then dropped from
    the report: its other members are the cancellations it caused). ``translate`` returning ``None``
    re-raises the original. Cancellation and other ``BaseException``s are never translated.
    """
    try:
        yield
    except Exception as exc:
        leaf = leaf_exception(exc)
        if isinstance(leaf, MCPConnectionError):
            error: MCPConnectionError | None = leaf
        elif isinstance(leaf, Exception):
            error = translate(leaf)
        else:
            error = None
        if error is None or error is exc:
            raise
        chain(error, leaf)
        error.__suppress_context__ = True  # the group or the third-party error is the cause, or says nothing
        raise error  # noqa: B904 -- chained above, to the leaf rather than to the group

"""The ``ImportError`` an adapter raises when its framework is not installed."""

from __future__ import annotations


def missing(module: str, framework: str, extra: str, cause: ImportError) -> ImportError:
    """An ``ImportError`` that says which extra to install, chained to the original one."""
    error = ImportError(
        f"mcp_connections.adapters.{module} needs {framework}, which is not installed ({cause}). "
        f'Install the extra: pip install "mcp-connections[{extra}]"'
    )
    error.__cause__ = cause
    return error

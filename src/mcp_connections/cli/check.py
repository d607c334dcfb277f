"""``mcp-connections check [CONFIG]``: connect to every server of a config and print their status.

A remote server that wants an interactive sign-in is not signed in to (a check opens no browser): its
state reads "needs login" and its error the ``mcp-connections login`` command to run.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._configs import add_config_argument, config_path, load
from ._output import STATUS_HEADERS, Output, start_with_progress, status_json, status_rows

__all__ = ["register", "run"]

# Bound on `check` as a whole unless --timeout says otherwise: start-up of every server plus a listing.
DEFAULT_CHECK_TIMEOUT = 60.0


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "check", help="connect to every server of a config and print their status"
    )
    add_config_argument(parser)
    parser.add_argument("--timeout", type=float, default=DEFAULT_CHECK_TIMEOUT, help="bound on the whole check (s)")


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import anyio

    return anyio.run(run_check, config_path(options.config), options.json, options.timeout, Output())


async def run_check(path: str, as_json: bool, timeout: float, out: Output) -> int:
    import json
    from contextlib import suppress

    import anyio

    from ..auth import no_interactive_login
    from ..base import ConnectionState
    from ..errors import AuthError, GroupStartError
    from ..group import ServerGroup

    group = ServerGroup(load(path, eager=True), errlog=None)
    try:
        # A check never opens a browser: a server that wants a sign-in is reported as needing one.
        with anyio.move_on_after(timeout) as scope, no_interactive_login():
            with suppress(GroupStartError):  # the table says which servers failed and why
                await (group.start() if as_json else start_with_progress(group, out))
            await group.list_tools()
        statuses = group.status()
        login = {
            name: f"mcp-connections login {path} {name}"
            for name in group.names
            if isinstance(error := group[name].error, AuthError) and error.needs_login
        }
    finally:
        await group.stop()
    if scope.cancelled_caught and not as_json:
        out.line(f"check timed out after {timeout:g}s")
    failed = scope.cancelled_caught or any(s.state is not ConnectionState.CONNECTED for s in statuses.values())
    if as_json:
        payload = {name: status_json(s) for name, s in statuses.items()}
        for name, command in login.items():
            payload[name].update(state="needs login", login_command=command)
        out.line(json.dumps(payload, indent=2))
    else:
        rows = status_rows(statuses)
        for row in rows:
            if row[0] in login:
                row[2], row[-1] = "needs login", f"run: {login[row[0]]}"
        out.table(STATUS_HEADERS, rows)
    return 1 if failed else 0

"""``mcp-connections serve [CONFIG] [--http [HOST:]PORT] [--token-env NAME] [--tool-names prefixed|auto] [--watch]``.

Runs and supervises every server of a config and serves their catalogue as one MCP server: over stdio
(stdout is the protocol, everything else goes to stderr) or, with ``--http``, over streamable HTTP at
``/mcp`` (first stdout line: ``serving http://HOST:PORT/mcp``). SIGHUP, and a change of the file with
``--watch``, reload the config (a config that does not parse is rejected, the old one keeps running).
stdin's end (stdio), SIGTERM and SIGINT stop every server and exit 0; a second Ctrl-C kills at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ._configs import DEFAULT_CONFIG, config_path, load

if TYPE_CHECKING:
    import anyio

    from ..gateway import Gateway

__all__ = ["register", "run"]

# How often --watch looks at the file, and how long it lets a burst of writes settle (ms).
WATCH_STEP_MS = 50
WATCH_DEBOUNCE_MS = 300


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve", help="run every server of a config, supervised, and serve them as one MCP server"
    )
    parser.add_argument(
        "config", nargs="?", default=DEFAULT_CONFIG, metavar="CONFIG", help="an mcpServers file (default: see configs)"
    )
    parser.add_argument("--http", metavar="[HOST:]PORT", help="serve streamable HTTP at /mcp (default host 127.0.0.1)")
    parser.add_argument("--token-env", metavar="NAME", help="require Authorization: Bearer $NAME on /mcp")
    parser.add_argument("--tool-names", choices=("prefixed", "auto"), default="prefixed", help="how tools are named")
    parser.add_argument("--watch", action="store_true", help="reload when the config file changes")
    parser.add_argument(
        "--request-timeout", type=float, default=None, metavar="S", help="calls' timeout unless an entry sets one"
    )


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import logging

    import anyio

    from ..gateway._http import parse_address

    address = None
    if options.http is not None:
        try:
            address = parse_address(options.http)
        except ValueError as exc:
            parser.error(f"--http: {exc}")
    token = None
    if options.token_env is not None:
        if address is None:
            parser.error("--token-env protects the HTTP endpoint; use it with --http")
        token = os.environ.get(options.token_env)
        if not token:
            parser.error(f"--token-env {options.token_env}: that environment variable is not set or empty")
    # What the gateway does (reloads, failures) is worth a line on stderr even without --verbose.
    if not options.verbose:
        logging.getLogger("mcp_connections").setLevel(logging.WARNING)
        logging.getLogger("mcp_connections.gateway").setLevel(logging.INFO)
        for handler in logging.getLogger().handlers:
            handler.setFormatter(logging.Formatter("mcp-connections: %(message)s"))
    path = os.path.abspath(config_path(options.config))
    configs = load(path)
    return anyio.run(_serve, path, configs, options, address, token)


async def _serve(path: str, configs: dict[str, Any], options: argparse.Namespace, address: Any, token: Any) -> int:
    import anyio

    from ..errors import GroupStartError
    from ..gateway import DEFAULT_REQUEST_TIMEOUT, Gateway, serve_http, serve_stdio

    timeout = options.request_timeout if options.request_timeout is not None else DEFAULT_REQUEST_TIMEOUT
    gateway = Gateway(configs, tool_names=options.tool_names, request_timeout=timeout)
    stop = anyio.Event()
    exit_code = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(_handle_signals, gateway, path, stop, tg)
        try:
            await gateway.__aenter__()  # the servers start in the background; requests wait for them

            async def report_start() -> None:
                nonlocal exit_code
                try:
                    await gateway.wait_started()
                except GroupStartError as exc:
                    _say(f"not serving: {exc}")
                    exit_code = 1
                    stop.set()
                    return
                _say_status(gateway, path)
                if options.watch:
                    tg.start_soon(_watch, gateway, path, stop)

            tg.start_soon(report_start)
            try:
                if address is None:
                    async with anyio.create_task_group() as serving:

                        async def stdio() -> None:
                            await serve_stdio(gateway)
                            stop.set()  # the client closed stdin

                        serving.start_soon(stdio)
                        await stop.wait()
                        serving.cancel_scope.cancel()
                else:
                    # Over HTTP the first line promises a working endpoint (health checks, scripts that read it
                    # and connect): the servers start first.
                    with anyio.CancelScope() as starting:

                        async def cancel_on_stop() -> None:
                            await stop.wait()
                            starting.cancel()

                        tg.start_soon(cancel_on_stop)
                        await gateway.started.wait()
                    if stop.is_set():  # a signal, or a required server failed
                        return exit_code
                    host, port = address

                    def ready(url: str) -> None:
                        print(f"serving {url}", flush=True)

                    await serve_http(gateway, host, port, token=token, stop=stop, on_ready=ready)
            finally:
                if exit_code == 0:
                    _say("stopping every server")
                await gateway.aclose()
        finally:
            tg.cancel_scope.cancel()
    return exit_code


async def _handle_signals(gateway: Gateway, path: str, stop: anyio.Event, tg: Any) -> None:
    import signal

    import anyio

    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    with anyio.open_signal_receiver(*signals) as received:
        async for signum in received:
            if signum == getattr(signal, "SIGHUP", None):
                tg.start_soon(_reload, gateway, path, "SIGHUP")
            elif not stop.is_set():
                stop.set()
            elif signum == signal.SIGINT:
                _kill_now(gateway)


def _kill_now(gateway: Gateway) -> None:
    """A second Ctrl-C: every server's process group killed, and out at once."""
    import contextlib
    import signal

    from ..stdio import StdioConnectionManager

    _say("second interrupt: killing every server now")
    for name in gateway.group.names:
        manager = gateway.group[name].manager
        pid = manager.pid if isinstance(manager, StdioConnectionManager) else None
        if pid:
            with contextlib.suppress(OSError):
                if sys.platform != "win32":
                    os.killpg(pid, signal.SIGKILL)  # each server leads its own process group
                else:  # Windows: the server itself (its job object ends the rest with it)
                    os.kill(pid, signal.SIGTERM)
    os._exit(130)


async def _reload(gateway: Gateway, path: str, why: str) -> None:
    from ..errors import ConfigError

    try:
        configs = load(path)
    except ConfigError as exc:
        _say(f"reload ({why}) rejected, the running config stays: {exc}")
        return
    try:
        diff = await gateway.reload(configs)
    except Exception as exc:  # never let a reload take the gateway down
        _say(f"reload ({why}) failed: {exc}")
        return
    _say(f"reloaded {path} ({why}): {diff}")


async def _watch(gateway: Gateway, path: str, stop: anyio.Event) -> None:
    from pathlib import Path

    try:
        import watchfiles
    except ImportError:
        _say("--watch needs watchfiles: pip install 'mcp-connections[watch]'; not watching")
        return
    target = Path(path)  # absolute: run() made it so

    def concerns(change: Any, changed: str) -> bool:
        # Editors replace files (write a temporary, rename): watch the folder, keep events about the file.
        return Path(changed).name == target.name

    async for _changes in watchfiles.awatch(
        target.parent,
        watch_filter=concerns,
        stop_event=stop,
        step=WATCH_STEP_MS,
        debounce=WATCH_DEBOUNCE_MS,
        recursive=False,
    ):
        await _reload(gateway, path, "file changed")


def _say(text: str) -> None:
    print(f"mcp-connections: {text}", file=sys.stderr, flush=True)


def _say_status(gateway: Gateway, path: str) -> None:
    statuses = gateway.group.status()
    parts = [f"{s.name} {s.state}" + (f" ({s.error.splitlines()[0]})" if s.error else "") for s in statuses.values()]
    _say(f"serving {len(statuses)} servers from {path}: {', '.join(parts) or 'none'}")

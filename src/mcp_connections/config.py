"""The ``mcpServers`` configuration format, parsed and checked: pure logic, no I/O but reading the file.

The format is the one Claude Desktop, Cursor and other MCP hosts use::

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}"]},
        "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}
    }}

(VS Code's ``{"servers": {...}}`` is read too.) Extras this library understands: ``transport`` (or
``type``), ``disabled``, ``required``, ``restart``, ``init_timeout``, ``request_timeout``,
``ping_interval``, ``inherit_env`` (``true``, or a list of variable names: more of the caller's
environment than the safe default), ``include_tools`` and ``exclude_tools`` (lists of shell-style
patterns on the tools' own names, for the group's catalogue; exclude wins), ``auth`` on remote servers
(``"oauth"``, or an object with ``type`` ``"oauth"``, ``"client_credentials"`` or ``"bearer"``: see
``mcp_connections.auth``), ``start`` (``"eager"``, the default, or ``"lazy"``: started on first use, not by
the group's ``start()``) and ``idle_timeout`` (seconds without a request after which the server is stopped, to
start again on the next use); keys it does not know are left alone, since hosts add their own. ``${VAR}``
and ``${VAR:-default}`` are expanded from the environment in ``command``, ``args``, ``env``, ``cwd``,
``url``, ``headers`` and ``auth`` by plain string substitution, never through a shell. Every mistake
raises a ``ConfigError`` that names the file, the server and the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from ._redact import redact_url
from .errors import ConfigError
from .restart import RestartPolicy
from .transports import registry

__all__ = ["ServerConfig", "StartMode", "Transport", "load_config", "parse_config"]

#: A transport's canonical name, as ``mcp_connections.transports.registry`` knows it: ``"stdio"``,
#: ``"streamable-http"``, ``"sse"``, ``"websocket"``, or one registered since.
Transport: TypeAlias = str

#: When a group starts a server: with the group (``"eager"``) or on its first use (``"lazy"``).
StartMode: TypeAlias = Literal["eager", "lazy"]
START_MODES: tuple[StartMode, ...] = ("eager", "lazy")

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ServerConfig:
    """One server of a config file, checked and with its variables expanded."""

    name: str
    transport: Transport | None  # None: a URL whose transport is found out (streamable HTTP, then SSE)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    disabled: bool = False
    required: bool = False
    restart: RestartPolicy | Literal["default"] | None = "default"  # "default": whatever the group says
    init_timeout: float | None = None
    request_timeout: float | None = None
    ping_interval: float | None = None
    inherit_env: bool | tuple[str, ...] = False
    mode: str | None = None  # None: whatever the group says ("auto" by default); else "legacy" or a version
    include_tools: tuple[str, ...] | None = None  # None: every tool; else shell-style patterns on tool names
    exclude_tools: tuple[str, ...] = ()
    # Remote servers: {"type": "oauth" | "client_credentials" | "bearer", ...}, variables expanded.
    auth: Mapping[str, Any] | None = None
    start: StartMode | None = None  # None: whatever the group says (eager unless ServerGroup(lazy=True))
    idle_timeout: float | None = None  # None: whatever the group says (no idle stop by default)

    def __repr__(self) -> str:
        # env and header values are secrets more often than not: show their names only.
        target = f"command={self.command!r}" if self.command is not None else f"url={redact_url(self.url or '')!r}"
        auth = f", auth={self.auth.get('type', 'oauth')!r}" if self.auth is not None else ""
        return (
            f"ServerConfig(name={self.name!r}, transport={self.transport!r}, {target}, "
            f"env=[{', '.join(self.env)}], headers=[{', '.join(self.headers)}]{auth})"
        )


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> dict[str, ServerConfig]:
    """Read and check a config file: ``{name: ServerConfig}`` in file order, disabled servers included."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"no such file (looked in {Path(path).resolve()})", source=source) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc}", source=source) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", source=source) from exc
    return parse_config(data, environ, source=source)


def parse_config(
    data: Any, environ: Mapping[str, str] | None = None, *, source: str = "<config>"
) -> dict[str, ServerConfig]:
    """Check a config already loaded from JSON: ``{name: ServerConfig}`` in order, disabled ones included."""
    env = os.environ if environ is None else environ
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a JSON object with an 'mcpServers' object, got {_kind(data)}", source=source)
    key = "mcpServers" if "mcpServers" in data else "servers" if "servers" in data else None
    if key is None:
        raise ConfigError("expected an 'mcpServers' object at the top level", source=source)
    servers = data[key]
    if not isinstance(servers, Mapping):
        raise ConfigError(f"'{key}' must be an object of servers by name, got {_kind(servers)}", source=source)
    return {str(name): _parse_server(str(name), entry, env, source) for name, entry in servers.items()}


def _parse_server(name: str, entry: Any, environ: Mapping[str, str], source: str) -> ServerConfig:
    def error(message: str, field_name: str | None = None) -> ConfigError:
        where = f"field {field_name!r}: " if field_name else ""
        return ConfigError(where + message, source=source, server=name)

    if not isinstance(entry, Mapping):
        raise error(f"a server must be an object, got {_kind(entry)}")

    def expand(value: str, field_name: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            variable, default = match.group(1), match.group(2)
            if variable in environ:
                return environ[variable]
            if default is not None:
                return default
            raise error(
                f"environment variable {variable!r} is not set and has no default (${{VAR:-default}})", field_name
            )

        return _VARIABLE.sub(substitute, value)

    def string(field_name: str, required: bool = False) -> str | None:
        value = entry.get(field_name)
        if value is None:
            if required:
                raise error("is required", field_name)
            return None
        if not isinstance(value, str):
            raise error(f"expected a string, got {_kind(value)}", field_name)
        return expand(value, field_name)

    def string_map(field_name: str) -> dict[str, str]:
        value = entry.get(field_name)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise error(f"expected an object of strings, got {_kind(value)}", field_name)
        return {str(k): expand(v, f"{field_name}.{k}") for k, v in value.items()}

    def boolean(field_name: str) -> bool:
        value = entry.get(field_name, False)
        if not isinstance(value, bool):
            raise error(f"expected true or false, got {_kind(value)}", field_name)
        return value

    def seconds(field_name: str) -> float | None:
        value = entry.get(field_name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise error(f"expected a number of seconds > 0, got {value!r}", field_name)
        return float(value)

    command = string("command")
    url = string("url")
    if command is None and url is None:
        raise error("needs either 'command' (a local server) or 'url' (a remote one)")
    if command is not None and url is not None:
        raise error("has both 'command' and 'url'; keep the one that says how to reach the server")

    raw_transport = entry.get("transport", entry.get("type"))
    field_name = "transport" if "transport" in entry else "type"
    transport: Transport | None
    if raw_transport is None:
        transport = registry.for_command() if command is not None else _guess_transport(url or "")
    elif not isinstance(raw_transport, str) or raw_transport not in registry:
        known = ", ".join(sorted(registry.names()))
        raise error(f"unknown transport {raw_transport!r}; use one of {known}", field_name)
    else:
        transport = registry.canonical(raw_transport)
    needs = registry.get(transport).needs
    if needs == "command" and command is None:
        raise error(f"the {transport} transport needs 'command'", field_name)
    if needs == "url" and url is None:
        raise error(f"the {transport} transport needs 'url'", field_name)

    inherit_env = entry.get("inherit_env", False)
    if isinstance(inherit_env, list) and all(isinstance(n, str) for n in inherit_env):
        inherit_env = tuple(inherit_env)
    elif not isinstance(inherit_env, bool):
        raise error(f"expected true, false or a list of variable names, got {_kind(inherit_env)}", "inherit_env")

    mode = string("mode")
    if mode is not None:
        from ._generations import check_mode  # the SDK's list of versions, only when a config names one

        if (problem := check_mode(mode)) is not None:
            raise error(problem, "mode")

    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise error(f"expected a list of strings, got {_kind(args)}", "args")

    def patterns(field_name: str) -> tuple[str, ...] | None:
        value = entry.get(field_name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            shown = (
                _kind(value)
                if not isinstance(value, list)
                else "a list with " + ", ".join(sorted({_kind(p) for p in value if not isinstance(p, str)}))
            )
            raise error(
                f'expected a list of shell-style patterns (strings) such as ["read_*"], got {shown}', field_name
            )
        return tuple(value)

    start = entry.get("start")
    if start is not None and start not in START_MODES:
        raise error(f'expected "eager" or "lazy", got {start!r}', "start")
    if start == "lazy" and entry.get("required") is True:
        raise error(
            "a lazy server cannot be required: required servers are started (and checked) with the group; "
            'drop "required" or "start": "lazy"',
            "start",
        )

    return ServerConfig(
        name=name,
        transport=transport,
        command=command,
        args=tuple(expand(a, "args") for a in args),
        env=string_map("env"),
        cwd=string("cwd"),
        url=url,
        headers=string_map("headers"),
        disabled=boolean("disabled"),
        required=boolean("required"),
        restart=_parse_restart(entry.get("restart", "default"), error),
        init_timeout=seconds("init_timeout"),
        request_timeout=seconds("request_timeout"),
        ping_interval=seconds("ping_interval"),
        inherit_env=inherit_env,
        mode=mode,
        include_tools=patterns("include_tools"),
        exclude_tools=patterns("exclude_tools") or (),
        auth=_parse_auth(entry.get("auth"), transport, command, expand, error),
        start=start,
        idle_timeout=seconds("idle_timeout"),
    )


# The settings each kind of "auth" takes (all optional but those that kind needs), and which are strings.
_AUTH_SETTINGS: dict[str, tuple[str, ...]] = {
    "oauth": (
        "client_id",
        "client_secret",
        "scopes",
        "redirect_uri",
        "client_metadata_url",
        "token_endpoint_auth_method",
        "client_name",
    ),
    "client_credentials": (
        "client_id",
        "client_secret",
        "scopes",
        "token_endpoint_auth_method",
        "private_key",
        "private_key_file",
        "signing_algorithm",
        "assertion",
        "issuer",
    ),
    "bearer": ("token",),
}


def _parse_auth(value: Any, transport: Transport | None, command: str | None, expand: Any, error: Any) -> Any:
    """The ``auth`` field, checked and with its variables expanded: a mapping with ``type``, or None."""
    if value is None:
        return None
    if command is not None or transport == "stdio":
        raise error("only remote servers (a 'url') take auth; a stdio server gets credentials through 'env'", "auth")
    if transport == "websocket":
        raise error("the websocket transport takes no auth; use 'headers'", "auth")
    if value == "oauth":
        return MappingProxyType({"type": "oauth"})
    if not isinstance(value, Mapping):
        raise error(f'expected "oauth" or an object with a "type", got {_kind(value)}', "auth")
    kind = value.get("type", "oauth")
    if kind not in _AUTH_SETTINGS:
        raise error(f"unknown type {kind!r}; use one of {', '.join(_AUTH_SETTINGS)}", "auth.type")
    known = _AUTH_SETTINGS[kind]
    unknown = sorted(set(value) - {"type", *known})
    if unknown:
        raise error(f"unknown settings {unknown} for type {kind!r}; known: {sorted(known)}", "auth")
    parsed: dict[str, Any] = {"type": kind}
    for key in known:
        item = value.get(key)
        if item is None:
            continue
        if key == "scopes" and isinstance(item, list) and all(isinstance(s, str) for s in item):
            parsed[key] = tuple(expand(s, f"auth.{key}") for s in item)
        elif isinstance(item, str):
            parsed[key] = expand(item, f"auth.{key}")
        else:
            expected = "a string or a list of strings" if key == "scopes" else "a string"
            raise error(f"expected {expected}, got {_kind(item)}", f"auth.{key}")
    if kind == "bearer" and not parsed.get("token"):
        raise error("a bearer auth needs 'token' (for example \"${TOKEN}\")", "auth.token")
    if kind == "client_credentials":
        if not parsed.get("client_id"):
            raise error("client_credentials needs 'client_id'", "auth.client_id")
        secrets = [k for k in ("client_secret", "private_key", "private_key_file", "assertion") if k in parsed]
        if len(secrets) != 1:
            raise error(
                "client_credentials needs exactly one of 'client_secret', 'private_key', 'private_key_file' "
                f"or 'assertion' (got {secrets or 'none'})",
                "auth",
            )
    method = parsed.get("token_endpoint_auth_method")
    if method is not None and method not in ("none", "client_secret_basic", "client_secret_post", "private_key_jwt"):
        raise error(
            f"unknown method {method!r}; use none, client_secret_basic, client_secret_post or private_key_jwt",
            "auth.token_endpoint_auth_method",
        )
    return MappingProxyType(parsed)


def _parse_restart(value: Any, error: Any) -> RestartPolicy | Literal["default"] | None:
    if value == "default":
        return "default"
    if value == "no" or value is False:
        return None
    if value == "on-failure" or value is True:
        return RestartPolicy()
    if isinstance(value, Mapping):
        known = {f.name for f in fields(RestartPolicy)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise error(f"unknown restart settings {unknown}; known: {sorted(known)}", "restart")
        for key, item in value.items():
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise error(f"{key} must be a number, got {_kind(item)}", f"restart.{key}")
        try:
            return RestartPolicy(**value)
        except (TypeError, ValueError) as exc:
            raise error(str(exc), "restart") from exc
    raise error(f'expected "no", "on-failure" or an object of restart settings, got {value!r}', "restart")


def _guess_transport(url: str) -> Transport | None:
    """The transport that claims a URL (``ws://`` is WebSocket, a path ending in ``/sse`` SSE), or None: found
    out by connecting (streamable HTTP, then SSE)."""
    return registry.guess(url)


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)

"""Which config file a command reads, and loading it (with ``--server`` narrowing).

Design: a command given no ``CONFIG`` reads ``./mcp.json`` when it exists; otherwise it looks for the
config files of the MCP hosts a user already has (Claude Desktop, Claude Code, Cursor, VS Code,
Windsurf, Gemini CLI, Goose), project files in the current directory first, then the user's own, and
reads the first one that declares servers, saying on stderr which file it chose. Where each host keeps
its file is pure path logic (``host_config_paths``) over a home directory, a platform and an
environment, so it is tested for Linux, macOS and Windows on any machine.

Hosts spell the format slightly differently; ``read_config_data`` turns each into the ``mcpServers``
shape that ``parse_config`` checks: VS Code's ``servers`` (read by ``parse_config`` itself), Gemini's
``httpUrl`` and Windsurf's ``serverUrl`` (``url``), and Goose's YAML ``extensions`` (``cmd``, ``envs``,
``uri``, ``enabled``). Goose's file is YAML: it is read when PyYAML is installed (the ``yaml`` extra)
and otherwise skipped with a message that says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import ServerConfig

__all__ = [
    "DEFAULT_CONFIG",
    "HostConfig",
    "add_config_argument",
    "config_path",
    "discover_configs",
    "host_config_paths",
    "load",
    "read_config_data",
    "skipped_yaml",
    "yaml_available",
]

DEFAULT_CONFIG = "mcp.json"

# The top-level keys under which hosts keep their servers.
_SERVER_KEYS = ("mcpServers", "servers", "extensions")


@dataclass(frozen=True)
class HostConfig:
    """A place where an MCP host keeps its servers: the host's name and the file's absolute path."""

    host: str
    path: PurePath
    scope: str  # "project" (in the current directory) or "user"


def host_config_paths(home: PurePath, platform: str, environ: Mapping[str, str], cwd: PurePath) -> list[HostConfig]:
    """Every place a host may keep its config, in the order discovery tries them (no I/O).

    ``platform`` is ``sys.platform`` (``linux``, ``darwin``, ``win32``); ``environ`` supplies ``APPDATA``
    and ``XDG_CONFIG_HOME`` where the platform uses them.
    """
    windows = platform.startswith("win")
    path_type: type[PurePath] = PureWindowsPath if windows else PurePosixPath
    home = path_type(home)
    cwd = path_type(cwd)
    if windows:
        appdata = path_type(environ.get("APPDATA") or home / "AppData" / "Roaming")
        app_config = appdata  # where apps keep per-user settings
        goose = appdata / "Block" / "goose" / "config" / "config.yaml"
    elif platform == "darwin":
        app_config = home / "Library" / "Application Support"
        goose = home / ".config" / "goose" / "config.yaml"
    else:
        xdg = environ.get("XDG_CONFIG_HOME")
        app_config = path_type(xdg) if xdg else home / ".config"
        goose = app_config / "goose" / "config.yaml"
    return [
        HostConfig("mcp.json (this directory)", cwd / "mcp.json", "project"),
        HostConfig("Claude Code (project)", cwd / ".mcp.json", "project"),
        HostConfig("Cursor (project)", cwd / ".cursor" / "mcp.json", "project"),
        HostConfig("VS Code (workspace)", cwd / ".vscode" / "mcp.json", "project"),
        HostConfig("Gemini CLI (project)", cwd / ".gemini" / "settings.json", "project"),
        HostConfig("Claude Desktop", app_config / "Claude" / "claude_desktop_config.json", "user"),
        HostConfig("Claude Code", home / ".claude.json", "user"),
        HostConfig("Cursor", home / ".cursor" / "mcp.json", "user"),
        HostConfig("VS Code", app_config / "Code" / "User" / "mcp.json", "user"),
        HostConfig("Windsurf", home / ".codeium" / "windsurf" / "mcp_config.json", "user"),
        HostConfig("Gemini CLI", home / ".gemini" / "settings.json", "user"),
        HostConfig("Goose", goose, "user"),
    ]


def discover_configs(
    home: Path | None = None,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> list[HostConfig]:
    """The host configs that exist here and declare servers, in discovery order."""
    found = []
    candidates = host_config_paths(
        home if home is not None else Path.home(),
        platform if platform is not None else sys.platform,
        environ if environ is not None else os.environ,
        cwd if cwd is not None else Path.cwd(),
    )
    for candidate in candidates:
        path = Path(candidate.path)
        if path.is_file() and not skipped_yaml(path) and _declares_servers(path):
            found.append(candidate)
    return found


def yaml_available() -> bool:
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def skipped_yaml(path: PurePath) -> bool:
    """Whether discovery skips this file: YAML (Goose's) without PyYAML to read it."""
    return path.suffix.lower() in (".yaml", ".yml") and not yaml_available()


def _declares_servers(path: Path) -> bool:
    """Whether a file has a servers section; files that hosts share with other settings often have none."""
    try:
        data = read_config_data(path)
    except Exception:
        return True  # a broken file is still the user's config: reading it will say what is wrong
    return isinstance(data, Mapping) and any(isinstance(data.get(key), Mapping) and data[key] for key in _SERVER_KEYS)


def read_config_data(path: Path) -> Any:
    """A host's config file read into the ``mcpServers`` shape (JSON, or Goose's YAML)."""
    from ..errors import ConfigError

    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"no such file (looked in {path.resolve()})", source=source) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc}", source=source) from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        return _goose_to_mcp_servers(_parse_yaml(text, source), source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", source=source) from exc
    return _normalize_json(data)


def _normalize_json(data: Any) -> Any:
    """Gemini's ``httpUrl`` and Windsurf's ``serverUrl`` become ``url``; everything else is left alone."""
    if not isinstance(data, Mapping):
        return data
    key = "mcpServers" if "mcpServers" in data else "servers" if "servers" in data else None
    if key is None or not isinstance(data[key], Mapping):
        return data
    servers: dict[str, Any] = {}
    for name, entry in data[key].items():
        if isinstance(entry, Mapping) and "url" not in entry and "command" not in entry:
            entry = dict(entry)
            if "httpUrl" in entry:
                entry["url"] = entry.pop("httpUrl")
                entry.setdefault("transport", "streamable-http")
            elif "serverUrl" in entry:
                entry["url"] = entry.pop("serverUrl")
        servers[name] = entry
    return {**data, key: servers}


def _parse_yaml(text: str, source: str) -> Any:
    from ..errors import ConfigError

    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ConfigError(
            "this is a YAML file (Goose's config) and PyYAML is not installed; "
            "install it with `pip install 'mcp-connections[yaml]'`, or pass a JSON config",
            source=source,
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", source=source) from exc


def _goose_to_mcp_servers(data: Any, source: str) -> dict[str, Any]:
    """Goose's ``extensions`` as ``mcpServers``: stdio ``cmd``/``args``/``envs``, remote ``uri``; builtins skipped."""
    from ..errors import ConfigError

    if not isinstance(data, Mapping) or not isinstance(data.get("extensions", {}), Mapping):
        raise ConfigError("expected a YAML mapping with an 'extensions' mapping (Goose's config)", source=source)
    servers: dict[str, Any] = {}
    for name, extension in (data.get("extensions") or {}).items():
        if not isinstance(extension, Mapping):
            continue
        kind = str(extension.get("type", "stdio")).lower()
        entry: dict[str, Any] = {"disabled": extension.get("enabled", True) is False}
        if kind == "stdio" and extension.get("cmd"):
            entry.update(command=extension["cmd"], args=list(extension.get("args") or []))
            if extension.get("envs"):
                entry["env"] = {str(k): str(v) for k, v in extension["envs"].items()}
        elif kind in ("sse", "streamable_http", "streamable-http", "http") and extension.get("uri"):
            entry.update(url=extension["uri"], transport="sse" if kind == "sse" else "streamable-http")
            if extension.get("headers"):
                entry["headers"] = {str(k): str(v) for k, v in extension["headers"].items()}
        else:
            continue  # builtin and frontend extensions run inside Goose: nothing to start
        servers[str(name)] = entry
    return {"mcpServers": servers}


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        nargs="?",
        default=DEFAULT_CONFIG,
        metavar="CONFIG",
        help="an mcpServers file (default: ./mcp.json, else the first host config found; see `configs`)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def config_path(path: str) -> str:
    """The config file to read: ``path`` as given, or (for the default) ./mcp.json or a host's config.

    Which file was chosen goes to stderr, so that stdout stays the command's output.
    """
    from ..errors import ConfigError

    candidate = Path(path)
    if path != DEFAULT_CONFIG or candidate.exists():
        return path
    found = discover_configs()
    for place in host_config_paths(Path.home(), sys.platform, os.environ, Path.cwd()):
        if skipped_yaml(place.path) and Path(place.path).is_file():
            print(
                f"mcp-connections: skipping {place.path} ({place.host}): it is YAML and PyYAML is not "
                "installed (pip install 'mcp-connections[yaml]')",
                file=sys.stderr,
            )
    if not found:
        raise ConfigError(
            f"no config file given, none at {candidate.resolve()}, and no MCP host config found "
            "(Claude Desktop, Claude Code, Cursor, VS Code, Windsurf, Gemini CLI, Goose); pass CONFIG",
            source=path,
        )
    chosen = found[0]
    print(f"mcp-connections: using {chosen.path} ({chosen.host})", file=sys.stderr, flush=True)
    return str(chosen.path)


def load(path: str, only: str | None = None, *, eager: bool = False) -> dict[str, ServerConfig]:
    """The servers of a config file, or only the one named ``only``. ``eager`` starts every one eagerly: a one-shot
    command (check, tools, call) connects to what it reports on, and its result is never a cached list;
    ``"start": "lazy"`` is for hosts that run long (serve, watch)."""
    import dataclasses

    from ..config import parse_config
    from ..errors import ConfigError

    configs = parse_config(read_config_data(Path(path)), source=path)
    if only is not None:
        if only not in configs:
            raise ConfigError(f"no server {only!r} (servers: {', '.join(configs) or 'none'})", source=path)
        configs = {only: configs[only]}
    if not eager:
        return configs
    return {name: dataclasses.replace(config, start="eager") for name, config in configs.items()}

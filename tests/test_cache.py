"""The catalogue's disk cache, with real servers: a warm cache answers tools() at once, live lists replace it, and a
cache that is corrupt, foreign, unreadable, expired, turned off or cleared never gets in the way.

Every test has its own cache directory (the autouse ``catalogue_cache_in_tmp`` fixture of conftest.py sets
``MCP_CONNECTIONS_CACHE_DIR``), so no test reads or writes the user's real cache.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_connections import ConnectionState, ServerGroup
from mcp_connections._cache import CACHE_DIR_ENV, CachedList, CatalogueCache, cache_key, default_cache_dir
from mcp_connections.config import parse_config

from .helpers import MISBEHAVING, SERVERS, Snapshot, assert_no_leaks, live_children, pid_alive

pytestmark = pytest.mark.anyio

TTL_SERVER = SERVERS / "ttl_server.py"
SCRIPT = Path(sys.executable).parent / "mcp-connections"
DEADLINE = 10.0


def server(*flags: str, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(MISBEHAVING), *flags], **extra}


def group_of(servers: dict[str, dict[str, Any]], **options: Any) -> ServerGroup:
    return ServerGroup.from_config({"mcpServers": servers}, errlog=io.StringIO(), **options)


def running_servers() -> list[Any]:
    return [p for p in live_children() if pid_alive(p.pid)]


def cache_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.exists() else []


async def warm(servers: dict[str, dict[str, Any]], **options: Any) -> list[str]:
    """Run a group once, so that every server is listed and the cache written; the catalogue's names."""
    async with group_of(servers, **options) as group:
        names = [t.name for t in await group.tools()]
        await group.prompts()
        await group.resources()
        return names


async def eventually(condition: Any, timeout: float = DEADLINE) -> None:
    with anyio.fail_after(timeout):
        while True:
            result = condition()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return
            await anyio.sleep(0.02)


# -- a warm cache ---------------------------------------------------------------------------------------------


async def test_a_warm_cache_answers_tools_at_once_and_starts_no_server(catalogue_cache_in_tmp: Path) -> None:
    servers = {"one": server(), "two": server("--extra-tool", "extra")}
    names = await warm(servers)
    assert len(cache_files(catalogue_cache_in_tmp)) == 2
    before = Snapshot.take()
    changes: list[object] = []
    async with group_of(servers, lazy=True) as group:
        group.on_tools_changed(changes.append)
        started = time.perf_counter()
        tools = await group.tools()
        assert time.perf_counter() - started < 1.0  # no server start (each takes longer); the figure is in bench
        assert [t.name for t in tools] == names
        assert not running_servers()
        status = group.status()["two"]
        assert status.state is ConnectionState.IDLE and status.cached and status.tools == 12
        assert (await group.call("two__extra", {"text": "x"})).content[0].text == "extra"  # type: ignore[union-attr]
        assert len(running_servers()) == 1
        await eventually(lambda: not group.status()["two"].cached)
        await anyio.sleep(0.2)
        assert changes == []  # the live lists are those of the cache: nothing changed
        assert [p.name for p in await group.prompts()] == []
    await assert_no_leaks(before)


async def test_live_lists_that_differ_from_the_cache_replace_it_and_fire_on_tools_changed(tmp_path: Path) -> None:
    extra = tmp_path / "tools.txt"
    extra.write_text("alpha\n")
    servers = {"srv": server("--extra-tools-file", str(extra))}
    assert "srv__alpha" in await warm(servers)
    extra.write_text("beta\n")
    changes: list[object] = []
    async with group_of(servers, lazy=True) as group:
        group.on_tools_changed(changes.append)
        assert "srv__alpha" in [t.name for t in await group.tools()]  # cached, not started
        await group.call("srv__echo", {"text": "wake up"})
        await eventually(lambda: bool(changes))
        names = [t.name for t in await group.tools()]
        assert "srv__beta" in names and "srv__alpha" not in names
        assert changes[0] is group
    async with group_of(servers, lazy=True) as group:  # the cache now holds the new lists
        assert "srv__beta" in [t.name for t in await group.tools()]
        assert not running_servers()


async def test_the_cache_is_written_once_every_list_is_known_and_holds_no_secret(catalogue_cache_in_tmp: Path) -> None:
    servers = {"secretive": server("--dynamic", env={"API_TOKEN": "s3cr3t-value"}, request_timeout=30)}
    await warm(servers)
    [path] = cache_files(catalogue_cache_in_tmp)
    content = path.read_text()
    assert "s3cr3t" not in content and "API_TOKEN" not in content and str(MISBEHAVING) not in content
    document = json.loads(content)
    config = parse_config({"mcpServers": servers})["secretive"]
    assert document["server"] == "secretive" and document["key"] == cache_key(config)
    assert path.name == f"{cache_key(config)}.json"
    assert set(document["lists"]) == {"tools", "prompts", "resources"}
    assert document["lists"]["tools"]["expires_at"] is None  # a legacy server gives no ttlMs
    assert not list(catalogue_cache_in_tmp.glob(".writing-*"))  # the temporary file of the atomic write is gone


def test_the_key_changes_with_what_the_server_is_not_with_how_it_is_used() -> None:
    def key(**entry: Any) -> str:
        return cache_key(parse_config({"mcpServers": {"s": {"command": "x", **entry}}})["s"])

    base = key()
    assert key(args=["--other"]) != base and key(env={"A": "1"}) != base and key(env={"A": "2"}) != key(env={"A": "1"})
    assert key(cwd="/tmp") != base and key(mode="legacy") != base
    assert key(request_timeout=5, start="lazy", idle_timeout=9, exclude_tools=["x"], restart="no") == base
    renamed = cache_key(parse_config({"mcpServers": {"t": {"command": "x"}}})["t"])
    assert renamed != base


async def test_a_config_change_invalidates_that_servers_entry_only() -> None:
    await warm({"a": server(), "b": server()})
    async with group_of({"a": server(), "b": server("--extra-tool", "new")}, lazy=True) as group:
        assert group.status()["a"].cached and not group.status()["b"].cached
        names = [t.name for t in await group.tools()]  # b has no cached list: tools() starts it
        assert "b__new" in names
        assert group.status()["a"].state is ConnectionState.IDLE
        assert group.status()["b"].state is ConnectionState.CONNECTED


async def test_a_lazy_server_that_fails_keeps_its_cached_tools_and_says_why(tmp_path: Path) -> None:
    marker = tmp_path / "broken"
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(
        "import os, sys\n"
        f"if os.path.exists({str(marker)!r}):\n"
        "    sys.stderr.write('broken today\\n'); sys.exit(5)\n"
        f"os.execv(sys.executable, [sys.executable, {str(MISBEHAVING)!r}])\n"
    )
    servers = {"w": {"command": sys.executable, "args": [str(wrapper)]}}
    names = await warm(servers)
    marker.touch()
    async with group_of(servers, lazy=True) as group:
        with pytest.raises(Exception, match="exited with code 5"):
            await group.call("w__echo", {"text": "x"})
        status = group.status()["w"]
        assert status.state is ConnectionState.FAILED and "broken today" in (status.error or "")
        assert [t.name for t in await group.tools()] == names  # kept, so that the next use can try again
        marker.unlink()
        result = await group.call("w__echo", {"text": "back"})
        assert result.content[0].text == "back"  # type: ignore[union-attr]


# -- a cache that cannot be used -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("not json at all {", "is not JSON"),
        (json.dumps({"format": "something else", "version": 1}), "is not a catalogue cache"),
        (json.dumps([1, 2, 3]), "is not a catalogue cache"),
        ("foreign-key", "written for another server"),
        ("bad-items", "is corrupt"),
        ("directory", "cannot read"),
    ],
)
async def test_a_corrupt_foreign_or_unreadable_cache_is_ignored_with_a_log_line(
    damage: str, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    servers = {"srv": server()}
    await warm(servers)
    cache = CatalogueCache()
    config = parse_config({"mcpServers": servers})["srv"]
    path = cache.path_for(config)
    if damage == "foreign-key":
        document = json.loads(path.read_text())
        document["key"] = "0" * 64
        path.write_text(json.dumps(document))
    elif damage == "bad-items":
        document = json.loads(path.read_text())
        document["lists"]["tools"]["items"] = [{"name": 42}]
        path.write_text(json.dumps(document))
    elif damage == "directory":
        path.unlink()
        path.mkdir()
    else:
        path.write_text(damage)
    caplog.set_level(logging.WARNING, "mcp_connections")
    async with group_of(servers, lazy=True) as group:
        assert not group.status()["srv"].cached
        assert len(await group.tools()) == 11  # no usable list: tools() started the server
        assert group.status()["srv"].state is ConnectionState.CONNECTED
    assert any(said in r.getMessage() and "srv" in r.getMessage() for r in caplog.records)
    if damage != "directory":
        assert json.loads(path.read_text())["key"] == cache_key(config)  # replaced by a good one


# -- expiry --------------------------------------------------------------------------------------------------


async def test_a_modern_servers_lists_expire_by_its_ttl_hint(catalogue_cache_in_tmp: Path) -> None:
    servers = {"ttl": {"command": sys.executable, "args": [str(TTL_SERVER), "1500", "fresh"]}}
    written = time.time()
    await warm(servers)
    [path] = cache_files(catalogue_cache_in_tmp)
    expires_at = json.loads(path.read_text())["lists"]["tools"]["expires_at"]
    assert written + 1.0 < expires_at < time.time() + 1.6
    async with group_of(servers, lazy=True) as group:
        if time.time() < expires_at - 0.3:  # (a loaded machine may have used the 1.5 s up already)
            assert [t.name for t in await group.tools()] == ["ttl__fresh"]
            assert group.status()["ttl"].state is ConnectionState.IDLE
        await anyio.sleep(max(0.0, expires_at - time.time()) + 0.1)
        assert [t.name for t in await group.tools()] == ["ttl__fresh"]  # expired: tools() started it to list it
        assert group.status()["ttl"].state is ConnectionState.CONNECTED
    async with group_of(servers, lazy=True) as group:
        assert group.status()["ttl"].cached  # the second run wrote it again, with a new expiry


def test_an_expired_list_is_not_loaded_the_others_are(tmp_path: Path) -> None:
    import mcp_types as types

    cache = CatalogueCache(tmp_path)
    config = parse_config({"mcpServers": {"s": {"command": "x"}}})["s"]
    tool = types.Tool(name="t", input_schema={"type": "object"})
    cache.save(
        config,
        {
            "tools": CachedList([tool], time.time() - 1),
            "prompts": CachedList([], time.time() + 60),
            "resources": CachedList([], None),
        },
    )
    assert set(cache.load(config)) == {"prompts", "resources"}
    cache.save(config, {"tools": CachedList([tool], None)})
    assert cache.load(config)["tools"].items == [tool]


async def test_a_modern_server_that_sends_the_default_ttl_of_zero_is_cached_without_expiry(
    catalogue_cache_in_tmp: Path,
) -> None:
    demo = {"command": sys.executable, "args": ["-m", "mcp_connections._demo_server"]}
    async with group_of({"demo": demo}) as group:
        await group.tools()
        assert group["demo"].protocol_version == "2026-07-28"
        await eventually(lambda: len(cache_files(catalogue_cache_in_tmp)) == 1)
    [path] = cache_files(catalogue_cache_in_tmp)
    assert json.loads(path.read_text())["lists"]["tools"]["expires_at"] is None
    async with group_of({"demo": demo}, lazy=True) as group:
        assert len(await group.tools()) == 7 and group.status()["demo"].state is ConnectionState.IDLE


# -- turned off, elsewhere, cleared --------------------------------------------------------------------------


async def test_cache_false_neither_reads_nor_writes(catalogue_cache_in_tmp: Path) -> None:
    servers = {"srv": server()}
    await warm(servers, cache=False)
    assert cache_files(catalogue_cache_in_tmp) == []
    await warm(servers)
    async with group_of(servers, lazy=True, cache=False) as group:
        assert not group.status()["srv"].cached
        assert len(await group.tools()) == 11
        assert group.status()["srv"].state is ConnectionState.CONNECTED


async def test_cache_dir_puts_the_cache_elsewhere(tmp_path: Path, catalogue_cache_in_tmp: Path) -> None:
    await warm({"srv": server()}, cache_dir=tmp_path / "mine")
    assert len(cache_files(tmp_path / "mine")) == 1 and cache_files(catalogue_cache_in_tmp) == []


def test_the_default_directory_is_the_user_cache_unless_the_variable_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import platformdirs

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv(CACHE_DIR_ENV)
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("mcp-connections", appauthor=False)) / "catalogue"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "mcp_connections"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)


async def test_cache_clear_on_the_command_line_empties_the_cache(catalogue_cache_in_tmp: Path) -> None:
    await warm({"a": server(), "b": server()})
    assert len(cache_files(catalogue_cache_in_tmp)) == 2
    (catalogue_cache_in_tmp / "notes.txt").write_text("not ours")
    shown = cli("cache", "dir")
    assert shown.returncode == 0 and shown.stdout.strip() == str(catalogue_cache_in_tmp)
    cleared = cli("cache", "clear")
    assert cleared.returncode == 0, cleared.stderr
    assert "2" in cleared.stdout and str(catalogue_cache_in_tmp) in cleared.stdout
    assert cache_files(catalogue_cache_in_tmp) == []
    assert (catalogue_cache_in_tmp / "notes.txt").exists()  # only cache entries are removed
    again = cli("cache", "clear")
    assert again.returncode == 0 and "0" in again.stdout
    async with group_of({"a": server()}, lazy=True) as group:
        assert not group.status()["a"].cached


def test_cache_without_a_subcommand_is_an_argument_error() -> None:
    result = cli("cache")
    assert result.returncode == 2 and "clear" in result.stderr

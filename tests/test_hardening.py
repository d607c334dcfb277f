"""Hardening: what a server's environment holds, where secrets never appear, and fuzzed parsers."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.client.stdio import StdioServerParameters

from mcp_connections import ConfigError, ManagedSession, ServerGroup, ServerStartError, StdioConnectionManager
from mcp_connections.config import parse_config
from mcp_connections.stdio import LineReader

from .helpers import MISBEHAVING, misbehaving

SECRET = "sk-do-not-leak-0123456789"


async def env_of(manager: StdioConnectionManager, *names: str) -> list[str]:
    async with ManagedSession(manager) as session:
        results = [await session.call_tool("env", {"name": name}) for name in names]
    return [r.content[0].text for r in results]  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_stdio_server_gets_the_safe_default_environment_plus_its_own_never_the_callers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_PROFILE", "dev")
    manager = StdioConnectionManager(misbehaving(env={"MINE": "yes"}), errlog=io.StringIO())
    assert await env_of(manager, "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "MINE", "HOME") == [
        "<unset>",
        "<unset>",
        "yes",
        str(Path.home()),
    ]


@pytest.mark.anyio
async def test_inheriting_more_of_the_environment_is_an_explicit_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_PROFILE", "dev")
    named = StdioConnectionManager(misbehaving(), errlog=io.StringIO(), inherit_env=["AWS_PROFILE"])
    assert await env_of(named, "AWS_PROFILE", "AWS_SECRET_ACCESS_KEY") == ["dev", "<unset>"]
    everything = StdioConnectionManager(misbehaving(), errlog=io.StringIO(), inherit_env=True)
    assert await env_of(everything, "AWS_SECRET_ACCESS_KEY") == [SECRET]
    group = ServerGroup.from_config(
        {"mcpServers": {"a": {"command": sys.executable, "args": [str(MISBEHAVING)], "inherit_env": ["AWS_PROFILE"]}}},
        errlog=io.StringIO(),
    )
    async with group:
        result = await group.call_tool("a", "env", {"name": "AWS_PROFILE"})
    assert result.content[0].text == "dev"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_secrets_in_env_appear_in_no_log_line_repr_status_or_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    params = misbehaving("--exit-before-handshake", "1", env={"API_TOKEN": SECRET})
    group = ServerGroup.from_config(
        {
            "mcpServers": {
                "leaky": {"command": params.command, "args": params.args, "env": {"API_TOKEN": SECRET}},
            }
        },
        errlog=io.StringIO(),
    )
    async with group:
        status = group.status()["leaky"]
    manager = group["leaky"].manager
    texts = [repr(manager), str(manager.error), repr(status), repr(group.configs["leaky"]), repr(group["leaky"])]
    texts += [record.getMessage() for record in caplog.records]
    assert status.error and "exited" in status.error
    for text in texts:
        assert SECRET not in text


@pytest.mark.anyio
async def test_a_relative_command_resolves_against_the_servers_cwd_and_errors_say_so(tmp_path: Path) -> None:
    script = tmp_path / "server.sh"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {MISBEHAVING}\n")
    script.chmod(0o755)
    manager = StdioConnectionManager(StdioServerParameters(command="./server.sh", cwd=str(tmp_path)))
    async with ManagedSession(manager) as session:
        assert (await session.call_tool("cwd")).content[0].text == str(tmp_path)  # type: ignore[union-attr]
    missing = StdioConnectionManager(StdioServerParameters(command="./nope.sh", cwd=str(tmp_path)))
    with pytest.raises(ServerStartError) as caught:
        await missing.start()
    assert "relative to the working directory" in str(caught.value) and str(tmp_path) in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
entries = st.fixed_dictionaries(
    {},
    optional={
        "command": st.text(max_size=20) | json_values,
        "url": st.sampled_from(["http://h/mcp", "ws://h", "https://h/sse", "${X}", "${Y:-http://d}"]) | json_values,
        "args": st.lists(st.text(max_size=10)) | json_values,
        "env": st.dictionaries(st.text(max_size=5), st.text(max_size=10)) | json_values,
        "headers": st.dictionaries(st.text(max_size=5), st.text(max_size=10)) | json_values,
        "transport": st.sampled_from(["stdio", "sse", "http", "websocket", "x"]) | json_values,
        "restart": st.sampled_from(["no", "on-failure", {"max_restarts": 2}, {"window": -1}]) | json_values,
        "disabled": json_values,
        "init_timeout": json_values,
        "inherit_env": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), entries | json_values, max_size=4) | json_values)
def test_any_config_gives_servers_or_a_config_error_never_a_crash(servers: Any) -> None:
    for data in ({"mcpServers": servers}, servers):
        try:
            parsed = parse_config(data, {"X": "http://x/mcp"})
        except ConfigError as exc:
            assert str(exc)
        else:
            json.dumps({name: repr(config) for name, config in parsed.items()})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20), st.sampled_from(["strict", "replace", "ignore"]))
def test_the_line_reader_takes_any_bytes_in_any_chunks(chunks: list[bytes], errors: str) -> None:
    reader = LineReader("utf-8", errors)
    for chunk in chunks:
        for item in reader.feed(chunk):
            assert isinstance(item, str | UnicodeDecodeError)
            if isinstance(item, str):
                assert "\n" not in item and item.strip()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=30),
        max_size=10,
    ),
    st.data(),
)
def test_the_line_reader_gives_back_exactly_the_lines_it_was_given(lines: list[str], data: st.DataObject) -> None:
    payload = "".join(line + "\n" for line in lines).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=8)))
    reader = LineReader()
    got: list[str | Exception] = []
    for start, end in zip([0, *cuts], [*cuts, len(payload)], strict=True):
        got.extend(reader.feed(payload[start:end]))
    assert got == [line for line in lines if line.strip()]

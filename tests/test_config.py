"""The mcpServers config loader: pure tests, no processes and no event loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_connections import ConfigError, RestartPolicy
from mcp_connections.config import load_config, parse_config

ENV = {"HOME": "/home/me", "TOKEN": "s3cret", "PORT": "8080"}


def one(entry: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    return parse_config({"mcpServers": {"srv": entry}}, ENV if env is None else env)["srv"]


def test_a_claude_desktop_config_parses_in_order() -> None:
    servers = parse_config(
        {
            "mcpServers": {
                "filesystem": {
                    "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
                },
                "github": {"command": "docker", "args": ["run", "-i"], "env": {"GITHUB_TOKEN": "x"}},
            }
        },
        ENV,
    )
    assert list(servers) == ["filesystem", "github"]
    assert servers["filesystem"].transport == "stdio"
    assert servers["filesystem"].args == ("-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop")
    assert servers["github"].env == {"GITHUB_TOKEN": "x"}


def test_vscode_servers_key_is_read_too() -> None:
    assert list(parse_config({"servers": {"a": {"command": "x"}}}, ENV)) == ["a"]


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("streamable-http", "streamable-http"),
        ("http", "streamable-http"),
        ("sse", "sse"),
        ("websocket", "websocket"),
        ("SSE", "sse"),
    ],
)
def test_transport_and_its_aliases_are_accepted_under_transport_or_type(declared: str, expected: str) -> None:
    assert one({"url": "http://h/mcp", "transport": declared}).transport == expected
    assert one({"url": "http://h/mcp", "type": declared}).transport == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://h/mcp", "websocket"),
        ("wss://h/mcp", "websocket"),
        ("https://h/sse", "sse"),
        ("https://h/v1/sse/?x=1", "sse"),
        ("https://h/mcp", None),
    ],
)
def test_without_a_transport_the_url_decides(url: str, expected: str | None) -> None:
    assert one({"url": url}).transport == expected


def test_variables_are_expanded_in_every_field_that_takes_them_and_nowhere_through_a_shell() -> None:
    server = one(
        {
            "command": "${HOME}/bin/server",
            "args": ["--port", "${PORT}", "${MISSING:-fallback}", "$(rm -rf /)", "`id`"],
            "env": {"API_TOKEN": "${TOKEN}"},
            "cwd": "${HOME}/work",
        }
    )
    assert server.command == "/home/me/bin/server"
    assert server.args == ("--port", "8080", "fallback", "$(rm -rf /)", "`id`")
    assert server.env == {"API_TOKEN": "s3cret"}
    assert server.cwd == "/home/me/work"
    remote = one({"url": "https://h:${PORT}/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}})
    assert remote.url == "https://h:8080/mcp"
    assert remote.headers == {"Authorization": "Bearer s3cret"}


def test_an_empty_default_is_a_default() -> None:
    assert one({"command": "x", "args": ["${NOPE:-}"]}).args == ("",)


def test_secrets_do_not_show_in_the_repr_of_a_server_config() -> None:
    server = one({"url": "https://user:pw@h/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}})
    assert "s3cret" not in repr(server) and "pw" not in repr(server)
    assert "s3cret" not in repr(one({"command": "x", "env": {"K": "${TOKEN}"}}))


def test_extras_are_read() -> None:
    server = one(
        {
            "command": "x",
            "disabled": True,
            "required": True,
            "init_timeout": 5,
            "request_timeout": 2.5,
            "ping_interval": 10,
        }
    )
    assert (server.disabled, server.required) == (True, True)
    assert (server.init_timeout, server.request_timeout, server.ping_interval) == (5.0, 2.5, 10.0)


def test_restart_accepts_no_on_failure_and_a_policy_object() -> None:
    assert one({"command": "x"}).restart == "default"
    assert one({"command": "x", "restart": "no"}).restart is None
    assert one({"command": "x", "restart": "on-failure"}).restart == RestartPolicy()
    policy = one({"command": "x", "restart": {"max_restarts": 2, "backoff_initial": 0.5}}).restart
    assert policy == RestartPolicy(max_restarts=2, backoff_initial=0.5)


def test_unknown_keys_of_other_hosts_are_left_alone() -> None:
    assert one({"command": "x", "autoApprove": ["a"], "alwaysAllow": [], "timeout": 60}).command == "x"


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ({"url": "http://h", "transport": "carrier-pigeon"}, "transport", "unknown transport"),
        ({"url": "http://h", "type": 3}, "type", "unknown transport"),
        ({}, None, "either 'command'"),
        ({"command": "x", "url": "http://h"}, None, "both"),
        ({"command": "x", "args": "--flag"}, "args", "list of strings"),
        ({"command": "x", "args": [1]}, "args", "list of strings"),
        ({"command": "x", "env": {"A": 1}}, "env", "object of strings"),
        ({"command": 3}, "command", "expected a string"),
        ({"command": "x", "disabled": "yes"}, "disabled", "true or false"),
        ({"command": "x", "init_timeout": -1}, "init_timeout", "seconds"),
        ({"command": "x", "request_timeout": "5"}, "request_timeout", "seconds"),
        ({"command": "x", "restart": "always"}, "restart", "on-failure"),
        ({"command": "x", "restart": {"retries": 3}}, "restart", "unknown restart settings"),
        ({"command": "x", "restart": {"max_restarts": -1}}, "restart", "max_restarts"),
        ({"command": "x", "restart": {"window": "1m"}}, "restart.window", "number"),
        ({"command": "${UNDEFINED_VAR}"}, "command", "UNDEFINED_VAR"),
        ({"command": "x", "headers": {"A": "${UNDEFINED_VAR}"}}, "headers.A", "not set"),
        ({"url": "http://h", "transport": "stdio"}, "transport", "needs 'command'"),
        ({"command": "x", "transport": "sse"}, "transport", "needs 'url'"),
    ],
)
def test_every_mistake_names_the_server_and_the_field(entry: dict[str, Any], field: str | None, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"mcpServers": {"broken": entry}}, ENV, source="my.json")
    message = str(caught.value)
    assert "my.json" in message and "'broken'" in message and words in message
    if field:
        assert repr(field) in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("data", [[], {"servers_typo": {}}, {"mcpServers": []}, {"mcpServers": {"a": "npx"}}, "text"])
def test_a_config_of_the_wrong_shape_is_refused(data: Any) -> None:
    with pytest.raises(ConfigError):
        parse_config(data, ENV)


def test_invalid_json_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{\n  "mcpServers": {\n    "a": {"command": "x",}\n  }\n}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert str(path) in str(caught.value)
    assert "line 3" in str(caught.value) and "column" in str(caught.value)


def test_a_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file") as caught:
        load_config(tmp_path / "nope.json")
    assert str(tmp_path) in str(caught.value)


def test_a_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"a": {"command": "x", "args": ["${PORT}"]}}}))
    assert load_config(path, ENV)["a"].args == ("8080",)


def test_tool_filters_are_lists_of_patterns_and_default_to_every_tool() -> None:
    entry = one({"command": "x", "include_tools": ["read_*", "list_*"], "exclude_tools": ["delete_*"]})
    assert entry.include_tools == ("read_*", "list_*") and entry.exclude_tools == ("delete_*",)
    plain = one({"command": "x"})
    assert plain.include_tools is None and plain.exclude_tools == ()


@pytest.mark.parametrize("field", ["include_tools", "exclude_tools"])
@pytest.mark.parametrize("value", ["read_*", ["read_*", 3], {"a": "b"}, True])
def test_a_tool_filter_that_is_not_a_list_of_strings_names_the_server_and_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        one({"command": "x", field: value})
    assert "'srv'" in str(caught.value) and field in str(caught.value) and "list" in str(caught.value)

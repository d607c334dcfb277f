"""The gateway's pure parts, without an event loop: config diffing, routing, change detection, health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mcp_types as types

from mcp_connections.config import parse_config
from mcp_connections.gateway import diff_configs
from mcp_connections.gateway._routing import (
    ServedTemplate,
    Snapshot,
    health,
    log_level_allows,
    most_verbose,
    union_capabilities,
)


def configs(servers: dict[str, Any]) -> dict[str, Any]:
    return parse_config({"mcpServers": servers})


def test_a_diff_sorts_servers_into_added_removed_changed_and_unchanged_in_config_order() -> None:
    old = configs({"a": {"command": "x"}, "b": {"command": "y"}, "c": {"url": "http://h/mcp"}})
    new = configs({"d": {"command": "z"}, "c": {"url": "http://h/mcp"}, "a": {"command": "x", "args": ["-v"]}})
    diff = diff_configs(old, new)
    assert diff.added == ("d",)
    assert diff.removed == ("b",)
    assert diff.changed == ("a",)
    assert diff.unchanged == ("c",)
    assert not diff.empty
    assert str(diff) == "added d; removed b; changed a; unchanged c"


def test_a_change_of_env_headers_or_options_is_a_change_and_an_identical_config_is_none() -> None:
    base = {"command": "x", "env": {"K": "1"}}
    assert diff_configs(configs({"a": base}), configs({"a": dict(base)})).empty
    assert diff_configs(configs({"a": base}), configs({"a": {**base, "env": {"K": "2"}}})).changed == ("a",)
    assert diff_configs(configs({"a": base}), configs({"a": {**base, "request_timeout": 5}})).changed == ("a",)
    remote = {"url": "http://h/mcp", "headers": {"Authorization": "Bearer 1"}}
    changed = {**remote, "headers": {"Authorization": "Bearer 2"}}
    assert diff_configs(configs({"r": remote}), configs({"r": changed})).changed == ("r",)


def test_disabling_a_server_removes_it_and_enabling_one_adds_it() -> None:
    old = configs({"a": {"command": "x"}, "b": {"command": "y", "disabled": True}})
    new = configs({"a": {"command": "x", "disabled": True}, "b": {"command": "y"}})
    diff = diff_configs(old, new)
    assert diff.added == ("b",) and diff.removed == ("a",) and diff.changed == ()


@dataclass(frozen=True)
class Entry:
    name: str
    server: str
    tool: Any


@dataclass(frozen=True)
class Res:
    server: str
    resource: types.Resource


def tool(name: str, description: str = "") -> types.Tool:
    return types.Tool(name=name, description=description, input_schema={"type": "object"})


def template(server: str, uri_template: str) -> ServedTemplate:
    return ServedTemplate(server, types.ResourceTemplate(name=uri_template, uri_template=uri_template))


def test_a_uri_goes_to_the_first_server_that_listed_it_else_to_the_first_matching_template_in_config_order() -> None:
    listed = [Res("b", types.Resource(name="r", uri="file:///x")), Res("a", types.Resource(name="r", uri="file:///x"))]
    snapshot = Snapshot(
        resources=listed,
        templates=[template("b", "note://{key}"), template("a", "note://{key}"), template("a", "db://{table}/{id}")],
        server_order=("a", "b"),
    )
    assert snapshot.resource_server("file:///x") == "b", "the first that listed it"
    assert snapshot.resource_server("note://k") == "a", "templates: config order"
    assert snapshot.resource_server("db://users/7") == "a"
    assert snapshot.resource_server("nowhere://x") is None
    assert snapshot.template_server("db://{table}/{id}") == "a"


def test_only_the_lists_that_differ_count_as_changed_and_a_first_snapshot_announces_nothing() -> None:
    one = Snapshot(tools=[Entry("a__t", "a", tool("t"))], server_order=("a",))
    same = Snapshot(tools=[Entry("a__t", "a", tool("t"))], server_order=("a",))
    described = Snapshot(tools=[Entry("a__t", "a", tool("t", "new text"))], server_order=("a",))
    more_resources = Snapshot(
        tools=[Entry("a__t", "a", tool("t"))],
        resources=[Res("a", types.Resource(name="r", uri="file:///r"))],
        server_order=("a",),
    )
    assert same.changed_lists(one) == []
    assert described.changed_lists(one) == ["tools"], "a changed definition is a change"
    assert more_resources.changed_lists(one) == ["resources"]
    assert one.changed_lists(None) == []
    assert one.tool("a__t") is not None and one.tool("b__t") is None


def test_log_levels_filter_in_syslog_order() -> None:
    assert log_level_allows("warning", "error")
    assert log_level_allows("warning", "warning")
    assert not log_level_allows("warning", "info")
    assert log_level_allows(None, "debug")
    assert most_verbose(["error", None, "info", "warning"]) == "info"
    assert most_verbose([None]) is None


def test_capabilities_union_names_what_any_backend_offers() -> None:
    tools_only = types.ServerCapabilities(tools=types.ToolsCapability())
    logs = types.ServerCapabilities(logging=types.LoggingCapability(), prompts=types.PromptsCapability())
    assert union_capabilities([tools_only, logs, None]) == {"tools", "logging", "prompts"}
    assert union_capabilities([]) == set()


@dataclass(frozen=True)
class Status:
    state: str
    transport: str = "stdio"
    restarts: int = 0
    error: str | None = None


def test_health_is_200_when_the_required_servers_are_connected_else_503_and_hides_errors_unless_allowed() -> None:
    statuses = {"a": Status("connected"), "b": Status("failed", error="secret.internal refused")}
    code, body = health(statuses, {"a": True, "b": False}, show_errors=False)
    assert code == 200 and body["status"] == "ok"
    assert "error" not in body["servers"]["b"] and "secret" not in str(body)
    code, body = health(statuses, {"a": False, "b": False}, show_errors=True)
    assert code == 503 and body["servers"]["b"]["error"] == "secret.internal refused"
    code, _ = health(statuses, {"a": False, "b": True}, show_errors=False)
    assert code == 503

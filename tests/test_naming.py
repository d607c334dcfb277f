"""The catalogue's pure logic (names, filters, routes), without an event loop, and a property test of the names."""

from __future__ import annotations

import re

import mcp_types as types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_connections._naming import (
    VALID_NAME,
    CatalogueIndex,
    ServerListing,
    ToolFilter,
    assign_names,
    close_names,
    sanitize,
)


def tool(name: str) -> types.Tool:
    return types.Tool(name=name, input_schema={"type": "object"})


def prompt(name: str) -> types.Prompt:
    return types.Prompt(name=name)


def resource(uri: str) -> types.Resource:
    return types.Resource(uri=uri, name=uri)


def names(pairs: list[tuple[str, str]], mode: str = "prefixed") -> list[str]:
    return list(assign_names(pairs, mode).names)  # type: ignore[arg-type]


def test_prefixed_names_are_server_then_two_underscores_then_tool() -> None:
    assert names([("files", "read"), ("web", "fetch")]) == ["files__read", "web__fetch"]


def test_auto_names_are_the_tools_own_names_unless_two_servers_share_one() -> None:
    result = assign_names([("a", "echo"), ("a", "add"), ("b", "echo"), ("b", "mul")], "auto")
    assert list(result.names) == ["a__echo", "add", "b__echo", "mul"]
    assert result.shared == {"echo"}


def test_characters_a_model_rejects_become_underscores() -> None:
    assert names([("my server.v2", "read file/now")]) == ["my_server_v2__read_file_now"]
    assert names([("s", "café")], "auto") == ["caf_"]
    assert sanitize("") == "_"


def test_a_long_name_is_cut_to_64_and_ends_with_a_stable_hash_of_the_full_name() -> None:
    server = "s" * 80
    first = names([(server, "tool")])[0]
    assert len(first) == 64 and VALID_NAME.match(first)
    assert re.search(r"_[0-9a-f]{8}$", first)
    assert names([(server, "tool")])[0] == first
    assert names([(server, "other")])[0] != first  # another full name, another hash


def test_names_that_still_clash_get_a_stable_numbered_suffix() -> None:
    # "a.b" and "a_b" are the same once sanitized; the first in order keeps the plain name.
    assert names([("s", "a.b"), ("s", "a_b")], "auto") == ["a_b", "a_b_2"]
    assert names([("s", "x"), ("s", "x")]) == ["s__x", "s__x_2"]


def test_a_suffix_never_takes_a_name_another_entry_would_get_on_its_own() -> None:
    assert names([("s", "x"), ("s", "x"), ("s", "x_2")], "auto") == ["x", "x_3", "x_2"]


def test_servers_whose_names_sanitize_alike_still_get_unique_names() -> None:
    result = names([("a.b", "t"), ("a b", "t"), ("a_b", "t")])
    assert result == ["a_b__t", "a_b__t_2", "a_b__t_3"]


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="prefixed"):
        CatalogueIndex("short")  # type: ignore[arg-type]


def test_filters_include_then_exclude_and_exclude_wins() -> None:
    only = ToolFilter(include=("read_*", "list_*"), exclude=("*_secret",))
    assert only.allows("read_file") and only.allows("list_dir")
    assert not only.allows("write_file") and not only.allows("read_secret")
    assert ToolFilter().allows("anything")
    assert not ToolFilter(include=()).allows("anything")
    assert not ToolFilter(exclude=("delete_*",)).allows("delete_all")


def test_the_index_builds_names_routes_and_filters_in_config_order() -> None:
    index = CatalogueIndex("prefixed", {"b": ToolFilter(exclude=("drop*",))})
    snapshot = index.build(
        [
            ServerListing("a", [tool("read"), tool("write")], [prompt("greet")], [resource("file:///x")]),
            ServerListing("b", [tool("read"), tool("drop_all")], [], [resource("file:///x"), resource("file:///y")]),
            ServerListing("down"),  # not connected: nothing
        ]
    )
    assert [(t.name, t.server, t.tool.name) for t in snapshot.tools] == [
        ("a__read", "a", "read"),
        ("a__write", "a", "write"),
        ("b__read", "b", "read"),
    ]
    assert snapshot.tool("b__read") is snapshot.tools[2]
    assert snapshot.tool("b__drop_all") is None
    assert [p.name for p in snapshot.prompts] == ["a__greet"]
    assert snapshot.resource_server("file:///x") == "a"  # the first in config order
    assert snapshot.resource_server("file:///y") == "b"
    assert [r.server for r in snapshot.resources] == ["a", "b", "b"]


def test_close_names_put_the_bare_tool_name_first_then_spelling() -> None:
    catalogue = ["files__read_file", "web__fetch", "files__read_dir"]
    assert close_names("read_file", catalogue, ["read_file", "fetch", "read_dir"])[0] == "files__read_file"
    assert "web__fetch" in close_names("web__fetc", catalogue, [])
    assert len(close_names("x", [f"s__x{i}" for i in range(9)], [f"x{i}" for i in range(9)])) <= 3


def test_equal_lists_give_equal_snapshots_so_a_restart_with_the_same_tools_changes_nothing() -> None:
    index = CatalogueIndex()
    first = index.build([ServerListing("a", [tool("t")])])
    again = index.build([ServerListing("a", [tool("t")])])
    assert first.tools == again.tools
    assert index.build([ServerListing("a", [tool("u")])]).tools != first.tools


# Names as they come in real configs and from servers: anything printable, dots, spaces, long ones, non-ASCII.
server_names = st.text(min_size=0, max_size=90)
tool_names = st.text(min_size=0, max_size=90)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(server_names, st.lists(tool_names, max_size=8)), max_size=6),
    st.sampled_from(["prefixed", "auto"]),
)
def test_for_any_servers_and_tools_names_are_unique_valid_and_stable(
    servers: list[tuple[str, list[str]]], mode: str
) -> None:
    pairs = [(server, name) for server, tools in servers for name in tools]
    first = assign_names(pairs, mode).names  # type: ignore[arg-type]
    assert len(first) == len(pairs)
    assert len(set(first)) == len(first), first
    assert all(VALID_NAME.match(name) for name in first), first
    assert assign_names(list(pairs), mode).names == first  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(server_names, tool_names), max_size=12, unique=True))
def test_prefixed_names_of_one_server_do_not_change_when_another_server_is_added_after_it(
    pairs: list[tuple[str, str]],
) -> None:
    before = assign_names(pairs).names
    after = assign_names([*pairs, ("zz-new-server", "echo")]).names
    assert after[: len(before)] == before

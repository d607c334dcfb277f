"""The pure mapping the adapters share: parts of a result, structured content, names, arguments (no event loop)."""

from __future__ import annotations

import json
import re

import mcp_types as types
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_connections.adapters._content import (
    ArgumentsError,
    Link,
    Media,
    ResourceText,
    Text,
    error_text,
    failure_result,
    parse_arguments,
    parts,
    structured_json,
    text_of,
    unique_names,
    valid_name,
)
from mcp_connections.errors import ConnectionLostError

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def result(*content: types.ContentBlock, structured: dict[str, object] | None = None, error: bool = False):
    return types.CallToolResult(content=list(content), structured_content=structured, is_error=error)


def text(value: str) -> types.TextContent:
    return types.TextContent(type="text", text=value)


def test_every_block_kind_becomes_a_part_in_order_with_data_and_mime_type_kept() -> None:
    image = types.ImageContent(type="image", data="aW1n", mime_type="image/png")
    audio = types.AudioContent(type="audio", data="c25k", mime_type="audio/wav")
    doc = types.EmbeddedResource(
        type="resource", resource=types.TextResourceContents(uri="test://a.txt", mime_type="text/plain", text="A")
    )
    blob = types.EmbeddedResource(type="resource", resource=types.BlobResourceContents(uri="test://b.bin", blob="Yg=="))
    link = types.ResourceLink(type="resource_link", uri="test://c", name="c", mime_type="text/csv")
    got = parts(result(text("hi"), image, audio, doc, blob, link))
    assert got[0] == Text("hi")
    assert isinstance(got[1], Media) and (got[1].kind, got[1].data, got[1].mime_type) == ("image", "aW1n", "image/png")
    assert isinstance(got[2], Media) and (got[2].kind, got[2].mime_type) == ("audio", "audio/wav")
    assert got[3] == ResourceText("test://a.txt", "A", "text/plain")
    assert isinstance(got[4], Media) and (got[4].kind, got[4].uri) == ("blob", "test://b.bin")
    assert got[4].mime_type == "application/octet-stream"  # no MIME type given: the generic one
    assert isinstance(got[5], Link) and got[5].uri == "test://c"


def test_a_block_given_as_text_keeps_its_mcp_json_so_base64_and_mime_type_reach_the_model() -> None:
    image = types.ImageContent(type="image", data="aW1n", mime_type="image/png")
    assert json.loads(text_of(parts(result(image))[0])) == {"type": "image", "data": "aW1n", "mimeType": "image/png"}


def test_structured_content_is_added_once_as_json_unless_a_text_block_already_carries_it() -> None:
    assert structured_json(result(text('{"sum": 3}'), structured={"sum": 3})) is None
    assert structured_json(result(text("three"), structured={"sum": 3})) == '{"sum": 3}'
    assert parts(result(structured={"sum": 3})) == [Text('{"sum": 3}')]
    assert structured_json(result(text("x"))) is None
    # The SDK's servers wrap plain values as {"result": value} and send the bare value as text.
    assert structured_json(result(text("d"), structured={"result": "d"})) is None
    assert structured_json(result(text("5.0"), structured={"result": 5.0})) is None
    assert structured_json(result(text("e"), structured={"result": "d"})) == '{"result": "d"}'


def test_an_error_result_gives_its_text_or_a_sentence_naming_the_tool() -> None:
    assert error_text(result(text("boom"), error=True), "t") == "boom"
    assert "'t'" in error_text(result(error=True), "t")


def test_a_connection_error_becomes_an_is_error_result_with_its_message() -> None:
    got = failure_result(ConnectionLostError("the connection was lost", server="files"))
    assert got.is_error and isinstance(got.content[0], types.TextContent)
    assert got.content[0].text == "files: the connection was lost"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, {}), ("", {}), ("null", {}), ('{"a": 1}', {"a": 1}), ({"a": 1}, {"a": 1})],
)
def test_arguments_come_as_json_strings_or_objects(raw: object, expected: dict[str, object]) -> None:
    assert parse_arguments(raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"'])
def test_arguments_that_are_not_a_json_object_are_an_error_for_the_model(raw: str) -> None:
    with pytest.raises(ArgumentsError):
        parse_arguments(raw)


def test_names_are_made_valid_short_and_unique_stably() -> None:
    assert valid_name("read file.v2") == "read_file_v2"
    long = "x" * 100
    assert NAME.match(valid_name(long)) and valid_name(long) == valid_name(long)
    assert valid_name("x" * 100) != valid_name("x" * 99 + "y")
    assert unique_names(["a.b", "a_b", "a-b"]) == ["a_b", "a_b_2", "a-b"]


@given(st.lists(st.text(max_size=80), max_size=20))
def test_unique_names_are_always_valid_and_distinct(names: list[str]) -> None:
    got = unique_names(names)
    assert len(set(got)) == len(got) == len(names)
    assert all(NAME.match(n) for n in got)

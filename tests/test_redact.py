"""redact_url and split_userinfo (pure: examples and properties), and log redaction against a real server."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_connections._redact import basic_authorization, redact_url, split_userinfo


def test_redact_url_drops_userinfo_and_fragment_and_keeps_host_port_path() -> None:
    assert redact_url("https://alice:s3cret@example.com:8443/mcp#frag") == "https://example.com:8443/mcp"
    assert redact_url("ws://token@[::1]:9000/ws") == "ws://[::1]:9000/ws"


def test_redact_url_hides_query_values_that_look_like_credentials() -> None:
    assert redact_url("https://h/mcp?api_key=abc&x=1") == "https://h/mcp?api_key=REDACTED&x=1"
    assert redact_url("https://h/mcp?apiKey=abc") == "https://h/mcp?apiKey=REDACTED"
    assert redact_url("https://h/mcp?X-Amz-Signature=abc") == "https://h/mcp?X-Amz-Signature=REDACTED"
    assert redact_url("https://h/mcp?q=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0") == "https://h/mcp?q=REDACTED"


def test_redact_url_leaves_a_url_without_secrets_as_written() -> None:
    for url in ("http://127.0.0.1:8000/mcp", "https://h/mcp?page=2&sort=a%20b", "http://h/?a=b&&c"):
        assert redact_url(url) == url


def test_redact_url_never_raises_on_garbage_and_still_cuts_userinfo() -> None:
    assert redact_url("http://user:pw@[::1:9/x") == "http://[::1:9/x"
    assert redact_url("not a url") == "not a url"
    assert redact_url("") == ""


def test_split_userinfo_decodes_the_credentials_and_returns_the_bare_url() -> None:
    bare, credentials = split_userinfo("https://alice:p%40ss@example.com/mcp?x=1")
    assert bare == "https://example.com/mcp?x=1"
    assert credentials == ("alice", "p@ss")
    assert split_userinfo("https://example.com/mcp") == ("https://example.com/mcp", None)
    assert basic_authorization(("alice", "p@ss")) == "Basic YWxpY2U6cEBzcw=="


# "Zq" occurs nowhere else in the URL, so finding a secret in the result can only mean it leaked.
_secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=6, max_size=40).map(lambda s: "Zq" + s)


@given(user=_secret, password=_secret, token=_secret)
def test_no_credential_survives_redaction(user: str, password: str, token: str) -> None:
    url = f"https://{user}:{password}@example.com:8443/p?access_token={token}&page=1"
    shown = redact_url(url)
    assert password not in shown and token not in shown and user not in shown
    assert shown.startswith("https://example.com:8443/p?")


@pytest.mark.anyio
async def test_a_token_in_the_query_string_reaches_no_log_line_of_any_library(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mcp_connections import ManagedSession, StreamableHttpConnectionManager

    from .helpers.remote import running_server

    caplog.set_level(logging.DEBUG)
    token = "qtok-8c1f0d7e5a2b4c6d9e0f1a2b"
    with running_server("streamable-http") as server:
        manager = StreamableHttpConnectionManager(server.url + f"?api_key={token}")
        async with ManagedSession(manager) as session:
            await session.call_tool("echo", {"text": "hi"})
    lines = [record.getMessage() for record in caplog.records]
    assert any("HTTP Request" in line for line in lines), "httpx2 logged no request: the check proves nothing"
    assert not [line for line in lines if token in line]

"""The parts of OAuth on their own: the token store, the loopback callback, the config field, reprs, host callbacks."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from mcp_connections import AuthError, ConfigError, FileTokenStore, MemoryTokenStore, OAuth, TokenStore
from mcp_connections._host_callbacks import apply_elicitation_defaults, bind_host_callbacks
from mcp_connections._loopback import LoopbackCallback, free_loopback_port
from mcp_connections.config import parse_config

URL = "https://mcp.example.com/mcp"
ENTRY = {"tokens": {"access_token": "at-secret-1234567890", "refresh_token": "rt-secret-0987654321"}, "expires_at": 1.0}

# -- the token store ---------------------------------------------------------------------------------------


def test_the_file_store_writes_one_0600_file_per_server_url_in_a_0700_directory(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    store.save_sync(URL, ENTRY)
    store.save_sync(URL + "/other", ENTRY)
    path = store.path(URL)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert sorted(p.name for p in store.directory.iterdir()) == sorted([path.name, store.path(URL + "/other").name])
    assert store.load_sync(URL) == ENTRY
    assert isinstance(store, TokenStore) and isinstance(MemoryTokenStore(), TokenStore)


def test_the_file_store_replaces_an_entry_atomically_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileTokenStore(tmp_path)
    store.save_sync(URL, ENTRY)

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full (simulated crash between write and rename)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.save_sync(URL, {"tokens": {"access_token": "new-token-abcdef"}})
    monkeypatch.undo()
    assert store.load_sync(URL) == ENTRY  # the old entry, whole
    assert [p.name for p in tmp_path.iterdir()] == [store.path(URL).name]
    store.save_sync(URL, {"tokens": {"access_token": "new-token-abcdef"}})
    assert store.load_sync(URL) == {"tokens": {"access_token": "new-token-abcdef"}}


@pytest.mark.parametrize("content", ["{not json", "[]", '{"server_url": "https://other/mcp"}', ""])
def test_a_corrupt_token_file_reads_as_no_entry_with_a_warning_that_shows_no_content(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTokenStore(tmp_path)
    store.path(URL).write_text(content + "at-secret-1234567890")
    with caplog.at_level(logging.WARNING, "mcp_connections.auth"):
        assert store.load_sync(URL) is None
    assert str(store.path(URL)) in caplog.text
    assert "at-secret" not in caplog.text


@pytest.mark.anyio
async def test_deleting_an_entry_says_whether_there_was_one(tmp_path: Path) -> None:
    for store in (FileTokenStore(tmp_path), MemoryTokenStore()):
        await store.save(URL, ENTRY)
        assert await store.delete(URL) is True
        assert await store.load(URL) is None
        assert await store.delete(URL) is False


def test_the_default_store_lives_in_the_users_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert FileTokenStore().directory == tmp_path / "mcp-connections" / "tokens"


# -- the loopback callback ---------------------------------------------------------------------------------


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as page:
            return page.status, page.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def callback(timeout: float = 10) -> LoopbackCallback:
    loopback = LoopbackCallback(f"http://127.0.0.1:{free_loopback_port()}/callback", timeout=timeout, server="srv")
    loopback.open("the-state")
    return loopback


@pytest.mark.anyio
async def test_the_callback_ignores_a_wrong_state_and_other_paths_then_takes_the_right_redirect() -> None:
    loopback = callback()
    base = f"http://127.0.0.1:{loopback.port}"
    assert (await anyio.to_thread.run_sync(get, f"{base}/favicon.ico"))[0] == 404
    status, page = await anyio.to_thread.run_sync(get, f"{base}/callback?code=forged-code&state=wrong")
    assert status == 400 and "forged-code" not in page
    status, _ = await anyio.to_thread.run_sync(get, f"{base}/callback?code=the-code&state=the-state")
    assert status == 200
    result = await loopback.wait()
    assert (result.code, result.state) == ("the-code", "the-state")


@pytest.mark.anyio
async def test_the_callback_is_one_shot_a_second_request_finds_the_port_closed() -> None:
    loopback = callback()
    await anyio.to_thread.run_sync(get, f"http://127.0.0.1:{loopback.port}/callback?code=c1&state=the-state")
    await loopback.wait()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", loopback.port), timeout=2):
        pass


@pytest.mark.anyio
async def test_the_callback_times_out_with_an_auth_error_that_says_what_to_do() -> None:
    loopback = callback(timeout=0.3)
    with anyio.fail_after(5), pytest.raises(AuthError) as caught:
        await loopback.wait()
    assert caught.value.needs_login and caught.value.server == "srv"
    assert "timed out" in str(caught.value) and "mcp-connections login" in str(caught.value)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", loopback.port), timeout=2):
        pass


@pytest.mark.anyio
async def test_an_error_redirect_with_the_right_state_ends_the_wait_with_the_servers_reason() -> None:
    loopback = callback()
    url = f"http://127.0.0.1:{loopback.port}/callback?error=access_denied&error_description=no&state=the-state"
    await anyio.to_thread.run_sync(get, url)
    with pytest.raises(AuthError, match="access_denied"):
        await loopback.wait()


def test_a_port_in_use_is_an_auth_error_naming_it() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(AuthError, match=str(port)):
            LoopbackCallback(f"http://127.0.0.1:{port}/callback", timeout=1).open(None)


# -- config and reprs --------------------------------------------------------------------------------------


def servers(auth: Any, environ: dict[str, str] | None = None) -> Any:
    return parse_config({"mcpServers": {"remote": {"url": URL, "auth": auth}}}, environ or {})["remote"]


def test_the_auth_field_takes_the_three_kinds_and_expands_variables() -> None:
    assert dict(servers("oauth").auth) == {"type": "oauth"}
    full = servers(
        {"type": "oauth", "client_id": "${ID}", "scopes": ["read", "${S}"], "redirect_uri": "http://127.0.0.1:8765/cb"},
        {"ID": "my-client", "S": "write"},
    )
    assert dict(full.auth) == {
        "type": "oauth",
        "client_id": "my-client",
        "scopes": ("read", "write"),
        "redirect_uri": "http://127.0.0.1:8765/cb",
    }
    machine = servers({"type": "client_credentials", "client_id": "m", "client_secret": "${SECRET}"}, {"SECRET": "s3"})
    assert machine.auth["client_secret"] == "s3"
    assert servers({"type": "bearer", "token": "${T}"}, {"T": "tok-abcdef"}).auth["token"] == "tok-abcdef"


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ("basic", "auth"),
        ({"type": "magic"}, "auth.type"),
        ({"type": "oauth", "colour": "blue"}, "auth"),
        ({"type": "oauth", "scopes": 3}, "auth.scopes"),
        ({"type": "bearer"}, "auth.token"),
        ({"type": "client_credentials", "client_secret": "x"}, "auth.client_id"),
        ({"type": "client_credentials", "client_id": "x"}, "auth"),
        ({"type": "oauth", "token_endpoint_auth_method": "magic"}, "auth.token_endpoint_auth_method"),
        ({"type": "bearer", "token": "${UNSET_VARIABLE_X}"}, "auth.token"),
    ],
)
def test_a_bad_auth_field_is_a_config_error_naming_server_and_field(auth: Any, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        servers(auth)
    assert "'remote'" in str(caught.value) and f"field {field!r}" in str(caught.value)


def test_a_stdio_server_takes_no_auth() -> None:
    with pytest.raises(ConfigError, match="auth"):
        parse_config({"mcpServers": {"local": {"command": "x", "auth": "oauth"}}})


def test_no_repr_shows_a_secret() -> None:
    config = servers({"type": "client_credentials", "client_id": "m", "client_secret": "s3cr3t-value"})
    assert "s3cr3t" not in repr(config) and "client_credentials" in repr(config)
    for oauth in (
        OAuth(client_id="c", client_secret="s3cr3t-value"),
        OAuth.client_credentials("m", private_key="-----BEGIN s3cr3t-value"),
        OAuth.bearer("s3cr3t-value"),
    ):
        assert "s3cr3t" not in repr(oauth)
        assert "s3cr3t" not in repr(oauth.http_auth(URL))


def test_a_bearer_auth_travels_as_a_plain_authorization_header() -> None:
    from mcp_connections import StreamableHttpConnectionManager

    manager = StreamableHttpConnectionManager(URL, auth={"type": "bearer", "token": "tok-1234567"})
    assert manager._auth is None and manager._auth_headers()["Authorization"] == "Bearer tok-1234567"
    assert "tok-1234567" not in repr(manager)


# -- host callbacks ------------------------------------------------------------------------------------------


def test_an_accepted_elicitation_gets_the_schemas_defaults_for_the_fields_left_out() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "default": "Ann"}, "age": {"type": "integer"}},
    }
    result = apply_elicitation_defaults(types.ElicitResult(action="accept", content={"age": 3}), schema)
    assert result.content == {"name": "Ann", "age": 3}
    declined = apply_elicitation_defaults(types.ElicitResult(action="decline"), schema)
    assert declined.content is None


@pytest.mark.anyio
async def test_host_callbacks_get_the_server_name_first_and_a_raising_one_becomes_an_error_answer() -> None:
    seen: list[Any] = []

    async def sampling(server_name: str, context: Any, params: Any) -> Any:
        seen.append((server_name, params))
        return "sampled"

    def roots(server_name: str, context: Any) -> Any:
        raise RuntimeError("host bug")

    bound = bind_host_callbacks({"sampling_callback": sampling, "list_roots_callback": roots}, "files")
    assert await bound["sampling_callback"]("ctx", "params") == "sampled"
    assert seen == [("files", "params")]
    answer = await bound["list_roots_callback"]("ctx")
    assert isinstance(answer, types.ErrorData) and "list_roots" in answer.message
    assert "elicitation_callback" not in bound


def test_the_token_file_is_json_a_person_can_read(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.save_sync(URL, ENTRY)
    assert json.loads(store.path(URL).read_text())["server_url"] == URL

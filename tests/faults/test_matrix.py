"""The fault matrix: what a server or the network can do wrong, on every transport it applies to, against
``ManagedSession`` with and without a restart policy.

A case is a *drive* (an async function that sets the fault up, provokes it and returns what came of it) and,
per transport, an ``Expect``: the error it comes out as (type and a fragment of the message), the bound on the
time that takes, and where the session ends. One test runs every (case, transport, policy) and checks all of
that, then that nothing is left: no process or zombie, descriptor, thread or task. Facts of one case only (a
grandchild is dead, the stderr tail stays bounded) are asserted inside its drive.

Where a session ends, ``end``:
  connected  the fault is absorbed: the session stays up and never restarts
  lost       the connection is lost: FAILED without a policy; with one the session restarts (the test brings a
             killed remote server back on its port, as a supervisor would) and answers again
  exhausted  FAILED either way: every restart meets the fault again until the policy runs out
  failed     FAILED either way: a first start() that fails is reported, never retried
  stopped    the fault stands in the way of stop(): STOPPED either way
"""

from __future__ import annotations

import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from mcp_connections import (
    ConnectError,
    ConnectionLostError,
    ConnectionState,
    HandshakeTimeoutError,
    ManagedSession,
    RequestTimeoutError,
    RestartPolicy,
    ServerExitedError,
    StdioConnectionManager,
)

from ..helpers import Snapshot, assert_no_leaks, pid_alive, skip_websocket_on_trio
from ..helpers.remote import free_port
from .rig import HTTP, REMOTE, STDIO, TRANSPORTS, WS, Rig, slowloris_server, wait_for, warm_up

pytestmark = pytest.mark.anyio

# The policy of the runs with one: enough restarts over enough time (about 2 s) for a killed remote server to
# come back on its port; no jitter, so every run times the same.
POLICY = RestartPolicy(max_restarts=8, window=60, backoff_initial=0.1, backoff_factor=2, backoff_max=0.3, jitter=0)

# For a fault that every restart meets again: run out quickly.
SHORT_POLICY = RestartPolicy(max_restarts=2, window=60, backoff_initial=0.05, backoff_max=0.1, jitter=0)

# Where pings find a hung server: an interval, the ping timeout, and the kill of the hung server
# (session.HUNG_SERVER_STOP_TIMEOUT) before the session leaves CONNECTED.
PING_INTERVAL = 0.2
PING_TIMEOUT = 0.5
FOUND_HUNG_WITHIN = PING_INTERVAL + PING_TIMEOUT + 1.0

# Added to every bound: the machine is shared with other test runs.
SLACK = 0.5

TEN_MB = 10 * 1024 * 1024

End = Literal["connected", "lost", "exhausted", "failed", "stopped"]


@dataclass
class Outcome:
    """What a drive saw: the error the fault came out as (None: none), how long that took, and the session."""

    session: ManagedSession
    error: BaseException | None
    elapsed: float


@dataclass(frozen=True)
class Expect:
    """The error (None: none) and a fragment of its message, the bound in seconds, where the session ends; and
    for a library bug the matrix found, why the case fails today."""

    error: type[BaseException] | None
    fragment: str = ""
    within: float = 3.0
    end: End = "connected"


Drive = Callable[[Rig], Awaitable[Outcome]]


@dataclass(frozen=True)
class Case:
    fault: str
    drive: Drive
    expect: dict[str, Expect]
    policy: RestartPolicy = POLICY


# -- helpers of the drives -----------------------------------------------------------------------------------


async def timed(session: ManagedSession, action: Awaitable[Any], limit: float = 20.0) -> Outcome:
    """Run ``action``: the exception it raised (if any) and how long it took. A hang fails after ``limit``."""
    started = time.monotonic()
    error: BaseException | None = None
    try:
        with anyio.fail_after(limit):
            await action
    except Exception as exc:
        error = exc
    return Outcome(session, error, time.monotonic() - started)


def text(result: Any) -> str:
    return result.content[0].text  # type: ignore[no-any-return]


async def answers(session: ManagedSession, payload: str = "still answering") -> None:
    """The session answers a call with the right answer."""
    with anyio.fail_after(10):
        assert text(await session.call_tool("echo", {"text": payload}, timeout=10)) == payload


async def recovers(rig: Rig, session: ManagedSession) -> None:
    """After a loss: FAILED without a policy; with one, back (a remote server restarted) and answering."""
    if rig.policy is None:
        with anyio.fail_after(10):
            await session.wait_closed()
        return
    await rig.bring_back()
    await wait_for(session, ConnectionState.CONNECTED, ConnectionState.FAILED)
    await answers(session)


async def freeze(rig: Rig, session: ManagedSession) -> None:
    """Hang the server: the process lives and keeps its pipes or sockets, and answers nothing, pings included."""
    await session.list_tools()  # the SDK checks a result against the listing: fetch it before the freeze
    if rig.transport == STDIO:
        await session.call_tool("freeze")
    else:
        rig.server.freeze()  # SIGSTOP


# -- the drives ----------------------------------------------------------------------------------------------


async def exits_before_the_handshake(rig: Rig) -> Outcome:
    if rig.transport == STDIO:
        session = await rig.session("--exit-before-handshake", "2")
    else:
        session = await rig.session(port=free_port())  # the server died before anyone connected
    return await timed(session, session.start())


async def crashes_during_a_call(rig: Rig) -> Outcome:
    session = await rig.session()
    await session.start()
    outcome = await timed(session, session.call_tool("crash", {"code": 3}))
    await recovers(rig, session)
    return outcome


async def is_killed_mid_call(rig: Rig) -> Outcome:
    session = await rig.session()
    await session.start()
    outcomes: list[Outcome] = []

    async def call() -> None:
        outcomes.append(await timed(session, session.call_tool("sleep", {"seconds": 30})))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await anyio.sleep(0.3)  # the call is on the server; over HTTP its event stream is open
        killed = time.monotonic()
        rig.kill(session)
    outcome = outcomes[0]
    outcome.elapsed = time.monotonic() - killed
    await recovers(rig, session)
    return outcome


async def hangs_on_initialize(rig: Rig) -> Outcome:
    session = await rig.session("--hang-on-initialize", init_timeout=0.5)
    outcome = await timed(session, session.start())
    if isinstance(session.manager, StdioConnectionManager):
        assert session.manager.pid is not None and not pid_alive(session.manager.pid), "the hung server lives on"
    return outcome


async def hangs_on_a_call(rig: Rig) -> Outcome:
    session = await rig.session(request_timeout=0.5)
    await session.start()
    outcome = await timed(session, session.call_tool("sleep", {"seconds": 30}))
    await answers(session)
    return outcome


async def hangs_entirely(rig: Rig) -> Outcome:
    """A hung server is found by pings, killed, and (with a policy) restarted."""
    session = await rig.session(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    await session.start()
    await freeze(rig, session)
    frozen = time.monotonic()
    with anyio.fail_after(15):
        while session.state is ConnectionState.CONNECTED:
            await anyio.sleep(0.01)
    outcome = Outcome(session, session.error, time.monotonic() - frozen)
    await recovers(rig, session)
    return outcome


async def hangs_on_a_notification(rig: Rig) -> Outcome:
    """The server hangs on a notification (over HTTP: never answers the POST of notifications/initialized, which
    the SDK sends just after initialize); a call made after that still times out in time."""
    session = await rig.session(*(("--hang-on-notifications",) if rig.transport == HTTP else ()), request_timeout=0.5)
    await session.start()
    if rig.transport != HTTP:
        await freeze(rig, session)  # a notification waits for no answer on these transports: the server just hangs
    return await timed(session, session.call_tool("echo", {"text": "x"}))


async def closes_stdout_but_keeps_running(rig: Rig) -> Outcome:
    session = await rig.session("--close-stdout-after-init")
    started = time.monotonic()
    try:
        await session.start()  # the answer to initialize may beat the close, or not
    except ConnectionLostError:
        pass
    with anyio.fail_after(15):
        await session.wait_closed()
    return Outcome(session, session.error, time.monotonic() - started)


async def writes_garbage_and_partial_json(rig: Rig) -> Outcome:
    session = await rig.session("--garbage")
    await session.start()
    outcome = await timed(session, answers(session, "through the garbage"))
    await answers(session, "and again")
    return outcome


async def answers_with_an_unknown_id(rig: Rig) -> Outcome:
    session = await rig.session("--unknown-id")
    await session.start()
    outcome = await timed(session, answers(session, "mine"))
    await answers(session, "still mine")
    return outcome


async def sends_ten_megabytes(rig: Rig) -> Outcome:
    # The test servers' own limits on what they accept are raised; the client's are what is tested.
    flags = {STDIO: (), HTTP: ("--max-body", str(4 * TEN_MB)), WS: ("--max-size", str(4 * TEN_MB))}[rig.transport]
    session = await rig.session(*flags)
    await session.start()

    async def both_ways() -> None:
        assert len(text(await session.call_tool("big", {"size": TEN_MB}))) == TEN_MB
        payload = "y" * TEN_MB
        assert text(await session.call_tool("echo", {"text": payload})) == payload

    return await timed(session, both_ways())


async def floods_stderr(rig: Rig) -> Outcome:
    session = await rig.session("--flood-stderr", "100", init_timeout=20)
    outcome = await timed(session, session.start())
    await answers(session)
    assert isinstance(session.manager, StdioConnectionManager)
    tail = session.manager.stderr_tail
    assert tail.endswith("flood done\n") and len(tail.encode()) <= 64 * 1024
    return outcome


async def ignores_eof_and_sigterm(rig: Rig) -> Outcome:
    session = await rig.session("--ignore-eof-and-sigterm")
    await session.start()
    assert isinstance(session.manager, StdioConnectionManager) and session.manager.pid is not None
    pid = session.manager.pid
    outcome = await timed(session, session.stop(timeout=1))
    assert not pid_alive(pid)
    assert session.manager.returncode == -signal.SIGKILL
    return outcome


async def has_a_grandchild_holding_the_pipes(rig: Rig) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        pidfile = Path(tmp) / "pids"  # each (re)started server writes its pid and its grandchild's there
        session = await rig.session("--grandchild", "--pidfile", str(pidfile))
        await session.start()
        with anyio.fail_after(10):
            while not pidfile.exists():
                await anyio.sleep(0.01)
        grandchild = int(pidfile.read_text().split()[1])
        assert pid_alive(grandchild)
        outcome = await timed(session, session.call_tool("crash", {"code": 3}))
        with anyio.fail_after(5):
            while pid_alive(grandchild):  # the whole process group goes with the server
                await anyio.sleep(0.01)
        await recovers(rig, session)
    return outcome


async def answers_http_500_from_the_start(rig: Rig) -> Outcome:
    session = await rig.session("--fail-with-500", "0")
    return await timed(session, session.start())


async def answers_http_500_after_the_handshake(rig: Rig) -> Outcome:
    session = await rig.session("--fail-with-500", "2")  # initialize and notifications/initialized pass
    await session.start()
    return await timed(session, session.call_tool("echo", {"text": "x"}))


def slow_loris(mode: str) -> Drive:
    async def drive(rig: Rig) -> Outcome:
        session = await rig.session(server=slowloris_server(mode), timeout=0.5, init_timeout=1.0)
        return await timed(session, session.start())

    return drive


async def caller_cancels_mid_call(rig: Rig) -> Outcome:
    session = await rig.session()
    await session.start()
    started = time.monotonic()
    with anyio.move_on_after(0.3) as scope:
        await session.call_tool("sleep", {"seconds": 30})
    outcome = Outcome(session, None, time.monotonic() - started)
    assert scope.cancelled_caught
    if isinstance(session.manager, StdioConnectionManager):
        manager = session.manager
        with anyio.fail_after(5):
            while "cancelled" not in manager.stderr_tail:  # the server heard of it
                await anyio.sleep(0.01)
    await answers(session)
    return outcome


async def stop_during_start(rig: Rig) -> Outcome:
    session = await rig.session("--hang-on-initialize", init_timeout=30)
    failures: list[BaseException] = []

    async def start() -> None:
        try:
            await session.start()
        except Exception as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(start)
        await anyio.sleep(0.3)
        outcome = await timed(session, session.stop(timeout=2))
    assert len(failures) == 1
    outcome.error = failures[0]
    return outcome


async def concurrent_stops(rig: Rig) -> Outcome:
    session = await rig.session()
    await session.start()
    in_flight: list[BaseException | None] = []

    async def call() -> None:
        in_flight.append((await timed(session, session.call_tool("sleep", {"seconds": 30}))).error)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(call)
        await anyio.sleep(0.3)
        started = time.monotonic()
        async with anyio.create_task_group() as stoppers:
            for _ in range(20):
                stoppers.start_soon(session.stop, 2)
        elapsed = time.monotonic() - started
    assert len(in_flight) == 5
    # The message says "the session was stopped" or "the connection closed", whichever reached the request first
    # (see the report of the matrix): the type and the request are what is promised.
    assert all(isinstance(e, ConnectionLostError) and "during tools/call 'sleep'" in str(e) for e in in_flight)
    return Outcome(session, None, elapsed)


# -- the matrix ----------------------------------------------------------------------------------------------


def everywhere(expect: Expect, **overrides: Expect) -> dict[str, Expect]:
    """The same expectation on every transport, but where ``stdio=``, ``http=`` or ``ws=`` say otherwise."""
    table = dict.fromkeys(TRANSPORTS, expect)
    table.update({{"stdio": STDIO, "http": HTTP, "ws": WS}[name]: value for name, value in overrides.items()})
    return table


def remote(expect: Expect, **overrides: Expect) -> dict[str, Expect]:
    return {name: value for name, value in everywhere(expect, **overrides).items() if name in REMOTE}


LOST = ConnectionLostError

CASES = [
    Case(
        "exits before the handshake",
        exits_before_the_handshake,
        everywhere(
            Expect(ConnectError, "connection refused", 1, "failed"),
            stdio=Expect(ServerExitedError, "cannot open the database", 2, "failed"),
        ),
    ),
    Case(
        "crashes during a call",
        crashes_during_a_call,
        everywhere(
            Expect(LOST, "connection lost", 1, "lost"),
            stdio=Expect(LOST, "crashing on purpose", 1, "lost"),
        ),
    ),
    Case(
        "is killed mid-call (over HTTP: mid-stream)",
        is_killed_mid_call,
        everywhere(
            Expect(LOST, "connection lost", 1, "lost"),
            stdio=Expect(LOST, "killed by SIGKILL", 1, "lost"),
        ),
    ),
    Case(
        "hangs on initialize",
        hangs_on_initialize,
        everywhere(Expect(HandshakeTimeoutError, "no answer to initialize within 0.5s", 0.5, "failed")),
    ),
    Case(
        "hangs on a call",
        hangs_on_a_call,
        everywhere(Expect(RequestTimeoutError, "got no answer within 0.5s", 0.5, "connected")),
    ),
    Case(
        "hangs entirely (pings find it)",
        hangs_entirely,
        everywhere(Expect(LOST, "did not answer a ping within 0.5s", FOUND_HUNG_WITHIN, "lost")),
    ),
    Case(
        "hangs on a notification, then a call times out",
        hangs_on_a_notification,
        everywhere(
            Expect(RequestTimeoutError, "got no answer within 0.5s", 0.5, "connected"),
            http=Expect(RequestTimeoutError, "got no answer within 0.5s", 0.5, "connected"),
        ),
    ),
    Case(
        "closes stdout but keeps running",
        closes_stdout_but_keeps_running,
        {STDIO: Expect(LOST, "closed its stdout but is still running", 3, "exhausted")},
        policy=SHORT_POLICY,
    ),
    Case(
        "writes garbage and partial JSON lines",
        writes_garbage_and_partial_json,
        {STDIO: Expect(None, within=1), WS: Expect(None, within=1)},
    ),
    Case(
        "answers with an unknown id too",
        answers_with_an_unknown_id,
        {STDIO: Expect(None, within=1), WS: Expect(None, within=1)},
    ),
    Case(
        "sends a 10 MB message both ways",
        sends_ten_megabytes,
        everywhere(Expect(None, within=10), http=Expect(None, within=10)),
    ),
    Case(
        "floods stderr with 100 MB before serving",
        floods_stderr,
        {STDIO: Expect(None, within=15)},
    ),
    Case(
        "ignores stdin EOF and SIGTERM",
        ignores_eof_and_sigterm,
        {STDIO: Expect(None, within=1, end="stopped")},
    ),
    Case(
        "has a grandchild holding the pipes, then crashes",
        has_a_grandchild_holding_the_pipes,
        {STDIO: Expect(LOST, "crashing on purpose", 1, "lost")},
    ),
    Case(
        "answers HTTP 500 from the start",
        answers_http_500_from_the_start,
        remote(
            Expect(ConnectError, "HTTP 500", 1, "failed"),
            http=Expect(ConnectError, "answered initialize with an error", 1, "failed"),
        ),
    ),
    Case(
        # The request fails as the server answered it (the SDK's MCPError); the connection stays.
        "answers HTTP 500 after the handshake",
        answers_http_500_after_the_handshake,
        {HTTP: Expect(MCPError, "Server returned an error response", 1, "connected")},
    ),
    Case(
        "is a slow loris: accepts, then sends nothing",
        slow_loris("silent"),
        remote(
            Expect(ConnectError, "timed out after 0.5s", 0.5, "failed"),
            http=Expect(ConnectError, "timed out waiting for the server", 0.5, "failed"),
        ),
    ),
    Case(
        # A byte now and then defeats a per-read timeout: over HTTP the session's init_timeout is what ends it.
        "is a slow loris: trickles a never-ending header",
        slow_loris("trickle"),
        remote(
            Expect(ConnectError, "timed out after 0.5s", 0.5, "failed"),
            http=Expect(HandshakeTimeoutError, "no answer to initialize within 1s", 1.0, "failed"),
        ),
    ),
    Case(
        "has its caller cancel mid-call",
        caller_cancels_mid_call,
        everywhere(Expect(None, within=0.3)),
    ),
    Case(
        "is stopped during start()",
        stop_during_start,
        everywhere(Expect(ConnectError, "stop() was called before", 2, "stopped")),
    ),
    Case(
        "is stopped by 20 tasks at once, calls in flight",
        concurrent_stops,
        everywhere(Expect(None, within=2, end="stopped")),
    ),
]


def matrix() -> list[Any]:
    params = []
    for case in CASES:
        for transport in case.expect:
            for policy in (None, case.policy):
                name = f"{transport}-{'restart' if policy else 'no-restart'}-{case.fault}"
                params.append(pytest.param(case, transport, policy, id=name))
    return params


@pytest.mark.parametrize(("case", "transport", "policy"), matrix())
async def test_a_fault_ends_in_the_documented_error_within_its_bound_and_leaves_nothing(
    case: Case, transport: str, policy: RestartPolicy | None, anyio_backend: str
) -> None:
    skip_websocket_on_trio(transport, anyio_backend)
    expect = case.expect[transport]
    await warm_up()
    before = Snapshot.take()
    async with Rig(transport, policy) as rig:
        outcome = await case.drive(rig)
        session = outcome.session
        if expect.error is None:
            assert outcome.error is None, f"unexpected {outcome.error!r}"
        else:
            assert isinstance(outcome.error, expect.error), f"expected {expect.error.__name__}: {outcome.error!r}"
            assert expect.fragment in str(outcome.error), str(outcome.error)
        assert outcome.elapsed < expect.within + SLACK, f"took {outcome.elapsed:.2f}s; the bound is {expect.within}s"
        end = {"lost": "failed" if policy is None else "connected", "exhausted": "failed"}.get(expect.end, expect.end)
        assert session.state == end, f"ended {session.state}, not {end}: {session.error!r}"
        if policy is not None and expect.end == "lost":
            assert session.restarts >= 1
        elif policy is not None and expect.end == "exhausted":
            assert session.restarts == policy.max_restarts
        else:
            assert session.restarts == 0
    await assert_no_leaks(before)

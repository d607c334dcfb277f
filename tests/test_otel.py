"""OpenTelemetry: one CLIENT span per request as the MCP semantic conventions say, the trace context a real server
receives in ``_meta``, traces continued through a gateway, and the metrics; OpenTelemetry's in-memory exporter and
metric reader, never mocks."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mcp_connections import (
    ConnectionLostError,
    InMemoryConnectionManager,
    ManagedSession,
    RequestTimeoutError,
    RestartPolicy,
    StdioConnectionManager,
)
from mcp_connections.otel import SERVER_NAME_ATTRIBUTE, configure, continue_trace

from .helpers import misbehaving

pytestmark = pytest.mark.anyio

FAST = RestartPolicy(max_restarts=5, window=60, backoff_initial=0.05, backoff_max=0.2, jitter=0)


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def client_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.kind is SpanKind.CLIENT]

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    configure(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    try:
        yield t
    finally:
        configure()


def stdio(*flags: str) -> StdioConnectionManager:
    return StdioConnectionManager(misbehaving(*flags), errlog=io.StringIO(), name="calc")


def in_memory() -> InMemoryConnectionManager:
    server = MCPServer("memory")

    @server.tool()
    def add(a: float, b: float) -> float:
        return a + b

    @server.tool()
    def fail() -> str:
        raise ValueError("this tool always fails")

    @server.prompt()
    def greet(person: str) -> str:
        return f"Hello {person}"

    return InMemoryConnectionManager(server)


async def test_a_tool_call_is_one_client_span_named_and_attributed_per_the_conventions(telemetry: Telemetry) -> None:
    async with ManagedSession(stdio("--echo-meta"), mode="legacy") as session:
        await session.call_tool("add", {"a": 2, "b": 3})
    (span,) = [s for s in telemetry.client_spans() if s.name == "tools/call add"]
    attributes = dict(span.attributes or {})
    assert attributes["mcp.method.name"] == "tools/call"
    assert attributes["gen_ai.tool.name"] == "add"
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["network.transport"] == "pipe"
    assert attributes[SERVER_NAME_ATTRIBUTE] == "calc"
    assert attributes["mcp.protocol.version"] == session.protocol_version
    assert attributes["jsonrpc.request.id"].isdigit()
    assert "error.type" not in attributes and span.status.status_code is not StatusCode.ERROR


async def test_the_server_receives_the_client_spans_trace_context_in_meta(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    async with ManagedSession(stdio("--echo-meta")) as session:
        with tracer.start_as_current_span("agent step") as outer:
            result = await session.call_tool("meta", meta={"keep": "me"})
    meta = json.loads(result.content[0].text)  # type: ignore[union-attr]
    (span,) = [s for s in telemetry.client_spans() if s.name == "tools/call meta"]
    version, trace_id, parent_id, flags = meta["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1, "sampled"
    assert trace_id == format(span.context.trace_id, "032x") == format(outer.get_span_context().trace_id, "032x")
    assert parent_id == format(span.context.span_id, "016x"), "the server's parent is our CLIENT span"
    assert span.parent is not None and span.parent.span_id == outer.get_span_context().span_id
    assert meta["keep"] == "me", "the caller's own _meta is kept"


async def test_an_is_error_result_is_tool_error_and_a_timeout_and_a_loss_are_errors(telemetry: Telemetry) -> None:
    async with ManagedSession(in_memory()) as session:
        result = await session.call_tool("fail")
        assert result.is_error
        await session.get_prompt("greet", {"person": "Ada"})
    failed = next(s for s in telemetry.client_spans() if s.name == "tools/call fail")
    assert failed.attributes["error.type"] == "tool_error"  # type: ignore[index]
    assert failed.status.status_code is StatusCode.ERROR
    prompt = next(s for s in telemetry.client_spans() if s.name == "prompts/get greet")
    assert prompt.attributes["gen_ai.prompt.name"] == "greet"  # type: ignore[index]
    assert "gen_ai.operation.name" not in (prompt.attributes or {})

    async with ManagedSession(stdio(), restart=FAST) as session:
        with pytest.raises(RequestTimeoutError):
            await session.call_tool("sleep", {"seconds": 5}, timeout=0.2)
        with pytest.raises(ConnectionLostError):
            await session.call_tool("crash", {"code": 3})
    sleep = next(s for s in telemetry.client_spans() if s.name == "tools/call sleep")
    assert sleep.attributes["error.type"] == "timeout"  # type: ignore[index]
    crash = next(s for s in telemetry.client_spans() if s.name == "tools/call crash")
    assert crash.attributes["error.type"] == "ConnectionLostError"  # type: ignore[index]
    assert crash.status.status_code is StatusCode.ERROR


async def test_a_list_request_span_is_named_by_its_method_alone(telemetry: Telemetry) -> None:
    async with ManagedSession(stdio()) as session:
        await session.list_tools()
    (span,) = [
        s for s in telemetry.client_spans() if s.attributes and s.attributes.get("mcp.method.name") == "tools/list"
    ]
    assert span.name == "tools/list"


async def test_a_gateway_continues_the_clients_trace_to_its_backend(telemetry: Telemetry) -> None:
    """What the gateway does for each client request: the backend's span is a child of the client's."""
    tracer = telemetry.tracer_provider.get_tracer("client")
    with tracer.start_as_current_span("client call") as client_span:
        carrier: dict[str, str] = {}
        from opentelemetry import propagate

        propagate.inject(carrier)
    incoming = {"progressToken": 7, **carrier}
    async with ManagedSession(stdio("--echo-meta")) as backend:
        with continue_trace(incoming):
            result = await backend.call_tool("meta")
    (span,) = [s for s in telemetry.client_spans() if s.name == "tools/call meta"]
    assert span.parent is not None and span.parent.span_id == client_span.get_span_context().span_id
    assert span.context.trace_id == client_span.get_span_context().trace_id
    meta = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert meta["traceparent"].split("-")[2] == format(span.context.span_id, "016x")
    assert trace.get_current_span().get_span_context().is_valid is False, "the context was detached"


async def test_the_metrics_are_recorded_by_method_server_and_outcome(telemetry: Telemetry) -> None:
    async with ManagedSession(stdio(), restart=FAST) as session:
        await session.call_tool("add", {"a": 1, "b": 2})
        with pytest.raises(ConnectionLostError):
            await session.call_tool("crash", {"code": 3})
        import anyio

        with anyio.fail_after(10):
            while session.restarts < 1 or str(session.state) != "connected":
                await anyio.sleep(0.01)
    metrics = telemetry.metrics()
    durations = metrics["mcp.client.operation.duration"]
    add = next(p for p in durations if p.attributes.get("gen_ai.tool.name") == "add")
    assert add.count == 1 and add.sum > 0 and add.attributes[SERVER_NAME_ATTRIBUTE] == "calc"
    assert add.attributes["mcp.method.name"] == "tools/call"
    outcomes = {p.attributes["mcp_connections.outcome"]: p.value for p in metrics["mcp_connections.client.requests"]}
    assert outcomes["ok"] >= 1 and outcomes["lost"] == 1
    assert sum(p.value for p in metrics["mcp_connections.server.restarts"]) == 1
    assert sum(p.value for p in metrics["mcp_connections.servers.connected"]) == 0  # stopped: none connected


def test_with_a_global_tracer_provider_set_the_spans_and_the_sdk_servers_join_one_trace(tmp_path: Any) -> None:
    """A process of its own: the global provider can be set only once per process."""
    script = textwrap.dedent(
        """
        import anyio
        from mcp.server.mcpserver import MCPServer
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.trace import SpanKind
        from mcp_connections import InMemoryConnectionManager, ManagedSession

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        server = MCPServer("memory")

        @server.tool()
        def add(a: int, b: int) -> int:
            return a + b

        async def main():
            async with ManagedSession(InMemoryConnectionManager(server), mode="legacy") as session:
                await session.call_tool("add", {"a": 1, "b": 2})

        anyio.run(main)
        spans = exporter.get_finished_spans()
        ours = [s for s in spans if s.kind is SpanKind.CLIENT and s.name == "tools/call add"]
        served = [s for s in spans if s.kind is SpanKind.SERVER and s.name == "tools/call add"]
        assert len(ours) == 1 and len(served) == 1, [(s.name, s.kind) for s in spans]
        assert served[0].context.trace_id == ours[0].context.trace_id
        assert served[0].parent.span_id == ours[0].context.span_id, "the server span is our span's child"
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_without_a_provider_no_span_is_made_and_the_requests_are_not_wrapped() -> None:
    from mcp_connections import _otel

    configure()
    if not type(trace.get_tracer_provider()).__name__.startswith("Proxy"):
        pytest.skip("a global tracer provider is set in this process")
    assert _otel.tracer() is None

"""OpenTelemetry spans, metrics and trace-context propagation: the one module that imports ``opentelemetry``.

Design: nothing here costs anything unless a tracer (or meter) provider is set, globally
(``opentelemetry.trace.set_tracer_provider``) or for this library (``mcp_connections.otel.configure``): the
provider is looked up on each request (one call and an identity check against the last one seen) and the
default proxy or a no-op provider means "off". ``opentelemetry`` is imported lazily, on the first such look-up;
without the package everything is off.

Names and attributes follow the OpenTelemetry semantic conventions for MCP (status: development), as of the
open-telemetry/semantic-conventions-genai repository's docs/gen-ai/mcp.md and model/mcp/{common,spans,
metrics}.yaml (https://opentelemetry.io/docs/specs/semconv/gen-ai/mcp/):

* one CLIENT span per request, named ``{mcp.method.name} {target}`` where the target is ``gen_ai.tool.name``
  or ``gen_ai.prompt.name`` (just ``{mcp.method.name}`` otherwise; a resource URI is high-cardinality, so it
  goes to ``mcp.resource.uri`` only); attributes ``mcp.method.name``, ``gen_ai.tool.name`` with
  ``gen_ai.operation.name=execute_tool`` for ``tools/call``, ``gen_ai.prompt.name``, ``mcp.protocol.version``,
  ``mcp.session.id`` (streamable HTTP, once known), ``jsonrpc.request.id``, ``network.transport`` (``pipe``
  for stdio, ``tcp`` for HTTP and WebSocket), ``network.protocol.name``, ``server.address``/``server.port``
  for remote servers, and ``error.type`` (the JSON-RPC code as a string for an error answer, with
  ``rpc.response.status_code``; ``tool_error`` for an ``isError`` result; ``timeout``; else the exception's
  class name) with the span status ERROR. The server's config name is ``mcp_connections.server.name``.
* the W3C trace context goes to the server in the request's ``params._meta`` (``traceparent``,
  ``tracestate``, unprefixed, as SEP-414 says), through the configured propagators, and it is *this* span's
  context, so the server's span is this span's child. The MCP SDK opens a span of its own inside ours
  ("MCP send ...") and injects its context; ``TracedWriteStream`` puts ours back as the message is written.
* metric ``mcp.client.operation.duration`` (histogram, s) by method, tool, server and error type, and this
  library's ``mcp_connections.client.requests`` (by outcome), ``mcp_connections.server.restarts`` and
  ``mcp_connections.servers.connected`` (an up-down counter), recorded from the events of ``events``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import Event

__all__ = [
    "SERVER_NAME_ATTRIBUTE",
    "TracedWriteStream",
    "configure",
    "current",
    "end_span",
    "metrics_enabled",
    "record",
    "start_span",
    "traced_streams",
    "tracer",
]

# The attribute that carries the server's name in the config (the conventions have none for it).
SERVER_NAME_ATTRIBUTE = "mcp_connections.server.name"

_INSTRUMENTATION = "mcp-connections"

# The keys the propagators write (W3C trace context and baggage), replaced as one.
_PROPAGATION_KEYS = ("traceparent", "tracestate", "baggage")

# Whether opentelemetry imported: None until first asked.
_available: bool | None = None
# Providers given to configure(); None means the global ones.
_tracer_provider: Any = None
_meter_provider: Any = None
# (provider, tracer) and (provider, instruments) last seen, so a look-up is an identity check.
_tracer_cache: tuple[Any, Any] = (None, None)
_meter_cache: tuple[Any, Any] = (None, None)


class _Outgoing:
    """The span of the request in flight in this context, and whether its JSON-RPC id was recorded."""

    __slots__ = ("id_recorded", "span")

    def __init__(self, span: Any) -> None:
        self.span = span
        self.id_recorded = False


_OUTGOING: contextvars.ContextVar[_Outgoing | None] = contextvars.ContextVar("mcp_connections_span", default=None)


# The API's modules once imported, and whether a provider may come from the environment (OTEL_PYTHON_*).
_trace_api: Any = None
_metrics_internal: Any = None
_from_environment = False


def _imported() -> bool:
    global _available, _trace_api, _metrics_internal, _from_environment
    if _available is None:
        try:
            import opentelemetry.metrics._internal as metrics_internal
            import opentelemetry.propagate  # noqa: F401
            import opentelemetry.trace as trace_api
        except ImportError:
            _available = False
        else:
            import os

            _trace_api, _metrics_internal = trace_api, metrics_internal
            names = ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
            _from_environment = any(name in os.environ for name in names)
            _available = True
    return _available


def _global(module: Any, attribute: str, getter: str) -> Any:
    """The global provider, or None when none is set. The API's getter checks the environment on every call
    (about a microsecond); its module's global says the same at once, so it is read first."""
    if _from_environment or not hasattr(module, attribute):
        return getattr(module, getter)()
    return getattr(module, attribute)


def configure(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Use these providers for this library's spans and metrics (None: the global ones)."""
    global _tracer_provider, _meter_provider, _tracer_cache, _meter_cache
    _tracer_provider, _meter_provider = tracer_provider, meter_provider
    _tracer_cache = _meter_cache = (None, None)


def _is_off(provider: Any) -> bool:
    name = type(provider).__name__
    return name in ("ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider")


def tracer() -> Any:
    """The tracer to use now, or None when tracing is off."""
    global _tracer_cache
    if _trace_api is None and not _imported():
        return None
    provider = _tracer_provider
    if provider is None:
        provider = _global(_trace_api, "_TRACER_PROVIDER", "get_tracer_provider")
        if provider is None:
            return None
    cached_provider, cached = _tracer_cache
    if provider is cached_provider:
        return cached
    found = None if _is_off(provider) else provider.get_tracer(_INSTRUMENTATION, _version())
    _tracer_cache = (provider, found)
    return found


class _Instruments:
    def __init__(self, meter: Any) -> None:
        self.duration = meter.create_histogram(
            "mcp.client.operation.duration",
            unit="s",
            description="The duration of the MCP request as observed on the sender, until the response came.",
            explicit_bucket_boundaries_advisory=[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
        )
        self.requests = meter.create_counter(
            "mcp_connections.client.requests", unit="{request}", description="Requests to MCP servers, by outcome."
        )
        self.restarts = meter.create_counter(
            "mcp_connections.server.restarts", unit="{restart}", description="Restarts of MCP servers."
        )
        self.connected = meter.create_up_down_counter(
            "mcp_connections.servers.connected", unit="{server}", description="MCP servers connected now."
        )


def _instruments() -> _Instruments | None:
    global _meter_cache
    if _metrics_internal is None and not _imported():
        return None
    provider = _meter_provider
    if provider is None:
        provider = _global(_metrics_internal, "_METER_PROVIDER", "get_meter_provider")
        if provider is None:
            return None
    cached_provider, cached = _meter_cache
    if provider is cached_provider:
        return cached  # type: ignore[no-any-return]
    found = None if _is_off(provider) else _Instruments(provider.get_meter(_INSTRUMENTATION, _version()))
    _meter_cache = (provider, found)
    return found


def metrics_enabled() -> bool:
    return _instruments() is not None


def _version() -> str:
    from . import __version__

    return __version__


# -- spans ----------------------------------------------------------------------------------------------


def _transport_attributes(manager: Any) -> dict[str, Any]:
    """network.transport and server.address/port of a manager, by what it is (duck-typed: no imports)."""
    from .stdio import StdioConnectionManager

    if isinstance(manager, StdioConnectionManager):
        return {"network.transport": "pipe"}
    url = getattr(manager, "_url", None) or getattr(manager, "url", None)
    if not isinstance(url, str):
        return {}
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return {}
    scheme = parts.scheme.lower()
    attributes: dict[str, Any] = {
        "network.transport": "tcp",
        "network.protocol.name": "websocket" if scheme in ("ws", "wss") else "http",
    }
    if parts.hostname:
        attributes["server.address"] = parts.hostname
        attributes["server.port"] = port or (443 if scheme in ("https", "wss") else 80)
    return attributes


def start_span(tracer: Any, session: Any, method: str, target: str | None) -> Any:
    attributes: dict[str, Any] = {"mcp.method.name": method, SERVER_NAME_ATTRIBUTE: session.name}
    name = method
    if method == "tools/call" and target is not None:
        attributes["gen_ai.tool.name"] = target
        attributes["gen_ai.operation.name"] = "execute_tool"
        name = f"{method} {target}"
    elif method == "prompts/get" and target is not None:
        attributes["gen_ai.prompt.name"] = target
        name = f"{method} {target}"
    elif method == "resources/read" and target is not None:
        attributes["mcp.resource.uri"] = target
    if session.protocol_version:
        attributes["mcp.protocol.version"] = session.protocol_version
    manager = session.manager
    session_id = getattr(manager, "http_session_id", None)
    if isinstance(session_id, str) and session_id:
        attributes["mcp.session.id"] = session_id
    attributes.update(_transport_attributes(manager))
    from opentelemetry.trace import SpanKind

    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


@contextlib.contextmanager
def current(span: Any) -> Iterator[None]:
    """Make ``span`` the current span (and the one sent to the server) for the request's duration."""
    if span is None:
        yield
        return
    from opentelemetry import context, trace

    token = context.attach(trace.set_span_in_context(span))
    outgoing = _OUTGOING.set(_Outgoing(span))
    try:
        yield
    finally:
        _OUTGOING.reset(outgoing)
        context.detach(token)


def end_span(span: Any, outcome: str, failure: BaseException | None, code: int | None) -> None:
    from opentelemetry.trace import StatusCode

    if outcome == "error":
        span.set_attribute("error.type", "tool_error")
        span.set_status(StatusCode.ERROR)
    elif outcome != "ok":
        message = str(failure) if failure is not None else None
        if code is not None:
            span.set_attributes({"error.type": str(code), "rpc.response.status_code": str(code)})
        elif outcome == "timeout":
            span.set_attribute("error.type", "timeout")
        else:
            import anyio

            cancelled = failure is not None and isinstance(failure, anyio.get_cancelled_exc_class())
            span.set_attribute("error.type", "cancelled" if cancelled else type(failure).__qualname__)
        if failure is not None and not isinstance(failure, BaseExceptionGroup):
            span.record_exception(failure)
        span.set_status(StatusCode.ERROR, message)
    span.end()


# -- propagation to the server --------------------------------------------------------------------------


class TracedWriteStream:
    """A session's write stream that puts the current request's trace context into each request's ``_meta``.

    A request written in the context of one of our spans gets that span's ``traceparent`` (and
    ``tracestate``, ``baggage``) in ``params._meta``, and the span gets its ``jsonrpc.request.id``. Outside
    such a context (no tracing, the session's own pings and listings with tracing off) it only forwards.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def send(self, item: Any, /) -> None:
        outgoing = _OUTGOING.get()
        if outgoing is not None:
            _inject(item, outgoing)
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> TracedWriteStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._inner.__aexit__(*exc_info)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def traced_streams(streams: Any) -> Any:
    """A manager's ``(read, write)`` with the write side traced (see ``TracedWriteStream``)."""
    read, write = streams
    return read, TracedWriteStream(write)


def _inject(item: Any, outgoing: _Outgoing) -> None:
    from mcp_types import JSONRPCRequest

    message = getattr(item, "message", None)
    if not isinstance(message, JSONRPCRequest):
        return
    from opentelemetry import propagate, trace

    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(outgoing.span))
    if not carrier:
        return
    params = dict(message.params or {})
    meta = {k: v for k, v in dict(params.get("_meta") or {}).items() if k not in _PROPAGATION_KEYS}
    meta.update(carrier)
    params["_meta"] = meta
    message.params = params
    if not outgoing.id_recorded:
        outgoing.id_recorded = True
        outgoing.span.set_attribute("jsonrpc.request.id", str(message.id))


# -- metrics, from the events ----------------------------------------------------------------------------


def record(event: Event) -> None:
    instruments = _instruments()
    if instruments is None:
        return
    from .events import RequestEnded, Restarted, StateChanged

    server = {SERVER_NAME_ATTRIBUTE: event.server}
    if isinstance(event, RequestEnded):
        attributes: dict[str, Any] = {"mcp.method.name": event.method, **server}
        if event.tool is not None:
            attributes["gen_ai.tool.name"] = event.tool
            attributes["gen_ai.operation.name"] = "execute_tool"
        if event.outcome != "ok":
            attributes["error.type"] = _metric_error_type(event)
        instruments.duration.record(event.duration, attributes)
        outcome = {"mcp.method.name": event.method, "mcp_connections.outcome": event.outcome, **server}
        instruments.requests.add(1, outcome)
    elif isinstance(event, Restarted):
        instruments.restarts.add(1, {**server, "error.type": event.cause_type})
    elif isinstance(event, StateChanged):
        from ._lifecycle import ConnectionState

        if event.new is ConnectionState.CONNECTED:
            instruments.connected.add(1, server)
        elif event.old is ConnectionState.CONNECTED:
            instruments.connected.add(-1, server)


def _metric_error_type(event: Any) -> str:
    if event.outcome == "error":
        return "tool_error"
    if event.error_code is not None:
        return str(event.error_code)
    if event.outcome == "timeout":
        return "timeout"
    return str(event.error_type or "_OTHER")

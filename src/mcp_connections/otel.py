"""OpenTelemetry for mcp-connections: spans and metrics of every request, and traces continued through a gateway.

Install the extra (``pip install 'mcp-connections[otel]'``) and set a tracer provider (and a meter provider
for metrics) as for any instrumented library; from then on every request of every ``ManagedSession`` and
``ServerGroup`` is a CLIENT span named and attributed per the semantic conventions for MCP, the W3C trace
context goes to the server in the request's ``params._meta``, and the metrics are recorded (see ``_otel``
for the names). With no provider set (or the package missing), nothing is recorded and nothing is paid.

``configure(tracer_provider=..., meter_provider=...)`` gives this library providers of its own instead of
the global ones (None: back to the global ones). ``continue_trace(meta)`` is for a gateway: it continues the
trace of the client whose request it serves, so that the spans of the requests it makes to its backends are
children of the client's span.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from ._otel import SERVER_NAME_ATTRIBUTE, configure

__all__ = ["SERVER_NAME_ATTRIBUTE", "configure", "continue_trace"]


@contextlib.contextmanager
def continue_trace(meta: Mapping[str, Any] | None) -> Iterator[None]:
    """Continue the trace whose context came in a request's ``_meta`` (``traceparent``, ``tracestate``).

    A gateway wraps the handling of each client request in it::

        async def call_tool(ctx, params):
            with continue_trace(ctx.meta):
                return await group.call(params.name, params.arguments)

    Inside, the span of each backend request that ``group`` makes is a child of the client's span, and the
    backend receives that span's context in its own ``_meta``, so client, gateway and backend share one
    trace. When a span is current already (the MCP SDK's server middleware opens one per request, from the
    same ``_meta``), it is kept: it is a child of the client's span itself. Without a provider, a valid
    ``traceparent`` or the package, it does nothing.
    """
    from . import _otel

    if not meta or _otel.tracer() is None:
        yield
        return
    from opentelemetry import context, propagate, trace

    if trace.get_current_span().get_span_context().is_valid:
        yield
        return
    carrier = {key: value for key, value in meta.items() if isinstance(value, str)}
    try:
        extracted = propagate.extract(carrier)
    except (TypeError, ValueError):
        extracted = None
    if extracted is None or not trace.get_current_span(extracted).get_span_context().is_valid:
        yield
        return
    token = context.attach(extracted)
    try:
        yield
    finally:
        context.detach(token)

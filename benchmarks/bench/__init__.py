"""The benchmark suite of mcp-connections: a harness, and one module per family of figures.

``benchmarks/run.py`` is the entry point (``make bench``). ``harness`` holds what every figure shares:
the counts, rounds that alternate ours and raw, the ``Metric``/``Report`` pair that prints the table with
each target and "met"/"MISSED", and the JSON document. Each other module is one family of figures; a
figure is an ``async def`` or a ``def`` taking ``(report, counts)`` and decorated with
``@figure("section", order)``: that is all it takes for ``run.py`` to run it, ``--only`` to select it, and
the table, the JSON and the chart to show it.
"""

# The families, imported for their @figure registrations; the order of the run is each figure's `order`.
from . import calls, cycles, events, floor, gateway, generations, http_calls, imports, lazy, memory, start_stop

__all__ = [
    "calls",
    "cycles",
    "events",
    "floor",
    "gateway",
    "generations",
    "http_calls",
    "imports",
    "lazy",
    "memory",
    "start_stop",
]

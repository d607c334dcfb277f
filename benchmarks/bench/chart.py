"""The chart: call latency distributions, start and stop samples, and every ratio against its target."""

from __future__ import annotations

from pathlib import Path

from .harness import OURS, RAW, Report, percentile


def chart(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    # On a log axis, label the minor ticks at 2x and 5x only, so that a narrow range still reads.
    plain_minor = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    colors = {OURS: "#1f77b4", RAW: "#ff7f0e", "floor": "#7f7f7f"}
    names = {OURS: "mcp-connections", RAW: "raw SDK", "floor": "plain pipes (floor)"}
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    fig.suptitle("mcp-connections vs the raw MCP SDK (lower latency is better; ratio 1.0 = same as raw)", fontsize=13)

    # Call latency distributions, one panel per transport: the share of calls answered within x.
    for ax, transport in zip(axes[0], ("stdio", "streamable HTTP"), strict=True):
        data = report.latencies.get(transport)
        if not data:
            ax.text(0.5, 0.5, f"{transport}: not measured", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        for side, values in data.items():
            ms = sorted(v * 1000 for v in values)
            share = [(i + 1) / len(ms) for i in range(len(ms))]
            p50, p99 = percentile(ms, 50), percentile(ms, 99)
            ax.step(
                ms,
                share,
                where="post",
                color=colors[side],
                linewidth=1.8,
                label=f"{names[side]}: p50 {p50:.3f} ms, p99 {p99:.3f} ms",
            )
            ax.plot([p50, p99], [0.5, 0.99], "o", color=colors[side], markersize=5)
        ax.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
        ax.axhline(0.99, color="grey", linewidth=0.6, linestyle=":")
        everything = [v * 1000 for values in data.values() for v in values]
        ax.set_xlim(min(everything) * 0.9, percentile(everything, 99.8) * 1.3)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain_minor)
        ax.set_xlabel("round trip, ms (log scale); dots: p50 and p99")
        ax.set_ylabel("share of calls answered within")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"echo tool call over {transport}, one at a time")
        ax.legend(loc="lower right", fontsize=8)

    # Start and stop times, sample by sample.
    ax = axes[1][0]
    groups = [
        ("start_stdlib", "start\nstdlib server"),
        ("start_mcpserver", "start\nMCPServer"),
        ("stop_stdlib", "stop\nwell-behaved"),
        ("fleet_start", "servers started\nall at once"),
    ]
    by_key = {m.key: m for m in report.metrics}
    positions, labels = [], []
    for i, (key, label) in enumerate(groups):
        metric = by_key.get(key)
        if metric is None:
            continue
        for offset, side, values in ((-0.18, OURS, metric.ours), (0.18, RAW, metric.raw or [])):
            if not values:
                continue
            ms = [v * 1000 for v in values]
            ax.boxplot(
                [ms],
                positions=[i + offset],
                widths=0.3,
                patch_artist=True,
                boxprops={"facecolor": colors[side], "alpha": 0.4},
                medianprops={"color": colors[side]},
                showfliers=False,
            )
            ax.scatter([i + offset] * len(ms), ms, s=10, color=colors[side], zorder=3)
        positions.append(i)
        labels.append(label)
    ax.set_xticks(positions, labels)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain_minor)
    ax.set_ylabel("ms (log scale)")
    ax.set_title("start to initialized, and stop (each dot one sample)")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=colors[s], alpha=0.6, label=names[s]) for s in (OURS, RAW)])

    # Ratios against their targets.
    ax = axes[1][1]
    rows = [m for m in report.metrics if m.ratio is not None and (m.max_ratio is not None or m.min_ratio is not None)]
    rows += [m for m in report.metrics if m.ratio is not None and m not in rows and m.unit != "count"]
    ys = list(range(len(rows)))[::-1]
    for y, m in zip(ys, rows, strict=True):
        colour = {True: "#2ca02c", False: "#d62728", None: "#9e9e9e"}[m.met if m.met is not None else None]
        ax.barh(y, m.ratio, color=colour, alpha=0.8)
        ax.text(m.ratio, y, f" {m.ratio:.3f}", va="center", fontsize=8)
        bound = m.max_ratio if m.max_ratio is not None else m.min_ratio
        if bound is not None:
            ax.plot([bound, bound], [y - 0.4, y + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="black", linestyle=":", linewidth=1)
    ax.set_yticks(ys, [m.label for m in rows], fontsize=8)
    ax.set_xlabel("ours / raw SDK, medians; black tick: the target")
    ax.set_title("ratios (green: target met, red: missed, grey: no ratio target)")
    hi = max((m.ratio for m in rows), default=1.0)
    ax.set_xlim(0, max(1.3, min(hi * 1.15, 5)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

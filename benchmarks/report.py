"""Turning the measurements into the markdown report and the PNG chart.

Pure formatting: it runs nothing and measures nothing, so a report can be rebuilt or
restyled without touching how the numbers are taken.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plan import CEILING_NAME, REFERENCE, Plan, Series


def fmt_count(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def fmt_num(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ratio(x: float | None) -> str:
    return "" if x is None else f" ({x:.2f}×)"


def med_msgs(s: Series) -> float | None:
    vals = [x.msgs_per_s for x in s.samples]
    return statistics.median(vals) if vals else None


def med_cpu(s: Series) -> float | None:
    vals = [x.cpu_us_per_msg for x in s.samples if x.cpu_us_per_msg is not None]
    return statistics.median(vals) if vals else None


def med_of(vals: Sequence[float | None]) -> float | None:
    clean = [v for v in vals if v is not None]
    return statistics.median(clean) if clean else None


def ratio(value: float | None, ref: float | None) -> float | None:
    if value is None or ref is None or ref == 0:
        return None
    return value / ref


def geomean(vals: Sequence[float]) -> float | None:
    clean = [v for v in vals if v > 0]
    if not clean:
        return None
    return math.exp(sum(math.log(v) for v in clean) / len(clean))


def net_table(results: dict[str, dict[str, Series]], columns: list[str]) -> list[str]:
    head = ["cell"]
    for name in columns:
        head += [f"{name} msgs/s", f"{name} µs CPU/msg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, per_loop in results.items():
        ref = per_loop.get(REFERENCE)
        ref_msgs = med_msgs(ref) if ref else None
        ref_cpu = med_cpu(ref) if ref else None
        row = [label]
        for name in columns:
            s = per_loop.get(name)
            if s is None:
                row += ["-", "-"]
                continue
            if not s.samples:
                row += ["failed", "failed"]
                continue
            msgs = [x.msgs_per_s for x in s.samples]
            cpus = [x.cpu_us_per_msg for x in s.samples if x.cpu_us_per_msg is not None]
            flag = " ⚠" if s.failures or any(x.errors for x in s.samples) else ""
            m = med_msgs(s)
            row.append(
                f"{fmt_count(m)}{fmt_ratio(ratio(m, ref_msgs))} "
                f"[{fmt_count(min(msgs))}–{fmt_count(max(msgs))}]{flag}"
            )
            c = med_cpu(s)
            row.append(
                f"{fmt_num(c)}{fmt_ratio(ratio(c, ref_cpu))} "
                f"[{fmt_num(min(cpus))}–{fmt_num(max(cpus))}]"
                if cpus
                else "-"
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def detail_table(results: dict[str, dict[str, Series]], columns: list[str]) -> list[str]:
    head = ["cell"] + [f"{name}: server CPU · client CPU · p50 / p99 µs" for name in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, per_loop in results.items():
        row = [label]
        for name in columns:
            s = per_loop.get(name)
            if s is None or not s.samples:
                row.append("-")
                continue
            srv = med_of([x.server_cpu_share for x in s.samples])
            cli = med_of([x.client_cpu_share for x in s.samples])
            p50 = med_of([x.p50_us for x in s.samples])
            p99 = med_of([x.p99_us for x in s.samples])
            errors = sum(x.errors for x in s.samples)
            text = (
                f"{(srv or 0) * 100:.0f}% · {(cli or 0) * 100:.0f}% · "
                f"{fmt_num(p50)} / {fmt_num(p99)}"
            )
            if errors or s.failures:
                text += f" · {errors} conn errors, {len(s.failures)} failed runs"
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def ranking_table(
    results: dict[str, dict[str, Series]], columns: list[str], loop_classes: dict[str, str]
) -> list[str]:
    lines = [
        "| loop | class | msgs/s vs uvloop (geomean) | CPU/msg vs uvloop (geomean) | cells |",
        "|---|---|---|---|---|",
    ]
    rows: list[tuple[float, str]] = []
    for name in columns:
        msg_ratios: list[float] = []
        cpu_ratios: list[float] = []
        for per_loop in results.values():
            ref, s = per_loop.get(REFERENCE), per_loop.get(name)
            if ref is None or s is None:
                continue
            r = ratio(med_msgs(s), med_msgs(ref))
            if r is not None:
                msg_ratios.append(r)
            r = ratio(med_cpu(s), med_cpu(ref))
            if r is not None:
                cpu_ratios.append(r)
        gm, gc = geomean(msg_ratios), geomean(cpu_ratios)
        cls = loop_classes.get(name, "pure Rust, tokio current_thread")
        text = (
            f"| {name} | `{cls}` | {'-' if gm is None else f'{gm:.2f}×'} | "
            f"{'-' if gc is None else f'{gc:.2f}×'} | {len(msg_ratios)} |"
        )
        rows.append((gc if gc is not None else math.inf, text))
    rows.sort(key=lambda r: r[0])
    return lines + [text for _, text in rows]


def micro_table(results: dict[str, dict[str, list[float]]], loops: list[str]) -> list[str]:
    head = ["benchmark"] + [f"{name} ops/s" for name in loops]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for bench, per_loop in results.items():
        ref_vals = per_loop.get(REFERENCE) or []
        ref = statistics.median(ref_vals) if ref_vals else None
        row = [bench]
        for name in loops:
            vals = per_loop.get(name)
            if not vals:
                row.append("failed" if vals is not None else "-")
                continue
            m = statistics.median(vals)
            row.append(
                f"{fmt_count(m)}{fmt_ratio(ratio(m, ref))} "
                f"[{fmt_count(min(vals))}–{fmt_count(max(vals))}]"
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def build_report(
    plan: Plan,
    info: dict[str, str],
    availability: dict[str, tuple[bool, str]],
    net: dict[str, dict[str, Series]],
    micro: dict[str, dict[str, list[float]]],
    loops: list[str],
    elapsed: float,
) -> str:
    out = ["# rloop benchmarks", ""]
    out.append("Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()))
    out.append("")
    out.append(f"Plan: {plan.describe()}. Total time {elapsed:.0f} s.")
    out.append("")
    out.append("Loops: " + "; ".join(
        f"{name} = `{detail}`" if ok else f"{name} = not installed ({detail})"
        for name, (ok, detail) in availability.items()
    ))  # fmt: skip
    out.append("")
    classes = {name: detail for name, (ok, detail) in availability.items() if ok}
    if net:
        columns = loops + ([CEILING_NAME] if any(CEILING_NAME in v for v in net.values()) else [])
        out += ["## Network", ""]
        out.append(
            "Each cell: median of the runs, ratio to uvloop in parentheses, [min–max] of "
            "the runs. msgs/s: higher is better. µs CPU/msg: server user+sys CPU time "
            "(all threads) per message during the measured window, lower is better. "
            "`ceiling` is a pure-Rust single-threaded server: the limit of this machine "
            "and load client. ⚠ = some connections or runs failed (see details)."
        )
        out.append("")
        out += net_table(net, columns)
        out += ["", "### Ranking (geometric mean over all cells, sorted by CPU/msg)", ""]
        out += ranking_table(net, columns, classes)
        out += ["", "### Details: CPU share of one core (server · client), latency", ""]
        out += detail_table(net, columns)
        out.append("")
    if micro:
        out += ["## Loop microbenchmarks", ""]
        out.append("ops/s, median of the runs, (ratio to uvloop), [min–max]. Higher is better.")
        out.append("")
        out += micro_table(micro, loops)
        out.append("")
    return "\n".join(out)


def draw_chart(
    path: Path,
    net: dict[str, dict[str, Series]],
    micro: dict[str, dict[str, list[float]]],
    loops: list[str],
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = loops + [CEILING_NAME]
    colors = {
        "asyncio": "#9e9e9e",
        "uvloop": "#1f77b4",
        "rloop": "#d62728",
        "tokio": "#ff7f0e",
        "rloop05": "#8c564b",
        CEILING_NAME: "#2ca02c",
    }
    labels = list(net)
    n_panels = (2 if net else 0) + (1 if micro else 0)
    if n_panels == 0:
        return
    net_h = 0.32 * len(labels) * max(2, len(names)) / 2 + 1.5
    micro_h = 0.32 * len(micro) * max(2, len(loops)) / 2 + 1.5
    fig_h = (net_h if net else 0) + (micro_h if micro else 0) + 2.5
    fig = plt.figure(figsize=(15, fig_h))
    heights = ([net_h] if net else []) + ([micro_h] if micro else [])
    # Margins and the gap between the panels in inches, not in fractions
    # of the figure or of a panel: on a tall figure those left inches blank.
    mean_h = sum(heights) / len(heights)
    grid = fig.add_gridspec(
        len(heights), 2, height_ratios=heights, hspace=1.0 / mean_h, wspace=0.05,
        top=1 - 1.1 / fig_h, bottom=0.4 / fig_h,
    )  # fmt: skip

    def bars(ax: Any, rows: list[str], values: dict[str, list[float | None]]) -> None:
        present = [n for n in values if any(v is not None for v in values[n])]
        width = 0.8 / max(1, len(present))
        for i, name in enumerate(present):
            ys = [r + (i - (len(present) - 1) / 2) * width for r in range(len(rows))]
            xs = [v if v is not None else 0.0 for v in values[name]]
            ax.barh(ys, xs, height=width, color=colors.get(name, "#8c564b"), label=name)
            for y, v in zip(ys, values[name]):
                if v is not None:
                    ax.text(v, y, f" {v:.2f}", va="center", fontsize=6)
        top = max([v for name in present for v in values[name] if v is not None] + [1.0])
        ax.set_xlim(0, top * 1.15)
        ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)

    row = 0
    if net:
        msg_vals: dict[str, list[float | None]] = {}
        cpu_vals: dict[str, list[float | None]] = {}
        for name in names:
            msg_vals[name] = []
            cpu_vals[name] = []
            for label in labels:
                per_loop = net[label]
                ref, s = per_loop.get(REFERENCE), per_loop.get(name)
                if ref is None or s is None or not s.samples:
                    msg_vals[name].append(None)
                    cpu_vals[name].append(None)
                    continue
                msg_vals[name].append(ratio(med_msgs(s), med_msgs(ref)))
                cpu_vals[name].append(ratio(med_cpu(s), med_cpu(ref)))
        ax1 = fig.add_subplot(grid[row, 0])
        bars(ax1, labels, msg_vals)
        ax1.set_yticks(range(len(labels)))
        ax1.set_yticklabels(labels, fontsize=8)
        ax1.set_title("messages/s relative to uvloop (higher is better)", fontsize=10)
        ax2 = fig.add_subplot(grid[row, 1], sharey=ax1)
        bars(ax2, labels, cpu_vals)
        ax2.tick_params(labelleft=False)
        ax2.set_title("server CPU µs/message relative to uvloop (lower is better)", fontsize=10)
        row += 1
    if micro:
        benches = list(micro)
        micro_vals: dict[str, list[float | None]] = {}
        for name in loops:
            micro_vals[name] = []
            for bench in benches:
                runs = micro[bench]
                ref_v, v = runs.get(REFERENCE), runs.get(name)
                micro_vals[name].append(
                    ratio(statistics.median(v), statistics.median(ref_v)) if v and ref_v else None
                )
        ax3 = fig.add_subplot(grid[row, :])
        bars(ax3, benches, micro_vals)
        ax3.set_yticks(range(len(benches)))
        ax3.set_yticklabels(benches, fontsize=8)
        ax3.set_title("loop microbenchmarks: ops/s relative to uvloop (higher is better)",
                      fontsize=10)  # fmt: skip
    from matplotlib.patches import Patch

    shown = [n for n in names if any(n in per_loop for per_loop in net.values()) or n in loops]
    handles = [Patch(color=colors.get(n, "#8c564b"), label=n) for n in shown]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9,
               bbox_to_anchor=(0.5, 0.985), frameon=False)  # fmt: skip
    fig.suptitle(title, fontsize=11, y=1.0)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)

"""A sweep's results: ``results.csv`` and ``results.md`` (mean ± std over the averaged grid keys for each
composition: eval metrics, parameters, trainable parameters, train time) and ``results.png`` (the
ranking metric as bars with error bars), grouped by training dataset.
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmzoo.sweep.config import Point, Sweep, composition

LOSSES = ("loss", "error", "mse", "mae", "rmse", "perplexity")


@dataclass
class Row:
    """One composition: its points' statuses and what they measured."""

    composition: str
    dataset: str
    values: dict[str, Any]
    best_metric: str
    points: list[tuple[Point, dict[str, Any]]] = field(default_factory=list)

    @property
    def done(self) -> list[dict[str, Any]]:
        return [status for _, status in self.points if status.get("status") == "done"]

    @property
    def failed(self) -> list[tuple[Point, dict[str, Any]]]:
        return [(p, s) for p, s in self.points if s.get("status") != "done"]

    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(name for status in self.done for name in status.get("metrics") or {}))

    def stat(self, name: str) -> tuple[float, float, int] | None:
        """``(mean, std, n)`` of a metric (or ``seconds``) over the done points; std is 0 for one point."""
        if name == "seconds":
            values = [s["seconds"] for s in self.done if _number(s.get("seconds"))]
        else:
            values = [s["metrics"][name] for s in self.done if _number((s.get("metrics") or {}).get(name))]
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.fmean(values), std, len(values)

    def first(self, key: str) -> Any:
        return next((s.get(key) for s in self.done if s.get(key) is not None), None)


def collect(sweep: Sweep, statuses: dict[str, dict[str, Any]]) -> list[Row]:
    """One row per composition, in the order the sweep lists its points."""
    rows: dict[str, Row] = {}
    for point in sweep.points:
        name = composition(point, sweep.average_over)
        status = statuses.get(point.name) or {"status": "not run"}
        row = rows.get(name)
        if row is None:
            values = {k: point.labels.get(k, v) for k, v in point.values.items() if k not in sweep.average_over}
            row = rows[name] = Row(name, point.config.data.train.dataset, values, point.config.best_metric)
        row.points.append((point, status))
    return list(rows.values())


def sections(sweep: Sweep, rows: Sequence[Row]) -> list[tuple[str, str, list[Row]]]:
    """``(title, ranking metric, rows)`` per training dataset and ranking metric (the sweep's ``metric``,
    else each base's ``best_metric``): a classifier and a retrieval model on the same data are ranked
    apart."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.dataset, sweep.metric or row.best_metric), []).append(row)
    several = {dataset for dataset, _ in groups if sum(1 for d, _ in groups if d == dataset) > 1}
    return [(f"{dataset} (by {metric})" if dataset in several else dataset, metric, group)
            for (dataset, metric), group in groups.items()]


def lower_is_better(metric: str) -> bool:
    return any(word in metric.lower() for word in LOSSES)


def cpu_name() -> str:
    """This machine's CPU model (from /proc/cpuinfo where there is one, else what platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """Cores, CPU model, Python, torch (when importable without cost here) and OS of this machine."""
    cpu = cpu_name()
    try:
        from importlib.metadata import version

        torch_version = f", torch {version('torch')}"
    except Exception:
        torch_version = ""
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}{torch_version}, {platform.system()}"


def header(sweep: Sweep, command: str, rows: Sequence[Row]) -> list[str]:
    import mmzoo

    points = sum(len(r.points) for r in rows)
    done = sum(len(r.done) for r in rows)
    averaged = ", ".join(f"{k} in {sweep.grid[k]}" for k in sweep.average_over if k in sweep.grid)
    when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    return [
        f"Produced by `{command}` on {when} with mmzoo {mmzoo.__version__}.",
        f"Machine: {machine()}.",
        f"{done} of {points} points finished" + (f"; mean ± std over {averaged}" if averaged else "") + ".",
    ]


def write_results(sweep: Sweep, statuses: dict[str, dict[str, Any]], command: str) -> list[Path]:
    """Write results.csv, results.md and results.png into the sweep's results directory."""
    rows = collect(sweep, statuses)
    directory = sweep.results_dir
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "results.csv", directory / "results.md"]
    _atomic_text(written[0], render_csv(rows, sweep))
    _atomic_text(written[1], render_markdown(rows, sweep, command, sweep.title))
    chart = directory / "results.png"
    if plot(sections(sweep, rows), chart):
        written.append(chart)
    return written


def render_csv(rows: Sequence[Row], sweep: Sweep) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row.values))
    metrics = list(dict.fromkeys(m for row in rows for m in row.metric_names()))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["composition", "dataset", *keys, "runs", "failed", "parameters", "trainable_parameters",
                     "train_seconds_mean", "train_seconds_std",
                     *(f"{m}_{s}" for m in metrics for s in ("mean", "std"))])
    for row in rows:
        seconds = row.stat("seconds")
        cells = [row.composition, row.dataset, *(_cell(row.values.get(k, "")) for k in keys), len(row.done),
                 len(row.failed), row.first("parameters") or "", row.first("trainable_parameters") or "",
                 *(_float(seconds[i]) if seconds else "" for i in (0, 1))]
        for name in metrics:
            stat = row.stat(name)
            cells += [_float(stat[0]), _float(stat[1])] if stat else ["", ""]
        writer.writerow(cells)
    return out.getvalue()


def render_markdown(rows: Sequence[Row], sweep: Sweep, command: str, title: str) -> str:
    lines = [f"# {title}", "", *header(sweep, command, rows), ""]
    grouped = sections(sweep, rows)
    for heading, metric, group in grouped:
        metrics = list(dict.fromkeys(m for row in group for m in row.metric_names()))
        if metric in metrics:
            metrics.remove(metric)
            metrics.insert(0, metric)
        best = best_row(group, metric)
        if len(grouped) > 1:
            lines += [f"## {heading}", ""]
        lines += ["| composition | " + " | ".join(metrics) + " | parameters | trainable | train time |",
                  "|---|" + "--:|" * (len(metrics) + 3)]
        for row in _ranked(group, metric):
            label = f"**{row.composition}**" if row is best else row.composition
            cells = []
            for name in metrics:
                stat = row.stat(name)
                cells.append(f"{stat[0]:.4f} ± {stat[1]:.4f}" if stat else "—")
            seconds = row.stat("seconds")
            time_cell = f"{seconds[0]:.0f} ± {seconds[1]:.0f} s" if seconds else "—"
            runs = f" ({len(row.done)} of {len(row.points)} runs)" if row.failed else ""
            lines.append(f"| {label}{runs} | " + " | ".join(cells) +
                         f" | {_count(row.first('parameters'))} | {_count(row.first('trainable_parameters'))} "
                         f"| {time_cell} |")
        direction = "lower" if lower_is_better(metric) else "higher"
        lines += ["", f"Ranked by {metric} ({direction} is better); the best in bold.", ""]
    failures = [(p, s) for row in rows for p, s in row.failed]
    if failures:
        lines += ["Points that did not finish:", ""]
        for point, status in failures:
            message = str(status.get("error") or status.get("status")).strip().splitlines()[0]
            lines.append(f"- `{point.name}`: {status.get('status', 'failed')}: {message}")
        lines.append("")
    lines += ["Train time is the wall time of each run, from building the model to the saved model.", ""]
    return "\n".join(lines)


def best_row(rows: Sequence[Row], metric: str | None) -> Row | None:
    ranked = [row for row in _ranked(rows, metric) if metric and row.stat(metric)]
    return ranked[0] if ranked else None


def _ranked(rows: Sequence[Row], metric: str | None) -> list[Row]:
    if not metric:
        return list(rows)
    sign = 1.0 if lower_is_better(metric) else -1.0
    return sorted(rows, key=lambda r: sign * r.stat(metric)[0] if r.stat(metric) else math.inf)


def plot(grouped: Sequence[tuple[str, str, list[Row]]], path: Path) -> bool:
    """One panel per section: its ranking metric per composition, bars with std error bars; False when
    no row measured its metric."""
    panels = [(title, metric, [r for r in _ranked(group, metric) if r.stat(metric)]) for title, metric, group
              in grouped]
    panels = [panel for panel in panels if panel[2]]
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    heights = [len(group) for _, _, group in panels]
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 0.8 + 0.3 * sum(heights) + 0.7 * len(panels)),
                                squeeze=False, gridspec_kw={"height_ratios": heights})
    for axis, (title, metric, group) in zip(axes[:, 0], panels, strict=True):
        positions = list(range(len(group)))
        axis.barh(positions, [r.stat(metric)[0] for r in group], xerr=[r.stat(metric)[1] for r in group],
                  capsize=3, color="#4c72b0", alpha=0.85)
        axis.set_yticks(positions, [row.composition for row in group], fontsize=8)
        axis.invert_yaxis()
        axis.set_title(title, fontsize=10)
        axis.set_xlabel(metric)
        axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    temp = path.with_name(path.name + ".tmp")
    figure.savefig(temp, format="png", dpi=110)
    os.replace(temp, path)
    plt.close(figure)
    return True


def _atomic_text(path: Path, text: str) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _float(value: float) -> str:
    return f"{value:.6g}"


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _count(value: Any) -> str:
    if not isinstance(value, int):
        return "—"
    return f"{value / 1e6:.2f} M" if value >= 1e5 else f"{value:,}"

"""Metric averaging across batches and ranks, and the ``metrics.jsonl`` log.

A head's ``metrics`` returns per-batch means. Each is weighted by its batch's example count, summed
over batches and ranks, and divided by the total count, so a short last batch (or a rank holding one
example fewer) counts exactly as much as its examples.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class MetricSums:
    """Running ``sum(value * count)`` and ``sum(count)`` per metric name."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, float] = {}

    def add(self, metrics: Mapping[str, float], count: int) -> None:
        for name, value in metrics.items():
            value = float(value)
            self.sums[name] = self.sums.get(name, 0.0) + value * count
            self.counts[name] = self.counts.get(name, 0.0) + count

    def state(self) -> dict[str, tuple[float, float]]:
        return {name: (self.sums[name], self.counts[name]) for name in self.sums}


def merge_states(states: Iterable[Mapping[str, tuple[float, float]]]) -> dict[str, float]:
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for state in states:
        for name, (value, count) in state.items():
            sums[name] = sums.get(name, 0.0) + value
            counts[name] = counts.get(name, 0.0) + count
    return {name: sums[name] / counts[name] for name in sorted(sums) if counts[name]}


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per line, flushed as written (rank 0 only).

    Training lines: ``{"step", "epoch", "loss", "lr", "samples_per_s"}``; evaluation lines:
    ``{"step", "split": "eval", "examples", "eval_loss", "eval_<metric>", ...}``; the last line of a
    finished run: ``{"step", "split": "final", ...}``. Every line also gets ``"time"`` (seconds of
    training since the run started, carried on across resumes from the last line kept) and
    ``"timestamp"`` (the wall-clock time it was written, ISO 8601 in UTC). ``samples_per_s`` is the
    training throughput over the steps since the previous training line (data loading included,
    evaluation and checkpointing not).

    Listeners (:meth:`add_listener`) receive each record as written, after it is in the file.
    """

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._handle = None
        self._started = time.monotonic()
        self._offset = 0.0
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after ``step`` (a run resumed from that step's checkpoint logs them again),
        and the ``final`` line of a finished run: the resumed run writes its own when it finishes, so a run
        has one final line however often it was resumed. ``time`` carries on from the last line kept."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in read_metrics(self.path)
                if line.get("step", 0) <= step and line.get("split") != "final"]
        temp = self.path.with_name(self.path.name + ".tmp")
        temp.write_text("".join(json.dumps(line) + "\n" for line in kept), encoding="utf-8")
        os.replace(temp, self.path)
        times = [line["time"] for line in kept if isinstance(line.get("time"), int | float)]
        self._offset = float(max(times, default=0.0))
        self._started = time.monotonic()

    def add_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(record)`` with every record written from now on (not on disabled ranks)."""
        self._listeners.append(listener)

    def write(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append ``record`` with its ``time`` and ``timestamp``; returns the record as written."""
        stamped = {**record, "time": round(self._offset + time.monotonic() - self._started, 3),
                   "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        if not self.enabled:
            return stamped
        from mmzoo.storage import writing

        with writing(self.path):
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
            self._handle.write(json.dumps(_plain(stamped)) + "\n")
            self._handle.flush()
        for listener in self._listeners:
            listener(stamped)
        return stamped

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            try:
                handle.close()
            except OSError:
                pass  # the line it could not flush failed its write() already, with the message


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``; a torn last line (a crash mid-write) is skipped."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _plain(record: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        out[key] = value
    return out

"""Shared helpers for the benchmarks: interleaved timing, medians, and the result record.

Every figure is a ratio against a baseline measured in the same run, alternating the two so
that machine noise hits both alike. Run a bench alone (``python bench/bench_startup.py``) or all
of them with ``make bench`` (``bench/run.py``), which rewrites ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """One figure: ``value`` against ``baseline`` (same unit), and the target for their ratio."""

    bench: str
    name: str
    value: float
    baseline: float
    unit: str
    target: str = ""  # e.g. "<= 1.02" or ">= 0.97"
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    @property
    def passed(self) -> bool | None:
        if not self.target:
            return None
        op, bound = self.target.split()
        return self.ratio <= float(bound) if op == "<=" else self.ratio >= float(bound)

    def line(self) -> str:
        verdict = {True: "ok", False: "MISSED", None: ""}[self.passed]
        target = f" (target {self.target}) {verdict}" if self.target else ""
        note = f"  [{self.note}]" if self.note else ""
        return (f"{self.bench:<10} {self.name:<48} {self.value:10.4g} vs {self.baseline:10.4g} {self.unit:<10}"
                f" ratio {self.ratio:6.3f}{target}{note}")


def interleaved(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Call each measuring function in turn ``repeats`` times; return the median of each.

    The order alternates between rounds (A B, B A, ...), so that whatever the previous call leaves
    behind (warm caches, the allocator's free lists) favours neither side.
    """
    samples: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for round_ in range(repeats):
        for key in order if round_ % 2 == 0 else reversed(order):
            samples[key].append(fns[key]())
    return {k: statistics.median(v) for k, v in samples.items()}


def build_or_skip(build: Callable[[], object], label: str):
    """``build()`` seeded with 0, or None (said on stderr) when a part it needs is missing here, e.g. a
    plugin model without its plugin: the bench goes on with the other models."""
    import torch

    import mmzoo

    try:
        torch.manual_seed(0)
        return build()
    except mmzoo.MmzooError as exc:
        print(f"skipped {label}: {exc}", file=sys.stderr)
        return None


def wall_time(argv: list[str], env: dict | None = None) -> float:
    """Seconds one process takes from start to exit."""
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def main(bench: Callable[[argparse.Namespace], list[Result]], description: str) -> None:
    """Command-line wrapper: print each figure; ``--json PATH`` also writes them for run.py."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()
    results = bench(args)
    for r in results:
        print(r.line(), flush=True)
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "ratio": r.ratio, "passed": r.passed} for r in results],
                                        indent=2))


def python() -> str:
    return sys.executable

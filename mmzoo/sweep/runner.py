"""Running a sweep's points: in worker processes (``--parallel N`` of them), skipping finished points,
isolating failures.

Each point's run directory is ``OUTPUT_DIR/runs/<point>/`` (with ``resume: auto``, so an interrupted
point continues from its checkpoint) and its bookkeeping is ``OUTPUT_DIR/points/<point>.{yaml,log,json}``
(the run config, everything it printed, and its status: done, stopped or failed, with metrics,
parameters and train time). A point whose status says done with the same config is not run again. A
point that fails, or whose worker process dies, is reported and the others go on.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmzoo.errors import ConfigError
from mmzoo.sweep.config import Point, Sweep
from mmzoo.sweep.worker import write_json
from mmzoo.train.rundir import RunDir


def status_path(sweep: Sweep, point: Point) -> Path:
    return sweep.points_dir / f"{point.name}.json"


def read_status(sweep: Sweep, point: Point) -> dict[str, Any] | None:
    """A point's last recorded status, or None (never run, or its file is unreadable)."""
    try:
        status = json.loads(status_path(sweep, point).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def is_finished(sweep: Sweep, point: Point, status: dict[str, Any] | None) -> bool:
    return (
        status is not None and status.get("status") == "done" and status.get("digest") == point.digest()
        and RunDir(sweep.runs_dir / point.name).final_model() is not None
    )


def plan(sweep: Sweep) -> tuple[list[Point], list[Point]]:
    """``(to run, finished)``; a point that ran with another config than it has now is an error."""
    todo, finished, changed = [], [], []
    for point in sweep.points:
        status = read_status(sweep, point)
        if is_finished(sweep, point, status):
            finished.append(point)
        elif status is not None and status.get("digest") != point.digest() and RunDir(
                sweep.runs_dir / point.name).is_occupied():
            changed.append(point.name)
        else:
            todo.append(point)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise ConfigError(
            f"{sweep.source}: point(s) {shown} ran with another config than they have now (their run "
            f"directories are under {sweep.runs_dir}); remove those directories to run them again with this "
            "config, or choose another output_dir"
        )
    return todo, finished


class _Worker:
    """One worker process and the point it is running."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mmzoo.sweep.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, env=env,
        )

    def run(self, request: dict[str, Any]) -> bool:
        """Send one point; True when the worker answered, False when it died."""
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            return self.process.stdout.readline().strip() == "done"
        except (BrokenPipeError, OSError):
            return False

    def close(self, timeout: float = 30.0) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.log.close()


def run_points(
    sweep: Sweep, points: list[Point], *, parallel: int = 1, note: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """Run ``points`` in ``parallel`` worker processes; their statuses by name."""
    import yaml

    sweep.points_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:  # share the cores between the workers instead of oversubscribing
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    pending: queue.Queue[Point] = queue.Queue()
    for point in points:
        (sweep.points_dir / f"{point.name}.yaml").write_text(
            yaml.safe_dump(point.raw, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        pending.put(point)
    statuses: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    total, counter = len(points), [0]

    def slot(index: int) -> None:
        worker: _Worker | None = None
        try:
            while True:
                try:
                    point = pending.get_nowait()
                except queue.Empty:
                    return
                log = sweep.points_dir / f"{point.name}.log"
                if worker is None:
                    worker = _Worker(env, sweep.points_dir / f"worker-{index}.log")
                request = {"config": str(sweep.points_dir / f"{point.name}.yaml"),
                           "status": str(status_path(sweep, point)), "log": str(log),
                           "extra": {"name": point.name, "digest": point.digest()}}
                started = time.perf_counter()
                if worker.run(request):
                    status = read_status(sweep, point) or {"status": "failed", "error": "no status was written"}
                else:
                    try:  # its pipe closed when it died; reap it for the exit code
                        code = worker.process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        code = None
                    worker.close(timeout=5)
                    worker = None
                    status = {"status": "failed", "seconds": time.perf_counter() - started,
                              "error": f"the worker process died (exit code {code}) while training this point",
                              "name": point.name, "digest": point.digest()}
                    write_json(status_path(sweep, point), status)
                with lock:
                    statuses[point.name] = status
                    counter[0] += 1
                    note(describe(point.name, status, counter[0], total, log))
        finally:
            if worker is not None:
                worker.close()

    threads = [threading.Thread(target=slot, args=(i,), daemon=True) for i in range(max(1, min(parallel, total)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def describe(name: str, status: dict[str, Any], done: int, total: int, log: Path) -> str:
    """One progress line for a point that ended."""
    head = f"[{done}/{total}] {name}: "
    if status.get("status") == "done":
        shown = "  ".join(f"{k} {v:.4g}" for k, v in (status.get("metrics") or {}).items())
        return head + f"done in {status.get('seconds', 0):.1f} s" + (f" ({shown})" if shown else "")
    error = str(status.get("error") or "").strip().splitlines()
    return head + f"{status.get('status', 'failed')}: {error[0] if error else 'no message'} (log: {log})"

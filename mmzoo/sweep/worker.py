"""A sweep worker process: ``python -m mmzoo.sweep.worker`` trains the points its parent sends, one at
a time, in this one process (imports, plugins and the memory allocator's state are paid for once).

Protocol: each line on stdin is a JSON request ``{"config": RUN_YAML, "status": STATUS_JSON,
"log": LOG_FILE}``; the worker sends the point's output (stdout and stderr, file descriptors included)
to the log, trains, writes the status atomically and answers ``done`` on its original stdout. A point
that fails is recorded as failed and the worker takes the next; if the worker dies, its parent records
the point it was running as failed and starts another worker.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any


def train_point(config_path: str) -> dict[str, Any]:
    """Train one point; its status (``done``, ``stopped`` or ``failed``, with metrics, parameters and
    train time)."""
    from mmzoo.errors import MmzooError
    from mmzoo.train.config import load_config
    from mmzoo.train.rundir import RunDir
    from mmzoo.train.trainer import train

    started = time.perf_counter()
    try:
        config = load_config(config_path)
        result = train(config)
    except MmzooError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return {"status": "failed", "error": str(exc), "seconds": time.perf_counter() - started}
    except Exception as exc:  # a bug in a part or a plugin: this point fails, the sweep goes on
        traceback.print_exc()
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - started}
    seconds = time.perf_counter() - started
    info = RunDir(result.run_dir).run_info()
    return {
        "status": "done" if result.completed else "stopped",
        "error": None if result.completed else f"stopped by {result.stopped_by} at step {result.step}",
        "seconds": seconds,
        "steps": result.step,
        "metrics": dict(result.metrics),
        "eval_examples": result.eval_examples,
        "parameters": info.get("parameters"),
        "trainable_parameters": info.get("trainable_parameters"),
        "feature_cache": info.get("feature_cache"),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(temp, path)


def warm_up() -> None:
    """Pay the one-time imports (the trainer, the plugins, an optimizer's torch._dynamo, matplotlib)
    before the first point, whose train time they would otherwise inflate."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot  # noqa: F401
    import torch

    import mmzoo.train.trainer  # noqa: F401
    from mmzoo.plugins import get_registry

    get_registry()
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])


def main() -> int:
    from mmzoo.train.memory import tune_malloc

    tune_malloc()  # as `mmzoo train` does
    warm_up()
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        status = {**train_point(request["config"]), **request.get("extra", {})}
        sys.stdout.flush()
        sys.stderr.flush()
        write_json(Path(request["status"]), status)
        gc.collect()
        reply.write("done\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

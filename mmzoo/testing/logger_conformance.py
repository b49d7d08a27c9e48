"""Conformance check for experiment loggers (the ``mmzoo_register_loggers`` hook; see :mod:`mmzoo.loggers`)."""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mmzoo.loggers import RunInfo

__all__ = ["check_logger", "sample_records"]


def sample_records() -> list[dict[str, Any]]:
    """Records like the trainer's: training lines, an evaluation, a non-finite value, a field no logger
    knows yet (loggers must pass over keys they do not know), and the final line."""
    clock = {"timestamp": "2024-05-01T12:00:00.000+00:00"}
    return [
        {"step": 1, "epoch": 0.1, "loss": 2.3, "lr": 1e-3, "samples_per_s": 120.5, "time": 0.41, **clock},
        {"step": 2, "epoch": 0.2, "loss": 2.1, "lr": 1e-3, "samples_per_s": 131.0, "time": 0.83, **clock},
        {"step": 2, "split": "eval", "examples": 64, "eval_loss": 2.0, "eval_accuracy": 0.25, "time": 1.02,
         **clock},
        {"step": 3, "epoch": 0.3, "loss": math.nan, "lr": 9e-4, "samples_per_s": 128.2, "time": 1.4,
         "a_field_added_later": {"nested": [1, 2]}, **clock},
        {"step": 3, "split": "final", "world_size": 1, "eval_loss": 2.0, "eval_accuracy": 0.25, "time": 1.5,
         **clock},
    ]


def check_logger(factory: Callable[..., Any] | str, params: Mapping[str, Any] | None = None, *,
                 run_dir: str | Path | None = None, resumed_at_step: int | None = None) -> Any:
    """Check a logger end to end the way the trainer drives it and return it (closed).

    ``factory`` is a callable or a registered logger name. The logger is built with ``params``,
    started with a :class:`~mmzoo.loggers.RunInfo` for ``run_dir`` (a temporary directory by default),
    fed :func:`sample_records`, and closed. Raises ``AssertionError`` at the first broken promise:
    ``log`` exists, no call raises, records are not modified, optional methods are callable.
    """
    label, build = _resolve(factory)
    logger = build(**dict(params or {}))
    log = getattr(logger, "log", None)
    assert callable(log), f"{label}: a logger needs a log(record) method; got {type(logger).__name__}"
    for method in ("start", "close"):
        value = getattr(logger, method, None)
        assert value is None or callable(value), f"{label}: {method} must be a method when present"
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(run_dir) if run_dir is not None else Path(scratch)
        run = RunInfo(run_dir=where, name=where.name, config={"log_to": [{"type": label}]}, total_steps=3,
                      world_size=1, resumed_at_step=resumed_at_step)
        _call(label, "start", getattr(logger, "start", None), run)
        for record in sample_records():
            before = copy.deepcopy(record)
            _call(label, f"log (step {record['step']}, split {record.get('split', 'train')})", log, record)
            assert _same(record, before), f"{label}: log() changed the record it was given; loggers must not"
        _call(label, "close", getattr(logger, "close", None))
    return logger


def _resolve(factory: Callable[..., Any] | str) -> tuple[str, Callable[..., Any]]:
    if not isinstance(factory, str):
        assert callable(factory), f"factory must be callable or a registered logger name, got {factory!r}"
        return getattr(factory, "__name__", repr(factory)), factory
    from mmzoo.plugins import get_registry
    from mmzoo.registry import LOGGER_KIND

    return f"logger {factory!r}", get_registry().resolve(LOGGER_KIND, factory).factory()


def _call(label: str, what: str, method: Callable[..., Any] | None, *args: Any) -> None:
    if method is None:
        return
    try:
        method(*args)
    except Exception as exc:
        raise AssertionError(f"{label}: {what} raised {type(exc).__name__}: {exc}") from exc


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b

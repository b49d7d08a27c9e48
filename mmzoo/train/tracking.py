"""The trainer's side of experiment loggers (``log_to``): resolving them, and feeding them isolated.

Names and parameters are checked on every rank before training (a mistake there is the config's,
a :class:`~mmzoo.errors.ConfigError`); the loggers themselves are built and fed on rank 0 only,
each behind a guard: the first exception a logger raises is warned about once, the logger is
dropped, and training goes on (``MMZOO_STRICT_PLUGINS=1`` re-raises it). See :mod:`mmzoo.loggers`
for the contract.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmzoo.errors import ConfigError, MmzooError, PluginError
from mmzoo.loggers import RunInfo
from mmzoo.params import check_params
from mmzoo.registry import LOGGER_KIND

_STRICT = "MMZOO_STRICT_PLUGINS"


@dataclass(frozen=True)
class LoggerPlan:
    """One ``log_to`` entry, resolved: its name, the distribution providing it, its factory and parameters."""

    name: str
    dist: str
    factory: Callable[..., Any]
    params: dict[str, Any]

    @property
    def label(self) -> str:
        return f"logger '{self.name}' (from {self.dist})"


def plan_loggers(entries: Sequence[Mapping[str, Any]]) -> list[LoggerPlan]:
    """Resolve each ``log_to`` entry (``{"type": NAME, **params}``) and check its parameters against the
    factory; unknown names and bad parameters raise ConfigError located at ``log_to[i]``."""
    from mmzoo.plugins import get_registry

    registry = get_registry()
    plans = []
    for index, entry in enumerate(entries):
        where = f"log_to[{index}]"
        params = {k: v for k, v in entry.items() if k != "type"}
        try:
            resolved = registry.resolve(LOGGER_KIND, entry["type"], where=f"{where}.type")
            factory = resolved.factory()
            check_params(factory, params, where)
        except MmzooError as exc:
            raise ConfigError(str(exc)) from None
        plans.append(LoggerPlan(resolved.name, resolved.dist, factory, params))
    names = [plan.name for plan in plans]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"log_to: logger '{twice[0]}' is named twice; name each logger once")
    return plans


class Loggers:
    """The run's loggers behind one guard each: :meth:`log` feeds every live one; a failing one is
    reported once (``warn``, default: a line on stderr), closed quietly and dropped."""

    def __init__(self, plans: Sequence[LoggerPlan], run: RunInfo, *,
                 warn: Callable[[str], None] | None = None) -> None:
        self._warn = warn or _stderr
        self._live: list[tuple[LoggerPlan, Any]] = []
        for plan in plans:
            try:
                logger = plan.factory(**plan.params)
            except Exception as exc:
                self._report(plan, "could not be built", exc)
                continue
            if not callable(getattr(logger, "log", None)):
                self._report(plan, "has no log(record) method", None)
                continue
            self._live.append((plan, logger))
            self._call(plan, logger, "start", run)

    @property
    def names(self) -> list[str]:
        """The loggers still live."""
        return [plan.name for plan, _ in self._live]

    def log(self, record: Mapping[str, Any]) -> None:
        """Give ``record`` to every live logger (a copy each, so none sees another's changes)."""
        for plan, logger in list(self._live):
            self._call(plan, logger, "log", dict(record))

    def close(self) -> None:
        """Close every live logger (once); none is fed afterwards."""
        for plan, logger in list(self._live):
            self._call(plan, logger, "close")
        self._live = []

    def _call(self, plan: LoggerPlan, logger: Any, method: str, *args: Any) -> None:
        function = getattr(logger, method, None)
        if function is None:  # start and close are optional
            return
        try:
            function(*args)
        except Exception as exc:
            self._live = [(p, item) for p, item in self._live if item is not logger]
            self._report(plan, f"failed in {method}()", exc)
            if method != "close":
                with contextlib.suppress(Exception):  # let it release what it holds; it was reported once
                    close = getattr(logger, "close", None)
                    if callable(close):
                        close()

    def _report(self, plan: LoggerPlan, what: str, exc: BaseException | None) -> None:
        why = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        message = f"{plan.label} {what}{why}"
        if os.environ.get(_STRICT, "").strip().lower() in {"1", "true", "yes", "on"}:
            raise PluginError(f"{message} ({_STRICT}=1 makes this fatal)") from exc
        if what.startswith("failed in close"):
            self._warn(f"{message}; ignored")
        else:
            self._warn(f"{message}; it is switched off for the rest of this run, training goes on "
                       "(metrics.jsonl has every record)")


def _stderr(message: str) -> None:
    sys.stderr.write(f"mmzoo: warning: {message}\n")
    sys.stderr.flush()

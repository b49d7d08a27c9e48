"""Progress on rank 0: a tqdm bar on a terminal; in a log (stderr not a terminal) one plain line per
logged step (every ``log_every`` steps, the last step and a stop), never a carriage return."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """``update(step, stats)`` after each optimizer step (``stats`` non-empty on logged steps only);
    ``message`` prints above the bar."""

    def __init__(self, total: int, initial: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.total = total
        self._bar = None
        if enabled and is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc="train",
                unit="step",
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
            )

    def update(self, step: int, stats: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            if stats:
                self._bar.set_postfix({k: _short(v) for k, v in stats.items()}, refresh=False)
            return
        if stats:  # a log gets the logged steps only: no line without numbers in it
            shown = "  ".join(f"{k} {_short(v)}" for k, v in stats.items())
            print(f"step {step}/{self.total}  {shown}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def batches_bar(items: Iterable[T], *, desc: str, enabled: bool, stream: TextIO | None = None) -> Iterator[T]:
    """``items`` with a transient tqdm bar (counting batches) when ``enabled`` and ``stream`` (default
    stderr) is a terminal; otherwise ``items`` unchanged, so a log gets nothing."""
    stream = stream or sys.stderr
    if not enabled or not is_terminal(stream):
        yield from items
        return
    from tqdm import tqdm

    total = len(items) if hasattr(items, "__len__") else None
    with tqdm(items, total=total, desc=desc, unit="batch", file=stream, dynamic_ncols=True, leave=False) as bar:
        yield from bar


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream is not)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

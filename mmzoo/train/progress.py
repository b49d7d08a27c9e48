"""Progress on rank 0: a tqdm bar on a terminal, a plain line every few steps in logs."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """``update(step, **stats)`` after each optimizer step; ``message`` prints above the bar."""

    def __init__(
        self,
        total: int,
        initial: int,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        line_every: int = 50,
        min_interval: float = 10.0,
    ) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.total = total
        self.line_every = line_every
        self.min_interval = min_interval
        self._last_line = time.monotonic()
        self._bar = None
        if enabled and _is_tty(self.stream):
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
        now = time.monotonic()
        if step == self.total or step % self.line_every == 0 or now - self._last_line >= self.min_interval:
            self._last_line = now
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


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

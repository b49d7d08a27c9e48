"""SIGTERM / SIGINT: ask the loop to stop after the current step (a second Ctrl-C stops at once).

Under a launcher (torchrun, ``--nproc``) the launcher forwards the signals it receives to each rank's
process group and kills ranks that have not finished after its shutdown timeout; there a repeated
signal changes nothing, so a signal that reaches a rank twice (from a terminal and from the launcher)
cannot cut its checkpoint short.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class GracefulStop:
    """Context manager installing the handlers; ``signum`` is the first signal received (or None)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, escalate: bool = True) -> None:
        self.signum: int | None = None
        self.escalate = escalate
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT and self.escalate:
            raise KeyboardInterrupt  # the second Ctrl-C: the user does not want to wait
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

"""A rank stops when its launcher dies.

``torchrun`` and ``mmzoo train --nproc`` start the ranks as child processes. A launcher that is killed
outright (SIGKILL, the OOM killer) cannot tell them to stop, and they would go on training, holding the
GPUs, with nobody to collect their exit. :func:`follow_launcher` makes the rank receive SIGTERM when its
parent process ends: on Linux through ``prctl(PR_SET_PDEATHSIG)``, elsewhere through a daemon thread that
watches the parent pid. SIGTERM is what a launcher sends to stop its ranks, so the rank stops the same
way: after its current step, with a checkpoint when every rank can still take part.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 1.0


def follow_launcher(launcher_pid: int | None = None) -> str:
    """Arrange for SIGTERM when this process's parent (the launcher) dies; returns how ("prctl" or
    "watchdog"). ``launcher_pid``, when known, catches a launcher that died before this was called."""
    parent = os.getppid()
    how = "prctl" if _set_parent_death_signal(signal.SIGTERM) else "watchdog"
    if how == "watchdog":
        threading.Thread(target=_watch, args=(parent,), name="mmzoo-lifeline", daemon=True).start()
    if launcher_pid is not None and os.getppid() != launcher_pid:
        os.kill(os.getpid(), signal.SIGTERM)  # orphaned already: the launcher died while this rank started
    return how


def _set_parent_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc symbol to call: the watchdog does the job
        return False


def _watch(parent: int) -> None:
    stopped = threading.Event()
    while not stopped.wait(POLL_SECONDS):
        if os.getppid() != parent:  # re-parented: the launcher is gone
            os.kill(os.getpid(), signal.SIGTERM)
            return

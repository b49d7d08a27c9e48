"""glibc's allocator settings for training and evaluation processes.

By default glibc serves every allocation above a sliding threshold (128 KiB to start) with its own
``mmap`` and gives it back to the kernel when it is freed. A training step frees and reallocates
the same activation-sized blocks every step, so each step faults them in again page by page: on a
CPU that costs 15-30% of the step (bench/RESULTS.md, "malloc thresholds fixed"). Fixing the
thresholds keeps those blocks in the heap for reuse. ``mmzoo train`` and ``mmzoo eval`` do this at
start; ``MMZOO_MALLOC_TUNING=0`` turns it off (a preloaded jemalloc or tcmalloc is not affected).
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20
"""Allocations below this come from the heap and are reused after a free (glibc's default: 128 KiB,
rising with the largest block freed, up to 32 MiB)."""
TRIM_THRESHOLD = 256 << 20
"""Free memory at the top of the heap kept for reuse instead of returned to the kernel."""

_tuned = False


def tune_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (and the workers it forks later).

    Returns whether the setting took effect: false off Linux/glibc and with ``MMZOO_MALLOC_TUNING=0``.
    """
    global _tuned
    if os.environ.get("MMZOO_MALLOC_TUNING", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no libc.so.6)
        return False
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _tuned


def malloc_tuned() -> bool:
    """Whether :func:`tune_malloc` took effect in this process."""
    return _tuned

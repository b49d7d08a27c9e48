"""Durable cache entries on disk, shared by the dataset cache and the feature cache: flush a file or a
directory to disk, and remove an entry so that its name is free at once. Importing this is cheap."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush a file or directory to disk (best effort: some filesystems refuse directories)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def discard(entry: Path, temporary_mark: str) -> None:
    """Remove a cache entry (a directory or a file). A directory is renamed aside first, into a
    temporary directory named ``<entry name><temporary_mark>…``, so that the entry's name is free even if
    deleting its files fails halfway; such a leftover goes with its cache's next sweep of stale
    temporary directories."""
    if entry.is_dir() and not entry.is_symlink():
        aside = Path(tempfile.mkdtemp(prefix=entry.name + temporary_mark, dir=entry.parent))
        os.replace(entry, aside / "old")
        shutil.rmtree(aside, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)

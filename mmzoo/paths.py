"""Where mmzoo keeps generated data and artefacts on this machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Return ``$MMZOO_CACHE`` or ``~/.cache/mmzoo``, created if missing."""
    root = Path(os.environ.get("MMZOO_CACHE") or Path.home() / ".cache" / "mmzoo").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root

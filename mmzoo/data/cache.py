"""Build generated datasets once into the mmzoo cache, safely under concurrent builders.

An entry is a directory ``<cache>/datasets/<name>-v<version>-<hash of params>/`` holding ``.npy``
files (loaded with ``mmap_mode="r"``) and ``meta.json`` (the params, for humans). It is built in a
temporary sibling directory and renamed into place, so a reader only ever sees a complete entry; a
file lock makes concurrent builders (DataLoader workers, DDP ranks, parallel test processes) wait
for the first one instead of building twice. A builder killed midway leaves only a temporary
directory, which the next builder removes. An entry without its ``meta.json`` (damaged, or half
copied by hand) is not complete: the next builder moves it aside and builds it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from mmzoo.durable import discard, fsync_path
from mmzoo.errors import DatasetError

META_FILE = "meta.json"
_TMP_MARK = ".tmp-"


def entry_name(name: str, version: int, params: Mapping[str, Any]) -> str:
    """The versioned directory name for ``params`` (stable across runs and machines)."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return f"{name}-v{version}-{digest}"


def datasets_root() -> Path:
    """``<mmzoo cache>/datasets``, created if missing."""
    from mmzoo.paths import cache_dir

    root = cache_dir() / "datasets"
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_once(
    name: str,
    version: int,
    params: Mapping[str, Any],
    build: Callable[[], Mapping[str, np.ndarray]],
) -> Path:
    """Return the cache entry for ``(name, version, params)``, calling ``build()`` only if it is missing.

    ``build`` returns named numpy arrays; each is saved as ``<key>.npy``. Safe to call from many
    processes at once: exactly one builds, the others wait and then reuse its result.
    """
    root = datasets_root()
    final = root / entry_name(name, version, params)
    if (final / META_FILE).is_file():
        return final
    with FileLock(str(final) + ".lock"):
        if (final / META_FILE).is_file():  # another process finished while we waited
            return final
        _remove_stale(root, final.name)
        if final.exists() or final.is_symlink():  # an incomplete entry: meta.json is written last
            _discard(final)
        tmp = Path(tempfile.mkdtemp(prefix=final.name + _TMP_MARK, dir=root))
        try:
            started = time.perf_counter()
            arrays = build()
            for key, array in arrays.items():
                np.save(tmp / f"{key}.npy", np.ascontiguousarray(array), allow_pickle=False)
            meta = {
                "name": name,
                "version": version,
                "params": params,
                "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
                "build_seconds": round(time.perf_counter() - started, 3),
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
            for file in [*tmp.iterdir(), tmp]:
                fsync_path(file)
            os.replace(tmp, final)
            fsync_path(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def load_arrays(entry: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Memory-map ``keys`` from a cache entry (read-only; cheap to open in every worker)."""
    out = {}
    for key in keys:
        path = entry / f"{key}.npy"
        try:
            out[key] = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(
                f"cached dataset file {path} is unreadable ({exc}); delete {entry} to rebuild it"
            ) from exc
    return out


_DIGESTS: dict[tuple, str] = {}


def entry_digest(entry: Path) -> str:
    """SHA-256 of an entry's files (names and bytes), computed once per process for each state of them:
    what a dataset built from the entry puts in its ``fingerprint()``."""
    files = sorted(p for p in entry.iterdir() if p.is_file())
    state = (str(entry), *((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if state not in _DIGESTS:
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                while chunk := handle.read(4 * 2**20):
                    digest.update(chunk)
        _DIGESTS[state] = digest.hexdigest()
    return _DIGESTS[state]


def read_meta(entry: Path) -> dict[str, Any]:
    """The ``meta.json`` of a cache entry."""
    return json.loads((entry / META_FILE).read_text())


def _remove_stale(root: Path, final_name: str) -> None:
    # Called with the lock held: any temporary directory for this entry belongs to a dead builder.
    for leftover in root.glob(final_name + _TMP_MARK + "*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _discard(entry: Path) -> None:
    discard(entry, _TMP_MARK)

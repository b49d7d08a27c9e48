"""Feature cache entries on disk: written atomically, checked before use, memory-mapped to read.

An entry is a directory ``<mmzoo cache>/features/<name>/`` holding numpy ``.npy`` shards and
``entry.json`` (written last: the key it was built for, its arrays and shards, each file's size and
CRC-32). Per shard of examples:

- ``pooled-NNNNN.npy`` ``[n, D]``: the pooled features;
- ``tokens-NNNNN.npy`` ``[sum of lengths, D]`` and ``token_mask-NNNNN.npy`` (bool, same rows) with
  ``lengths-NNNNN.npy`` ``[n]``: each example's tokens with the batch padding after its last real
  token trimmed (only when tokens were asked for);
- and once for the entry, ``targets.npy`` ``[examples, ...]``: the examples' targets, when they are
  plain numbers or equal-length lists of numbers.

Entries are built in a temporary sibling directory and renamed into place under a file lock, so a
reader never sees half an entry and concurrent builders (DDP ranks, parallel sweep points) build once.
Opening an entry checks ``entry.json``, every file's size and, by default, its CRC-32: a damaged entry
is reported as :class:`DamagedEntry` and the builder replaces it. This module imports numpy only
(``mmzoo cache list`` stays cheap); bfloat16 features are stored as their uint16 bit patterns.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmzoo import durable

ENTRY_FILE = "entry.json"
TARGETS_FILE = "targets.npy"
FORMAT = 1
TEMP_MARK = ".tmp-"
LOCK_SUFFIX = ".lock"
SHARD_BYTES = 256 * 2**20
# Stored as another numpy dtype of the same width (numpy has no bfloat16).
STORED_AS = {"bfloat16": "uint16"}


class DamagedEntry(Exception):
    """An entry that is incomplete, truncated or corrupt (the message says which file and how)."""


def features_root() -> Path:
    """``$MMZOO_FEATURE_CACHE`` or ``<mmzoo cache>/features`` (``$MMZOO_CACHE``, ``~/.cache/mmzoo``),
    created if missing."""
    from mmzoo.paths import cache_dir

    chosen = os.environ.get("MMZOO_FEATURE_CACHE")
    root = Path(chosen).expanduser() if chosen else cache_dir() / "features"
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass
class FeatureRow:
    """One example's cached features: ``pooled [D]``, and ``tokens [L, D]`` with ``mask [L]`` or None."""

    pooled: np.ndarray
    tokens: np.ndarray | None = None
    mask: np.ndarray | None = None


# --- writing ------------------------------------------------------------------------------------------


class EntryWriter:
    """Accumulates batches of features for one entry in a temporary directory; :meth:`finish` writes
    ``entry.json`` and returns the directory (still to be renamed into place)."""

    def __init__(self, directory: Path, *, tokens: bool, shard_bytes: int = SHARD_BYTES) -> None:
        self.directory, self.tokens, self.shard_bytes = directory, tokens, shard_bytes
        self.dtype = "float32"  # the features' torch dtype name; set by whoever fills the entry
        self.shards: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, int]] = {}
        self._pending: dict[str, list[np.ndarray]] = {}
        self._pending_examples = 0
        self._pending_bytes = 0
        self.examples = 0
        self.dim: int | None = None

    def add(self, pooled: np.ndarray, tokens: np.ndarray | None = None, mask: np.ndarray | None = None) -> None:
        """Append a batch: ``pooled [B, D]``, and ``tokens [B, T, D]`` with ``mask [B, T]`` when the entry
        keeps tokens."""
        batch = pooled.shape[0]
        self.dim = int(pooled.shape[1])
        self._append("pooled", pooled)
        if self.tokens:
            if tokens is None or mask is None:
                raise ValueError("this entry keeps tokens: give tokens and mask")
            lengths = _real_lengths(mask)
            self._append("lengths", lengths.astype(np.int64))
            keep = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
            self._append("tokens", tokens[keep])
            self._append("token_mask", mask[keep].astype(np.bool_))
        self._pending_examples += batch
        self.examples += batch
        if self._pending_bytes >= self.shard_bytes:
            self._flush()

    def _append(self, name: str, array: np.ndarray) -> None:
        self._pending.setdefault(name, []).append(np.ascontiguousarray(array))
        self._pending_bytes += array.nbytes

    def _flush(self) -> None:
        if not self._pending_examples:
            return
        index = len(self.shards)
        for name, parts in self._pending.items():
            file = f"{name}-{index:05d}.npy"
            np.save(self.directory / file, np.concatenate(parts), allow_pickle=False)
            self.files[file] = _describe_file(self.directory / file)
        self.shards.append({"examples": self._pending_examples})
        self._pending, self._pending_examples, self._pending_bytes = {}, 0, 0

    def finish(
        self, key: Mapping[str, Any], *, targets: np.ndarray | None, targets_absent: bool, build_seconds: float
    ) -> Path:
        """Write the last shard, ``targets.npy`` (when given: one row per example) and ``entry.json``.
        ``targets_absent``: no example has a target (so none is needed to rebuild an example)."""
        self._flush()
        if targets is not None:
            if len(targets) != self.examples:
                raise ValueError(f"{len(targets)} targets for {self.examples} examples")
            np.save(self.directory / TARGETS_FILE, np.ascontiguousarray(targets), allow_pickle=False)
            self.files[TARGETS_FILE] = _describe_file(self.directory / TARGETS_FILE)
        meta = {
            "format": FORMAT,
            "key": dict(key),
            "examples": self.examples,
            "dim": self.dim,
            "dtype": self.dtype,
            "tokens": self.tokens,
            "targets": targets is not None,
            "targets_absent": bool(targets_absent),
            "shards": self.shards,
            "files": self.files,
            "bytes": sum(f["size"] for f in self.files.values()),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(build_seconds, 3),
        }
        for file in self.directory.iterdir():
            durable.fsync_path(file)
        (self.directory / ENTRY_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        durable.fsync_path(self.directory / ENTRY_FILE)
        durable.fsync_path(self.directory)
        return self.directory


def _real_lengths(mask: np.ndarray) -> np.ndarray:
    """Per row, one past the last true position of ``mask [B, T]`` (the padding after it is dropped)."""
    mask = np.asarray(mask, np.bool_)
    any_real = mask.any(axis=1)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    return np.where(any_real, last + 1, 0)


def _describe_file(path: Path) -> dict[str, int]:
    return {"size": path.stat().st_size, "crc32": _crc32(path)}


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as handle:
        while chunk := handle.read(8 * 2**20):
            crc = zlib.crc32(chunk, crc)
    return crc


def build_entry(
    name: str,
    key: Mapping[str, Any],
    fill: Callable[[EntryWriter], tuple[np.ndarray | None, bool]],
    *,
    tokens: bool,
    root: Path | None = None,
    shard_bytes: int = SHARD_BYTES,
) -> tuple[FeatureEntry, bool]:
    """The entry ``name``: opened (and checked) when it exists, else built by ``fill(writer)`` (which
    returns the targets to keep or None, and whether no example has one) and renamed into place.
    Returns ``(entry, built)``.

    Safe under concurrent callers: one builds while the others wait on the entry's file lock, then
    open what it built. A damaged entry is replaced; a builder killed midway leaves only a temporary
    directory, which the next builder removes.
    """
    from filelock import FileLock

    root = root or features_root()
    final = root / name
    entry = open_if_sound(final)
    if entry is not None:
        return entry, False
    with FileLock(str(final) + LOCK_SUFFIX):
        entry = open_if_sound(final)
        if entry is not None:  # another process built it while this one waited
            return entry, False
        for leftover in root.glob(glob_escape(name) + TEMP_MARK + "*"):  # dead builders' directories
            shutil.rmtree(leftover, ignore_errors=True)
        if final.exists() or final.is_symlink():
            discard(final)
        temp = Path(tempfile.mkdtemp(prefix=name + TEMP_MARK, dir=root))
        try:
            started = time.perf_counter()
            writer = EntryWriter(temp, tokens=tokens, shard_bytes=shard_bytes)
            targets, absent = fill(writer)
            writer.finish(key, targets=targets, targets_absent=absent, build_seconds=time.perf_counter() - started)
            os.replace(temp, final)
            durable.fsync_path(root)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    return FeatureEntry.open(final, verify=False), True  # just written and fsynced


def open_if_sound(path: Path) -> FeatureEntry | None:
    """The complete, undamaged entry at ``path`` (sizes and checksums checked), or None."""
    if not (path / ENTRY_FILE).is_file():
        return None
    try:
        return FeatureEntry.open(path)
    except DamagedEntry:
        return None


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def discard(entry: Path) -> None:
    """Remove an entry: renamed aside first (so its name is free at once), then deleted."""
    durable.discard(entry, TEMP_MARK)


# --- reading ------------------------------------------------------------------------------------------


class FeatureEntry:
    """A complete entry: its metadata and, opened lazily in each process, memory maps of its shards.

    Picklable (DataLoader workers re-open the memory maps themselves). ``row(i)`` gives example ``i``'s
    :class:`FeatureRow` and ``target(i)`` its target as the plain Python value the dataset gave.
    """

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta
        self.examples: int = meta["examples"]
        self.dtype: str = meta["dtype"]
        self.has_tokens: bool = meta["tokens"]
        self.has_targets: bool = meta["targets"]
        self.targets_absent: bool = bool(meta.get("targets_absent"))
        counts = [shard["examples"] for shard in meta["shards"]]
        self._starts = [sum(counts[:i]) for i in range(len(counts))]
        self._shards: list[dict[str, np.ndarray]] | None = None
        self._targets: np.ndarray | None = None

    @classmethod
    def open(cls, path: Path, *, verify: bool = True) -> FeatureEntry:
        """Read ``entry.json`` and check the files it lists (sizes always; CRC-32 when ``verify``)."""
        meta = read_entry_meta(path)
        for file, described in meta["files"].items():
            where = path / file
            try:
                size = where.stat().st_size
            except OSError:
                raise DamagedEntry(f"{where}: missing") from None
            if size != described["size"]:
                raise DamagedEntry(f"{where}: {size} bytes, expected {described['size']}")
            if verify and _crc32(where) != described["crc32"]:
                raise DamagedEntry(f"{where}: contents do not match their checksum")
        return cls(path, meta)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def nbytes(self) -> int:
        return int(self.meta["bytes"])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_shards": None, "_targets": None}

    def _open_shards(self) -> list[dict[str, np.ndarray]]:
        shards = []
        for index in range(len(self._starts)):
            arrays = {}
            for name in ("pooled", "tokens", "token_mask", "lengths"):
                file = self.path / f"{name}-{index:05d}.npy"
                if file.name in self.meta["files"]:
                    arrays[name] = _load(file)
            if "lengths" in arrays:
                arrays["offsets"] = np.concatenate([[0], np.cumsum(arrays["lengths"])])
            shards.append(arrays)
        return shards

    def _locate(self, index: int) -> tuple[dict[str, np.ndarray], int]:
        if self._shards is None:
            self._shards = self._open_shards()
        shard = bisect.bisect_right(self._starts, index) - 1
        return self._shards[shard], index - self._starts[shard]

    def row(self, index: int, *, tokens: bool = True) -> FeatureRow:
        """Example ``index``'s features (its tokens too when the entry has them and ``tokens``)."""
        arrays, local = self._locate(index)
        if not (self.has_tokens and tokens):
            return FeatureRow(arrays["pooled"][local])
        start, stop = arrays["offsets"][local], arrays["offsets"][local + 1]
        return FeatureRow(arrays["pooled"][local], arrays["tokens"][start:stop], arrays["token_mask"][start:stop])

    def target(self, index: int) -> Any:
        if self._targets is None:
            self._targets = _load(self.path / TARGETS_FILE)
        return self._targets[index].tolist()


def _load(file: Path) -> np.ndarray:
    try:
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DamagedEntry(f"{file}: unreadable ({exc})") from None


def read_entry_meta(path: Path) -> dict[str, Any]:
    """``entry.json`` of an entry, checked for the fields a reader needs (else :class:`DamagedEntry`)."""
    file = path / ENTRY_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedEntry(f"{file}: missing (the entry is incomplete)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedEntry(f"{file}: unreadable ({exc})") from None
    needed = {"format": int, "examples": int, "dtype": str, "tokens": bool, "targets": bool, "shards": list,
              "files": dict, "bytes": int, "key": dict}
    if not isinstance(meta, dict) or any(not isinstance(meta.get(k), t) for k, t in needed.items()):
        raise DamagedEntry(f"{file}: not an entry description")
    if meta["format"] != FORMAT:
        raise DamagedEntry(f"{file}: format {meta['format']}, this mmzoo reads format {FORMAT}")
    if sum(shard.get("examples", 0) for shard in meta["shards"]) != meta["examples"]:
        raise DamagedEntry(f"{file}: its shards do not add up to {meta['examples']} examples")
    return meta


# --- listing and clearing (mmzoo cache) ------------------------------------------------------------------


@dataclass
class Listed:
    """One directory under the features root, as ``mmzoo cache list`` shows it."""

    name: str
    path: Path
    bytes: int
    state: str  # "ok", "damaged" or "building"
    meta: dict[str, Any] | None


def directory_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for file in files:
            try:
                total += os.lstat(os.path.join(dirpath, file)).st_size
            except OSError:
                pass
    return total


def list_entries(root: Path | None = None) -> Iterator[Listed]:
    """Every entry under the features root (sorted by name), and every temporary directory of a
    build in progress or abandoned; no checksums are computed."""
    root = root or features_root()
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        if TEMP_MARK in path.name:
            yield Listed(path.name, path, directory_bytes(path), "building", None)
            continue
        try:
            meta = read_entry_meta(path)
            state = "ok"
        except DamagedEntry:
            meta, state = None, "damaged"
        yield Listed(path.name, path, directory_bytes(path), state, meta)


def remove_entry(path: Path) -> bool:
    """Delete an entry under its lock (waiting for a build of it to finish), or the temporary directory
    of an abandoned build; returns False for the directory of a build still running (kept)."""
    from filelock import FileLock, Timeout

    if TEMP_MARK in path.name:
        lock = FileLock(str(path.parent / path.name.split(TEMP_MARK)[0]) + LOCK_SUFFIX)
        try:
            with lock.acquire(timeout=0):
                shutil.rmtree(path, ignore_errors=True)
        except Timeout:
            return False
        return True
    with FileLock(str(path) + LOCK_SUFFIX):
        if path.exists():
            discard(path)
    return True

"""``manifest``: the user's own data, one row per example in a CSV, TSV or JSON Lines file.

Columns become batch keys. Image and audio cells are paths, relative to the manifest's folder (or
absolute); images load with Pillow as uint8 arrays (``[H, W]`` grayscale or ``[H, W, 3]`` RGB),
audio as ``{"array": float32 mono, "sampling_rate": int}`` from WAV (any sample format), FLAC, OGG and
the other formats soundfile reads (:mod:`mmzoo.data.audio`). Text stays ``str``.
The ``target`` column becomes the example's ``"target"``.

Files are read under data limits (:mod:`mmzoo.data.limits`): audio at most 600 s long and 384 kHz,
images at most 89,478,485 pixels, JSON nested at most 64 deep. Going over one is a DatasetError naming
the file, line and column; raise them with ``limits={"audio_seconds": 3600, "image_pixels": ...,
"sample_rate": ..., "json_depth": ...}`` or the ``MMZOO_MAX_*`` environment variables.

Splits come from exactly one of: a ``split`` column; a mapping ``path={"train": ..., "val": ...}``
of one file per split; or ``fractions`` (a seeded random split of one file). A file with none of
them is the ``train`` split alone.

An empty cell of a batch key (or, in JSON Lines, a null or absent key) is an error naming the row and
column, unless ``missing="allow"``: then that example lacks that input (its value is ``None``), and a
model whose fusion handles missing modalities uses what the example has.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmzoo.data.audio import load_audio
from mmzoo.data.base import (
    ExampleDataset,
    check_fractions,
    check_limit,
    check_seed,
    check_split,
    dataset_factory,
    random_split,
)
from mmzoo.data.images import load_image
from mmzoo.data.limits import data_limits
from mmzoo.data.manifest_io import Table, parse_float, parse_int, parse_list, read_table
from mmzoo.data.manifest_targets import TARGET_TYPES, TargetParser
from mmzoo.data.origin import Example
from mmzoo.errors import DatasetError, did_you_mean

NAME = "manifest"
KEY_TYPES = ("image", "audio", "text", "int", "float", "vector", "auto")
MEDIA_TYPES = ("image", "audio")
MISSING = ("error", "allow")
IMAGE_MODES = ("L", "RGB", "RGBA")


class Manifest(ExampleDataset):
    """Examples listed in a manifest file; see the module docstring for the format.

    Parameters: ``path`` (a file, or ``{split: file}``), ``columns`` (``{batch key: column}``; default
    every column but the split and target ones, under its own name), ``types`` (``{batch key: type}``
    with type one of image, audio, text, int, float, vector, auto; a key named ``image``/``audio``/
    ``text`` or starting with ``image_`` etc. gets that type, others are inferred), ``target`` (the
    target column, None for unlabelled data), ``target_type`` (auto, int, float, list, label),
    ``labels`` (class names, in index order), ``split_column``, ``fractions`` and ``seed`` (random
    split), ``limit``, ``image_mode`` (convert images to "L", "RGB" or "RGBA"), ``sample_rate``
    (resample audio to this rate), ``missing`` ("error", or "allow": an empty cell of a batch key is a
    missing input, ``None``).

    ``labels`` (the attribute) holds the names of the targets by index: the class names (given, or the
    sorted names found in every file of the manifest) for class and multi-label targets, the target
    column's name for one number per row; None for class indices without names.
    """

    name = NAME

    def __init__(
        self,
        split: str = "train",
        *,
        path: str | os.PathLike | Mapping[str, str | os.PathLike],
        columns: Mapping[str, str] | None = None,
        types: Mapping[str, str] | None = None,
        target: str | None = "target",
        target_type: str = "auto",
        labels: list[str] | Mapping[str, int] | None = None,
        split_column: str | None = "split",
        fractions: Mapping[str, float] | None = None,
        seed: int = 0,
        limit: int | None = None,
        image_mode: str | None = None,
        sample_rate: int | None = None,
        limits: Mapping[str, float] | None = None,
        missing: str = "error",
    ) -> None:
        seed, limit = check_seed(NAME, seed), check_limit(NAME, limit)
        if missing not in MISSING:
            raise DatasetError(f"{NAME}: missing must be 'error' (an empty cell is a mistake) or 'allow' (an empty "
                               f"cell is a missing input), got {missing!r}.{did_you_mean(str(missing), MISSING)}")
        self.missing = missing
        try:
            self.limits = data_limits(limits)
        except DatasetError as exc:
            raise DatasetError(f"{NAME}: {exc}") from None
        if target_type not in TARGET_TYPES:
            raise DatasetError(
                f"{NAME}: unknown target_type {target_type!r}; use one of {', '.join(TARGET_TYPES)}."
                f"{did_you_mean(str(target_type), TARGET_TYPES)}"
            )
        if image_mode is not None and image_mode not in IMAGE_MODES:
            modes = ", ".join(IMAGE_MODES)
            raise DatasetError(f"{NAME}: image_mode must be None or one of {modes}, got {image_mode!r}")
        if sample_rate is not None and (
            isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0
        ):
            raise DatasetError(
                f"{NAME}: sample_rate must be a positive integer (Hz) or None, not {sample_rate!r}"
            )
        self.image_mode, self.sample_rate = image_mode, sample_rate

        tables, selections = self._select_rows(split, path, split_column, fractions, seed)
        self.tables = [t.path for t in tables]
        excluded = {c for c in (split_column, target) if c is not None}
        self.columns = _resolve_columns(columns, tables, excluded)
        self.types = _resolve_types(types, self.columns, tables, skip_empty=missing == "allow")
        if target is not None:
            for table in tables:
                _require_column(table, target, "target")
        self.target_column = target
        targets = TargetParser(target, target_type, labels, tables) if target is not None else None
        names = targets.label_names if targets is not None else None
        self.num_classes = len(names) if names is not None else None
        if names is None and targets is not None and targets.kind == "float":
            names = [target]  # one regression value: named after its column
        self.labels = tuple(names) if names is not None else None

        self._records: list[tuple[int, int, dict[str, Any]]] = []  # (table index, row, values)
        for t, row in selections[: limit if limit is not None else len(selections)]:
            values = {key: self._parse_cell(tables[t], row, key) for key in self.columns}
            if targets is not None:
                values["target"] = targets.parse(tables[t], row)
            self._records.append((t, tables[t].lines[row], values))
        self.keys = tuple(self.columns)

    def _select_rows(
        self, split: str, path: object, split_column: str | None, fractions: object, seed: int
    ) -> tuple[list[Table], list[tuple[int, int]]]:
        """Read the file(s) and pick the (table index, row) pairs of ``split``."""
        if isinstance(path, Mapping):
            if not path:
                raise DatasetError(f"{NAME}: path mapping is empty; give {{split name: manifest file}}")
            if fractions is not None:
                raise DatasetError(f"{NAME}: give one file per split (a path mapping) or fractions, not both")
            names = [str(s) for s in path]
            self.split = check_split(NAME, split, names)
            tables = [read_table(_as_path(p), self.limits) for p in path.values()]
            t = names.index(self.split)
            return tables, [(t, r) for r in range(len(tables[t].rows))]
        table = read_table(_as_path(path), self.limits)
        has_column = split_column is not None and split_column in table.columns
        if split_column not in (None, "split") and not has_column:
            _require_column(table, split_column, "split_column")
        if has_column:
            if fractions is not None:
                raise DatasetError(
                    f"{NAME}: {table.path} has a '{split_column}' column and fractions were given; "
                    f"use one (or pass split_column=None to split randomly)"
                )
            values = [_split_value(table, r, split_column) for r in range(len(table.rows))]
            self.split = check_split(NAME, split, list(dict.fromkeys(values)))
            return [table], [(0, r) for r, v in enumerate(values) if v == self.split]
        if fractions is not None:
            parts = random_split(len(table.rows), check_fractions(NAME, fractions), seed)
            self.split = check_split(NAME, split, list(parts))
            return [table], [(0, int(r)) for r in parts[self.split]]
        if split != "train":
            raise DatasetError(
                f"{NAME}: {table.path} has no '{split_column or 'split'}' column, so its only split is "
                f"'train' (asked for {split!r}); add a split column, pass fractions={{'train': 0.8, "
                f"'val': 0.2}} or give one file per split as path={{'train': ..., '{split}': ...}}"
            )
        self.split = "train"
        return [table], [(0, r) for r in range(len(table.rows))]

    def _parse_cell(self, table: Table, row: int, key: str) -> Any:
        column, kind = self.columns[key], self.types[key]
        value = table.rows[row].get(column)
        empty = value is None or (isinstance(value, str) and not value.strip())
        if empty and self.missing == "allow":
            return None  # this example lacks this input
        if empty and (value is None or kind != "text"):
            raise DatasetError(f"{table.where(row, column)}: missing value for batch key '{key}' ({kind}); pass "
                               "missing='allow' to treat empty cells as missing inputs")
        try:
            if kind in MEDIA_TYPES:
                if not isinstance(value, str):
                    raise ValueError(f"expected a file path, found {value!r}")
                file = (table.path.parent / value.strip()).resolve()
                if not file.is_file():
                    raise ValueError(f"{kind} file '{value.strip()}' does not exist (looked at {file})")
                return str(file)
            if kind == "text":
                if not isinstance(value, str):
                    raise ValueError(f"expected text, found {type(value).__name__} {value!r}")
                return value
            if kind == "int":
                return parse_int(value)
            if kind == "float":
                return parse_float(value)
            if kind == "vector":
                items = parse_list(value, table.limits)
                return np.asarray([parse_float(x) for x in items], dtype=np.float32)
        except ValueError as exc:
            raise DatasetError(f"{table.where(row, column)}: {exc}") from None
        except (OSError, RuntimeError) as exc:  # a file name too long, symbolic links that loop
            problem = getattr(exc, "strerror", None) or str(exc)
            raise DatasetError(f"{table.where(row, column)}: cannot use the file named there ({problem})") from None
        raise AssertionError(kind)  # _resolve_types leaves no other kind

    def __len__(self) -> int:
        return len(self._records)

    def locate(self, index: int) -> tuple[Path, int]:
        """The manifest file and line that example ``index`` comes from."""
        t, line, _ = self._records[index]
        return self.tables[t], line

    def _example(self, i: int) -> dict[str, Any]:
        t, line, values = self._records[i]
        example = dict(values)
        for key in self.columns:
            kind = self.types[key]
            if values[key] is None:
                continue  # a missing input (missing="allow")
            try:
                if kind == "image":
                    example[key] = self._load_image(values[key])
                elif kind == "audio":
                    example[key] = self._load_audio(values[key])
                elif kind == "vector":
                    example[key] = values[key].copy()
            except DatasetError as exc:
                where = f"{self.tables[t]} line {line}, column '{self.columns[key]}'"
                raise DatasetError(f"{where}: {exc}") from None
        columns = {**self.columns, **({"target": self.target_column} if "target" in example else {})}
        return Example(example, {key: f"{self.tables[t]} line {line}, column '{c}'" for key, c in columns.items()})

    def _load_image(self, file: str) -> np.ndarray:
        return np.asarray(load_image(file, self.image_mode, limits=self.limits), dtype=np.uint8)

    def _load_audio(self, file: str) -> dict:
        return load_audio(file, self.sample_rate, limits=self.limits)


def _as_path(value: object) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise DatasetError(f"{NAME}: path must be a manifest file path (or {{split: path}}), got {value!r}")
    return Path(value).expanduser()


def _require_column(table: Table, column: str, param: str) -> None:
    if column not in table.columns:
        raise DatasetError(
            f"{NAME}: {param} '{column}' is not a column of {table.path} "
            f"(columns: {', '.join(table.columns)}).{did_you_mean(column, table.columns)}"
        )


def _split_value(table: Table, row: int, column: str) -> str:
    value = table.rows[row].get(column)
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{table.where(row, column)}: expected a split name like 'train', found {value!r}")
    return value.strip()


def _resolve_columns(columns: object, tables: list[Table], excluded: set[str]) -> dict[str, str]:
    if columns is None:
        out = {c: c for c in tables[0].columns if c not in excluded}
        if not out:
            others = ", ".join(sorted(excluded))
            raise DatasetError(f"{NAME}: {tables[0].path} has no columns besides {others}")
    else:
        if not isinstance(columns, Mapping) or not columns:
            raise DatasetError(
                f"{NAME}: columns must map batch keys to manifest columns, e.g. {{'image': 'path'}}, "
                f"got {columns!r}"
            )
        out = {}
        for key, column in columns.items():
            if not isinstance(key, str) or not key or not isinstance(column, str) or not column:
                raise DatasetError(
                    f"{NAME}: columns must map batch key names to column names, got {key!r}: {column!r}"
                )
            if key == "target":
                raise DatasetError(
                    f"{NAME}: 'target' is not a batch key; name the target column with target="
                )
            out[key] = column
    for table in tables:
        for key, column in out.items():
            _require_column(table, column, f"columns['{key}']" if columns is not None else "column")
    return out


def _default_type(key: str) -> str:
    for kind in ("image", "audio", "text"):
        if key == kind or key.startswith(kind + "_"):
            return kind
    return "auto"


def _resolve_types(types: object, columns: dict[str, str], tables: list[Table], *,
                   skip_empty: bool = False) -> dict[str, str]:
    if types is not None and not isinstance(types, Mapping):
        raise DatasetError(
            f"{NAME}: types must map batch keys to types like {{'photo': 'image'}}, got {types!r}"
        )
    given = dict(types or {})
    for key, kind in given.items():
        if key not in columns:
            raise DatasetError(
                f"{NAME}: types names '{key}', which is not a batch key (keys: {', '.join(columns)})."
                f"{did_you_mean(str(key), columns)}"
            )
        if kind not in KEY_TYPES:
            raise DatasetError(
                f"{NAME}: types['{key}'] is {kind!r}; use one of {', '.join(KEY_TYPES)}."
                f"{did_you_mean(str(kind), KEY_TYPES)}"
            )
    out = {}
    for key, column in columns.items():
        kind = given.get(key) or _default_type(key)
        out[key] = _infer_type(column, tables, skip_empty) if kind == "auto" else kind
    return out


def _infer_type(column: str, tables: list[Table], skip_empty: bool = False) -> str:
    """int if every value is an integer, float if every value is a number, vector for lists, else text
    (with ``skip_empty``, empty cells, which are missing inputs, do not count)."""
    values = [row.get(column) for table in tables for row in table.rows]
    if skip_empty:
        values = [v for v in values if v is not None and not (isinstance(v, str) and not v.strip())]
    if any(isinstance(v, list) for v in values):
        return "vector"
    for kind, parse in (("int", parse_int), ("float", parse_float)):
        try:
            for v in values:
                parse(v)
        except ValueError:
            continue
        return kind
    return "text"


manifest = dataset_factory(NAME)(Manifest)

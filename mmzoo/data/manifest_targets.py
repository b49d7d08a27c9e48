"""Parsing a manifest's target column: class indices, class names, numbers or lists.

Target types:
- ``int``: a class index (checked against ``labels`` when given);
- ``float``: a regression value;
- ``label``: a class name, mapped to its index in ``labels`` (default: the sorted names found in
  every file of the manifest, so all splits agree);
- ``list``: numbers (``[0.5, 1.2]`` or ``0.5;1.2``: multi-output regression or a multi-hot vector
  written out) or names (``cat;dog``: turned into a multi-hot vector over ``labels``);
- ``auto`` (default): int if every value is an integer, else float if every value is a number,
  else list if values are lists, else label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmzoo.data.manifest_io import Table, parse_float, parse_int, parse_list
from mmzoo.errors import DatasetError, did_you_mean

TARGET_TYPES = ("auto", "int", "float", "list", "label")


class TargetParser:
    """Turns target cells into example targets; built once from every file of a manifest."""

    def __init__(self, column: str, target_type: str, labels: object, tables: list[Table]) -> None:
        self.column = column
        self.label_names: list[str] | None = _check_labels(labels)
        cells = [(table, r) for table in tables for r in range(len(table.rows))]
        self.kind = target_type if target_type != "auto" else self._infer(cells)
        self._list_is_numeric = True
        self.num_classes: int | None = None
        if self.kind == "label" and self.label_names is None:
            self.label_names = sorted({self._text(t, r) for t, r in cells})
        if self.kind == "list":
            elements = [x for t, r in cells for x in self._list(t, r)]
            self._list_is_numeric = all(_is_number(x) and not isinstance(x, str) for x in elements)
            if not self._list_is_numeric and self.label_names is None:
                self.label_names = sorted({str(x) for x in elements})
        if self.label_names is not None:
            self._index = {name: i for i, name in enumerate(self.label_names)}
            self.num_classes = len(self.label_names)

    def _infer(self, cells: list[tuple[Table, int]]) -> str:
        values = [t.rows[r].get(self.column) for t, r in cells]
        for kind, parse in (("int", parse_int), ("float", parse_float)):
            try:
                for v in values:
                    parse(v)
            except ValueError:
                continue
            return kind
        if any(isinstance(v, list) or (isinstance(v, str) and v.strip().startswith("[")) for v in values):
            return "list"
        if self.label_names is None:
            numeric = [(t, r) for (t, r), v in zip(cells, values) if _is_number(v)]
            names = [(t, r) for (t, r), v in zip(cells, values) if not _is_number(v)]
            if numeric and names:
                (t, r), example = names[0], numeric[0][0].where(numeric[0][1])
                raise DatasetError(
                    f"{t.where(r, self.column)}: target {t.rows[r].get(self.column)!r} is not a number "
                    f"although other rows (e.g. {example}) hold numbers; fix the row or "
                    f"set target_type='label' to treat every value as a class name"
                )
        return "label"

    def parse(self, table: Table, row: int) -> Any:
        """The target of ``row``: int, float or list of floats; DatasetError naming file, line, column."""
        value = table.rows[row].get(self.column)
        if value is None or (isinstance(value, str) and not value.strip() and self.kind != "list"):
            raise DatasetError(f"{table.where(row, self.column)}: missing target")
        try:
            if self.kind == "int":
                index = parse_int(value)
                if self.label_names is not None and not 0 <= index < len(self.label_names):
                    top = len(self.label_names) - 1
                    raise ValueError(f"class index {index} is outside 0..{top} (the labels given)")
                return index
            if self.kind == "float":
                return parse_float(value)
            if self.kind == "label":
                return self._label_index(self._text(table, row))
            items = self._list(table, row)
            if self._list_is_numeric:
                return [parse_float(x) for x in items]
            hot = [0.0] * len(self.label_names)
            for item in items:
                hot[self._label_index(str(item))] = 1.0
            return hot
        except ValueError as exc:
            raise DatasetError(f"{table.where(row, self.column)}: {exc}") from None

    def _label_index(self, name: str) -> int:
        if name not in self._index:
            raise ValueError(
                f"unknown label {name!r}; labels are {', '.join(map(repr, self.label_names))}."
                f"{did_you_mean(name, self.label_names)}"
            )
        return self._index[name]

    def _text(self, table: Table, row: int) -> str:
        value = table.rows[row].get(self.column)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DatasetError(f"{table.where(row, self.column)}: missing target")
        if isinstance(value, (list, dict, bool)):
            raise DatasetError(f"{table.where(row, self.column)}: expected a class name, found {value!r}")
        return str(value).strip()

    def _list(self, table: Table, row: int) -> list:
        value = table.rows[row].get(self.column)
        if value is None:
            raise DatasetError(f"{table.where(row, self.column)}: missing target")
        try:
            items = parse_list(value, table.limits)
        except ValueError as exc:
            raise DatasetError(f"{table.where(row, self.column)}: {exc}") from None
        for item in items:
            if isinstance(item, (list, dict)) or isinstance(item, bool) or item is None:
                where = table.where(row, self.column)
                raise DatasetError(f"{where}: list element {item!r} is not a number or a name")
        return items


def _is_number(value: Any) -> bool:
    try:
        parse_float(value)
    except ValueError:
        return False
    return True


def _check_labels(labels: object) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, Mapping):
        if not labels:
            raise DatasetError("manifest: labels mapping is empty")
        indices = sorted(labels.values()) if all(isinstance(v, int) for v in labels.values()) else None
        if indices != list(range(len(labels))):
            raise DatasetError(
                f"manifest: labels must map each name to an index 0..{len(labels) - 1}, each used once, "
                f"got {dict(labels)}"
            )
        names = sorted(labels, key=lambda name: labels[name])
    elif isinstance(labels, (list, tuple)):
        names = list(labels)
    else:
        raise DatasetError(
            f"manifest: labels must be a list of class names or {{name: index}}, not {labels!r}"
        )
    if not names or not all(isinstance(n, str) and n for n in names):
        raise DatasetError(f"manifest: labels must be non-empty class-name strings, got {names!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DatasetError(f"manifest: labels repeat {', '.join(map(repr, duplicates))}")
    return [str(n) for n in names]

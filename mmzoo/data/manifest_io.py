"""Reading manifest files (CSV, TSV, JSON Lines) and parsing their cells, with located errors.

Every error names the file, the line and the column, e.g.
``data.csv line 7, column 'target': 'abc' is not an integer``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmzoo.data.limits import DataLimits, data_limits
from mmzoo.errors import DatasetError
from mmzoo.localpaths import path_problem, shorten

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class Table:
    """The rows of one manifest file: column names, one dict per row and the line each row ends on.

    ``limits`` are the data limits its cells are read under (JSON depth of list cells, for one).
    """

    path: Path
    columns: list[str]
    rows: list[dict[str, Any]]
    lines: list[int]
    limits: DataLimits = field(default_factory=DataLimits)

    def where(self, row: int, column: str | None = None) -> str:
        """``"<file> line N, column 'c'"`` for error messages."""
        place = f"{self.path} line {self.lines[row]}"
        return f"{place}, column '{column}'" if column is not None else place


def read_table(path: Path, limits: DataLimits | None = None) -> Table:
    """Read a manifest file; the format follows the extension (.csv, .tsv, .jsonl, .ndjson).

    JSON lines nested deeper than ``limits.json_depth`` are refused before they are parsed.
    """
    limits = limits or data_limits()
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"manifest {path}: unsupported file type '{path.suffix}'; use one of {', '.join(FORMATS)}"
        )
    unusable = path_problem(path)
    if unusable is not None:  # a name too long for the file system, looping symbolic links
        raise DatasetError(f"manifest {shorten(str(path))}: cannot use this path ({unusable})")
    if not path.is_file():
        problem = "does not exist" if not path.exists() else "is not a file"
        raise DatasetError(f"manifest {path} {problem}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"manifest {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DatasetError(f"manifest {path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    if fmt == "jsonl":
        table = _read_jsonl(path, text, limits)
    else:
        table = _read_delimited(path, text, "," if fmt == "csv" else "\t")
    table.limits = limits
    if not table.rows:
        raise DatasetError(f"manifest {path} has no rows")
    return table


def _read_delimited(path: Path, text: str, delimiter: str) -> Table:
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(f"manifest {path} is empty; the first line must name the columns") from None
    except csv.Error as exc:
        raise DatasetError(f"manifest {path} line 1: {exc}") from exc
    columns = [c.strip() for c in header]
    _check_delimiter(path, columns, delimiter)
    for i, name in enumerate(columns):
        if not name:
            raise DatasetError(f"manifest {path} line 1: column {i + 1} has no name")
        if name in columns[:i]:
            raise DatasetError(f"manifest {path} line 1: column '{name}' appears twice")
    rows, lines = [], []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DatasetError(f"{path} line {reader.line_num}: malformed row ({exc})") from exc
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(columns):
            raise DatasetError(
                f"{path} line {reader.line_num}: expected {len(columns)} cells ({', '.join(columns)}), "
                f"found {len(cells)}"
            )
        rows.append(dict(zip(columns, cells)))
        lines.append(reader.line_num)
    return Table(path, columns, rows, lines)


def _check_delimiter(path: Path, columns: list[str], delimiter: str) -> None:
    """A header read as one column that holds another separator: the file uses the wrong delimiter."""
    if len(columns) != 1:
        return
    others = [d for d in (";", "\t", ",", "|") if d != delimiter and d in columns[0]]
    if others:
        shown = {"\t": "tabs", ";": "';'", ",": "','", "|": "'|'"}
        expected = "commas" if delimiter == "," else "tabs"
        fix = "save it with commas as .csv" if delimiter == "\t" else "save it with commas, or with tabs as .tsv"
        raise DatasetError(
            f"manifest {path} line 1: the header is one column '{columns[0]}'; the file seems to separate columns "
            f"with {shown[others[0]]}, but a {path.suffix} manifest is read with {expected} between columns ({fix})"
        )


def _read_jsonl(path: Path, text: str, limits: DataLimits) -> Table:
    rows, lines, columns = [], [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = load_json(line, limits)
        except ValueError as exc:
            raise DatasetError(f"{path} line {number}: {exc}") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{path} line {number}: expected a JSON object, found {type(row).__name__}")
        columns.update(dict.fromkeys(row))
        rows.append(row)
        lines.append(number)
    return Table(path, list(columns), rows, lines)


def load_json(text: str, limits: DataLimits) -> Any:
    """Parse JSON ``text`` under ``limits``; ValueError with a one-line reason if it cannot be read."""
    try:
        limits.check_json(text)
        return json.loads(text)
    except DatasetError as exc:
        raise ValueError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at character {exc.pos + 1})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply for Python to parse") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ValueError(f"invalid JSON ({exc})") from None


# -- cell parsing --------------------------------------------------------------------------------


def parse_int(value: Any) -> int:
    """An integer from an int, an integral float or a string such as ``"7"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{_show(value)} is not an integer")


def parse_float(value: Any) -> float:
    """A finite float from a number or a numeric string; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            raise ValueError(f"{_show(value)} is not a number") from None
    else:
        raise ValueError(f"{_show(value)} is not a number")
    if not math.isfinite(out):
        raise ValueError(f"{_show(value)} is not a finite number")
    return out


def parse_list(value: Any, limits: DataLimits | None = None) -> list:
    """A list from a JSON list, a JSON-list string (``"[1, 0]"``) or a string split on ``;``, ``,`` or spaces.

    Elements are numbers where they parse as numbers, else stripped strings. An empty cell is ``[]``.
    A JSON-list string is read under ``limits`` (default: :func:`~mmzoo.data.limits.data_limits`).
    """
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{_show(value)} is not a list (write it as [1, 0, 1] or 1;0;1)")
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = load_json(text, limits or data_limits())
        except ValueError as exc:
            raise ValueError(f"{_show(value)} is not a valid JSON list: {exc}") from None
        if not isinstance(parsed, list):
            raise ValueError(f"{_show(value)} is not a list")
        return parsed
    if not text:
        return []
    sep = ";" if ";" in text else "," if "," in text else None
    items = [item.strip() for item in text.split(sep)]
    if any(not item for item in items):
        raise ValueError(f"{_show(value)} has an empty list element")
    out: list = []
    for item in items:
        try:
            out.append(parse_float(item))
        except ValueError:
            out.append(item)
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

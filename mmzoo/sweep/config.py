"""The sweep file (``SWEEP.yaml``): base run configs, a grid over config keys, and where things go.

``load_sweep(path)`` reads and checks it, expands every point of the grid into a run config and
validates each one like ``run.yaml``; every mistake is reported at once, located
(``sweep.yaml: grid.model.fusion.type: ...``, ``sweep.yaml: point fusion.type=gated,seed=0:
optim.lr: ...``). Importing this module does not import torch.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmzoo.errors import ConfigError
from mmzoo.spec import read_yaml as read_yaml_file
from mmzoo.train.config import SCHEMA as RUN_SCHEMA
from mmzoo.train.config import TrainConfig, read_yaml
from mmzoo.train.rawconfig import expand_shorthands, parse_override, set_dotted
from mmzoo.train.schema import REQUIRED, AnyOf, AnyValue, Field, ListOf, MapOf, Optional, Section, Str

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_/-]*)*$")


class NonEmptyList(ListOf):
    """A list of any values, at least one."""

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "a non-empty list of values"

    def check(self, value: Any, path: str, problems: list[str]) -> Any:
        if not isinstance(value, list) or not value:
            return self.fail(value, path, problems)
        return list(value)


SCHEMA = Section(
    {
        "base": Field(
            AnyOf([Str(), ListOf(Str()), MapOf()]), REQUIRED,
            "the run config every point starts from: a run.yaml path, a list of them (globs allowed), or an "
            "inline run config; paths are relative to the sweep file",
            example="run.yaml",
        ),
        "grid": Field(
            MapOf(NonEmptyList(AnyValue())), dict,
            "dotted run-config key -> the values it takes; every combination is one point",
            example={"model.fusion.type": ["concat", "gated"], "seed": [0, 1, 2]},
        ),
        "output_dir": Field(Str(), REQUIRED, "where the points' run directories and logs go", example="runs/sweep"),
        "results_dir": Field(Optional(Str()), None, "where results.csv/.md/.png go (null: output_dir)"),
        "average_over": Field(
            Optional(ListOf(Str())), None,
            "grid keys whose values are repeats of one composition: results give their mean and std (null: "
            "seed, when it is a grid key)",
        ),
        "title": Field(Str(), "Sweep results", "the heading of results.md"),
        "metric": Field(
            Optional(Str()), None, "the eval metric the chart shows and the table ranks by (null: each base's "
            "best_metric)"
        ),
    }
)


@dataclass
class Point:
    """One run of the sweep: its name, the base it came from, its grid values and its run config."""

    name: str
    base: str
    values: dict[str, Any]
    config: TrainConfig
    raw: dict[str, Any]
    named_by_base: bool = True
    """Whether names and compositions start with the base's name (several bases, or no grid)."""
    labels: dict[str, str] = field(default_factory=dict)
    """How each grid value shows in the point's name, by grid key."""

    def digest(self) -> str:
        """Identifies the point's config as written (base, grid values, ``--set``): a change there gives
        another digest, while a newer mmzoo that adds a config key with its default does not."""
        blob = json.dumps(self.raw, sort_keys=True, default=repr)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Sweep:
    source: Path
    output_dir: Path
    results_dir: Path
    average_over: list[str]
    metric: str | None
    grid: dict[str, list[Any]]
    title: str = "Sweep results"
    points: list[Point] = field(default_factory=list)

    @property
    def runs_dir(self) -> Path:
        return self.output_dir / "runs"

    @property
    def points_dir(self) -> Path:
        return self.output_dir / "points"


def load_sweep(path: str | Path, *, overrides: list[str] = (), grid: list[str] = (),
               output_dir: str | None = None, results_dir: str | None = None) -> Sweep:
    """Read ``path``; ``overrides`` (``KEY=VALUE``) change every point's run config, ``grid``
    (``KEY=[v1, v2]``) replaces or adds a grid axis, ``output_dir``/``results_dir`` replace the file's."""
    path = Path(path)
    raw = read_yaml_file(path, error=ConfigError, what="sweep file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with base, grid and output_dir")
    raw = copy.deepcopy(raw)
    for text in grid:
        keys, values = parse_override(text)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"--grid {text!r}: expected KEY=[value, ...], a non-empty YAML list")
        raw.setdefault("grid", {})
        if not isinstance(raw["grid"], dict):
            raw["grid"] = {}
        raw["grid"][".".join(keys)] = values
    if output_dir is not None:
        raw["output_dir"] = output_dir
    if results_dir is not None:
        raw["results_dir"] = results_dir
    problems: list[str] = []
    checked = SCHEMA.check(raw, "", problems)
    if problems:
        _raise(path, problems)
    sweep = Sweep(
        source=path,
        output_dir=Path(checked["output_dir"]),
        results_dir=Path(checked["results_dir"] or checked["output_dir"]),
        average_over=checked["average_over"] if checked["average_over"] is not None else (
            ["seed"] if "seed" in checked["grid"] else []),
        metric=checked["metric"],
        grid=checked["grid"],
        title=checked["title"],
    )
    for key in sweep.grid:
        if not _KEY.match(key):
            problems.append(f"grid.{key}: expected a dotted run-config key such as model.fusion.type")
    for key in sweep.average_over:
        if key not in sweep.grid:
            known = ", ".join(sweep.grid) or "none"
            problems.append(f"average_over: '{key}' is not a grid key (grid keys: {known})")
    bases = _bases(path, checked["base"], problems)
    if problems:
        _raise(path, problems)
    extra = [parse_override(text) for text in overrides]
    sweep.points = _expand(sweep, bases, extra, problems)
    if problems:
        _raise(path, problems)
    return sweep


def _raise(path: Path, problems: list[str]) -> None:
    if len(problems) == 1:
        raise ConfigError(f"{path}: {problems[0]}")
    listing = "\n".join(f"  {p}" for p in problems)
    raise ConfigError(f"{path}: {len(problems)} problems:\n{listing}")


def _bases(path: Path, base: Any, problems: list[str]) -> list[tuple[str, dict[str, Any], str]]:
    """``(name, raw run config, where)`` of each base."""
    if isinstance(base, dict):
        return [("base", base, "base")]
    patterns = [base] if isinstance(base, str) else base
    found: list[tuple[str, dict[str, Any], str]] = []
    for index, pattern in enumerate(patterns):
        where = "base" if isinstance(base, str) else f"base[{index}]"
        full = pattern if Path(pattern).is_absolute() else str(path.parent / pattern)
        files = sorted(glob.glob(full)) if glob.has_magic(pattern) else [full]
        if not files:
            problems.append(f"{where}: '{pattern}' matches no file")
        for file in files:
            try:
                found.append((Path(file).stem, read_yaml(file), where))
            except ConfigError as exc:
                problems.append(f"{where}: {exc}")
    names = [name for name, _, _ in found]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"base: two base configs are both named '{name}' (their file names); rename one")
    return found


def _expand(sweep: Sweep, bases: list, extra: list, problems: list[str]) -> list[Point]:
    keys = list(sweep.grid)
    labels = {key: axis_labels(sweep.grid[key]) for key in keys}
    combos = list(itertools.product(*(range(len(sweep.grid[k])) for k in keys))) if keys else [()]
    points, seen = [], set()
    for base_name, base_raw, _ in bases:
        for combo in combos:
            values = {key: sweep.grid[key][i] for key, i in zip(keys, combo, strict=True)}
            by_base = len(bases) > 1 or not keys
            name = point_name(base_name if by_base else "", {key: labels[key][i] for key, i in zip(keys, combo)})
            if name in seen:
                problems.append(f"grid: two points are both named '{name}'; give the values distinct names")
                continue
            seen.add(name)
            raw = expand_shorthands(copy.deepcopy(base_raw))
            try:
                for dotted, value in values.items():
                    set_dotted(raw, dotted.split("."), copy.deepcopy(value), f"grid.{dotted}")
                for dotted, value in extra:
                    set_dotted(raw, dotted, value, f"--set {'.'.join(dotted)}")
            except ConfigError as exc:
                problems.append(f"point {name}: {exc}")
                continue
            raw["output_dir"] = str(sweep.runs_dir / name)
            raw["resume"] = "auto"
            found: list[str] = []
            config = RUN_SCHEMA.check(expand_shorthands(raw), "", found)
            if found:
                problems.extend(f"point {name}: {problem}" for problem in found)
                continue
            config.source = f"{sweep.source} (point {name})"
            points.append(Point(name, base_name, values, config, raw, by_base,
                                {key: labels[key][i] for key, i in zip(keys, combo, strict=True)}))
    return points



def point_name(base: str, labels: dict[str, str]) -> str:
    """``base,fusion.type=gated,seed=0``: the base's name and each grid value's label (keys shortened to
    their last two segments, ``model.encoders.X...`` to ``X...``)."""
    parts = [base] if base else []
    for key, label in labels.items():
        short = ".".join(key.split(".")[-2:]) if not key.startswith("model.encoders.") else key.split(".", 2)[-1]
        parts.append(f"{short}={label}")
    return _safe(",".join(parts) or "point")


def axis_labels(values: list[Any]) -> list[str]:
    """How each value of a grid axis shows in point names: itself, or for a mapping (a whole part) its
    ``type``, with a short digest when two values share one."""
    plain = [str(v.get("type") or v.get("name") or "") if isinstance(v, dict) else _scalar_label(v) for v in values]
    labels = []
    for value, label in zip(values, plain, strict=True):
        if isinstance(value, dict) and (not label or plain.count(label) > 1):
            digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()[:6]
            label = f"{label}-{digest}" if label else digest
        labels.append(label)
    return labels


def _scalar_label(value: Any) -> str:
    if isinstance(value, list):
        return "-".join(_scalar_label(v) for v in value) or "empty"
    return str(value)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", name)[:150]


def composition(point: Point, average_over: list[str]) -> str:
    """The point's name without the grid values it is averaged over."""
    kept = {k: v for k, v in point.labels.items() if k not in average_over}
    if not kept:
        return point.base
    return point_name(point.base if point.named_by_base else "", kept)


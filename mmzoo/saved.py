"""Saved and published models: the one reader of a model directory.

``save_pretrained`` writes, and a Hub repo holds, ``config.json`` and ``model.safetensors``.
:func:`read_model_dir` is the only code that reads such a ``config.json``: the local-directory path
of ``create_model``, the Hub path and ``mmzoo info``, ``mmzoo push`` and the model card all go
through it. What it reads is hostile input: it is parsed as JSON only, every field is checked
before it can reach a message, a card or a command line, and any problem is one
:class:`~mmzoo.errors.SpecError` naming the file and the field. Importing this module is cheap.

``config.json``::

    {"format": "mmzoo", "mmzoo_version": "0.1.0", "name": "my-model",
     "spec": {"encoders": {...}, "fusion": {...}, "head": {...}},
     "requires": {"mmzoo": "0.1.0", "mmzoo-timm": "0.1.0"},      # distribution -> version
     "labels": ["cat", "dog"],                                    # optional: class names by index
     "metrics": {"accuracy": 0.9}, "datasets": ["av-digits"],     # optional: written by the trainer
     "training": {"steps": 300, "eval_split": "test", ...}}       # optional: written by the trainer

``training`` says which weights these are: ``steps`` (the optimizer step of these weights),
``run_steps`` (how many the run made), ``checkpoint`` (``last``, ``best`` or ``step-N`` of the run) and,
for the best, ``best_metric`` / ``best_mode``; plus ``world_size``, ``precision``, ``eval_dataset``,
``eval_split`` and ``eval_examples``.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmzoo.errors import DatasetError, SpecError, WeightsError
from mmzoo.spec import Spec, type_name

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "mmzoo"
#: Checkpoint files that torch unpickles (they can run code when loaded): refused unless opted in.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: Keys of config.json that mmzoo itself writes (``save_pretrained(extra=...)`` may not use them).
RESERVED_KEYS = ("format", "mmzoo_version", "name", "spec", "requires", "labels")

#: The version ``requires`` records for a distribution whose version could not be read.
UNKNOWN_VERSION = "unknown"
_WORD = re.compile(r"^[^\s|`'\"\\]{1,200}$")  # names shown in tables, tags and messages
_CHECKPOINT = re.compile(r"^(last|best|step-[0-9]{1,12})$")


def is_pickle(filename: str) -> bool:
    """True for a file name with a pickle checkpoint's suffix (``pytorch_model.bin``, ``x.pt``...)."""
    return filename.lower().endswith(PICKLE_SUFFIXES)


@dataclass(frozen=True)
class SavedModel:
    """What a model directory holds, checked: its spec, provenance and where its weights are."""

    directory: Path
    spec: Spec
    name: str | None = None
    requires: dict[str, str] = field(default_factory=dict)  # distribution -> version it was saved with
    labels: tuple[str, ...] | None = None  # class names in output index order
    metrics: dict[str, float] = field(default_factory=dict)  # final evaluation of the run that made it
    datasets: tuple[str, ...] = ()  # datasets it was trained and evaluated on
    training: dict[str, Any] = field(default_factory=dict)  # steps, world_size, precision, eval_split, ...
    mmzoo_version: str | None = None
    weights_file: Path | None = None  # model.safetensors, when present
    pickles: tuple[str, ...] = ()  # pickle checkpoints beside it (loaded only on request)
    config: dict[str, Any] = field(default_factory=dict, repr=False)  # config.json as read

    @property
    def source(self) -> str:
        return str(self.directory)

    @property
    def provenance(self) -> dict[str, Any]:
        """The keys of config.json beyond what mmzoo itself writes (``metrics``, ``datasets``,
        ``training``, and any a newer trainer added): kept by a model loaded from here."""
        return {k: copy.deepcopy(v) for k, v in self.config.items() if k not in RESERVED_KEYS}

    def weights_to_load(self, *, allow_pickle: bool = False, source: str | None = None) -> Path:
        """The weights file to load: ``model.safetensors``, or a pickle checkpoint when it is the only
        one and ``allow_pickle`` is true. Anything else is a WeightsError saying what to do."""
        source = source or self.source
        if self.weights_file is not None:
            return self.weights_file
        if self.pickles and allow_pickle:
            return self.directory / self.pickles[0]
        if self.pickles:
            raise WeightsError(f"{source} has only pickle weights ({', '.join(self.pickles)}), which can run "
                               f"code when loaded; mmzoo loads {WEIGHTS_NAME}. Pass allow_pickle=True if you "
                               f"trust it")
        raise WeightsError(f"{source}: no {WEIGHTS_NAME} next to {CONFIG_NAME}")


def read_model_dir(path: str | Path, *, source: str | None = None) -> SavedModel:
    """Read and check the ``config.json`` of a model directory (written by ``save_pretrained`` or
    downloaded from the Hub). ``source`` is how messages name it (default: the path).

    The weights are located, not read. Raises :class:`~mmzoo.errors.SpecError` for a directory
    without ``config.json``, a file that is not JSON or not an mmzoo config, or a bad field.
    """
    directory = Path(path).expanduser()
    source = source or str(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise SpecError(f"{source}: not an mmzoo model directory (no {CONFIG_NAME}); it needs the "
                        f"{CONFIG_NAME} and {WEIGHTS_NAME} that save_pretrained writes")
    try:
        config = load_json(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"{source}: {CONFIG_NAME}: not valid JSON ({exc})") from None
    except DatasetError as exc:
        raise SpecError(f"{source}: {CONFIG_NAME}: {exc}") from None
    except OSError as exc:
        raise SpecError(f"{source}: cannot read {CONFIG_NAME} ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or not isinstance(config.get("spec"), dict):
        raise SpecError(f"{source}: {CONFIG_NAME} is not an mmzoo config (it needs \"format\": \"mmzoo\" and a "
                        f"\"spec\"); it is not a model saved or published with mmzoo")
    where = f"{source}: {CONFIG_NAME}"
    weights = directory / WEIGHTS_NAME
    return SavedModel(
        directory=directory,
        spec=Spec.from_dict(config["spec"], f"{where} spec"),
        name=_optional_text(config.get("name"), f"{where} name"),
        requires=check_requires(config.get("requires"), f"{where} requires"),
        labels=check_labels(config["labels"], f"{where} labels") if config.get("labels") is not None else None,
        metrics=_metrics(config.get("metrics"), f"{where} metrics"),
        datasets=_words(config.get("datasets"), f"{where} datasets"),
        training=_training(config.get("training"), f"{where} training"),
        mmzoo_version=_optional_version(config.get("mmzoo_version"), f"{where} mmzoo_version"),
        weights_file=weights if weights.is_file() else None,
        pickles=tuple(sorted(p.name for p in directory.iterdir() if p.is_file() and is_pickle(p.name))),
        config=config,
    )


def load_json(text: str | bytes) -> Any:
    """Parse JSON that a model brought (a config.json, a safetensors header), nested no deeper than the
    data limits' ``json_depth`` (:mod:`mmzoo.data.limits`): deeper text is a DatasetError saying so,
    never a RecursionError; text that is not JSON raises ValueError as ``json.loads`` does."""
    from mmzoo.data.limits import ENV, data_limits, json_depth

    text = text if isinstance(text, str) else text.decode("utf-8")
    limit = data_limits().json_depth
    depth = json_depth(text)[0] if text.count("[") + text.count("{") > limit else 0
    if depth > limit:
        raise DatasetError(f"JSON nested {depth} levels deep, over the limit of {limit} (the environment "
                           f"variable {ENV['json_depth']} raises it)")
    try:
        return json.loads(text)
    except RecursionError:  # only with the limit raised past what Python's parser can nest
        raise DatasetError("JSON nested too deeply for Python's parser; lower MMZOO_MAX_JSON_DEPTH") from None


# ----- labels ---------------------------------------------------------------------------------------
def check_labels(labels: Any, where: str = "labels", *, size: int | None = None) -> tuple[str, ...]:
    """``labels`` as a tuple of distinct, non-empty one-line strings (class names in index order);
    with ``size``, exactly that many. Raises SpecError otherwise."""
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise SpecError(f"{where}: expected a list of class names (strings, in index order), got "
                        f"{type_name(labels)}")
    out = tuple(labels)
    for i, label in enumerate(out):
        if not isinstance(label, str) or not label.strip() or not label.isprintable() or len(label) > 200:
            raise SpecError(f"{where}[{i}]: expected a non-empty one-line class name, got {label!r}")
    if len(set(out)) != len(out):
        repeated = sorted({label for label in out if out.count(label) > 1})
        raise SpecError(f"{where}: class names must be distinct; repeated: {', '.join(map(repr, repeated))}")
    if size is not None and len(out) != size:
        raise SpecError(f"{where}: {len(out)} class names for a head with {size} outputs; give one name per "
                        f"output, in index order")
    return out


def head_size(head: Any) -> int | None:
    """How many outputs a head has, when it says (``num_classes``, ``num_labels`` or ``num_outputs``)."""
    for attr in ("num_classes", "num_labels", "num_outputs"):
        value = getattr(head, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


# ----- field checks ---------------------------------------------------------------------------------
def _optional_text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or not value.isprintable() or len(value) > 200:
        raise SpecError(f"{where}: expected a one-line name, got {value!r}")
    return value


def _optional_version(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not is_version(value):
        raise SpecError(f"{where}: expected a version such as '0.1.0', got {value!r}")
    return value


def is_version(value: Any) -> bool:
    """True for a PEP 440 version written without spaces (``1.2.0``, ``0.3.0rc1``, ``1.0+local``)."""
    from packaging.version import InvalidVersion, Version

    if not isinstance(value, str) or not value or len(value) > 64 or any(c.isspace() for c in value):
        return False
    try:
        Version(value)
    except InvalidVersion:
        return False
    return True


def is_distribution_name(value: Any) -> bool:
    """True for a PEP 508 distribution name (``mmzoo-timm``, ``Foo.Bar_2``)."""
    from packaging.utils import InvalidName, canonicalize_name

    if not isinstance(value, str) or len(value) > 100:
        return False
    try:
        canonicalize_name(value, validate=True)
    except InvalidName:
        return False
    return True


def check_requires(value: Any, where: str = "requires") -> dict[str, str]:
    """``requires`` (distribution -> version it was saved with) checked as hostile input: every name a
    PEP 508 distribution name, every version a PEP 440 version (or ``"unknown"``), so that what a message
    or an install hint quotes from it is exactly what was validated. Raises SpecError otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: expected a mapping of distribution -> version, got {type_name(value)}")
    for dist, version in value.items():
        if not is_distribution_name(dist):
            raise SpecError(f"{where}: {dist!r} is not a distribution name (PEP 508: letters, digits, '.', "
                            f"'_' and '-')")
        if version != UNKNOWN_VERSION and not is_version(version):
            raise SpecError(f"{where}.{dist}: expected a version such as '1.2.0' (PEP 440), got {version!r}")
    return dict(value)


def _words(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise SpecError(f"{where}: expected a list of names, got {type_name(value)}")
    for item in value:
        if not isinstance(item, str) or not _WORD.match(item):
            raise SpecError(f"{where}: expected names without spaces or quotes, got {item!r}")
    return tuple(dict.fromkeys(value))


def _metrics(value: Any, where: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: expected a mapping of metric name -> number, got {type_name(value)}")
    out = {}
    for name, number in value.items():
        if not isinstance(name, str) or not _WORD.match(name):
            raise SpecError(f"{where}: {name!r} is not a metric name (no spaces or quotes)")
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise SpecError(f"{where}.{name}: expected a finite number, got {number!r}")
        out[name] = float(number)
    return out


def _training(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {type_name(value)}")
    for key in ("steps", "run_steps"):
        steps = value.get(key)
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
            raise SpecError(f"{where}.{key}: expected a number of steps, got {steps!r}")
    for key in ("eval_split", "eval_dataset", "precision", "best_metric"):
        text = value.get(key)
        if text is not None and (not isinstance(text, str) or not _WORD.match(text)):
            raise SpecError(f"{where}.{key}: expected a name without spaces or quotes, got {text!r}")
    checkpoint = value.get("checkpoint")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not _CHECKPOINT.match(checkpoint)):
        raise SpecError(f"{where}.checkpoint: expected 'last', 'best' or 'step-N', got {checkpoint!r}")
    mode = value.get("best_mode")
    if mode is not None and mode not in ("min", "max"):
        raise SpecError(f"{where}.best_mode: expected 'min' or 'max', got {mode!r}")
    return dict(value)

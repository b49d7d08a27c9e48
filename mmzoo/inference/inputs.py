"""Raw examples from the command line (``mmzoo predict --input KEY=VALUE``) and JSON records of
predictions over a dataset (``mmzoo predict --data``).

A value for a key whose encoder reads files (its ``raw_input`` accepts paths, or it reads images or
audio) is a file path and must name an existing file; a vector key's value is read as a YAML list of
numbers; any other value is text as given.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmzoo.errors import ConfigError, did_you_mean

MEDIA_KINDS = ("image", "audio")


def input_kind(encoder: Any) -> str | None:
    """What an encoder reads: its ``raw_input.kind``, else its ``modality``."""
    raw = getattr(encoder, "raw_input", None)
    return getattr(raw, "kind", None) or getattr(encoder, "modality", None)


def reads_files(encoder: Any) -> bool:
    """The encoder's ``preprocess`` takes file paths (it says so, or it reads images or audio)."""
    raw = getattr(encoder, "raw_input", None)
    if raw is not None and getattr(raw, "accepts", None):
        return "path" in raw.accepts
    return input_kind(encoder) in MEDIA_KINDS


def parse_inputs(model: Any, pairs: Sequence[str]) -> dict[str, Any]:
    """``["image=cat.png", "text=a cat"]`` as one raw example for ``model`` (a value per encoder key)."""
    example: dict[str, Any] = {}
    keys = list(model.encoders)
    for text in pairs:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--input {text!r}: expected KEY=VALUE, e.g. {keys[0]}=..., one per encoder key "
                              f"({', '.join(keys)})")
        if key not in model.encoders:
            raise ConfigError(f"--input {text!r}: the model has no encoder for '{key}'; its keys are "
                              f"{', '.join(keys)}.{did_you_mean(key, keys)}")
        if key in example:
            raise ConfigError(f"--input: '{key}' is given twice; give one value per key")
        example[key] = _raw_value(model.encoders[key], key, value)
    missing = [k for k in keys if k not in example]
    if missing and (not example or not getattr(model.fusion, "handles_missing", False)):
        why = "" if not example else (f" (its fusion, {getattr(model.fusion, 'part_name', 'this one')}, needs "
                                      "every input)")
        raise ConfigError(f"--input: the model reads {', '.join(keys)}; give a value for "
                          f"{', '.join(missing)} too (--input {missing[0]}=...){why}")
    return example  # keys left out are missing inputs, which the fusion handles


def _raw_value(encoder: Any, key: str, value: str) -> Any:
    kind = input_kind(encoder)
    if reads_files(encoder):
        path = Path(value).expanduser()
        if not path.is_file():
            problem = "is not a file" if path.exists() else "does not exist"
            raise ConfigError(f"--input {key}={value}: '{value}' {problem}; the '{key}' encoder reads "
                              f"{kind or 'media'} files")
        return path
    if kind == "vector":
        import yaml

        try:
            numbers = yaml.safe_load(value)
        except yaml.YAMLError:
            numbers = None
        if not isinstance(numbers, list) or not all(_is_number(v) for v in numbers):
            raise ConfigError(f"--input {key}={value}: expected a list of numbers such as [0.5, 1.2]")
        return numbers
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def shown(value: Any) -> Any:
    """A raw input as JSON: a path as its text, short text and numbers as they are, the rest by type."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, list) and len(value) <= 64 and all(_is_number(v) for v in value):
        return value
    return f"<{type(value).__name__}>"


def prediction_records(model: Any, dataset: Any, *, batch_size: int, top_k: int | None,
                       threshold: float | None, labels: Sequence[str] | None = None,
                       limit: int | None = None) -> Iterator[dict[str, Any]]:
    """One JSON-ready record per example of ``dataset`` (the first ``limit``), in order: its ``index``, its
    ``row`` (file and line) when the dataset can say (``dataset.locate(i)``), the example's values that no
    encoder reads (an id column...), its ``target`` (by name when ``labels`` name the dataset's targets)
    and the ``prediction``."""
    from mmzoo.inference.predict import head_task

    keys = set(model.encoders)
    task = head_task(model)
    locate = getattr(dataset, "locate", None)
    total = len(dataset) if limit is None else min(limit, len(dataset))
    for start in range(0, total, batch_size):
        indices = range(start, min(total, start + batch_size))
        examples = [dataset[i] for i in indices]
        predictions = model.predict(examples, top_k=top_k, threshold=threshold, batch_size=batch_size)
        for index, example, prediction in zip(indices, examples, predictions):
            record: dict[str, Any] = {"index": index}
            if callable(locate):
                file, line = locate(index)
                record["row"] = {"file": str(file), "line": int(line)}
            if isinstance(example, Mapping):
                for key, value in example.items():
                    if key not in keys and key != "target" and isinstance(value, (str, int, float, bool)):
                        record[str(key)] = value
                if "target" in example:
                    record["target"] = target_as_json(example["target"], labels, task)
            record["prediction"] = prediction.to_dict()
            yield record


def target_as_json(target: Any, labels: Sequence[str] | None, task: str) -> Any:
    """A raw target as JSON: for a classifier a class index as its name, for a multi-label head the names a
    multi-hot vector marks, for regression the values by name; numbers as they are otherwise."""
    if hasattr(target, "tolist"):
        target = target.tolist()
    if not labels:
        return target
    if task == "classification" and isinstance(target, int) and not isinstance(target, bool):
        return labels[target] if 0 <= target < len(labels) else target
    if task == "multilabel" and isinstance(target, list) and len(target) == len(labels):
        return [name for name, v in zip(labels, target) if v >= 0.5]
    if task == "regression":
        values = target if isinstance(target, list) else [target]
        if len(values) == len(labels):
            return dict(zip(labels, values))
    return target

"""What the trainer checks about the data against the model before the run directory exists.

- The batch keys: every encoder's key must be in the examples (an error naming it), a column that no
  encoder reads is reported once as a note, and a head that needs targets must get them.
- The labels: a dataset that names its classes (``dataset.labels``) must have as many as the head has
  outputs; the names become ``model.labels`` (saved in ``config.json``), and every split's targets are
  matched to them by name (:func:`mmzoo.data.labels.align_targets`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mmzoo.data.labels import align_targets, dataset_labels
from mmzoo.errors import ConfigError, DatasetError, did_you_mean
from mmzoo.saved import head_size

_SIZE_PARAMS = ("num_classes", "num_labels", "num_outputs")
_LOOK_AHEAD = 32  # examples looked at for a key the first example lacks (missing inputs)


def check_training_data(model: Any, splits: Mapping[str, Any], note: Callable[[str], None]) -> dict[str, Any]:
    """Check each split (``{"data.train": dataset, "data.eval": dataset or None}``) against ``model``;
    return the splits with their targets indexed by the model's labels. Sets ``model.labels`` from the
    first split that names its classes when the model has none and its head says how many outputs
    it has. ``note`` prints a remark (a column no encoder reads)."""
    unused: dict[str, list[str]] = {}
    for where, dataset in splits.items():
        if dataset is not None:
            for key in _check_keys(model, dataset, where):
                unused.setdefault(key, []).append(where)
    if unused:
        columns = ", ".join(f"'{k}'" for k in unused)
        splits_named = ", ".join(dict.fromkeys(w for ws in unused.values() for w in ws))
        note(f"note: {splits_named}: no encoder reads {columns} (the model reads "
             f"{', '.join(model.encoders)}); {'it is' if len(unused) == 1 else 'they are'} ignored")
    first = next((w for w, d in splits.items() if d is not None), None)
    if first is not None and model.labels is None:
        _adopt_labels(model, splits[first], first)
    return {where: None if dataset is None else align_targets(dataset, model.labels, where)
            for where, dataset in splits.items()}


def _check_keys(model: Any, dataset: Any, where: str) -> list[str]:
    """The example's keys no encoder reads; raises for a key an encoder needs and the data lacks."""
    example = dataset[0]
    if not isinstance(example, Mapping):
        raise DatasetError(f"{where}: a dataset's items must be example dicts (a raw value per batch key and "
                           f"'target'), got {type(example).__name__}")
    keys = [k for k in example if k != "target"]
    missing = [k for k in model.encoders if k not in example]
    if missing and getattr(model.fusion, "handles_missing", False):
        # an example may lack an input (the key absent): only a key none of the first examples has is missing
        seen = (dataset[i] for i in range(1, min(len(dataset), _LOOK_AHEAD)))
        for other in seen:
            missing = [k for k in missing if not (isinstance(other, Mapping) and k in other)]
            if not missing:
                break
    if missing:
        hint = did_you_mean(missing[0], [str(k) for k in keys])
        raise ConfigError(
            f"{where}: the model's encoder(s) read {', '.join(repr(k) for k in missing)}, which the data does not "
            f"have (its examples hold {', '.join(map(repr, example))}).{hint} Rename the column (a manifest "
            f"takes columns={{'{missing[0]}': 'COLUMN'}}) or change the model's encoder keys"
        )
    if "target" not in example and getattr(model.head, "requires_target", True) is not False:
        raise ConfigError(f"{where}: the examples have no 'target', which the model's head needs to compute "
                          "its loss; give the dataset a target column")
    return [str(k) for k in keys if k not in model.encoders]


def _adopt_labels(model: Any, dataset: Any, where: str) -> None:
    names = dataset_labels(dataset, where)
    size = head_size(model.head)
    if names is None or size is None:
        return
    if len(names) != size:
        param = next(p for p in _SIZE_PARAMS if getattr(model.head, p, None) == size)
        if param == "num_outputs" and size == 1:
            return  # one regressed value (e.g. the class index read as a number): the names are not outputs
        shown = ", ".join(map(repr, names[:10])) + (", ..." if len(names) > 10 else "")
        raise ConfigError(
            f"{where}: the data has {len(names)} classes ({shown}) but the model's head has {param}={size}; "
            f"set {param}: {len(names)} in the model's head (or give the dataset the classes the model has)"
        )
    model.labels = names

"""Where an example's values came from, so that a mistake found later names the file, line and column.

A dataset may hand out :class:`Example` dicts: plain example dicts that also carry ``origins`` (batch key
-> ``"data.csv line 4, column 'label'"``). Nothing needs them; the collator uses them when a head's
``collate_targets`` or an encoder's ``preprocess`` refuses a batch (:func:`locate`), to say which row of
which file holds the value it refused. Importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mmzoo.errors import DatasetError


class Example(dict):
    """An example dict (batch key -> raw value, and ``"target"``) that says where its values came from."""

    def __init__(self, values: Mapping[str, Any] = (), origins: Mapping[str, str] | None = None) -> None:
        super().__init__(values)
        self.origins = dict(origins or {})


def origin_of(example: Any, key: str) -> str | None:
    """Where ``example[key]`` came from, when its dataset said (an :class:`Example`), else None."""
    origins = getattr(example, "origins", None)
    return origins.get(key) if isinstance(origins, Mapping) else None


def locate(collate: Callable[[list], Any], values: list, examples: Sequence[Any], key: str) -> Any:
    """``collate(values)``; when it raises a DatasetError and the examples carry origins, the error is
    raised again prefixed with the origin of the first value that ``collate`` refuses on its own."""
    try:
        return collate(values)
    except DatasetError as exc:
        if not any(origin_of(example, key) for example in examples):
            raise
        for value, example in zip(values, examples):
            try:
                collate([value])
            except DatasetError:
                origin = origin_of(example, key)
                if origin is not None:
                    raise DatasetError(f"{origin}: {exc}") from None
        raise  # no single value is at fault (e.g. values of different shapes): the batch is

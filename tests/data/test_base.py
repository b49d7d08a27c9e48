"""Split helpers, parameter checks and the indexing rules every dataset shares."""

from __future__ import annotations

import numpy as np
import pytest

from mmzoo.data.base import (
    ExampleDataset,
    check_fractions,
    check_limit,
    check_seed,
    check_split,
    dataset_factory,
    random_split,
    stratified_split,
)
from mmzoo.errors import DatasetError, SpecError


def test_random_split_partitions_deterministically():
    fractions = {"train": 0.7, "val": 0.2, "test": 0.1}
    a = random_split(101, fractions, seed=3)
    b = random_split(101, fractions, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in fractions)
    assert [len(a[k]) for k in fractions] == [71, 20, 10]  # rounding keeps the total
    together = np.concatenate(list(a.values()))
    assert sorted(together.tolist()) == list(range(101))
    c = random_split(101, fractions, seed=4)
    assert not np.array_equal(a["train"], c["train"])


def test_random_split_is_shuffled_so_a_prefix_is_a_random_subset():
    part = random_split(1000, {"train": 1.0}, seed=0)["train"]
    assert not np.array_equal(part[:50], np.sort(part[:50]))


def test_stratified_split_keeps_class_balance_and_is_disjoint():
    labels = np.repeat(np.arange(4), 50)
    parts = stratified_split(labels, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    for name, size in (("train", 40), ("val", 5), ("test", 5)):
        assert np.bincount(labels[parts[name]], minlength=4).tolist() == [size] * 4
    assert len(set(np.concatenate(list(parts.values())).tolist())) == 200
    assert len(set(labels[parts["train"][:8]].tolist())) > 1  # classes interleaved, not sorted


@pytest.mark.parametrize(
    "fractions, message",
    [
        ({"train": 0.5, "val": 0.4}, "must sum to 1, got 0.9"),
        ({"train": 1.2, "val": -0.2}, "fractions['val'] must be a number > 0"),
        ([0.8, 0.2], "must be a mapping of split name to fraction"),
        ({"train": "0.5", "val": 0.5}, "fractions['train'] must be a number > 0"),
    ],
)
def test_bad_fractions(fractions, message):
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_fractions("demo", fractions)


def test_unknown_split_suggests_close_names():
    with pytest.raises(DatasetError) as info:
        check_split("demo", "valid", ["train", "val", "test"])
    expected = "demo: unknown split 'valid'; available splits: 'train', 'val', 'test'. Did you mean 'val'?"
    assert str(info.value) == expected
    with pytest.raises(DatasetError, match="split must be a string"):
        check_split("demo", 3, ["train"])


def test_limit_and_seed_checks():
    assert check_limit("demo", None) is None and check_limit("demo", 5) == 5
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(DatasetError, match="limit must be a positive integer"):
            check_limit("demo", bad)
    with pytest.raises(DatasetError, match="seed must be a non-negative integer"):
        check_seed("demo", -1)


class _Squares(ExampleDataset):
    name = "squares"

    def __init__(self, split: str = "train", *, n: int = 4) -> None:
        self.split, self.n = split, n

    def __len__(self) -> int:
        return self.n

    def _example(self, i: int) -> dict:
        return {"x": i * i, "target": i}


def test_indexing_rules():
    ds = _Squares()
    assert ds[-1] == {"x": 9, "target": 3}
    assert [ex["x"] for ex in ds] == [0, 1, 4, 9]
    with pytest.raises(IndexError, match="index 4 is out of range for split 'train' \\(4 examples\\)"):
        ds[4]
    with pytest.raises(TypeError, match="indices must be integers"):
        ds["0"]
    assert repr(ds) == "<_Squares 'squares' split='train' examples=4>"


def test_dataset_factory_rejects_unknown_params_with_suggestion():
    make = dataset_factory("squares")(_Squares)
    assert len(make("val", n=2)) == 2
    with pytest.raises(SpecError) as info:
        make(split="train", nn=3)
    assert str(info.value) == "squares.nn: unknown parameter; _Squares accepts split, n. Did you mean 'n'?"
    with pytest.raises(SpecError, match=r"squares\.n: expected int, got 'two'"):
        make(n="two")


def test_an_unknown_dataset_parameter_is_one_error_type_however_the_factory_is_reached():
    """Regression: create_dataset raised SpecError but the factory called directly raised DatasetError."""
    import mmzoo
    from mmzoo.data.tabular import sklearn_digits

    with pytest.raises(SpecError, match=r"dataset 'sklearn-digits'\.sede: unknown parameter.*Did you mean 'seed'"):
        mmzoo.create_dataset("sklearn-digits", sede=1)
    with pytest.raises(SpecError, match=r"sklearn-digits\.sede: unknown parameter.*Did you mean 'seed'"):
        sklearn_digits(sede=1)

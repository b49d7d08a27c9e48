"""dataset.labels, and matching a dataset's targets to a model's labels by name."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import Subset

import mmzoo
from mmzoo.data.labels import RelabelledDataset, align_targets, dataset_labels
from mmzoo.errors import DatasetError


class Listed:
    """A plugin-style dataset: a list of examples and, maybe, a ``labels`` attribute."""

    def __init__(self, examples, labels=None):
        self.examples = examples
        if labels is not None:
            self.labels = labels

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]


def test_class_indices_are_renumbered_through_the_names():
    data = Listed([{"x": 1, "target": 0}, {"x": 2, "target": 1}], labels=["coffee", "rocket"])
    aligned = align_targets(data, ("astronaut", "cat", "coffee", "rocket"), "data.eval")
    assert isinstance(aligned, RelabelledDataset) and aligned.labels == ("astronaut", "cat", "coffee", "rocket")
    assert [aligned[i]["target"] for i in range(2)] == [2, 3]
    assert aligned[0]["x"] == 1 and data[0]["target"] == 0  # the wrapped dataset is not changed
    assert dataset_labels(aligned) == ("astronaut", "cat", "coffee", "rocket")


def test_multi_hot_vectors_are_laid_out_over_the_models_labels():
    data = Listed([{"target": [1.0, 0.0]}, {"target": np.array([1.0, 1.0])}], labels=["dog", "bird"])
    aligned = align_targets(data, ("bird", "cat", "dog"))
    assert aligned[0]["target"] == [0.0, 0.0, 1.0] and aligned[1]["target"] == [1.0, 0.0, 1.0]


def test_no_names_on_either_side_or_the_same_names_change_nothing():
    named = Listed([{"target": 0}], labels=["a", "b"])
    plain = Listed([{"target": 0}])
    assert align_targets(named, ("a", "b")) is named
    assert align_targets(named, None) is named
    assert align_targets(plain, ("a", "b")) is plain


def test_a_manifest_of_some_classes_is_read_in_its_own_order_and_mapped_by_name(tmp_path):
    path = tmp_path / "part.csv"
    path.write_text("x,target\n1,rocket\n2,coffee\n3,rocket\n", encoding="utf-8")
    part = mmzoo.create_dataset("manifest", path=str(path))
    assert part.labels == ("coffee", "rocket") and [part[i]["target"] for i in range(3)] == [1, 0, 1]
    aligned = align_targets(Subset(part, [0, 1]), ("astronaut", "cat", "coffee", "rocket"), "--data")
    assert [aligned[i]["target"] for i in range(2)] == [3, 2]


def test_relabelled_examples_keep_where_their_values_came_from(tmp_path):
    from mmzoo.data.origin import origin_of

    path = tmp_path / "part.csv"
    path.write_text("x,target\n1,rocket\n2,coffee\n", encoding="utf-8")
    aligned = align_targets(mmzoo.create_dataset("manifest", path=str(path)), ("coffee", "ham", "rocket"))
    assert aligned[0]["target"] == 2
    assert origin_of(aligned[0], "target") == origin_of(aligned.dataset[0], "target") is not None


def test_a_regression_manifest_names_its_value_after_the_target_column(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("x,price\n1,2.5\n2,3.5\n", encoding="utf-8")
    assert mmzoo.create_dataset("manifest", path=str(path), target="price").labels == ("price",)


def test_a_labels_attribute_that_is_not_names_is_ignored_and_repeated_names_are_an_error():
    per_example = Listed([{"target": 0}], labels=np.array([0, 1, 1]))  # per-example targets, not class names
    assert dataset_labels(per_example) is None
    assert align_targets(per_example, ("a", "b")) is per_example
    with pytest.raises(DatasetError, match=r"data.train: its 'labels' attribute names the targets by index and must "
                                           r"not repeat a name; 'cat' repeat"):
        dataset_labels(Listed([], labels=["cat", "dog", "cat"]), "data.train")


def test_an_unknown_name_says_which_and_what_the_model_knows():
    data = Listed([{"target": 0}], labels=["coffe", "rocket"])
    with pytest.raises(DatasetError) as exc:
        align_targets(data, ("coffee", "rocket"), "--data")
    message = str(exc.value)
    assert message.startswith("--data: the data has label(s) 'coffe' that the model does not know")
    assert "the model's labels are 'coffee', 'rocket'" in message and "Did you mean 'coffee'?" in message


# ---- the conformance check of datasets and their labels -------------------------------------------


def test_every_builtin_dataset_passes_the_dataset_check(tmp_path, mmzoo_check_dataset):
    from mmzoo.testing import check_dataset
    from tests.data.support import SMALL_BANK

    assert mmzoo_check_dataset is check_dataset
    check_dataset("sklearn-digits", {"limit": 8})
    check_dataset("digit-captions", {"limit": 8}, split="test")
    check_dataset("av-digits", {"limit": 4, **SMALL_BANK}, split="test")
    path = tmp_path / "tags.jsonl"
    path.write_text('{"x": 1, "target": "cat;dog"}\n{"x": 2, "target": "dog"}\n', encoding="utf-8")
    assert check_dataset("manifest", {"path": str(path), "target_type": "list"}).labels == ("cat", "dog")


@pytest.mark.parametrize(("data", "message"), [
    (Listed([{"target": 3}], labels=["a", "b", "c"]), r"item 0: target 3 is not an index into the 3 labels"),
    (Listed([{"target": [1.0, 0.0]}], labels=["a", "b", "c"]), "one value per label \\(3\\), got 2"),
    (Listed(["not a dict"]), "item 0 must be an example dict"),
    (Listed([{"target": 0}], labels=[]), "labels is empty"),
])
def test_the_dataset_check_catches_labels_that_do_not_fit(data, message):
    from mmzoo.testing import check_dataset

    with pytest.raises(AssertionError, match=message):
        check_dataset(data)

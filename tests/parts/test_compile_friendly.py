"""Under torch.compile the classification loss stays one graph; eager keeps its located errors."""

from __future__ import annotations

import pytest
import torch

from mmzoo.errors import DatasetError
from mmzoo.parts.heads import ClassificationHead


def test_classification_loss_traces_without_a_graph_break():
    head = ClassificationHead(4, num_classes=3)
    logits = head(torch.randn(5, 4))
    explained = torch._dynamo.explain(head.loss)(logits, torch.tensor([0, 2, 1, 1, 0]))
    assert explained.graph_break_count == 0
    assert explained.graph_count == 1


@pytest.mark.parametrize("target", [[0, 3], [-1, 0]])
def test_eager_loss_still_rejects_out_of_range_classes(target):
    head = ClassificationHead(4, num_classes=3)
    with pytest.raises(DatasetError, match="is out of range for num_classes=3"):
        head.loss(torch.randn(2, 3), torch.tensor(target))


def test_float_class_indices_are_checked_in_one_piece():
    head = ClassificationHead(4, num_classes=3)
    loss = head.loss(torch.zeros(2, 3), torch.tensor([0.0, 2.0]))
    assert torch.isclose(loss, torch.log(torch.tensor(3.0)))
    with pytest.raises(DatasetError, match="target class 7 is out of range"):
        head.loss(torch.zeros(2, 3), torch.tensor([0.0, 7.0]))

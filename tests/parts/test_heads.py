"""Builtin heads: losses, metric correctness, exact merging across batches, target handling, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, mean_absolute_error, mean_squared_error, r2_score

from mmzoo.errors import BuildError, DatasetError
from mmzoo.parts.heads import ClassificationHead, ContrastiveHead, MultilabelHead, RegressionHead


def merged(head, outputs, target, splits):
    """Metrics from metric_sums totalled over batches, as a trainer (and all-reduce) does."""
    totals: dict[str, float] = {}
    start = 0
    for size in splits:
        part = slice(start, start + size)
        for name, value in head.metric_sums(outputs[part], target[part]).items():
            totals[name] = totals.get(name, 0.0) + value
        start += size
    return head.metrics_from_sums(totals)


# ---- classification ----------------------------------------------------------------------------------


def test_classification_accuracy_and_top_k_on_known_logits():
    head = ClassificationHead(4, num_classes=4, top_k=[2, 3, 4, 9])
    assert head.top_k == [2, 3]  # k >= num_classes would always be 1: dropped
    logits = torch.tensor([[4.0, 3, 2, 1], [1, 4, 3, 2], [1, 2, 4, 3], [4, 1, 2, 3]])
    target = torch.tensor([0, 2, 3, 1])  # ranks of the true class: 1, 2, 2, 4
    metrics = head.metrics(logits, target)
    assert metrics == {"accuracy": 0.25, "top2_accuracy": 0.75, "top3_accuracy": 0.75}
    assert all(type(v) is float for v in metrics.values())
    assert merged(head, logits, target, [1, 3]) == metrics


def test_classification_loss_is_cross_entropy_with_optional_label_smoothing():
    logits = torch.randn(6, 3, requires_grad=True)
    target = torch.tensor([0, 1, 2, 2, 1, 0])
    plain = ClassificationHead(3, num_classes=3).loss(logits, target)
    assert torch.allclose(plain, F.cross_entropy(logits, target))
    smooth = ClassificationHead(3, num_classes=3, label_smoothing=0.2).loss(logits, target)
    assert torch.allclose(smooth, F.cross_entropy(logits, target, label_smoothing=0.2))
    assert not torch.allclose(plain, smooth)


def test_classification_accepts_probability_targets():
    head = ClassificationHead(3, num_classes=3)
    logits = torch.randn(2, 3)
    probs = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.1, 0.9]])
    assert torch.allclose(head.loss(logits, probs), F.cross_entropy(logits, probs))
    assert head.metrics(torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]), probs)["accuracy"] == 0.5


def test_classification_collates_class_indices():
    head = ClassificationHead(3, num_classes=3)
    target = head.collate_targets([0, np.int64(2), torch.tensor(1), 2.0])
    assert target.dtype == torch.long and target.tolist() == [0, 2, 1, 2]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([0, 3], "target class 3 is out of range for num_classes=3 \\(valid: 0..2\\)"),
        ([-1, 0], "target class -1 is out of range"),
        ([0.5, 1], "targets must be integer class indices"),
        (["cat", "dog"], "targets must be integer class indices|targets must be numbers"),
    ],
)
def test_classification_rejects_bad_targets(targets, message):
    with pytest.raises(DatasetError, match="head 'classification': " + message):
        ClassificationHead(3, num_classes=3).collate_targets(targets)


def test_classification_loss_checks_targets_too():
    head = ClassificationHead(3, num_classes=3)
    with pytest.raises(DatasetError, match="target class 5 is out of range"):
        head.loss(torch.randn(2, 3), torch.tensor([0, 5]))
    with pytest.raises(DatasetError, match="2 targets for a batch of 3"):
        head.loss(torch.randn(3, 3), torch.tensor([0, 1]))
    with pytest.raises(DatasetError, match="needs a 'target' in the batch"):
        head.loss(torch.randn(3, 3), None)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"num_classes": 1}, "'num_classes' must be at least 2, got 1; use 'regression' or 'multilabel'"),
        ({"num_classes": 3, "label_smoothing": 1.0}, r"'label_smoothing' must be a number in \[0, 1\)"),
        ({"num_classes": "ten"}, "'num_classes' must be a positive integer, got 'ten'"),
    ],
)
def test_classification_rejects_bad_params(params, message):
    with pytest.raises(BuildError, match="head 'classification': " + message):
        ClassificationHead(4, **params)


def test_tensor_heads_reject_dicts_and_wrong_widths():
    head = ClassificationHead(4, num_classes=3)
    with pytest.raises(BuildError, match="takes one fused tensor but the fusion returned a dict"):
        head({"a": torch.zeros(1, 4)})
    with pytest.raises(BuildError, match=r"expected fused features \[batch, 4\], got \[2, 5\]"):
        head(torch.zeros(2, 5))


# ---- multilabel --------------------------------------------------------------------------------------


def test_multilabel_metrics_match_sklearn_and_merge_exactly():
    torch.manual_seed(0)
    head = MultilabelHead(4, num_labels=5, thresholds=[0.3, 0.5, 0.7])
    logits = torch.randn(40, 5) * 2
    target = (torch.rand(40, 5) < 0.4).float()
    metrics = head.metrics(logits, target)
    probs = logits.sigmoid().numpy()
    for t in (0.3, 0.5, 0.7):
        assert metrics[f"f1@{t:g}"] == pytest.approx(f1_score(target.numpy(), probs >= t, average="micro"))
    assert metrics["f1"] == metrics["f1@0.5"]
    predicted = probs >= 0.5
    assert metrics["exact_match"] == pytest.approx(float((predicted == target.numpy()).all(axis=1).mean()))
    assert metrics["label_accuracy"] == pytest.approx(float((predicted == target.numpy()).mean()))
    # Micro F1 is not a mean over examples: merging batch F1s would be wrong, merging sums is exact.
    assert merged(head, logits, target, [7, 20, 13]) == pytest.approx(metrics)


def test_multilabel_empty_ratios_are_perfect_only_when_nothing_could_go_wrong():
    head = MultilabelHead(2, num_labels=3)
    none = torch.zeros(2, 3)
    metrics = head.metrics(torch.full((2, 3), -5.0), none)
    assert metrics["f1"] == 1.0 and metrics["precision"] == 1.0 and metrics["recall"] == 1.0
    missed = head.metrics(torch.full((2, 3), -5.0), torch.ones(2, 3))
    assert missed["f1"] == 0.0 and missed["precision"] == 0.0 and missed["recall"] == 0.0


def test_multilabel_loss_is_bce_with_optional_pos_weight():
    logits, target = torch.randn(4, 3), (torch.rand(4, 3) > 0.5).float()
    assert torch.allclose(
        MultilabelHead(2, num_labels=3).loss(logits, target),
        F.binary_cross_entropy_with_logits(logits, target),
    )
    weighted = MultilabelHead(2, num_labels=3, pos_weight=[1.0, 2.0, 3.0])
    expected = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(weighted.loss(logits, target), expected)


def test_multilabel_targets():
    head = MultilabelHead(2, num_labels=3)
    assert head.collate_targets([[0, 1, 1], np.array([1, 0, 0])]).dtype == torch.float32
    with pytest.raises(DatasetError, match=r"multi-hot \[batch, 3\], got shape \[2, 2\]"):
        head.loss(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(DatasetError, match=r"target values must lie in \[0, 1\]"):
        head.loss(torch.zeros(1, 3), torch.tensor([[0.0, 2.0, 1.0]]))
    with pytest.raises(BuildError, match="'pos_weight' must be positive"):
        MultilabelHead(2, num_labels=3, pos_weight=0)
    with pytest.raises(BuildError, match=r"'threshold' must be a number in \[0, 1\]"):
        MultilabelHead(2, num_labels=3, threshold=1.5)


# ---- regression --------------------------------------------------------------------------------------


def test_regression_metrics_match_sklearn_and_merge_exactly():
    torch.manual_seed(0)
    head = RegressionHead(4, num_outputs=2)
    outputs, target = torch.randn(30, 2), torch.randn(30, 2) * torch.tensor([1.0, 10.0])
    metrics = head.metrics(outputs, target)
    y, p = target.numpy(), outputs.numpy()
    assert metrics["mse"] == pytest.approx(mean_squared_error(y, p), rel=1e-5)
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-5)
    assert metrics["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, p)), rel=1e-5)
    assert metrics["r2"] == pytest.approx(r2_score(y, p), rel=1e-5)
    assert merged(head, outputs, target, [3, 17, 10]) == pytest.approx(metrics)
    assert torch.allclose(head.loss(outputs, target), F.mse_loss(outputs, target))


def test_regression_single_output_takes_plain_numbers_and_skips_r2_without_variance():
    head = RegressionHead(4)
    target = head.collate_targets([1.0, 2, np.float32(3)])
    assert target.shape == (3, 1) and target.dtype == torch.float32
    outputs = torch.tensor([[1.0], [2.0], [4.0]])
    assert torch.allclose(head.loss(outputs, torch.tensor([1.0, 2.0, 3.0])), torch.tensor(1 / 3))
    assert "r2" not in head.metrics(outputs, torch.ones(3, 1))
    with pytest.raises(DatasetError, match=r"1 value\(s\) per example, got shape \[3, 2\]"):
        head.loss(outputs, torch.zeros(3, 2))


# ---- contrastive -------------------------------------------------------------------------------------


def embeddings(batch=8, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=g)


def test_contrastive_aligned_pairs_are_retrieved_and_score_a_lower_loss_than_shuffled():
    head = ContrastiveHead(6)
    image = embeddings()
    aligned = head({"image": image, "text": image * 2.0})  # same directions: cosine 1 on the diagonal
    shuffled = head({"image": image, "text": image.roll(1, dims=0)})
    metrics = head.metrics(aligned, None)
    assert metrics["image_to_text_recall@1"] == 1.0 and metrics["text_to_image_recall@1"] == 1.0
    assert metrics["recall@1"] == 1.0 and metrics["recall@5"] == 1.0
    assert head.metrics(shuffled, None)["recall@1"] < 0.5
    assert head.loss(aligned) < head.loss(shuffled)


def test_contrastive_loss_is_the_symmetric_info_nce():
    head = ContrastiveHead(6, temperature=0.1)
    a, b = embeddings(seed=1), embeddings(seed=2)
    logits = head({"a": a, "b": b})
    expected_logits = 10.0 * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()
    assert torch.allclose(logits, expected_logits, atol=1e-4)
    labels = torch.arange(8)
    expected = (F.cross_entropy(expected_logits, labels) + F.cross_entropy(expected_logits.t(), labels)) / 2
    assert torch.allclose(head.loss(logits, None), expected, atol=1e-5)


def test_contrastive_target_ids_make_same_id_pairs_positive():
    head = ContrastiveHead(6)
    a = embeddings(4)
    logits = head({"a": a, "b": a.roll(2, dims=0)})  # example i matches i+2 (mod 4)
    same_class = torch.tensor([0, 1, 0, 1])  # ...which has the same id
    assert head.metrics(logits, same_class)["recall@1"] == 1.0
    assert head.metrics(logits, None)["recall@1"] == 0.0
    assert head.loss(logits, same_class) < head.loss(logits, None)


def test_contrastive_temperature_is_learned_in_log_space_and_clamped():
    head = ContrastiveHead(6, temperature=0.07, max_logit_scale=50.0)
    assert isinstance(head.log_logit_scale, torch.nn.Parameter)
    assert head.logit_scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        head.log_logit_scale.fill_(10.0)
    assert head.logit_scale().item() == pytest.approx(50.0, rel=1e-5)
    with torch.no_grad():
        head.log_logit_scale.fill_(-3.0)
    assert head.logit_scale().item() == pytest.approx(1.0)
    fixed = ContrastiveHead(6, learn_temperature=False)
    assert not list(fixed.parameters()) and "log_logit_scale" in fixed.state_dict()


def test_contrastive_contract_attributes():
    assert ContrastiveHead.input_kind == "dict" and ContrastiveHead.requires_target is False
    assert ContrastiveHead.metrics_within_batch is True


def test_contrastive_pair_selection():
    three = {k: embeddings(seed=i) for i, k in enumerate("xyz")}
    with pytest.raises(BuildError, match=r"gave 3 embeddings \(\['x', 'y', 'z'\]\); set 'pair'"):
        ContrastiveHead(6)(three)
    head = ContrastiveHead(6, pair=["z", "x"])
    assert torch.allclose(head(three), ContrastiveHead(6)({"z": three["z"], "x": three["x"]}))
    assert "z_to_x_recall@1" in head.metrics(head(three), None)
    with pytest.raises(BuildError, match=r"'pair' names \['q'\], not among the fused keys"):
        ContrastiveHead(6, pair=["x", "q"])(three)


@pytest.mark.parametrize(
    ("params", "fused", "message"),
    [
        ({"pair": ["a", "a"]}, None, "'pair' must name two different batch keys"),
        ({"temperature": 0.001}, None, r"'temperature' must be in \[1/max_logit_scale, 1\]"),
        ({"max_logit_scale": 1}, None, "'max_logit_scale' must be a number > 1"),
        ({}, torch.zeros(2, 6), "takes a dict of embeddings by batch key .* use fusion 'project'"),
        ({}, {"a": torch.zeros(2, 5), "b": torch.zeros(2, 5)}, r"embedding 'a' must be \[batch, 6\]"),
    ],
)
def test_contrastive_errors(params, fused, message):
    with pytest.raises(BuildError, match="head 'contrastive':? " + message):
        ContrastiveHead(6, **params)(fused)


# ---- fixed at build time -----------------------------------------------------------------------------


def test_contrastive_metric_names_are_known_before_any_forward():
    """A rank whose evaluation shard is empty never runs the head, yet turns every rank's summed hits
    into metrics: the names must come from the build (pair, or the fusion's keys), not a forward."""
    ran = ContrastiveHead(6)
    ran.bind_input_keys(("image", "text"))
    sums = ran.metric_sums(ran({"image": embeddings(), "text": embeddings(seed=1)}), None)
    idle = ContrastiveHead(6)
    idle.bind_input_keys(("image", "text"))
    assert idle.names == ("image", "text")
    assert idle.metrics_from_sums(sums) == ran.metrics_from_sums(sums)
    assert "image_to_text_recall@1" in idle.metrics_from_sums(sums)
    paired = ContrastiveHead(6, pair=["text", "image"])
    assert "text_to_image_recall@5" in paired.metrics_from_sums(sums)
    with pytest.raises(BuildError, match="the pair of batch keys is not known yet"):
        ContrastiveHead(6).metrics_from_sums(sums)  # neither built through mmzoo nor given 'pair'


def test_contrastive_pair_mistakes_are_found_when_the_keys_are_bound():
    with pytest.raises(BuildError, match=r"the fusion gave 3 embeddings \(\['x', 'y', 'z'\]\); set 'pair'"):
        ContrastiveHead(6).bind_input_keys(("x", "y", "z"))
    with pytest.raises(BuildError, match=r"'pair' names \['q'\], not among the fused keys \['x', 'y'\]"):
        ContrastiveHead(6, pair=["x", "q"]).bind_input_keys(("x", "y"))
    head = ContrastiveHead(6)
    head.bind_input_keys(("x", "y"))
    with pytest.raises(BuildError, match=r"expected the embeddings \['x', 'y'\] .* got \['a', 'b'\]"):
        head({"a": embeddings(), "b": embeddings()})


@pytest.mark.parametrize(
    ("head", "outputs", "target"),
    [
        (ClassificationHead(4, num_classes=3), torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])),
        (MultilabelHead(4, num_labels=3), torch.randn(5, 3), torch.tensor([[1.0, 0, 1]] * 5)),
        (RegressionHead(4, num_outputs=2), torch.randn(5, 2), torch.randn(5, 2)),
    ],
    ids=["classification", "multilabel", "regression"],
)
def test_tensor_heads_name_their_metrics_without_running(head, outputs, target):
    sums = head.metric_sums(outputs, target)
    fresh = type(head)(4, **{k: getattr(head, k) for k in ("num_classes", "num_labels", "num_outputs")
                             if hasattr(head, k)})
    assert fresh.metrics_from_sums(sums) == head.metrics_from_sums(sums)


# ---- the conformance kit checks both optional hooks ----------------------------------------------------


class _NamedByForward(ClassificationHead):
    """Names its metrics after the first batch's size: a rank that never ran a batch could not name them."""

    part_name = "named-by-forward"

    def forward(self, fused):
        self.seen = fused.shape[0]
        return super().forward(fused)

    def metrics_from_sums(self, sums):
        return {f"accuracy_{getattr(self, 'seen', 0)}": sums["correct"] / sums["count"]}


class _ContextAware(ClassificationHead):
    """Keeps the distributed context; ``scale_by_world`` makes its loss depend on being told one."""

    part_name = "context-aware"

    def __init__(self, input_dim, num_classes=3, scale_by_world=False):
        super().__init__(input_dim, num_classes)
        self.scale_by_world, self.context = scale_by_world, None

    def bind_distributed(self, context):
        self.context = context

    def loss(self, outputs, target):
        loss = super().loss(outputs, target)
        return loss * 2 if self.scale_by_world and self.context is not None else loss


def test_the_kit_requires_metric_names_fixed_at_build_and_checks_bind_distributed():
    from mmzoo.testing import check_head

    target = [0, 1, 2, 0, 1, 2]
    check_head(ClassificationHead, params={"num_classes": 3}, target=target)
    check_head(ContrastiveHead, keys=("image", "text"))  # names bound from the keys, as the builder does
    with pytest.raises(AssertionError, match=r"names must be fixed at build, not by forward\): metric names differ"):
        check_head(_NamedByForward, params={"num_classes": 3}, target=target)
    check_head(_ContextAware, target=target)
    with pytest.raises(AssertionError, match=r"loss with bind_distributed\(world of one\) vs without"):
        check_head(_ContextAware, params={"scale_by_world": True}, target=target)

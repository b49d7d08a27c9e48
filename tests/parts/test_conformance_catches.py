"""The conformance kit fails, with a precise message, on parts that break the contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmzoo.outputs import EncoderOutput
from mmzoo.parts.encoders.byte_gru import ByteGRUEncoder
from mmzoo.parts.encoders.mlp import MLPEncoder
from mmzoo.parts.fusions import ConcatFusion
from mmzoo.parts.heads import ClassificationHead, ContrastiveHead
from mmzoo.testing import check_encoder, check_fusion, check_head, default_examples


class VectorEncoder(nn.Module):
    """A correct minimal encoder; the broken ones below change one thing each."""

    modality = "vector"

    def __init__(self, in_dim: int = 4, output_dim: int = 6):
        super().__init__()
        self.in_dim, self.output_dim = in_dim, output_dim
        self.linear = nn.Linear(in_dim, output_dim)

    def preprocess(self, examples):
        return torch.as_tensor([list(map(float, e)) for e in examples])

    def forward(self, inputs):
        return self.linear(inputs)


class DishonestWidth(VectorEncoder):
    def __init__(self):
        super().__init__(output_dim=6)
        self.output_dim = 8


class UnusedParameter(VectorEncoder):
    def __init__(self):
        super().__init__()
        self.extra = nn.Linear(3, 3)


class DetachedOutput(VectorEncoder):
    def forward(self, inputs):
        return self.linear(inputs).detach()


class StateOutsideStateDict(VectorEncoder):
    def __init__(self):
        super().__init__()
        self.register_buffer("offset", torch.randn(6), persistent=False)

    def forward(self, inputs):
        return self.linear(inputs) + self.offset


class BatchStatistics(VectorEncoder):
    """Normalises with the batch's statistics: an example's features depend on its batch-mates."""

    def forward(self, inputs):
        out = self.linear(inputs)
        return out - out.mean(dim=0, keepdim=True)


class IntMask(VectorEncoder):
    def forward(self, inputs):
        pooled = self.linear(inputs)
        return EncoderOutput(pooled, pooled.unsqueeze(1), torch.ones(len(inputs), 1, dtype=torch.long))


class PaddingLeaksIntoPool(ByteGRUEncoder):
    """Mean over all positions, padding included."""

    def forward(self, inputs):
        out = super().forward(inputs)
        return EncoderOutput(out.tokens.mean(dim=1), out.tokens, out.mask)


class TokenOnlyLayer(VectorEncoder):
    """Tokens pass through a layer that the pooled vector skips."""

    def __init__(self):
        super().__init__()
        self.token_proj = nn.Linear(6, 6)

    def forward(self, inputs):
        pooled = self.linear(inputs)
        tokens = self.token_proj(pooled).unsqueeze(1)
        return EncoderOutput(pooled, tokens, torch.ones(len(inputs), 1, dtype=torch.bool))


SMALL_GRU = {"embed_dim": 4, "hidden_dim": 4, "output_dim": 4}


@pytest.mark.parametrize(
    ("factory", "params", "message"),
    [
        (DishonestWidth, None, r"pooled output has shape \[3, 6\], expected \[3, 8\]"),
        (UnusedParameter, None, r"no gradient reached .*\['extra.weight', 'extra.bias'\]"),
        (DetachedOutput, None, r"the output does not require grad.*\['linear.weight', 'linear.bias'\]"),
        (StateOutsideStateDict, None, "some state lives outside state_dict"),
        (BatchStatistics, None, "alone vs. inside the batch"),
        (IntMask, None, "mask must be a bool tensor"),
        (PaddingLeaksIntoPool, SMALL_GRU, "alone vs. inside the batch"),
        (
            TokenOnlyLayer,
            None,
            r"\['token_proj.weight', 'token_proj.bias'\] get a gradient only through the tokens",
        ),
    ],
)
def test_kit_rejects_broken_encoders(factory, params, message):
    examples = default_examples("text") if factory is PaddingLeaksIntoPool else None
    with pytest.raises(AssertionError, match=message):
        check_encoder(factory, params, examples)


def test_kit_accepts_the_correct_reference_encoder_and_allows_declared_unused_parameters():
    check_encoder(VectorEncoder)
    check_encoder(UnusedParameter, allow_no_grad=["extra.*"])


def test_kit_rejects_an_encoder_whose_output_dim_is_not_an_int():
    class Floaty(VectorEncoder):
        output_dim = 6.0

        def __init__(self):
            nn.Module.__init__(self)
            self.in_dim, self.linear = 4, nn.Linear(4, 6)

    with pytest.raises(AssertionError, match="output_dim must be a positive int, got 6.0"):
        check_encoder(Floaty)


def test_kit_needs_examples_for_an_unknown_modality():
    class Mystery(VectorEncoder):
        modality = None

    with pytest.raises(AssertionError, match="pass examples= or modality="):
        check_encoder(Mystery)
    with pytest.raises(AssertionError, match="no default examples for modality 'smell'"):
        check_encoder(Mystery, modality="smell")
    check_encoder(Mystery, examples=[[1, 2, 3, 4], [0, 0, 0, 1]])


class PlainConcat(ConcatFusion):
    """A concat written before missing modalities: forward(features) only, no absent embeddings."""

    handles_missing = False

    def __init__(self, input_dims, **params):
        super().__init__(input_dims, **params)
        del self.absent

    def forward(self, features):
        return self.proj(torch.cat([features[k].pooled if hasattr(features[k], "pooled") else features[k]
                                    for k in self.keys], dim=-1))


class MaskIgnoringFusion(PlainConcat):
    """Averages tokens over every position, padding included."""

    requires_tokens = True

    def forward(self, features):
        return torch.cat([features[k].tokens.mean(dim=1) for k in self.keys], dim=-1)


class OneModalityFusion(PlainConcat):
    """Claims to fuse everything but only looks at the first modality (zero-padded to width)."""

    def forward(self, features):
        first = features[self.keys[0]].pooled
        return F.pad(first, (0, self.output_dim - first.shape[1]))


class DictClaimingFusion(PlainConcat):
    output_kind = "dict"


class WiderThanDeclaredFusion(PlainConcat):
    def __init__(self, input_dims, **params):
        super().__init__(input_dims, **params)
        self.output_dim -= 1


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (MaskIgnoringFusion, "changing padded tokens .* changed the output; the mask is not respected"),
        (OneModalityFusion, "the output does not depend on modality 'b'"),
        (DictClaimingFusion, "output_kind 'dict' but forward returned Tensor"),
        (WiderThanDeclaredFusion, r"output has shape \[3, 7\], expected \[3, 6\]"),
    ],
)
def test_kit_rejects_broken_fusions(factory, message):
    with pytest.raises(AssertionError, match=message):
        check_fusion(factory, {"a": 3, "b": 4})


class NonScalarLoss(ClassificationHead):
    def loss(self, outputs, target):
        return F.cross_entropy(outputs, target, reduction="none")


class TensorMetrics(ClassificationHead):
    def metrics(self, outputs, target):
        return {"accuracy": (outputs.argmax(1) == target).float().mean()}


class UnmergeableSums(ClassificationHead):
    """Reports the batch accuracy as if it were a sum: merging batches gives nonsense."""

    def metric_sums(self, outputs, target):
        return {"accuracy": float((outputs.argmax(1) == target).float().mean())}

    def metrics_from_sums(self, sums):
        return {"accuracy": sums["accuracy"]}


class DetachedLoss(ClassificationHead):
    def loss(self, outputs, target):
        return F.cross_entropy(outputs.detach(), target)


TARGET = [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (NonScalarLoss, r"loss must be a 0-dim Tensor, got Tensor \[6\]"),
        (TensorMetrics, "metric 'accuracy' must be a plain float, got Tensor"),
        (UnmergeableSums, "two half batches, merged, vs the whole batch"),
        (DetachedLoss, "the loss does not require grad"),
    ],
)
def test_kit_rejects_broken_heads(factory, message):
    with pytest.raises(AssertionError, match=message):
        check_head(factory, 8, {"num_classes": 3}, target=TARGET)


def test_kit_accepts_heads_with_only_metrics_or_no_metrics_at_all():
    from mmzoo.parts.base import Head

    class Plain(Head):
        def __init__(self, input_dim):
            super().__init__()
            self.linear = nn.Linear(input_dim, 3)

        def forward(self, fused):
            return self.linear(fused)

        def loss(self, outputs, target):
            return F.cross_entropy(outputs, target)

    class WithMetrics(Plain):
        def metrics(self, outputs, target):
            return {"accuracy": float((outputs.argmax(1) == target).float().mean())}

    check_head(Plain, 8, target=TARGET)
    check_head(WithMetrics, 8, target=TARGET)


def test_kit_asks_for_a_target_when_the_head_needs_one():
    with pytest.raises(AssertionError, match="requires_target is True, so pass target="):
        check_head(ClassificationHead, 8, {"num_classes": 3})


def test_kit_resolves_registered_names_and_reports_unknown_ones():
    from mmzoo.errors import UnknownNameError

    encoder = check_encoder("mlp", {"in_dim": 3, "output_dim": 4})
    assert isinstance(encoder, MLPEncoder)
    with pytest.raises(UnknownNameError, match="cnnn"):
        check_encoder("cnnn")


def test_default_examples_cover_each_modality():
    images = default_examples("image", 4)
    assert len(images) == 4 and {type(i).__name__ for i in images} >= {"ndarray", "Image"}
    assert len({len(t) for t in default_examples("text")}) == 3
    assert len({len(a) for a in default_examples("audio")}) == 3
    assert all(v.shape == (7,) for v in default_examples("vector", in_dim=7))
    with pytest.raises(AssertionError, match="need in_dim"):
        default_examples("vector")


class ReadsMissingFusion(PlainConcat):
    """Declares handles_missing but concatenates the features whatever the masks say."""

    handles_missing = True

    def forward(self, features, present=None):
        return super().forward(features)


class NaNWhenMissingFusion(ConcatFusion):
    """Handles missing inputs, but divides by the number of present ones without guarding zero."""

    def forward(self, features, present=None):
        out = super().forward(features, present)
        if present is None:
            return out
        count = sum(mask.float() for mask in present.values()).unsqueeze(1)
        return out * (count / count)


class BatchAggregateRows(ContrastiveHead):
    """Rows that summarise the batch (its mean embedding) instead of one per example."""

    def metric_rows(self, fused, outputs, target):
        rows = super().metric_rows(fused, outputs, target)
        return {name: value.mean(dim=0, keepdim=True).expand_as(value) for name, value in rows.items()}


class RowsWithoutFinish(ContrastiveHead):
    metrics_from_rows = None


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (ReadsMissingFusion, r"with \['a'\] missing .* changing the features of the inputs an example lacks"),
        (NaNWhenMissingFusion, r"NaN or infinite values"),
    ],
)
def test_kit_rejects_fusions_that_break_the_missing_modality_promise(factory, message):
    with pytest.raises(AssertionError, match=message):
        check_fusion(factory, {"a": 3, "b": 4}, tokens=False)


def test_kit_checks_a_head_that_handles_missing_sides():
    class PairsEverything(ContrastiveHead):
        def forward(self, fused, present=None):
            return super().forward(fused)  # ignores which examples lack a side

    check_head(ContrastiveHead, 8)
    with pytest.raises(AssertionError, match="changing the missing side of incomplete examples changed the loss"):
        check_head(PairsEverything, 8)


class NamesAnUnusedEmbedding(ByteGRUEncoder):
    """Names an embedding layer for explanations that its forward never runs."""

    def __init__(self, **params):
        super().__init__(**params)
        self.spare = nn.Embedding(4, 4)

    def input_embeddings(self):
        return self.spare


class ShortTokenLabels(ByteGRUEncoder):
    """Gives one label fewer than there are token ids."""

    def token_labels(self, ids):
        return super().token_labels(ids)[1:]


class NamesItsEmbedding(ByteGRUEncoder):
    def input_embeddings(self):
        return self.embedding


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (NamesAnUnusedEmbedding, r"input_embeddings\(\) returned a module that forward.* never runs"),
        (ShortTokenLabels, r"token_labels\(ids\) gave \d+ labels for \d+ ids"),
    ],
)
def test_kit_rejects_broken_explanation_hooks(factory, message):
    with pytest.raises(AssertionError, match=message):
        check_encoder(factory, SMALL_GRU, allow_no_grad=["spare.*"])


def test_kit_accepts_an_encoder_that_names_its_embedding_layer():
    check_encoder(NamesItsEmbedding, SMALL_GRU)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (BatchAggregateRows, "metrics_from_rows of two half batches' rows, concatenated, vs the whole batch"),
        (RowsWithoutFinish, "metric_rows and metrics_from_rows come as a pair"),
    ],
)
def test_kit_rejects_broken_metric_rows(factory, message):
    with pytest.raises(AssertionError, match=message):
        check_head(factory, 6, {}, keys=("a", "b"), batch_size=8)


def vector_with_paths(in_dim: int = 4, output_dim: int = 6, weights_file: str | None = None):
    return VectorEncoder(in_dim, output_dim)


@pytest.mark.parametrize(("declared", "message"), [
    (("weights_fle",), r"path_params names \['weights_fle'\], which the factory does not take"),
    ("weights_file", "path_params must be a tuple of parameter names"),
    ((3,), "path_params must be a tuple of parameter names"),
])
def test_kit_rejects_a_path_params_declaration_naming_what_the_factory_does_not_take(monkeypatch, declared,
                                                                                    message):
    monkeypatch.setattr(vector_with_paths, "path_params", declared, raising=False)
    with pytest.raises(AssertionError, match=message):
        check_encoder(vector_with_paths)


def test_kit_accepts_a_path_params_declaration_of_real_parameters(monkeypatch):
    monkeypatch.setattr(vector_with_paths, "path_params", ("weights_file",), raising=False)
    check_encoder(vector_with_paths, examples=default_examples("vector", in_dim=4))

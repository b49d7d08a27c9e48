"""A gradient that is exactly zero at one point is not a part that ignores its parameters.

A zero-initialised last layer (a common choice for fine-tuning heads) gives a uniform softmax; with
balanced targets the cross-entropy gradient of its bias is then exactly zero, and every gradient before
that layer too. The kit must accept such parts and still reject a parameter the output really ignores.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmzoo.outputs import EncoderOutput
from mmzoo.testing import check_encoder, check_fusion, check_head

BALANCED = [0, 1, 0, 1, 0, 1]  # two classes, three each: exact in float, so the bias gradient is exactly 0


class ZeroInitHead(nn.Module):
    """hidden layer -> last layer initialised to zero (weights and bias)."""

    def __init__(self, input_dim: int, num_classes: int = 2):
        super().__init__()
        self.hidden = nn.Linear(input_dim, 16)
        self.last = nn.Linear(16, num_classes)
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)

    def forward(self, fused):
        return self.last(torch.tanh(self.hidden(fused)))

    def loss(self, outputs, target):
        return F.cross_entropy(outputs, target)

    def metrics(self, outputs, target):
        return {"accuracy": float((outputs.argmax(1) == target).float().mean())}


class SaturatedScaleHead(ZeroInitHead):
    """Its logit scale starts far above the clamp that caps it, so the scale never gets a gradient."""

    def __init__(self, input_dim: int, num_classes: int = 2):
        super().__init__(input_dim, num_classes)
        nn.init.normal_(self.last.weight)
        self.scale = nn.Parameter(torch.tensor(5.0))

    def forward(self, fused):
        return super().forward(fused) * self.scale.clamp(max=1.0)


def test_balanced_targets_give_the_zero_init_bias_an_exactly_zero_gradient():
    head = ZeroInitHead(8)
    fused = torch.randn(6, 8, requires_grad=True)
    head.loss(head(fused), torch.tensor(BALANCED)).backward()
    assert not head.last.bias.grad.any() and not head.hidden.weight.grad.any() and not fused.grad.any()


def test_check_head_accepts_a_zero_initialised_head_on_balanced_targets():
    check_head(ZeroInitHead, 8, target=torch.tensor(BALANCED))
    check_head(ZeroInitHead, 8, {"num_classes": 3}, target=torch.tensor([0, 1, 2, 0, 1, 2]))


def test_check_head_still_rejects_a_parameter_the_outputs_ignore():
    with pytest.raises(AssertionError, match=r"gradient of \['scale'\] is exactly zero .* nudged at random"):
        check_head(SaturatedScaleHead, 8, target=torch.tensor(BALANCED))


class ZeroInitEncoder(nn.Module):
    modality = "vector"

    def __init__(self, in_dim: int = 4, output_dim: int = 6):
        super().__init__()
        self.in_dim, self.output_dim = in_dim, output_dim
        self.hidden = nn.Linear(in_dim, 8)
        self.last = nn.Linear(8, output_dim)
        nn.init.zeros_(self.last.weight)

    def preprocess(self, examples):
        return torch.as_tensor([list(map(float, e)) for e in examples])

    def forward(self, inputs):
        return self.last(torch.tanh(self.hidden(inputs)))


class ZeroInitFusion(nn.Module):
    def __init__(self, input_dims, dim: int = 4):
        super().__init__()
        self.output_dim = dim
        self.hidden = nn.Linear(sum(input_dims.values()), 8)
        self.last = nn.Linear(8, dim)
        nn.init.zeros_(self.last.weight)

    def forward(self, features):
        pooled = [f.pooled if isinstance(f, EncoderOutput) else f for f in features.values()]
        return self.last(torch.tanh(self.hidden(torch.cat(pooled, dim=-1))))


def test_encoders_and_fusions_with_a_zero_initialised_last_layer_pass():
    check_encoder(ZeroInitEncoder)
    check_fusion(ZeroInitFusion, {"a": 3, "b": 5}, tokens=False)

"""Builtin fusions: combine the features of several encoders, keyed by batch key.

Each is built as ``Fusion(input_dims, **params)`` (``input_dims``: batch key -> encoder
``output_dim``) and, unless it says otherwise, returns ``Tensor[B, output_dim]``. Modalities are
processed in the order of ``input_dims``.

Every builtin fusion handles missing modalities (``handles_missing = True``): ``forward(features,
present=None)`` takes an optional ``{key: BoolTensor[B]}`` saying which examples have which input, and
an example's output never depends on the feature values of an input it lacks. ``concat`` and
``bilinear`` put a learned "absent" embedding in place of a missing input; ``sum``, ``gated``,
``attention`` and ``cross-attention`` leave it out (an example with no input at all is an error there;
``empty_output`` gives what they fuse from nothing, for explanations); ``film`` leaves a missing
condition's modulation out and puts a learned absent embedding in place of a missing target;
``project`` gives zeros for the missing side (the ``contrastive`` head pairs only complete examples).
See :mod:`mmzoo.missing`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmzoo.errors import BuildError, did_you_mean
from mmzoo.missing import require_some_input
from mmzoo.outputs import EncoderOutput
from mmzoo.parts._common import (
    check_input_dims,
    fraction,
    gather_features,
    keep_rows,
    masked_mean,
    optional_positive_int,
    positive_int,
    presence_masks,
    tokens_and_mask,
)
from mmzoo.parts.base import Fusion

Features = Mapping[str, EncoderOutput | Tensor]
Present = Mapping[str, Tensor] | None


class _KeyedFusion(Fusion):
    """Validates ``input_dims`` and gathers features by key for the builtin fusions."""

    part_name = ""
    min_modalities = 1
    handles_missing = True

    def __init__(self, input_dims: Mapping[str, int]) -> None:
        super().__init__()
        self.label = f"fusion '{self.part_name}'"
        self.input_dims = check_input_dims(self.label, input_dims, minimum=self.min_modalities)
        self.keys = list(self.input_dims)

    def _gather(self, features: Features, present: Present) -> tuple[dict[str, EncoderOutput], dict[str, Tensor]]:
        """Features and a presence mask per key (all true without ``present``)."""
        gathered = gather_features(self.label, features, self.keys)
        return gathered, presence_masks(self.label, present, self.keys, gathered[self.keys[0]].pooled)

    def _pooled(self, features: Features, present: Present = None) -> tuple[list[Tensor], list[Tensor]]:
        """Pooled features (zero in the rows that lack the input) and their presence masks, in key order."""
        gathered, masks = self._gather(features, present)
        return ([keep_rows(gathered[k].pooled, masks[k]) for k in self.keys], [masks[k] for k in self.keys])

    def _masked_out(self, features: Features, present: Present) -> tuple[list[Tensor], Tensor]:
        """For fusions that leave missing inputs out: pooled features and the stacked masks ``[B, M]``;
        an example with no input at all is an error."""
        pooled, masks = self._pooled(features, present)
        if present is not None:
            require_some_input(self.label, dict(zip(self.keys, masks)))
        return pooled, torch.stack(masks, dim=1)

    def _absent_embeddings(self) -> nn.ParameterDict:
        """One learned embedding per modality that stands in for it where an example lacks it."""
        return nn.ParameterDict({key: nn.Parameter(torch.zeros(d)) for key, d in self.input_dims.items()})

    def _with_absent(self, features: Features, present: Present) -> list[Tensor]:
        pooled, masks = self._pooled(features, present)
        return [torch.where(mask.unsqueeze(1), x, self.absent[key].to(x.dtype).expand_as(x))
                for key, x, mask in zip(self.keys, pooled, masks)]

    def _projections(self, dim: int) -> nn.ModuleDict:
        return nn.ModuleDict({key: nn.Linear(d, dim) for key, d in self.input_dims.items()})

    def _heads_divide(self, dim: int, heads: int) -> None:
        if dim % heads:
            raise BuildError(f"{self.label}: 'dim' ({dim}) must be divisible by 'heads' ({heads}).")


class ConcatFusion(_KeyedFusion):
    """Concatenate pooled features; with ``dim``, project the concatenation to ``dim``."""

    part_name = "concat"

    def __init__(self, input_dims: Mapping[str, int], dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__(input_dims)
        total = sum(self.input_dims.values())
        dim = optional_positive_int(self.label, "dim", dim)
        self.dropout = nn.Dropout(fraction(self.label, "dropout", dropout))
        self.proj = nn.Linear(total, dim) if dim else nn.Identity()
        self.output_dim = dim or total
        self.absent = self._absent_embeddings()

    def forward(self, features: Features, present: Present = None) -> Tensor:
        return self.proj(self.dropout(torch.cat(self._with_absent(features, present), dim=-1)))


class SumFusion(_KeyedFusion):
    """Project each modality to ``dim`` and add the projections."""

    part_name = "sum"

    def __init__(self, input_dims: Mapping[str, int], dim: int = 256, dropout: float = 0.0) -> None:
        super().__init__(input_dims)
        self.output_dim = positive_int(self.label, "dim", dim)
        self.proj = self._projections(self.output_dim)
        self.dropout = nn.Dropout(fraction(self.label, "dropout", dropout))

    def forward(self, features: Features, present: Present = None) -> Tensor:
        pooled, masks = self._masked_out(features, present)
        terms = [keep_rows(self.proj[k](x), masks[:, i]) for i, (k, x) in enumerate(zip(self.keys, pooled))]
        return self.dropout(sum(terms))

    def empty_output(self, batch_size: int) -> Tensor:
        """The sum over no modality: zeros."""
        return self.proj[self.keys[0]].weight.new_zeros(batch_size, self.output_dim)


class GatedFusion(_KeyedFusion):
    """Gated multimodal unit: ``sum_m z_m * tanh(W_m x_m)``.

    The gates ``z`` are computed from all modalities together and softmax-normalised across
    modalities for every output unit, so the model learns, per example and per feature, how much
    to trust each modality.
    """

    part_name = "gated"
    min_modalities = 2  # with one modality the softmax gate is constant 1 and learns nothing

    def __init__(self, input_dims: Mapping[str, int], dim: int = 256, dropout: float = 0.0) -> None:
        super().__init__(input_dims)
        self.output_dim = positive_int(self.label, "dim", dim)
        self.proj = self._projections(self.output_dim)
        self.gate = nn.Linear(sum(self.input_dims.values()), len(self.keys) * self.output_dim)
        self.dropout = nn.Dropout(fraction(self.label, "dropout", dropout))

    def gates(self, features: Features, present: Present = None) -> Tensor:
        """Gate values ``[B, modalities, dim]``: they sum to 1 over the modalities an example has, and
        are 0 for those it lacks."""
        pooled, masks = self._masked_out(features, present)
        return self._gates(pooled, masks)

    def _gates(self, pooled: list[Tensor], masks: Tensor) -> Tensor:
        logits = self.gate(torch.cat(pooled, dim=-1))
        logits = logits.view(logits.shape[0], len(self.keys), self.output_dim)
        return logits.masked_fill(~masks.unsqueeze(-1), float("-inf")).softmax(dim=1)

    def forward(self, features: Features, present: Present = None) -> Tensor:
        pooled, masks = self._masked_out(features, present)
        hidden = torch.stack([torch.tanh(self.proj[k](x)) for k, x in zip(self.keys, pooled)], dim=1)
        return self.dropout((self._gates(pooled, masks) * hidden).sum(dim=1))

    def empty_output(self, batch_size: int) -> Tensor:
        """The gated sum over no modality: zeros."""
        return self.gate.weight.new_zeros(batch_size, self.output_dim)


class AttentionFusion(_KeyedFusion):
    """Attention pooling over modality embeddings.

    Each modality is projected to ``dim`` and tagged with a learned modality embedding; a learned
    query attends over these ``M`` embeddings (multi-head), so the weight of each modality
    depends on the example.
    """

    part_name = "attention"

    def __init__(self, input_dims: Mapping[str, int], dim: int = 256, heads: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__(input_dims)
        self.output_dim = positive_int(self.label, "dim", dim)
        heads = positive_int(self.label, "heads", heads)
        self._heads_divide(self.output_dim, heads)
        dropout = fraction(self.label, "dropout", dropout)
        self.proj = self._projections(self.output_dim)
        self.modality_embedding = nn.Parameter(torch.randn(len(self.keys), self.output_dim) * 0.02)
        self.norm = nn.LayerNorm(self.output_dim)
        self.query = nn.Parameter(torch.randn(1, 1, self.output_dim) * 0.02)
        self.attention = nn.MultiheadAttention(self.output_dim, heads, dropout=dropout, batch_first=True)

    def forward(self, features: Features, present: Present = None) -> Tensor:
        pooled, masks = self._masked_out(features, present)
        tokens = torch.stack([self.proj[k](x) for k, x in zip(self.keys, pooled)], dim=1)
        tokens = self.norm(tokens + self.modality_embedding)
        query = self.query.expand(tokens.shape[0], -1, -1)
        ignore = None if present is None else ~masks  # a missing modality is never attended to
        return self.attention(query, tokens, tokens, key_padding_mask=ignore, need_weights=False)[0].squeeze(1)

    def empty_output(self, batch_size: int) -> Tensor:
        """Attention over no modality: an empty weighted sum of values (zero) through the output
        projection, i.e. its bias."""
        out = self.attention.out_proj
        bias = out.bias if out.bias is not None else out.weight.new_zeros(self.output_dim)
        return bias.expand(batch_size, -1)


class _CrossBlock(nn.Module):
    """Pre-norm block: queries attend to context tokens (padding masked), then a feed-forward."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(4 * dim, dim))

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        # An example whose context is all padding would give NaN; it attends to nothing instead.
        empty = ~context_mask.any(dim=1)
        safe_mask = context_mask.clone()
        safe_mask[empty, 0] = True
        kv = self.norm_kv(context)
        attended = self.attention(self.norm_q(x), kv, kv, key_padding_mask=~safe_mask, need_weights=False)[0]
        x = x + attended * (~empty).to(x.dtype).view(-1, 1, 1)
        return x + self.ff(self.norm_ff(x))


class CrossAttentionFusion(_KeyedFusion):
    """Token-level cross-attention between modalities.

    Each modality's tokens (projected to ``dim``, plus a learned modality embedding) attend to the
    tokens of all other modalities, ``layers`` times; padded tokens (``mask`` false) are never
    attended to and are left out of the per-modality masked means, which are concatenated and
    projected to ``dim``. An encoder that returns only a pooled vector counts as one token.
    """

    part_name = "cross-attention"
    requires_tokens = True
    min_modalities = 2

    def __init__(self, input_dims: Mapping[str, int], dim: int = 128, heads: int = 4, layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__(input_dims)
        self.output_dim = positive_int(self.label, "dim", dim)
        heads = positive_int(self.label, "heads", heads)
        self._heads_divide(self.output_dim, heads)
        layers = positive_int(self.label, "layers", layers)
        dropout = fraction(self.label, "dropout", dropout)
        self.proj = self._projections(self.output_dim)
        self.modality_embedding = nn.Parameter(torch.randn(len(self.keys), self.output_dim) * 0.02)
        self.layers = nn.ModuleList(
            nn.ModuleDict({key: _CrossBlock(self.output_dim, heads, dropout) for key in self.keys})
            for _ in range(layers)
        )
        self.out = nn.Sequential(nn.LayerNorm(len(self.keys) * self.output_dim),
                                 nn.Linear(len(self.keys) * self.output_dim, self.output_dim))

    def forward(self, features: Features, present: Present = None) -> Tensor:
        gathered, present_masks = self._gather(features, present)
        if present is not None:
            require_some_input(self.label, present_masks)
        tokens, masks = {}, {}
        for i, key in enumerate(self.keys):
            seq, mask = tokens_and_mask(gathered[key])
            mask = mask & present_masks[key].unsqueeze(1)  # a missing modality is all padding
            seq = torch.where(mask.unsqueeze(-1), seq, seq.new_zeros(()))
            tokens[key], masks[key] = self.proj[key](seq) + self.modality_embedding[i], mask
        for layer in self.layers:
            updated = {}
            for key in self.keys:
                others = [k for k in self.keys if k != key]
                context = torch.cat([tokens[k] for k in others], dim=1)
                context_mask = torch.cat([masks[k] for k in others], dim=1)
                updated[key] = layer[key](tokens[key], context, context_mask)
            tokens = updated
        pooled = [masked_mean(tokens[k], masks[k]) for k in self.keys]  # zero for a missing modality
        return self.out(torch.cat(pooled, dim=-1))

    def empty_output(self, batch_size: int) -> Tensor:
        """With no modality every per-modality mean is zero: the output layers applied to zeros."""
        zeros = self.modality_embedding.new_zeros(batch_size, len(self.keys) * self.output_dim)
        return self.out(zeros)


class BilinearFusion(_KeyedFusion):
    """Low-rank multimodal (tensor) fusion, as in LMF.

    Full tensor fusion maps the outer product of ``[x_m, 1]`` over modalities through a weight
    tensor, capturing every multiplicative interaction; LMF factorises that tensor into ``rank``
    modality-specific factors: ``out = sum_r w_r * prod_m ([x_m, 1] @ W_m[r]) + b``. The appended
    1 keeps the lower-order (unimodal and pairwise) terms.
    """

    part_name = "bilinear"
    min_modalities = 2

    def __init__(self, input_dims: Mapping[str, int], dim: int = 128, rank: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__(input_dims)
        self.output_dim = positive_int(self.label, "dim", dim)
        self.rank = positive_int(self.label, "rank", rank)
        self.dropout = nn.Dropout(fraction(self.label, "dropout", dropout))
        # Unit-variance factors keep the product of M of them on a sane scale at initialisation.
        self.factors = nn.ParameterDict({
            key: nn.Parameter(torch.randn(self.rank, d + 1, self.output_dim) / math.sqrt(d + 1))
            for key, d in self.input_dims.items()
        })
        self.rank_weights = nn.Parameter(torch.full((self.rank,), 1.0 / math.sqrt(self.rank)))
        self.bias = nn.Parameter(torch.zeros(self.output_dim))
        self.absent = self._absent_embeddings()

    def forward(self, features: Features, present: Present = None) -> Tensor:
        product = None
        for key, x in zip(self.keys, self._with_absent(features, present)):
            augmented = torch.cat([self.dropout(x), x.new_ones(x.shape[0], 1)], dim=-1)
            term = torch.einsum("bi,rid->rbd", augmented, self.factors[key])
            product = term if product is None else product * term
        return torch.einsum("r,rbd->bd", self.rank_weights, product) + self.bias


class FiLMFusion(_KeyedFusion):
    """Feature-wise linear modulation: the ``condition`` modality scales and shifts ``target``.

    ``out = (1 + gamma(c)) * h + beta(c)`` with ``h`` the target's pooled feature (projected to
    ``dim`` when given) and ``gamma``, ``beta`` linear in the condition's pooled feature. They
    start small, so the fusion starts close to the identity on the target. Without the condition
    an example gets the unmodulated target; without the target, a learned absent embedding stands
    in for it.
    """

    part_name = "film"
    min_modalities = 2

    def __init__(self, input_dims: Mapping[str, int], condition: str | None = None, target: str | None = None,
                 dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__(input_dims)
        self.condition = self._key("condition", condition)
        self.target = self._key("target", target)
        if self.condition == self.target:
            raise BuildError(f"{self.label}: 'condition' and 'target' must differ, both are {self.target!r}.")
        extra = [k for k in self.keys if k not in (self.condition, self.target)]
        if extra:
            raise BuildError(
                f"{self.label} fuses exactly two modalities (condition {self.condition!r}, target "
                f"{self.target!r}) but the model also has {extra}; use another fusion for more."
            )
        dim = optional_positive_int(self.label, "dim", dim)
        target_dim = self.input_dims[self.target]
        self.proj = nn.Linear(target_dim, dim) if dim else nn.Identity()
        self.output_dim = dim or target_dim
        self.dropout = nn.Dropout(fraction(self.label, "dropout", dropout))
        self.film = nn.Linear(self.input_dims[self.condition], 2 * self.output_dim)
        nn.init.normal_(self.film.weight, std=0.01)
        nn.init.zeros_(self.film.bias)
        self.absent_target = nn.Parameter(torch.zeros(target_dim))

    def _key(self, name: str, value: str | None) -> str:
        if value not in self.input_dims:
            if value is None:
                got = "is missing."
            else:
                got = f"is {value!r}, which is not an encoder key.{did_you_mean(str(value), self.keys)}"
            raise BuildError(
                f"{self.label}: '{name}' {got} Set it to one of the encoder keys {self.keys} "
                f"(e.g. condition: {self.keys[0]!r}, target: {self.keys[-1]!r})."
            )
        return value

    def modulation(self, features: Features, present: Present = None) -> tuple[Tensor, Tensor]:
        """``(gamma, beta)``, each ``[B, output_dim]``, computed from the condition (zero, i.e. no
        modulation, for an example that lacks the condition)."""
        return self._modulation(*self._pooled(features, present))

    def _modulation(self, pooled: list[Tensor], masks: list[Tensor]) -> tuple[Tensor, Tensor]:
        i = self.keys.index(self.condition)
        gamma, beta = keep_rows(self.film(pooled[i]), masks[i]).chunk(2, dim=-1)
        return gamma, beta

    def forward(self, features: Features, present: Present = None) -> Tensor:
        pooled, masks = self._pooled(features, present)
        i = self.keys.index(self.target)
        absent = self.absent_target.to(pooled[i].dtype).expand_as(pooled[i])
        target = torch.where(masks[i].unsqueeze(1), pooled[i], absent)
        gamma, beta = self._modulation(pooled, masks)
        return self.dropout((1.0 + gamma) * self.proj(target) + beta)


class ProjectFusion(_KeyedFusion):
    """Project each modality to ``dim`` and keep them apart: returns ``{key: Tensor[B, dim]}``.

    For heads that compare modalities (``contrastive``); ``output_kind = "dict"``. Given the features of
    some of its keys only, it returns their projections alone (``model.embed`` of one modality).
    """

    part_name = "project"
    output_kind = "dict"

    def __init__(self, input_dims: Mapping[str, int], dim: int = 128) -> None:
        super().__init__(input_dims)
        self.output_dim = positive_int(self.label, "dim", dim)
        self.proj = self._projections(self.output_dim)

    def forward(self, features: Features, present: Present = None) -> dict[str, Tensor]:
        if present is None:  # complete examples; embedding one key (model.embed) passes only its features
            keys = [k for k in self.keys if k in features] or self.keys  # none of them: the error names them all
            gathered = gather_features(self.label, features, keys)
            return {k: self.proj[k](gathered[k].pooled) for k in keys}
        pooled, masks = self._pooled(features, present)
        return {k: keep_rows(self.proj[k](x), m) for k, x, m in zip(self.keys, pooled, masks)}

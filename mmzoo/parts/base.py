"""Optional base classes for parts, and the attribute conventions every part follows.

Parts are duck-typed: a plugin's class needs only the attributes and methods below, not these
bases. The bases give the defaults, so subclassing them is the shortest way to be conformant.

Attribute conventions (read with ``getattr``; the default applies when a part does not set one):

- ``output_dim: int`` (encoders, fusions; required): the width ``D`` of what the part returns.
- ``modality: str`` (encoders; informative): "image", "text", "audio", "vector", ...
- ``provides_tokens: bool`` (encoders; unknown when absent, ``False`` on :class:`Encoder`):
  forward returns an ``EncoderOutput`` with ``tokens`` and ``mask``. The builder refuses a
  ``requires_tokens`` fusion over an encoder that says ``False``.
- ``requires_tokens: bool`` (fusions; default ``False``): the fusion works on token sequences.
  The builtin ``cross-attention`` still treats a pooled-only feature as a single token.
- ``output_kind: "tensor" | "dict"`` (fusions; default "tensor"): one ``Tensor[B, output_dim]``,
  or a dict of them by batch key (``project``).
- ``handles_missing: bool`` (fusions, and heads with ``input_kind`` "dict"; default ``False``): the part
  takes examples that lack some inputs: ``forward(features, present=None)`` (a head: ``forward(fused,
  present=None)``) with ``present`` a bool ``[B]`` mask per batch key, given only for incomplete batches;
  an example's output must not depend on the features of the inputs it lacks (see
  :mod:`mmzoo.missing`). Without it, an incomplete batch is an error naming what is missing.
- ``empty_output(batch_size) -> Tensor`` (fusions; optional): the fused output of an example with no
  input at all; explanations use it as their baseline (``score(none)``).
- ``input_embeddings() -> nn.Module`` and ``token_labels(ids: list[int]) -> list[str]`` (text encoders;
  optional): the layer that embeds token ids and each token's text, for token-level explanations.
- ``input_kind: "tensor" | "dict"`` (heads; default "tensor"): what ``forward(fused)`` takes; it
  must equal the fusion's ``output_kind`` (checked at build time).
- ``requires_target: bool`` (heads; default ``True``): ``False`` when ``loss(outputs, None)`` is
  meaningful (contrastive), so batches need no ``"target"``.
- ``metrics_within_batch: bool`` (heads; default ``False``): a metric of ``metrics`` /
  ``metric_sums`` compares the examples of one batch (retrieval recall@k), so its value depends on
  how the data is batched (a head that also has ``metric_rows`` is evaluated over the whole set).
- ``collate_targets(targets: list) -> Tensor`` (heads; optional): raw targets to a batch tensor.
- ``bind_input_keys(keys: tuple[str, ...]) -> None`` (heads; optional): called by the builder once,
  right after construction and before any forward, with the batch keys of the model's encoders in the
  order of the fusion's ``input_dims`` (for a fusion with ``output_kind`` "dict", the keys of what it
  returns, in that order). A head whose
  behaviour or metric names depend on those keys (``contrastive``: which pair to align) fixes them
  here, so a mismatch is an error at build time and nothing depends on the first batch.
- ``bind_distributed(context) -> None`` (heads; optional): called by the trainer's strategy before
  training starts with a :class:`mmzoo.train.distributed.DistributedContext` (``rank``,
  ``world_size`` and ``all_gather(tensor)``, which concatenates every rank's tensor along dim 0 with
  gradients flowing back to each rank's own rows), and with ``None`` when training ends. A head keeps
  it for ``forward`` and ``loss``, e.g. to compute a contrastive loss against every rank's examples.
  Gather only while ``self.training``: evaluation shards differ in size between ranks and may be
  empty (a rank with no examples never calls the head, so a collective there would wait forever).
  A head without the method, or that ignores the context, trains on each rank's own batch.

Metrics that merge exactly across batches and ranks: a head may define
``metric_sums(outputs, target) -> dict[str, float]`` returning additive sufficient statistics
(counts and sums), and ``metrics_from_sums(sums) -> dict[str, float]`` turning their totals into
metrics. A trainer adds the sums of every batch (and all-reduces them with SUM across ranks), then
calls ``metrics_from_sums`` once: this is exact for every builtin metric, F1 included. ``metrics``
is ``metrics_from_sums(metric_sums(...))`` for one batch. A head with only ``metrics`` can be
averaged weighted by batch size, which is exact only for per-sample means. Metric names are fixed
once the head is built (and bound): ``metrics_from_sums`` of a head that has never run a batch gives
the same names as one that has, since a rank whose evaluation shard is empty still merges the others'
sums.

Metrics over the whole evaluation set (optional, for metrics no sum can carry, such as retrieval
among every example): ``metric_rows(fused, outputs, target) -> dict[str, Tensor]`` returns per-example
rows (first dimension = the batch size; ``fused`` is what the head's ``forward`` took), and
``metrics_from_rows(rows) -> dict[str, float]`` computes the metrics from rows concatenated over every
batch and rank (in rank order). A trainer prefers them to ``metric_sums``; the rows of the whole set
meet on rank 0, so keep them small (embeddings, ids). The builtin ``contrastive`` head ranks every
evaluation example this way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Encoder", "Fusion", "Head"]


class Encoder(nn.Module):
    """Turns raw examples of one modality into features.

    Subclasses set ``output_dim`` and implement ``preprocess`` (raw examples -> batch input) and
    ``forward`` (batch input -> ``Tensor[B, output_dim]`` or :class:`~mmzoo.EncoderOutput`).
    """

    output_dim: int
    modality: str | None = None
    provides_tokens: bool = False

    def preprocess(self, examples: list) -> Any:
        """Turn a list of raw examples into the input ``forward`` takes."""
        raise NotImplementedError(f"{type(self).__name__} does not implement preprocess")


class Fusion(nn.Module):
    """Combines the features of several encoders, keyed by batch key.

    Built as ``Fusion(input_dims, **params)`` with ``input_dims`` mapping each batch key to its
    encoder's ``output_dim``; ``forward(features)`` takes ``EncoderOutput`` (or plain pooled
    tensors) by the same keys.
    """

    output_dim: int
    requires_tokens: bool = False
    output_kind: str = "tensor"
    handles_missing: bool = False


class Head(nn.Module):
    """Turns fused features into outputs, a loss and metrics."""

    input_kind: str = "tensor"
    requires_target: bool = True
    metrics_within_batch: bool = False
    handles_missing: bool = False

    def loss(self, outputs: Tensor, target: Tensor | None) -> Tensor:
        """Return the scalar training loss."""
        raise NotImplementedError(f"{type(self).__name__} does not implement loss")

    def metric_sums(self, outputs: Tensor, target: Tensor | None) -> dict[str, float]:
        """Return additive statistics of one batch; totals feed :meth:`metrics_from_sums`."""
        raise NotImplementedError(f"{type(self).__name__} does not implement metric_sums")

    def metrics_from_sums(self, sums: dict[str, float]) -> dict[str, float]:
        """Turn statistics summed over batches (and ranks) into metrics."""
        raise NotImplementedError(f"{type(self).__name__} does not implement metrics_from_sums")

    @torch.no_grad()
    def metrics(self, outputs: Tensor, target: Tensor | None) -> dict[str, float]:
        """Return this batch's metrics as plain floats."""
        return self.metrics_from_sums(self.metric_sums(outputs, target))


"""The builtin ``contrastive`` head: CLIP-style alignment of two modalities, across every rank of a job.

Training on several ranks, each rank scores its own examples (rows) against the examples of every
rank (columns), gathered with gradients flowing back to the rank that computed them: the loss, and
after the data-parallel gradient average the update, are those of one process holding the whole
global batch. Evaluation ranks the whole evaluation set: the head returns per-example rows
(``metric_rows``) that the trainer concatenates over batches and ranks before computing recall@k once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmzoo.errors import BuildError, DatasetError, MmzooError
from mmzoo.parts._common import int_list, positive_int
from mmzoo.parts.base import Head

_QUERY_CHUNK = 1024  # query rows scored at once when ranking a whole evaluation set


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


class ContrastiveHead(Head):
    """CLIP-style contrastive alignment of two modalities, for the ``project`` fusion.

    Takes the fusion's dict ``{key: Tensor[B, input_dim]}``, L2-normalises the two embeddings of
    ``pair`` (default: the fusion's only two keys, in order) and returns similarity logits
    ``[B, B]`` scaled by a learned temperature: row ``i`` is example ``i`` of the first modality
    against every example of the second. The loss is the symmetric InfoNCE (cross-entropy both
    ways, matching pairs on the diagonal); it needs no target. If a target is given (class ids),
    examples with the same id also count as matches. The logit scale is learned in log space and
    clamped to ``[1, max_logit_scale]``.

    **Across ranks**: once a trainer binds a distributed context of several ranks
    (:meth:`bind_distributed`), ``forward`` in training mode gathers both embeddings from every rank
    and returns ``[2, B, W*B]``: this rank's first-modality rows against all second-modality columns,
    and its second-modality rows against all first-modality columns; the loss of the ``W`` ranks then
    averages to the loss of the global batch of ``W*B`` examples, so the negatives are every rank's.

    **Metrics**: :meth:`metric_rows` gives each example's normalised pair of embeddings (and target);
    :meth:`metrics_from_rows` ranks them over everything it is given: a trainer gives it the whole
    evaluation set, so ``{a}_to_{b}_recall@k``, ``{b}_to_{a}_recall@k`` and their mean ``recall@k``
    retrieve among all evaluation examples, whatever the batch size or the number of ranks.
    ``metrics(outputs, target)`` (and ``metric_sums``) score one batch of logits: retrieval within that
    batch only, hence ``metrics_within_batch``.

    The metric names are fixed once the pair is known: at construction when ``pair`` is given, else
    when the builder calls :meth:`bind_input_keys` with the fusion's keys (a head used on its own
    learns them from its first ``forward``).
    """

    part_name = "contrastive"
    input_kind = "dict"
    handles_missing = True
    requires_target = False
    metrics_within_batch = True

    def __init__(self, input_dim: int, pair: Sequence[str] | None = None, temperature: float = 0.07,
                 learn_temperature: bool = True, max_logit_scale: float = 100.0,
                 recall_at: int | Sequence[int] = (1, 5)) -> None:
        super().__init__()
        self.label = f"head '{self.part_name}'"
        self.input_dim = positive_int(self.label, "input_dim", input_dim)
        if pair is not None and (isinstance(pair, str) or len(pair) != 2 or len(set(pair)) != 2
                                 or not all(isinstance(k, str) for k in pair)):
            raise BuildError(f"{self.label}: 'pair' must name two different batch keys, got {pair!r}.")
        self.pair = tuple(pair) if pair is not None else None
        if not (isinstance(max_logit_scale, (int, float)) and max_logit_scale > 1):
            raise BuildError(f"{self.label}: 'max_logit_scale' must be a number > 1, "
                             f"got {max_logit_scale!r}.")
        if not (isinstance(temperature, (int, float)) and 1.0 / max_logit_scale <= temperature <= 1.0):
            raise BuildError(f"{self.label}: 'temperature' must be in [1/max_logit_scale, 1] = "
                             f"[{1.0 / max_logit_scale:g}, 1], got {temperature!r}.")
        self.max_log_scale = math.log(max_logit_scale)
        initial = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.log_logit_scale = nn.Parameter(initial)
        else:
            self.register_buffer("log_logit_scale", initial)
        self.recall_at = int_list(self.label, "recall_at", recall_at, allow_empty=False)
        self.names: tuple[str, str] | None = self.pair
        """The two batch keys compared, in order; they name the metrics (None until known)."""
        self.context: Any = None
        """The distributed context a trainer bound (None outside distributed training)."""

    def bind_input_keys(self, keys: Sequence[str]) -> None:
        """Learn the fusion's keys at build time: the pair to align (checked against them) and with it
        the metric names, before any forward."""
        keys = tuple(keys)
        self.names = self._pair_among(keys)

    def bind_distributed(self, context: Any) -> None:
        """Use every rank's examples as negatives while training (``None``: this rank's only)."""
        self.context = context

    def logit_scale(self) -> Tensor:
        """The current multiplier of the cosine similarities (1 / temperature)."""
        return self.log_logit_scale.clamp(0.0, self.max_log_scale).exp()

    def _pair_among(self, keys: tuple[str, ...]) -> tuple[str, str]:
        if self.pair is None:
            if len(keys) != 2:
                raise BuildError(f"{self.label}: the fusion gave {len(keys)} embeddings ({list(keys)}); "
                                 "set 'pair' to the two batch keys to align.")
            return keys  # type: ignore[return-value]
        missing = [k for k in self.pair if k not in keys]
        if missing:
            raise BuildError(f"{self.label}: 'pair' names {missing}, not among the fused keys {list(keys)}.")
        return self.pair

    def _select(self, fused: Mapping[str, Tensor]) -> tuple[str, str]:
        if not isinstance(fused, Mapping):
            raise BuildError(f"{self.label} takes a dict of embeddings by batch key (from the 'project' "
                             f"fusion), got {type(fused).__name__}; use fusion 'project'.")
        if self.names is None:  # not bound by a builder: the first batch fixes the pair and the names
            self.names = self._pair_among(tuple(fused))
        elif any(k not in fused for k in self.names):
            self._pair_among(tuple(fused))  # says which of 'pair' is missing, when 'pair' was given
            raise BuildError(f"{self.label}: expected the embeddings {list(self.names)} (the fusion's keys "
                             f"when the model was built), got {list(fused)}.")
        return self.names

    def _embeddings(self, fused: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The pair's embeddings, checked and L2-normalised."""
        first, second = self._select(fused)
        for key in (first, second):
            if fused[key].dim() != 2 or fused[key].shape[-1] != self.input_dim:
                raise BuildError(f"{self.label}: embedding {key!r} must be [batch, {self.input_dim}], "
                                 f"got {list(fused[key].shape)}.")
        return F.normalize(fused[first], dim=-1), F.normalize(fused[second], dim=-1)

    def _across_ranks(self) -> bool:
        return self.training and self.context is not None and self.context.world_size > 1

    def forward(self, fused: Mapping[str, Tensor], present: Mapping[str, Tensor] | None = None) -> Tensor:
        a, b = self._embeddings(fused)
        scale = self.logit_scale()
        if present is not None:  # missing inputs: only the examples with both sides are paired
            if self._across_ranks():
                raise MmzooError(f"{self.label}: examples that lack an input are not supported when the "
                                 "contrastive loss gathers negatives across ranks; train on one rank, or give "
                                 "every example both inputs")
            paired = torch.ones(a.shape[0], dtype=torch.bool, device=a.device)
            for key in self.names or ():
                if present.get(key) is not None:
                    paired = paired & torch.as_tensor(present[key], device=a.device).to(torch.bool)
            both = paired.unsqueeze(0) & paired.unsqueeze(1)
            return (scale * a @ b.t()).masked_fill(~both, float("-inf"))
        if not self._across_ranks():
            return scale * a @ b.t()
        every_a, every_b = self.context.all_gather(a), self.context.all_gather(b)
        return scale * torch.stack([a @ every_b.t(), b @ every_a.t()])

    def _matches(self, rows: int, columns: int, first: int, target: Tensor | None, device: torch.device,
                 every_target: Tensor | None = None) -> Tensor:
        """``[rows, columns]``: which columns match each row (row ``i`` is column ``first + i``)."""
        if target is None:
            return torch.arange(columns, device=device) == (torch.arange(rows, device=device) + first).unsqueeze(1)
        target = torch.as_tensor(target, device=device)
        if target.shape != (rows,):
            raise DatasetError(f"{self.label}: an optional target must be one id per example, got shape "
                               f"{list(target.shape)}.")
        columns_target = target if every_target is None else every_target
        return target.unsqueeze(1) == columns_target.unsqueeze(0)

    def _paired(self, logits: Tensor, target: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The logits (and targets) of the examples that have both sides: those with a finite diagonal."""
        paired = torch.isfinite(logits.diagonal())
        if bool(paired.all()):
            return logits, target
        keep = paired.nonzero().squeeze(1)
        target = None if target is None else torch.as_tensor(target, device=logits.device)[keep]
        return logits[keep][:, keep], target

    def _square(self, logits: Tensor) -> None:
        if logits.dim() != 2 or logits.shape[0] != logits.shape[1]:
            raise BuildError(f"{self.label}: expected square logits [batch, batch], "
                             f"got {list(logits.shape)}.")

    def loss(self, outputs: Tensor, target: Tensor | None = None) -> Tensor:
        if outputs.dim() == 3:  # [2, B, W*B] from a forward across ranks
            rows, columns = outputs.shape[1], outputs.shape[2]
            every_target = None if target is None else self.context.all_gather(torch.as_tensor(target))
            matches = self._matches(rows, columns, self.context.rank * rows, target, outputs.device,
                                    None if every_target is None else every_target.to(outputs.device))
            directions = [(outputs[0], matches), (outputs[1], matches)]
        else:
            self._square(outputs)
            outputs, target = self._paired(outputs, target)
            if outputs.shape[0] == 0:
                return outputs.sum() * 0.0  # no example with both sides: a zero, still in the graph
            matches = self._matches(outputs.shape[0], outputs.shape[1], 0, target, outputs.device)
            directions = [(outputs, matches), (outputs.t(), matches.t())]
        losses = [_matched_nll(logits, hits) for logits, hits in directions]
        return (losses[0] + losses[1]) / 2

    # --- metrics over one batch of logits ----------------------------------------------------------

    @torch.no_grad()
    def metric_sums(self, outputs: Tensor, target: Tensor | None) -> dict[str, float]:
        """Hit counts per direction within this batch (``forward``: first -> second); named by the pair
        only in :meth:`metrics_from_sums`, so sums from any rank merge whatever that rank has seen."""
        self._square(outputs)
        outputs, target = self._paired(outputs, target)
        matches = self._matches(outputs.shape[0], outputs.shape[1], 0, target, outputs.device)
        sums = {"count": float(outputs.shape[0])}
        for direction, logits, hits in (("forward", outputs, matches), ("backward", outputs.t(), matches.t())):
            for k in self.recall_at:
                top = logits.topk(min(k, logits.shape[1]), dim=1).indices
                sums[f"{direction}_hits@{k}"] = float(hits.gather(1, top).any(dim=1).sum())
        return sums

    def metrics_from_sums(self, sums: dict[str, float]) -> dict[str, float]:
        return self._named(sums)

    # --- metrics over a whole evaluation set ------------------------------------------------------

    @torch.no_grad()
    def metric_rows(self, fused: Mapping[str, Tensor], outputs: Tensor, target: Tensor | None) -> dict[str, Tensor]:
        """Each example's normalised embeddings (``first``, ``second``) and, when given, its ``target``."""
        a, b = self._embeddings(fused)
        rows = {"first": a.float(), "second": b.float()}
        if target is not None:
            rows["target"] = torch.as_tensor(target, device=a.device)
        if outputs is not None and outputs.dim() == 2 and outputs.shape[0] == outputs.shape[1]:
            paired = torch.isfinite(outputs.diagonal())  # examples that lack a side are left out
            if not bool(paired.all()):
                rows = {name: value[paired] for name, value in rows.items()}
        return rows

    @torch.no_grad()
    def metrics_from_rows(self, rows: Mapping[str, Tensor]) -> dict[str, float]:
        """Recall@k of each example's partner among all the examples in ``rows``."""
        a, b, target = rows["first"], rows["second"], rows.get("target")
        sums = {"count": float(a.shape[0])}
        for direction, queries, keys in (("forward", a, b), ("backward", b, a)):
            hits = {k: 0.0 for k in self.recall_at}
            for start in range(0, queries.shape[0], _QUERY_CHUNK):
                chunk = queries[start : start + _QUERY_CHUNK]
                matches = self._matches(chunk.shape[0], keys.shape[0], start,
                                        None if target is None else target[start : start + _QUERY_CHUNK],
                                        chunk.device, target)
                order = (chunk @ keys.t()).topk(min(max(self.recall_at), keys.shape[0]), dim=1).indices
                found = matches.gather(1, order)
                for k in self.recall_at:
                    hits[k] += float(found[:, :k].any(dim=1).sum())
            sums.update({f"{direction}_hits@{k}": hits[k] for k in self.recall_at})
        return self._named(sums)

    def _named(self, sums: Mapping[str, float]) -> dict[str, float]:
        if self.names is None:
            raise BuildError(f"{self.label}: the pair of batch keys is not known yet, so the metrics have no "
                             "names; set 'pair', or build the head through mmzoo (which binds the fusion's keys)")
        first, second = self.names
        metrics = {}
        for k in self.recall_at:
            forward = _ratio(sums[f"forward_hits@{k}"], sums["count"])
            backward = _ratio(sums[f"backward_hits@{k}"], sums["count"])
            metrics[f"{first}_to_{second}_recall@{k}"] = forward
            metrics[f"{second}_to_{first}_recall@{k}"] = backward
            metrics[f"recall@{k}"] = (forward + backward) / 2
        return metrics


def _matched_nll(logits: Tensor, matches: Tensor) -> Tensor:
    """Mean over rows of ``-log`` (the softmax probability of the row's matching columns)."""
    log_probs = logits.log_softmax(dim=1)
    return -torch.logsumexp(log_probs.masked_fill(~matches, float("-inf")), dim=1).mean()

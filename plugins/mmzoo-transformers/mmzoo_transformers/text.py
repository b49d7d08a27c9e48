"""Text encoders: a transformers backbone and its tokenizer, pooled ``cls``, ``mean`` or ``last``."""

from __future__ import annotations

import codecs
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from mmzoo import RawInput
from mmzoo.errors import BuildError, DatasetError
from mmzoo.outputs import EncoderOutput

POOLINGS = ("mean", "cls", "last")
_HUGE = 1_000_000  # tokenizers without a limit report model_max_length as a huge sentinel


class ByteTokenizer:
    """Text as UTF-8 bytes: ids 3..258 are bytes, 0 pads, 1 opens and 2 closes a text.

    Needs no vocabulary file, so a ``config:``-built model can train on any language offline.
    """

    pad_token_id, bos_token_id, eos_token_id = 0, 1, 2
    vocab_size = 259
    model_max_length = _HUGE

    def labels(self, ids: list[int]) -> list[str]:
        """``<pad>``, ``<bos>``, ``<eos>``, and each byte's character (see ``HFTextEncoder.token_labels``)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        special = {self.pad_token_id: "<pad>", self.bos_token_id: "<bos>", self.eos_token_id: "<eos>"}
        return [special[i] if i in special else decoder.decode(bytes([i - 3])) for i in ids]

    def __call__(self, texts: list[str], *, max_length: int) -> dict[str, Tensor]:
        room = max(max_length - 2, 0)
        rows = [
            [self.bos_token_id, *(b + 3 for b in t.encode("utf-8")[:room]), self.eos_token_id] for t in texts
        ]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class HFTokenizer:
    """A transformers tokenizer padding on the right (so ``last`` pooling finds the last token)."""

    def __init__(self, tokenizer: Any) -> None:
        tokenizer.padding_side = "right"
        if tokenizer.pad_token is None:  # GPT-style vocabularies: pad with an existing token
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if tokenizer.pad_token is None:
            raise BuildError(f"tokenizer {type(tokenizer).__name__} has no pad, eos or unk token to pad with")
        self.tokenizer = tokenizer
        self.vocab_size = len(tokenizer)
        self.pad_token_id = tokenizer.pad_token_id
        self.model_max_length = tokenizer.model_max_length or _HUGE

    def __call__(self, texts: list[str], *, max_length: int) -> dict[str, Tensor]:
        return dict(
            self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        )


class LazyTokenizer:
    """A tokenizer loaded on first use: tokenizing, or reading its size, pad id or length limit.

    A transformers tokenizer costs tens of milliseconds and about 14 MB to load; a model built only
    to load weights (``create_model(dir)``) or to run on batches tokenized elsewhere never pays it.
    ``load`` must raise the error a user should see if the tokenizer cannot be read; it is raised
    on first use, every time until a load succeeds. Picklable when ``load`` is (a loaded tokenizer
    travels with it, an unloaded one is loaded where it is first used).
    """

    def __init__(self, load: Callable[[], HFTokenizer]) -> None:
        self._load = load
        self._loaded: HFTokenizer | None = None

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def get(self) -> HFTokenizer:
        """The tokenizer, loaded now if it was not yet."""
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    @property
    def tokenizer(self) -> Any:
        """The transformers tokenizer itself."""
        return self.get().tokenizer

    @property
    def vocab_size(self) -> int:
        return self.get().vocab_size

    @property
    def pad_token_id(self) -> int:
        return self.get().pad_token_id

    @property
    def model_max_length(self) -> int:
        return self.get().model_max_length

    def __call__(self, texts: list[str], *, max_length: int) -> dict[str, Tensor]:
        return self.get()(texts, max_length=max_length)


def position_limit(backbone: nn.Module) -> int | None:
    """The longest token sequence the backbone's position table covers (``None``: no fixed table)."""
    table = getattr(getattr(backbone, "embeddings", None), "position_embeddings", None)
    if isinstance(table, nn.Embedding) and table.padding_idx is not None:
        # RoBERTa-style tables count positions from just after the padding index.
        return table.num_embeddings - table.padding_idx - 1
    positions = getattr(backbone.config, "max_position_embeddings", None)
    return positions if isinstance(positions, int) and positions > 0 else None


def default_max_length(tokenizer: Any, config: Any, requested: int | None, positions: int | None = None) -> int:
    """``requested``, else the smallest of the tokenizer's limit, the position table and 512.

    ``positions`` is the model's position limit (default: the config's ``max_position_embeddings``);
    a ``requested`` length beyond it is refused, since longer texts would fail inside the model.
    """
    if positions is None:
        table = getattr(config, "max_position_embeddings", None)
        positions = table if isinstance(table, int) and table > 0 else None
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 2:
            raise BuildError(f"max_length must be an integer >= 2, got {requested!r}")
        if positions is not None and requested > positions:
            raise BuildError(
                f"max_length {requested} is beyond the {positions} positions the model has; texts of "
                f"that many tokens would fail inside it. Use max_length <= {positions}"
            )
        return requested
    limits = [512, tokenizer.model_max_length if tokenizer.model_max_length < _HUGE else 512]
    if positions is not None:
        limits.append(positions)
    return min(limits)


class HFTextEncoder(nn.Module):
    """Texts -> pooled ``[B, hidden]`` plus tokens ``[B, T, hidden]`` with the attention mask.

    :param backbone: a transformers model returning ``last_hidden_state``.
    :param tokenizer: a :class:`HFTokenizer`, :class:`LazyTokenizer` or :class:`ByteTokenizer`.
    :param pooling: ``mean`` (over real tokens), ``cls`` (first token) or ``last`` (last real token).
    :param normalize: L2-normalise the pooled vector (sentence-embedding models).
    """

    modality = "text"
    provides_tokens = True

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer: Any,
        *,
        name: str,
        pooling: str = "mean",
        max_length: int | None = None,
        normalize: bool = False,
        freeze: bool = False,
        resolved_params: dict | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise BuildError(
                f"encoder '{name}': pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}"
            )
        if getattr(backbone, "pooler", None) is not None:
            # The model's own pooler is never used here: drop it, so that every parameter gets a
            # gradient (DDP requires it) and saved models do not carry dead weights.
            backbone.pooler = None
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.name = name
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.output_dim = int(backbone.config.hidden_size)
        try:
            self.max_length = default_max_length(tokenizer, backbone.config, max_length, position_limit(backbone))
        except BuildError as exc:
            raise BuildError(f"encoder '{name}': {exc}") from None
        accepted = inspect.signature(backbone.forward).parameters
        self._input_names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in accepted]
        self.resolved_params = dict(resolved_params or {})
        self.frozen = bool(freeze)
        if self.frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        # mmzoo's feature cache: built frozen, its output for a text is fixed even in training mode
        # (tokenizing is deterministic and the backbone stays in eval); otherwise mmzoo decides.
        self.output_cacheable = True if self.frozen else None

    def train(self, mode: bool = True) -> HFTextEncoder:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    @property
    def raw_input(self) -> RawInput:
        """Text (a ``str`` is always text here, never a file), truncated to ``max_length`` tokens."""
        kind = "bytes" if isinstance(self.tokenizer, ByteTokenizer) else "the model's own tokenizer"
        return RawInput("text", max_length=self.max_length, accepts=("text",),
                        description=f"tokenized by {kind}, {self.pooling} pooling")

    def preprocess(self, examples: list) -> dict[str, Tensor]:
        """Strings -> ``input_ids`` and ``attention_mask`` (and ``token_type_ids``), padded right."""
        for i, text in enumerate(examples):
            if not isinstance(text, str):
                raise DatasetError(
                    f"encoder '{self.name}': example {i}: expected a string, got {type(text).__name__}"
                )
        if not examples:
            raise DatasetError(f"encoder '{self.name}': preprocess got no examples")
        return self.tokenizer(list(examples), max_length=self.max_length)

    def input_embeddings(self) -> nn.Module:
        """The layer that embeds token ids (explanations attribute through it)."""
        return self.backbone.get_input_embeddings()

    def token_labels(self, ids: list[int]) -> list[str]:
        """The text of each token id, for explanations: the tokenizer's tokens (word pieces), or for the
        byte tokenizer each byte's character (empty for the bytes before a multi-byte character's last)."""
        tokenizer = self.tokenizer.get() if isinstance(self.tokenizer, LazyTokenizer) else self.tokenizer
        if isinstance(tokenizer, ByteTokenizer):
            return tokenizer.labels(ids)
        return list(tokenizer.tokenizer.convert_ids_to_tokens(ids))

    def forward(self, inputs: dict[str, Tensor]) -> EncoderOutput:
        # No no_grad shortcut when frozen: with every weight fixed autograd records nothing anyway, and an
        # explanation that hooks the embeddings needs the graph through the frozen backbone.
        hidden = self.backbone(**{k: inputs[k] for k in self._input_names if k in inputs}).last_hidden_state
        mask = inputs["attention_mask"].to(torch.bool)
        pooled = pool(hidden, mask, self.pooling)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return EncoderOutput(pooled, hidden, mask)


def pool(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    """Pool ``hidden [B, T, D]`` over the real tokens of ``mask [B, T]``."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        last = mask.long().sum(dim=1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)

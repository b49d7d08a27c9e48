"""``byte-gru``: text as UTF-8 bytes -> embedding -> bidirectional GRU. Nothing to download."""

from __future__ import annotations

import codecs

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mmzoo.errors import DatasetError
from mmzoo.outputs import EncoderOutput
from mmzoo.parts._common import bad_example, fraction, masked_mean, positive_int
from mmzoo.parts.base import Encoder
from mmzoo.rawinput import RawInput

PART = "encoder 'byte-gru'"
PAD_ID = 0
BOS_ID = 1  # every text starts with it, so an empty string is still one real token
BYTE_OFFSET = 2
VOCAB_SIZE = 256 + BYTE_OFFSET


def encode_bytes(text: str | bytes, max_length: int) -> list[int]:
    """Token ids of ``text``: BOS then one id per UTF-8 byte, truncated to ``max_length`` ids."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return [BOS_ID] + [b + BYTE_OFFSET for b in data[: max_length - 1]]


class ByteGRUEncoder(Encoder):
    """Text -> pooled ``[B, output_dim]`` and one token per byte ``[B, T, output_dim]`` with a mask.

    ``preprocess`` encodes each string (or bytes) as UTF-8, prepends a BOS id, truncates to
    ``max_length`` ids and right-pads with 0; ``forward`` takes those ids ``LongTensor[B, T]``
    (0 = padding). Padding never changes the result: sequences are packed for the GRU and the
    pooled vector is the masked mean of the tokens.
    """

    modality = "text"
    provides_tokens = True

    def __init__(
        self,
        embed_dim: int = 64,
        hidden_dim: int = 128,
        num_layers: int = 1,
        output_dim: int = 128,
        max_length: int = 512,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.output_dim = positive_int(PART, "output_dim", output_dim)
        self.max_length = positive_int(PART, "max_length", max_length)
        num_layers = positive_int(PART, "num_layers", num_layers)
        hidden_dim = positive_int(PART, "hidden_dim", hidden_dim)
        embed_dim = positive_int(PART, "embed_dim", embed_dim)
        dropout = fraction(PART, "dropout", dropout)
        self.embedding = nn.Embedding(VOCAB_SIZE, embed_dim, padding_idx=PAD_ID)
        self.gru = nn.GRU(
            embed_dim, hidden_dim, num_layers=num_layers, batch_first=True, bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(2 * hidden_dim, self.output_dim)
        self.norm = nn.LayerNorm(self.output_dim)

    @property
    def raw_input(self) -> RawInput:
        """Text (a ``str`` is always text here, never a file), truncated to ``max_length`` bytes."""
        return RawInput("text", max_length=self.max_length, accepts=("text", "bytes"),
                        description="UTF-8 bytes, no tokenizer")

    def preprocess(self, examples: list) -> Tensor:
        """Encode strings into padded byte ids ``LongTensor[B, T]`` (T = the longest, <= max_length)."""
        if not examples:
            raise DatasetError(f"{PART}: preprocess got an empty list of examples.")
        rows = []
        for i, text in enumerate(examples):
            if not isinstance(text, (str, bytes, bytearray)):
                raise bad_example(PART, i, f"expected a string, got {type(text).__name__}")
            rows.append(encode_bytes(text, self.max_length))
        ids = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids

    def token_labels(self, ids: list[int]) -> list[str]:
        """The text of each token id (for explanations): ``<bos>``, then one label per byte: the character
        a byte completes, and an empty string for the bytes before a multi-byte character's last;
        padding is ``<pad>``."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        labels = []
        for token in ids:
            if token == PAD_ID:
                labels.append("<pad>")
            elif token == BOS_ID:
                labels.append("<bos>")
            else:
                labels.append(decoder.decode(bytes([token - BYTE_OFFSET])))
        return labels

    def forward(self, inputs: Tensor) -> EncoderOutput:
        if inputs.dim() != 2 or inputs.dtype not in (torch.int64, torch.int32):
            raise DatasetError(
                f"{PART}: expected byte ids LongTensor[batch, length] from preprocess, "
                f"got {inputs.dtype} of shape {list(inputs.shape)}."
            )
        mask = inputs != PAD_ID
        lengths = mask.sum(dim=1)
        if bool((lengths == 0).any()):
            raise DatasetError(f"{PART}: a row of byte ids is all padding; build inputs with preprocess.")
        embedded = self.dropout(self.embedding(inputs.long()))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hidden, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=inputs.shape[1])
        tokens = self.norm(self.proj(self.dropout(hidden)))
        return EncoderOutput(pooled=masked_mean(tokens, mask), tokens=tokens, mask=mask)

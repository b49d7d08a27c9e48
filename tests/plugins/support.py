"""Helpers for the first-party plugin tests: tiny model configs and real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY_BERT = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}
_CONV = {"conv_dim": [32, 32], "conv_stride": [5, 4], "conv_kernel": [10, 8]}
_SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
TINY_AUDIO = {
    "wav2vec2": {"model_type": "wav2vec2", **_SMALL, **_CONV, "feat_extract_norm": "layer",
                 "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2},
    "hubert": {"model_type": "hubert", **_SMALL, **_CONV, "feat_extract_norm": "layer",
               "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2},
    "whisper": {"model_type": "whisper", "d_model": 32, "encoder_layers": 2, "encoder_attention_heads": 2,
                "encoder_ffn_dim": 64, "decoder_layers": 1, "decoder_attention_heads": 2,
                "decoder_ffn_dim": 64, "num_mel_bins": 16, "max_source_positions": 100},
    "ast": {"model_type": "audio-spectrogram-transformer", **_SMALL, "num_mel_bins": 32, "max_length": 128},
}
SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "camera", "rocket")


def photo(name: str) -> np.ndarray:
    """A real photo: scikit-image's sample data, or matplotlib's Grace Hopper portrait."""
    if name == "grace_hopper":
        import matplotlib
        from PIL import Image

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        return np.asarray(Image.open(path).convert("RGB"))
    import skimage.data

    return getattr(skimage.data, name)()

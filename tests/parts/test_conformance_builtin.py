"""The conformance kit passes on every builtin part, looked up by its registered name."""

from __future__ import annotations

import pytest

from mmzoo.parts import ENCODERS, FUSIONS, HEADS
from mmzoo.testing import check_encoder, check_fusion, check_head

ENCODER_CASES = {
    "mlp": [{"in_dim": 5, "hidden_dims": [8], "output_dim": 6},
            {"in_dim": 3, "hidden_dims": [], "output_dim": 4}],
    "cnn": [{"channels": [4, 8], "output_dim": 8, "image_size": 16},
            {"in_channels": 1, "channels": [4], "output_dim": 6, "image_size": [12, 20]}],
    "byte-gru": [{"embed_dim": 8, "hidden_dim": 8, "output_dim": 8},
                 {"embed_dim": 4, "hidden_dim": 6, "num_layers": 2, "output_dim": 5, "max_length": 8}],
    "mel-cnn": [{"n_mels": 16, "channels": [4, 8], "output_dim": 8},
                {"n_mels": 16, "features": "mfcc", "n_mfcc": 8, "channels": [4], "output_dim": 6,
                 "sample_rate": 8000, "n_fft": 256, "hop_length": 80}],
}
DIMS = {"image": 6, "text": 5, "audio": 4}
FUSION_CASES = {
    "concat": [({}, DIMS), ({"dim": 7}, DIMS)],
    "sum": [({"dim": 8}, DIMS)],
    "gated": [({"dim": 8}, DIMS), ({"dim": 4}, {"image": 6, "text": 3})],
    "attention": [({"dim": 8, "heads": 2}, DIMS)],
    "cross-attention": [({"dim": 8, "heads": 2, "layers": 2}, DIMS),
                        ({"dim": 4, "heads": 1}, {"a": 3, "b": 5})],
    "bilinear": [({"dim": 8, "rank": 3}, DIMS)],
    "film": [({"condition": "text", "target": "image"}, {"image": 6, "text": 5}),
             ({"condition": "image", "target": "text", "dim": 7}, {"image": 6, "text": 5})],
    "project": [({"dim": 8}, DIMS)],
}
HEAD_CASES = {
    "classification": [({"num_classes": 4, "top_k": [2, 3]}, [0, 1, 2, 3, 1, 2]),
                       ({"num_classes": 3, "hidden_dim": 8, "label_smoothing": 0.1}, [2, 1, 0, 0, 1, 2])],
    "multilabel": [({"num_labels": 3}, [[0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]])],
    "regression": [({"num_outputs": 2}, [[0, 1], [1, 1], [0, 0], [1, 0], [0, 1], [1, 3]]),
                   ({}, [0.5, 1.0, -2.0, 3.0, 0.0, 1.5])],
    "contrastive": [({}, None), ({"pair": ["b", "a"], "learn_temperature": False}, None)],
}


def test_every_builtin_part_has_a_conformance_case():
    assert set(ENCODER_CASES) == set(ENCODERS)
    assert set(FUSION_CASES) == set(FUSIONS)
    assert set(HEAD_CASES) == set(HEADS)


@pytest.mark.parametrize(("name", "params"), [(n, p) for n, cases in ENCODER_CASES.items() for p in cases])
def test_encoder_conforms(name, params):
    encoder = check_encoder(f"mmzoo:{name}", params)
    assert encoder.output_dim == params["output_dim"]


@pytest.mark.parametrize(("name", "params", "dims"),
                         [(n, p, d) for n, cases in FUSION_CASES.items() for p, d in cases])
@pytest.mark.parametrize("tokens", [True, False])
def test_fusion_conforms(name, params, dims, tokens):
    check_fusion(f"mmzoo:{name}", dims, params, tokens=tokens)


@pytest.mark.parametrize(("name", "params", "target"),
                         [(n, p, t) for n, cases in HEAD_CASES.items() for p, t in cases])
def test_head_conforms(name, params, target):
    check_head(f"mmzoo:{name}", 8, params, target=target)

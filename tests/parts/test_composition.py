"""Every builtin fusion and head composes with the builtin encoders by name, end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmzoo
from mmzoo.errors import BuildError

ENCODERS = {
    "image": {"type": "cnn", "channels": [4], "output_dim": 8, "image_size": 12},
    "text": {"type": "byte-gru", "embed_dim": 4, "hidden_dim": 4, "output_dim": 6},
    "audio": {"type": "mel-cnn", "n_mels": 8, "channels": [4], "output_dim": 8},
    "tabular": {"type": "mlp", "in_dim": 3, "output_dim": 5},
}
FUSIONS = [
    {"type": "concat"},
    {"type": "sum", "dim": 8},
    {"type": "gated", "dim": 8},
    {"type": "attention", "dim": 8, "heads": 2},
    {"type": "cross-attention", "dim": 8, "heads": 2},
    {"type": "bilinear", "dim": 8, "rank": 2},
    {"type": "film", "condition": "text", "target": "image"},
    {"type": "project", "dim": 8},
]
HEADS = {
    "classification": ({"num_classes": 3}, lambda i: i % 3),
    "multilabel": ({"num_labels": 2}, lambda i: [i % 2, 1]),
    "regression": ({"num_outputs": 1}, lambda i: float(i)),
}


def examples(keys, head: str | None, count: int = 3):
    rng = np.random.default_rng(0)
    raw = {
        "image": lambda i: rng.integers(0, 256, (10 + i, 14, 3), dtype=np.uint8),
        "text": lambda i: "x" * (i + 1),
        "audio": lambda i: {
            "array": rng.standard_normal(2000 * (i + 1)).astype(np.float32),
            "sampling_rate": 8000,
        },
        "tabular": lambda i: [i, 1.0, -1.0],
    }
    out = []
    for i in range(count):
        example = {k: raw[k](i) for k in keys}
        if head in HEADS:
            example["target"] = HEADS[head][1](i)
        out.append(example)
    return out


def spec_for(fusion: dict, head: str) -> dict:
    keys = ["image", "text"] if fusion["type"] == "film" else ["image", "text", "audio"]
    if fusion["type"] not in ("film", "cross-attention"):
        keys.append("tabular")
    head_spec = {"type": head, **(HEADS[head][0] if head in HEADS else {})}
    return {"encoders": {k: ENCODERS[k] for k in keys}, "fusion": fusion, "head": head_spec}


CASES = [(f, h) for f in FUSIONS for h in (["contrastive"] if f["type"] == "project" else list(HEADS))]


@pytest.mark.parametrize(("fusion", "head"), CASES, ids=[f"{f['type']}-{h}" for f, h in CASES])
def test_builtin_parts_compose_train_and_round_trip(fusion, head, tmp_path):
    spec = spec_for(fusion, head)
    if head == "contrastive":
        spec["encoders"] = {k: spec["encoders"][k] for k in ("image", "text")}
    torch.manual_seed(0)
    model = mmzoo.create_model(spec)
    data = examples(list(spec["encoders"]), head)
    batch = model.preprocess(data)
    out = model(batch)
    assert out.loss is not None and out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    model.save_pretrained(tmp_path / "saved")
    loaded = mmzoo.create_model(str(tmp_path / "saved")).eval()
    with torch.no_grad():
        assert torch.allclose(model(batch).outputs, loaded(batch).outputs, atol=1e-5)


def test_film_with_a_wrong_key_fails_at_build_time_with_the_spec_path():
    spec = spec_for({"type": "film", "condition": "txt", "target": "image"}, "classification")
    with pytest.raises(BuildError, match=r"spec\.fusion: fusion 'film': 'condition' is 'txt'.*Did you mean 'text'\?"):
        mmzoo.create_model(spec)


def test_contrastive_after_a_merging_fusion_is_refused_at_build_time():
    spec = spec_for({"type": "concat"}, "classification")
    spec["head"] = {"type": "contrastive"}
    with pytest.raises(BuildError, match="fusion 'concat' gives one tensor but head 'contrastive'"):
        mmzoo.create_model(spec)

"""Attributions within inputs (Captum's integrated gradients): image heat maps, token scores, the files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import mmzoo

ENCODERS = {
    "image": {"type": "cnn", "in_channels": 1, "channels": [4], "output_dim": 8, "image_size": [12, 16]},
    "text": {"type": "byte-gru", "embed_dim": 6, "hidden_dim": 6, "output_dim": 8},
}


def build(fusion=None):
    torch.manual_seed(0)
    return mmzoo.create_model({"encoders": ENCODERS, "fusion": fusion or {"type": "gated", "dim": 8},
                               "head": {"type": "classification", "num_classes": 3}})


def example(text: str = "a b héllo") -> dict:
    rng = np.random.default_rng(0)
    return {"image": rng.integers(0, 256, (24, 20), dtype=np.uint8), "text": text}


def test_image_heat_map_is_at_the_encoders_resolution_and_integrates_to_the_score_difference():
    model = build().eval()
    batch = model.preprocess([example()])
    with torch.no_grad():
        full = model(batch).outputs[0, 0]
        blank = model({**batch, "image": torch.zeros_like(batch["image"])}).outputs[0, 0]
    coarse = model.explain([example()], target=0, steps=16)[0].images["image"]
    fine = model.explain([example()], target=0, steps=256)[0].images["image"]
    assert fine.heat.shape == (12, 16) and np.isfinite(fine.heat).all() and np.abs(fine.heat).max() > 0
    for attribution in (coarse, fine):  # the reported delta is the completeness error of the integral
        assert attribution.delta == pytest.approx(abs(attribution.heat.sum() - float(full - blank)), abs=1e-5)
    assert fine.heat.sum() == pytest.approx(float(full - blank), abs=1e-4)  # converges with the steps
    assert fine.delta < coarse.delta


def test_text_gets_a_score_per_byte_and_per_word():
    model = build().eval()
    e = model.explain([example()])[0]
    tokens = e.tokens["text"]
    assert tokens.tokens[0] == "<bos>" and "".join(tokens.tokens[1:]) == "a b héllo"
    assert len(tokens.scores) == len(tokens.tokens) == 1 + len("a b héllo".encode())
    assert [w for w, _ in tokens.words] == ["a", "b", "héllo"]
    hello = [s for t, s in zip(tokens.tokens, tokens.scores)][5:]
    assert tokens.words[2][1] == pytest.approx(sum(hello))


def test_an_input_the_example_lacks_gets_no_attribution_and_within_can_be_skipped():
    model = build()
    e = model.explain([{"text": "only words"}])[0]
    assert e.images == {} and set(e.tokens) == {"text"} and e.present == ("text",)
    quick = model.explain([example()], within=False)[0]
    assert quick.images == {} and quick.tokens == {}


def test_out_dir_gets_a_real_png_chart_and_heat_map(tmp_path):
    model = build()
    model.labels = ["zero", "one", "two"]
    e = model.explain([example()], out_dir=tmp_path)[0]
    for path in (e.chart, e.images["image"].png):
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size[0] > 200 and img.size[1] > 100
            assert len(set(np.asarray(img.convert("L")).ravel().tolist())) > 10  # drawn, not blank
    assert e.to_dict()["images"]["image"]["png"] == str(tmp_path / "example-0-image-heatmap.png")


def test_hf_text_tokens_are_word_pieces():
    pytest.importorskip("transformers")
    from tests.plugins.support import TINY_BERT

    torch.manual_seed(0)
    model = mmzoo.create_model({"encoders": {"text": {"type": "hf/tiny-bert", "config": TINY_BERT},
                                             "image": ENCODERS["image"]},
                                "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}})
    e = model.explain([{"text": "a tiny cat", "image": example()["image"]}], steps=8)[0]
    tokens = e.tokens["text"]
    assert tokens.tokens == ["[CLS]", "a", "tiny", "cat", "[SEP]"] and len(tokens.scores) == 5
    assert tokens.words == []  # word pieces do not spell the text byte for byte

"""Models with plugin encoders survive save_pretrained / create_model(dir), and pin what they loaded."""

from __future__ import annotations

import json

import pytest
import torch

import mmzoo
from tests.plugins.support import TINY_BERT, photo

pytest.importorskip("timm")
pytest.importorskip("transformers")

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
def cached_tiny_bert(empty_hub_cache, monkeypatch):
    """``org/tiny-bert`` at commit COMMIT in the (otherwise empty) Hugging Face cache; offline."""
    from mmzoo_transformers.factory import minilm_path
    from transformers import AutoTokenizer, BertConfig, BertModel

    repo = empty_hub_cache / "models--org--tiny-bert"
    snapshot = repo / "snapshots" / COMMIT
    torch.manual_seed(0)
    config = BertConfig(**{k: v for k, v in TINY_BERT.items() if k != "model_type"})
    BertModel(config, add_pooling_layer=False).save_pretrained(snapshot)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return "org/tiny-bert"


def test_the_commit_loaded_from_the_cache_is_reported(cached_tiny_bert):
    from mmzoo_transformers.factory import build_hf_encoder

    assert build_hf_encoder(cached_tiny_bert).resolved_params == {"revision": COMMIT}
    assert build_hf_encoder(cached_tiny_bert, revision="main").resolved_params == {"revision": COMMIT}


def test_saved_configs_pin_the_resolved_revision(cached_tiny_bert, tmp_path):
    spec = {"encoders": {"text": {"type": f"hf/{cached_tiny_bert}"}}, "fusion": {"type": "concat"},
            "head": {"type": "classification", "num_classes": 2}}
    model = mmzoo.create_model(spec)
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["spec"]["encoders"]["text"]["revision"] == COMMIT


def test_a_model_with_an_hf_encoder_round_trips(cached_tiny_bert, tmp_path):
    spec = {"encoders": {"text": {"type": f"hf/{cached_tiny_bert}"},
                         "image": {"type": "timm/resnet18", "img_size": 32}},
            "fusion": {"type": "gated", "dim": 16}, "head": {"type": "classification", "num_classes": 2}}
    model = mmzoo.create_model(spec).eval()
    examples = [{"text": "a cat", "image": photo("chelsea")}, {"text": "coffee", "image": photo("coffee")}]
    model.save_pretrained(tmp_path / "saved")
    again = mmzoo.create_model(str(tmp_path / "saved")).eval()
    with torch.no_grad():
        expected = model(model.preprocess(examples)).outputs
        torch.testing.assert_close(again(again.preprocess(examples)).outputs, expected)


@pytest.mark.slow
def test_a_zoo_model_with_pretrained_plugin_encoders_round_trips(tmp_path):
    model = mmzoo.create_model("effnet-minilm-gated-cls").eval()
    examples = [{"image": photo("chelsea"), "text": "a cat"}, {"image": photo("coffee"), "text": "espresso"}]
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert {"mmzoo-timm", "mmzoo-transformers"} <= set(saved["requires"])
    again = mmzoo.create_model(str(tmp_path / "saved")).eval()
    with torch.no_grad():
        expected = model(model.preprocess(examples)).outputs
        torch.testing.assert_close(again(again.preprocess(examples)).outputs, expected)

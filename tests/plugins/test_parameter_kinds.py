"""Parameters of the wrong kind for plugin parts are one clean BuildError naming the part and parameter."""

from __future__ import annotations

import pytest

import mmzoo
from mmzoo.errors import BuildError
from tests.plugins.support import TINY_BERT

pytest.importorskip("timm")


def spec_for(key: str, part: dict) -> dict:
    return {"encoders": {key: part}, "fusion": {"type": "concat"},
            "head": {"type": "classification", "num_classes": 2}}


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("global_pool", 16, "global_pool must be a string"),
        ("global_pool", ["avg"], "global_pool must be a string"),
        ("act_layer", "nope", "act_layer 'nope' is not a layer timm knows"),
        ("act_layer", 3, "act_layer must be the name of a timm layer"),
        ("norm_layer", "batchnrom", "Did you mean 'batchnorm'"),
        ("in_chans", 0, "in_chans must be a positive integer"),
        ("in_chans", "3", "in_chans must be a positive integer"),
        ("drop_rate", "x", "drop_rate must be a probability"),
        ("drop_rate", 1.5, "drop_rate must be a probability"),
        ("output_stride", 5, r"timm could not build it with output_stride=5 \(AssertionError"),
        ("global_pool", "nope", r"timm could not build it with global_pool='nope' \(AssertionError: Invalid pool"),
        ("features_only", True, "features_only is not supported"),
        ("pretrained_cfg_overlay", 3, "pretrained_cfg_overlay must be a mapping"),
    ],
)
def test_timm_parameters_of_the_wrong_kind_name_the_part_and_parameter(param, value, message):
    part = {"type": "timm/resnet18", "pretrained": False, param: value}
    with pytest.raises(BuildError, match=message) as exc:
        mmzoo.create_model(spec_for("image", part))
    assert "spec.encoders.image" in str(exc.value) and "timm/resnet18" in str(exc.value)


def test_efficientnet_lite0_checks_its_timm_parameters_too():
    part = {"type": "efficientnet-lite0", "pretrained": False, "act_layer": "nope"}
    with pytest.raises(BuildError, match="efficientnet-lite0.*act_layer 'nope'"):
        mmzoo.create_model(spec_for("image", part))


def test_timm_parameters_of_the_right_kind_still_reach_timm():
    part = {"type": "timm/resnet18", "pretrained": False, "global_pool": "max", "act_layer": "silu",
            "drop_rate": 0.1, "in_chans": 1}
    encoder = mmzoo.create_model(spec_for("image", part)).encoders["image"]
    assert type(encoder.model.act1).__name__ == "SiLU" and encoder.model.global_pool.pool_type == "max"
    assert encoder.in_chans == 1 and encoder.model.drop_rate == 0.1


pytest.importorskip("transformers")


def test_minilm_max_length_beyond_its_positions_is_refused_at_build():
    with pytest.raises(BuildError) as exc:
        mmzoo.create_model(spec_for("text", {"type": "minilm", "max_length": 1000}))
    message = str(exc.value)
    assert "encoder 'minilm'" in message and "max_length 1000" in message and "max_length <= 512" in message


def test_minilm_at_its_position_limit_encodes_a_long_text():
    model = mmzoo.create_model(spec_for("text", {"type": "minilm", "max_length": 512}))
    batch = model.preprocess([{"text": "word " * 2000}])
    assert batch["text"]["input_ids"].shape[1] == 512
    assert model(batch).outputs.shape == (1, 2)


def test_hf_max_length_beyond_a_configs_positions_is_refused_at_build(tmp_path):
    part = {"type": "hf/tiny", "config": TINY_BERT, "max_length": TINY_BERT["max_position_embeddings"] + 1}
    with pytest.raises(BuildError, match=r"max_length 129 is beyond the 128 positions"):
        mmzoo.create_model(spec_for("text", part))


def test_roberta_style_position_tables_count_from_the_padding_index():
    config = {**TINY_BERT, "model_type": "roberta", "max_position_embeddings": 40}
    part = {"type": "hf/tiny-roberta", "config": config, "tokenizer": "bytes"}
    encoder = mmzoo.create_model(spec_for("text", part)).encoders["text"]
    assert encoder.max_length == 39  # 40 positions, padding index 0 (the byte tokenizer's pad id)
    out = encoder(encoder.preprocess(["x" * 500]))
    assert out.tokens.shape[1] == 39
    with pytest.raises(BuildError, match="max_length 40 is beyond the 39 positions"):
        mmzoo.create_model(spec_for("text", {**part, "max_length": 40}))


@pytest.mark.parametrize(("param", "value"), [("std", 0), ("std", [0.5, -1, 0.5]), ("mean", []), ("mean", "x")])
def test_timm_normalisation_of_the_wrong_kind_is_refused_at_build(param, value):
    part = {"type": "timm/resnet18", "pretrained": False, param: value}
    with pytest.raises(mmzoo.MmzooError, match=rf"\b{param}\b"):
        mmzoo.create_model(spec_for("image", part))

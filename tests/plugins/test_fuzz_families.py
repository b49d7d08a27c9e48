"""Property tests: ``create_model`` on fuzzed specs reaching the timm and transformers families.

Whatever the parameters, a spec either builds a model that runs on an example, or fails with one
``MmzooError``: never a raw exception from timm, transformers or PIL. Bounded so CI stays fast.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import mmzoo
from tests.plugins.support import TINY_BERT

pytest.importorskip("timm")
pytest.importorskip("transformers")

FUZZ = hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
WORDS = ["avg", "max", "token", "", "relu", "gelu", "silu", "nope", "batchnorm", "layernorm", "mean", "cls",
         "last", "text", "audio", "minilm", "bytes", "bert", "main", "../..", "/etc"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 600), st.floats(-2, 2), st.just(float("nan")),
    st.sampled_from(WORDS), st.text(max_size=6),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.sampled_from(WORDS), SCALARS,
                                                                           max_size=2))
# Per parameter: mostly values of the right kind (some out of range), so that many specs build and run.
PLAUSIBLE = {
    "global_pool": st.sampled_from(["avg", "max", "avgmax", "catavgmax", "", "token", "nope"]),
    "act_layer": st.sampled_from(["relu", "gelu", "silu", "hard_swish", "nope"]),
    "norm_layer": st.sampled_from(["batchnorm", "groupnorm", "layernorm2d", "nope"]),
    "drop_rate": st.floats(0, 1.2),
    "in_chans": st.integers(0, 5),
    "output_stride": st.sampled_from([8, 16, 32, 5]),
    "img_size": st.one_of(st.integers(0, 300), st.lists(st.integers(0, 300), min_size=1, max_size=3)),
    "drop_path_rate": st.floats(0, 1),
    "mean": st.one_of(st.floats(-1, 1), st.lists(st.floats(0, 1), max_size=4)),
    "std": st.one_of(st.floats(-1, 1), st.lists(st.floats(0, 1), max_size=4)),
    "augment": st.one_of(st.booleans(), st.just({"hflip": 0.5}), st.just({"no_such": 1})),
    "tokens": st.booleans(),
    "freeze": st.booleans(),
    "num_classes": st.integers(-1, 5),
    "stem_width": st.integers(-1, 64),
    "zero_init_last": st.booleans(),
    "pooling": st.sampled_from(["mean", "cls", "last", "max"]),
    "max_length": st.integers(0, 2000),
    "normalize": st.booleans(),
    "pretrained": st.booleans(),
    "tokenizer": st.sampled_from(["minilm", "bytes", "/nonexistent/folder", "../..", "org/not-cached"]),
    "modality": st.sampled_from(["text", "audio", "image"]),
    "revision": st.sampled_from(["main", "0" * 40]),
    "layerdrop": st.floats(-0.5, 1.5),
    "max_seconds": st.floats(-1, 5),
    "config": st.dictionaries(
        st.sampled_from(["hidden_size", "num_attention_heads", "max_position_embeddings", "vocab_size",
                         "num_hidden_layers", "hidden_act", "type_vocab_size", "no_such_setting"]),
        st.one_of(st.integers(-1, 300), st.sampled_from(["gelu", "nope"])), max_size=3),
}
TIMM_KEYS = ["global_pool", "act_layer", "norm_layer", "drop_rate", "in_chans", "output_stride", "img_size",
             "drop_path_rate", "mean", "std", "augment", "tokens", "freeze", "num_classes", "features_only",
             "pretrained_cfg_overlay", "zero_init_last", "stem_width", "no_such_option"]
TEXT_KEYS = ["pooling", "max_length", "normalize", "freeze", "pretrained"]
HF_KEYS = [*TEXT_KEYS, "tokenizer", "modality", "revision", "layerdrop", "max_seconds", "config"]
IMAGE = np.random.default_rng(0).integers(0, 256, (40, 30, 3)).astype(np.uint8)
LONG_TEXT = "a fuzzed sentence, " * 400


def params(keys: list[str]):
    """Up to three parameters: each a plausible value or, one time in three, anything at all."""
    return st.lists(st.sampled_from(keys), max_size=3, unique=True).flatmap(
        lambda chosen: st.fixed_dictionaries(
            {k: st.one_of(PLAUSIBLE.get(k, VALUES), PLAUSIBLE.get(k, VALUES), VALUES) for k in chosen}
        )
    )


def spec_for(key: str, part: dict) -> dict:
    return {"encoders": {key: part}, "fusion": {"type": "concat"},
            "head": {"type": "classification", "num_classes": 3}}


def build_and_run(key: str, part: dict, example) -> None:
    """Build and run one example; only MmzooError may escape."""
    try:
        model = mmzoo.create_model(spec_for(key, part))
        model.eval()
        out = model(model.preprocess([{key: example, "target": 1}]))
    except mmzoo.MmzooError:
        return
    assert out.outputs.shape == (1, 3)


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    """A tiny BERT saved with save_pretrained, with the MiniLM tokenizer beside it."""
    import torch
    from mmzoo_transformers.factory import minilm_path
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("fuzz") / "tiny-bert"
    BertModel(BertConfig(**{k: v for k, v in TINY_BERT.items() if k != "model_type"}),
              add_pooling_layer=False).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    return folder


@FUZZ
@given(kind=st.sampled_from(["timm/resnet18", "efficientnet-lite0"]), extra=params(TIMM_KEYS))
def test_fuzzed_timm_specs_build_or_fail_with_an_mmzoo_error(kind, extra):
    build_and_run("image", {"type": kind, "pretrained": False, **extra}, IMAGE)


@FUZZ
@given(extra=params(TEXT_KEYS))
def test_fuzzed_minilm_specs_build_or_fail_with_an_mmzoo_error(extra):
    build_and_run("text", {"type": "minilm", **extra}, LONG_TEXT)


@FUZZ
@given(extra=params(HF_KEYS), from_config=st.booleans())
def test_fuzzed_hf_specs_build_or_fail_with_an_mmzoo_error(bert_folder, extra, from_config):
    part = {"type": f"hf/{bert_folder}", **extra}
    if from_config:
        settings = extra.get("config")
        config = {**TINY_BERT, **settings} if isinstance(settings, dict) else TINY_BERT
        part = {**part, "type": "hf/scratch", "config": config}
    build_and_run("text", part, LONG_TEXT)


# --- loaded configs: a saved model whose config.json was edited (#15 point 2) -----------------------------
PATHLIKE = st.one_of(
    st.sampled_from(["/etc/passwd", "../../x", "~/.ssh/id_rsa", "file:///etc/passwd", "C:\\w.pth", "..",
                     "org/name", "weights.safetensors", "timm/resnet18", ".", "./", "a/../../b"]),
    st.text(max_size=8),
)
TIMM_PATH_KEYS = ["pretrained_file", "checkpoint_path", "cache_dir", "pretrained_cfg_overlay", "pretrained_cfg"]


@pytest.fixture(scope="module")
def saved_timm(tmp_path_factory):
    """A saved timm model: the fuzz edits its config.json as a hostile publisher would."""
    directory = tmp_path_factory.mktemp("fuzz-loaded") / "model"
    spec = {"encoders": {"image": {"type": "timm/test_resnet", "img_size": 32}}, "fusion": {"type": "concat"},
            "head": {"type": "classification", "num_classes": 3}}
    mmzoo.create_model(spec).save_pretrained(directory)
    return directory, (directory / "config.json").read_text()


@FUZZ
@given(chosen=st.dictionaries(st.sampled_from(TIMM_PATH_KEYS), PATHLIKE, min_size=1, max_size=3))
def test_fuzzed_path_parameters_in_a_loaded_config_never_reach_a_part(saved_timm, chosen):
    import json

    from mmzoo.localpaths import local_path_reason

    directory, original = saved_timm
    edits = {k: ({"file": v} if k == "pretrained_cfg_overlay" else v) for k, v in chosen.items()}
    config = json.loads(original)
    config["spec"]["encoders"]["image"].update(edits)
    (directory / "config.json").write_text(json.dumps(config))
    local = [v for v in chosen.values() if local_path_reason(v) is not None]
    try:
        mmzoo.create_model(directory)
    except mmzoo.MmzooError as exc:
        assert not local or "may not name local files" in str(exc), (chosen, exc)
        return
    assert not local, f"{chosen}: a local path from config.json reached the part"

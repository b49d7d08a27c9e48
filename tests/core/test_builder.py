"""Composition, dimension checks, overrides, save/load with the per-part report."""

from __future__ import annotations

import json

import pytest
import torch

import mmzoo
from mmzoo.errors import BuildError, MmzooError, SpecError, WeightsError
from tests.core.plugin_sources import install_base

SPEC = {"encoders": {"a": {"type": "fixture-vector", "in_dim": 3, "output_dim": 6},
                     "b": {"type": "fixture-vector", "in_dim": 2, "output_dim": 5}},
        "fusion": {"type": "fixture-concat", "dim": 7},
        "head": {"type": "fixture-classify", "num_classes": 4}}
EXAMPLES = [{"a": [1, 2, 3], "b": [0, 1], "target": 3}, {"a": [0, 0, 1], "b": [1, 1], "target": 0}]


@pytest.fixture
def base(install_plugin):
    install_base(install_plugin)


def test_dims_flow_from_encoders_to_fusion_to_head(base):
    model = mmzoo.create_model(SPEC)
    assert model.fusion.proj.in_features == 11 and model.head.fc.in_features == 7
    out = model(model.preprocess(EXAMPLES))
    assert out.outputs.shape == (2, 4) and out.loss.ndim == 0
    assert set(out.features) == {"a", "b"} and out.features["a"].pooled.shape == (2, 6)
    assert out.fused.shape == (2, 7)
    assert model.part_parameters() == {"encoders.a": 24, "encoders.b": 15, "fusion": 84, "head": 32}


def test_no_target_no_loss_unless_the_head_needs_none(base):
    model = mmzoo.create_model(SPEC)
    batch = model.preprocess([{k: v for k, v in e.items() if k != "target"} for e in EXAMPLES])
    assert "target" not in batch and model(batch).loss is None
    pairs = mmzoo.create_model({**SPEC, "fusion": "fixture-split", "head": "fixture-pairs"})
    assert pairs(batch).loss is not None


def test_fusion_and_head_that_disagree_fail_at_build_time(base):
    with pytest.raises(BuildError, match="fusion 'fixture-split' gives one tensor per modality but head "
                                         "'fixture-classify' takes one tensor"):
        mmzoo.create_model({**SPEC, "fusion": "fixture-split"})
    with pytest.raises(BuildError, match="head 'fixture-pairs' takes one per modality"):
        mmzoo.create_model({**SPEC, "head": "fixture-pairs"})


def test_token_fusion_with_pooled_only_encoder_fails_naming_parts(base):
    spec = {**SPEC, "encoders": {"s": {"type": "fixture-tokens"}}, "fusion": "fixture-tokens-only"}
    with pytest.raises(BuildError, match=r"spec\.fusion \(fixture-tokens-only\) works on token sequences, "
                                         r"but encoder\(s\) s \(fixture-tokens\)"):
        mmzoo.create_model(spec)


def test_part_constructor_errors_are_located(base):
    spec = {**SPEC, "encoders": {"a": {"type": "fixture-vector", "in_dim": -3}}}
    with pytest.raises(BuildError, match=r"spec\.encoders\.a \(fixture-vector\): cannot build it"):
        mmzoo.create_model(spec)


def test_bad_batch_and_examples_say_what_is_expected(base):
    model = mmzoo.create_model(SPEC)
    with pytest.raises(MmzooError, match="the batch has no 'b'"):
        model({"a": torch.zeros(1, 3)})
    incomplete = model.preprocess([EXAMPLES[0], {"a": [1, 2, 3], "target": 1}])  # a missing input is allowed
    assert incomplete["present"]["b"].tolist() == [True, False] and incomplete["b"].shape[0] == 1
    with pytest.raises(MmzooError, match="fusion 'Concat' does not handle missing inputs .* "
                                         "example 1 has no 'b'"):
        model(incomplete)  # a third-party fusion without handles_missing: a clear error, not a shape error
    with pytest.raises(MmzooError, match="no example has 'b', .* Did you mean 'bb'"):
        model.preprocess([{"a": [1, 2, 3], "bb": [0, 1]}])
    with pytest.raises(MmzooError, match="some examples have a 'target'"):
        model.preprocess([EXAMPLES[0], {"a": [1, 2, 3], "b": [1, 2]}])
    with pytest.raises(MmzooError, match="non-empty list of example dicts"):
        model.preprocess(EXAMPLES[0])


def test_overrides_reach_parts(base):
    model = mmzoo.create_model(SPEC, head={"num_classes": 9}, encoders={"a": {"output_dim": 2}})
    assert model.head.fc.out_features == 9 and model.encoders["a"].output_dim == 2
    assert model.spec["head"]["num_classes"] == 9


def test_save_and_load_round_trip_is_exact(base, tmp_path):
    torch.manual_seed(0)
    model = mmzoo.create_model(SPEC).eval()
    batch = model.preprocess(EXAMPLES)
    model.save_pretrained(tmp_path / "m", extra={"metrics": {"acc": 0.5}})
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format"] == "mmzoo" and config["spec"] == model.spec
    assert config["requires"] == {"mmzoo-fixture-base": "0.1.0"} and config["metrics"] == {"acc": 0.5}
    loaded = mmzoo.create_model(tmp_path / "m").eval()
    assert loaded.load_report.complete
    assert [p.status for p in loaded.load_report.parts] == ["loaded"] * 4
    assert torch.equal(model(batch).outputs, loaded(batch).outputs)
    # parts whose factory takes `pretrained` are built without it when the model's weights follow
    assert loaded.encoders["a"].pretrained is False


def test_new_num_classes_rebuilds_only_the_head_and_says_so(base, tmp_path):
    torch.manual_seed(0)
    model = mmzoo.create_model(SPEC)
    model.save_pretrained(tmp_path / "m")
    loaded = mmzoo.create_model(str(tmp_path / "m"), head={"num_classes": 2})
    report = loaded.load_report
    assert report.part("head").status == "initialised"
    assert "num_classes: 4 -> 2" in report.part("head").reason
    assert all(report.part(p).status == "loaded" for p in ("encoders.a", "encoders.b", "fusion"))
    assert torch.equal(loaded.fusion.proj.weight, model.fusion.proj.weight)
    assert not loaded.head.fc.weight.is_meta and loaded.head.fc.out_features == 2
    assert "initialised" in str(report)


def test_weights_that_do_not_fit_are_an_error_unless_relaxed(base, tmp_path):
    mmzoo.create_model(SPEC).save_pretrained(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["spec"]["fusion"]["dim"] = 3  # the file's fusion and head no longer fit
    config_path.write_text(json.dumps(config))
    expected = r"(?s)does not fit this model:.*fusion: 2 shape mismatches.*head: 1 shape mismatches.*relaxed="
    with pytest.raises(WeightsError, match=expected):
        mmzoo.create_model(tmp_path / "m")
    model = mmzoo.create_model(tmp_path / "m", relaxed=["fusion", "head"])
    assert model.load_report.part("fusion").status in ("initialised", "partial")
    assert model.load_report.part("encoders.a").status == "loaded"
    model(model.preprocess(EXAMPLES)).loss.backward()


def test_pickle_only_directory_is_refused_unless_opted_in(base, tmp_path):
    model = mmzoo.create_model(SPEC)
    model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "m" / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="only pickle weights.*allow_pickle=True"):
        mmzoo.create_model(tmp_path / "m")
    loaded = mmzoo.create_model(tmp_path / "m", allow_pickle=True)
    assert torch.equal(loaded.head.fc.weight, model.head.fc.weight)


def test_pickle_named_model_pkl_loads_when_opted_in(base, tmp_path):
    """Regression: the directory loader knew .bin/.pt/.pth/.ckpt but not .pkl, so a directory with
    config.json and model.pkl loaded with allow_pickle=True failed with "no model.safetensors"."""
    model = mmzoo.create_model(SPEC).eval()
    model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "m" / "model.pkl")
    with pytest.raises(WeightsError, match=r"only pickle weights \(model.pkl\).*allow_pickle=True"):
        mmzoo.create_model(tmp_path / "m")
    loaded = mmzoo.create_model(tmp_path / "m", allow_pickle=True).eval()
    assert loaded.load_report.complete
    batch = model.preprocess(EXAMPLES)
    assert torch.equal(loaded(batch).outputs, model(batch).outputs)


def test_corrupted_or_truncated_safetensors_is_a_clear_error(base, tmp_path):
    mmzoo.create_model(SPEC).save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-20])
    with pytest.raises(WeightsError, match="model.safetensors is not a valid safetensors file.*truncated or corrupt"):
        mmzoo.create_model(tmp_path / "m")


def test_directory_and_path_mistakes(base, tmp_path):
    with pytest.raises(MmzooError, match="not an mmzoo model directory"):
        mmzoo.create_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SpecError, match="config.json: not valid JSON"):
        mmzoo.create_model(tmp_path)
    with pytest.raises(SpecError, match="missing.yaml: spec file not found"):
        mmzoo.create_model(tmp_path / "missing.yaml")
    with pytest.raises(MmzooError, match="unknown model 'nope'"):
        mmzoo.create_model("nope")
    with pytest.raises(SpecError, match="expected a model name"):
        mmzoo.create_model(42)
    with pytest.raises(MmzooError, match="a spec dict has none"):
        mmzoo.create_model(SPEC, pretrained=True)


def test_yaml_spec_file(base, tmp_path):
    import yaml

    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    assert mmzoo.create_model(tmp_path / "spec.yaml").head.fc.out_features == 4


def test_tied_weights_survive_save_and_load(base, tmp_path):
    model = mmzoo.create_model({**SPEC, "encoders": {"t": {"type": "fixture-tied", "output_dim": 3}}})
    model.save_pretrained(tmp_path / "m")
    loaded = mmzoo.create_model(tmp_path / "m")
    assert loaded.load_report.complete
    tied = loaded.encoders["t"]
    assert tied.second.weight is tied.first.weight
    assert torch.equal(tied.first.weight, model.encoders["t"].first.weight)
    batch = {"t": torch.ones(2, 3)}
    assert torch.equal(loaded(batch).outputs, model(batch).outputs)


def test_missing_distribution_from_config_is_named_with_version(base, tmp_path):
    mmzoo.create_model(SPEC).save_pretrained(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["spec"]["fusion"]["type"] = "fancy-fusion"
    config["requires"]["mmzoo-fancy"] = "2.3.1"
    config_path.write_text(json.dumps(config))
    with pytest.raises(MmzooError, match=r"mmzoo-fancy 2\.3\.1; install with: pip install 'mmzoo-fancy==2\.3\.1'"):
        mmzoo.create_model(tmp_path / "m")


def test_loading_a_saved_model_initialises_nothing(tmp_path):
    """Parameters are built on meta and filled from the file: no initialiser runs (they would pull in
    torch's decompositions, seconds of imports) and no random numbers are drawn."""
    from tests.support import run_python

    spec = {"encoders": {"image": {"type": "cnn", "in_channels": 1, "image_size": 28},
                         "text": {"type": "byte-gru"}},
            "fusion": {"type": "gated", "dim": 32}, "head": {"type": "classification", "num_classes": 3}}
    mmzoo.create_model(spec).save_pretrained(tmp_path / "m")
    code = (f"import sys, torch, mmzoo; state = torch.random.get_rng_state(); "
            f"m = mmzoo.create_model({str(tmp_path / 'm')!r}); "
            f"assert torch.equal(state, torch.random.get_rng_state()), 'an initialiser drew random numbers'; "
            f"assert 'torch._dynamo' not in sys.modules; assert m.load_report.complete; "
            f"assert not any(p.is_meta for p in m.parameters())")
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def _contrastive_spec(keys):
    return {"encoders": {k: {"type": "mlp", "in_dim": 4, "output_dim": 8} for k in keys},
            "fusion": {"type": "project", "dim": 8}, "head": "contrastive"}


def test_the_builder_binds_a_heads_input_keys_before_any_forward():
    """The contrastive head learns its pair (and with it its metric names) at build time."""
    model = mmzoo.create_model(_contrastive_spec(["first", "second"]))
    assert model.head.names == ("first", "second")


def test_a_contrastive_head_over_three_keys_without_pair_fails_at_build():
    with pytest.raises(BuildError, match=r"spec\.head.*3 embeddings.*set 'pair'"):
        mmzoo.create_model(_contrastive_spec(["a", "b", "c"]))

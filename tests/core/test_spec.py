"""Spec validation: every mistake is one located SpecError, never a traceback from deep code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmzoo
from mmzoo.errors import MmzooError, SpecError
from mmzoo.spec import PartRef, Spec, parse_registry_entry, parse_weights, read_yaml
from tests.core.plugin_sources import install_base

GOOD = {"encoders": {"v": {"type": "fixture-vector", "in_dim": 3}},
        "fusion": {"type": "fixture-concat", "dim": 4},
        "head": {"type": "fixture-classify", "num_classes": 2}}


@pytest.mark.parametrize("data, message", [
    ([1, 2], "spec: expected a mapping with encoders, fusion and head, got list"),
    ({**GOOD, "fusoin": {}},
     "spec.fusoin: unknown key; expected one of encoders, fusion, head. Did you mean 'fusion'?"),
    ({"encoders": GOOD["encoders"], "head": GOOD["head"]}, "spec: missing 'fusion'"),
    ({**GOOD, "encoders": {}}, "spec.encoders: needs at least one encoder"),
    ({**GOOD, "encoders": ["cnn"]}, "spec.encoders: expected a mapping of batch key -> encoder, got list"),
    ({**GOOD, "encoders": {"target": "x"}}, "spec.encoders.target: 'target' is reserved"),
    ({**GOOD, "encoders": {"a.b": "x"}}, "spec.encoders: batch keys must be non-empty strings without '.'"),
    ({**GOOD, "fusion": {"dim": 3}}, "spec.fusion: missing 'type'"),
    ({**GOOD, "head": {"type": 3}}, "spec.head.type: expected a part name, got 3"),
    ({**GOOD, "head": 7}, "spec.head: expected a mapping with a 'type' (or a part name), got int"),
    ({**GOOD, "head": {"type": "x", "bad key": 1}}, "spec.head: parameter names must be identifiers"),
])
def test_structural_mistakes_are_located(data, message):
    with pytest.raises(SpecError) as err:
        Spec.from_dict(data)
    assert message in str(err.value)


def test_part_shorthand_and_normalisation():
    spec = Spec.from_dict({**GOOD, "fusion": "fixture-concat"})
    assert spec.to_dict()["fusion"] == {"type": "fixture-concat"}


def test_spec_parts_are_typed_walked_in_build_order_and_round_trip():
    data = {"encoders": {"v": {"type": "fixture-vector", "in_dim": 3}, "w": "fixture-vector"},
            "fusion": {"type": "fixture-concat", "dim": 4}, "head": {"type": "fixture-classify", "num_classes": 2}}
    spec = Spec.from_dict(data)
    assert [(p.path, p.kind, p.name) for p in spec.parts()] == [
        ("encoders.v", "encoder", "fixture-vector"), ("encoders.w", "encoder", "fixture-vector"),
        ("fusion", "fusion", "fixture-concat"), ("head", "head", "fixture-classify")]
    assert spec.encoders["v"] == PartRef("encoders.v", "encoder", "fixture-vector", {"in_dim": 3})
    assert spec.encoders["v"].key == "v" and spec.head.key is None
    assert spec.part("head").params["num_classes"] == 2 and [p.path for p in spec.parts("fusion")] == ["fusion"]
    assert spec.to_dict() == {**data, "encoders": {**data["encoders"], "w": {"type": "fixture-vector"}}}
    assert Spec.from_dict(spec.to_dict()) == spec
    with pytest.raises(TypeError):  # frozen: parameters cannot be changed in place
        spec.head.params["num_classes"] = 3
    with pytest.raises(SpecError, match="no part 'haed'.*Did you mean 'head'"):
        spec.part("haed")


def test_spec_changes_are_new_specs():
    spec = Spec.from_dict(GOOD)
    pinned = spec.with_params("encoders.v", {"revision": "abc"})
    assert pinned.encoders["v"].params == {"in_dim": 3, "revision": "abc"} and "revision" not in spec.to_dict()
    assert pinned.changes_from(spec) == {"encoders.v": "revision: None -> 'abc'"}
    assert spec.changes_from(spec) == {}


@pytest.mark.parametrize("weights, message", [
    ({"repo": "no-slash"}, "models.m.weights.repo: expected a Hub repo id like 'org/name'"),
    ({"repo": "a/b", "sha256": "xyz"}, "models.m.weights.sha256: expected 64 lowercase hex digits"),
    ({"repo": "a/b", "revison": "main"}, "Did you mean 'revision'?"),
    ({"in1k": {"repo": "a/b"}, "bad tag!": {"repo": "a/b"}}, "weight tags must be words"),
    ([], "models.m.weights: expected a mapping"),
])
def test_weights_mistakes_are_located(weights, message):
    with pytest.raises(SpecError) as err:
        parse_registry_entry("m", {**GOOD, "weights": weights}, "models.m")
    assert message in str(err.value)


def test_weights_single_and_tagged():
    assert list(parse_weights({"repo": "a/b"}, "w")) == ["default"]
    tagged = parse_weights({"in1k": {"repo": "a/b", "revision": "v1"}, "ft": {"repo": "a/c"}}, "w")
    assert list(tagged) == ["in1k", "ft"] and tagged["ft"]["file"] == "model.safetensors"


def test_parameter_types_and_names_checked_at_build_time(install_plugin):
    install_base(install_plugin)
    bad = {**GOOD, "fusion": {"type": "fixture-concat", "dim": "x"}}
    with pytest.raises(SpecError, match=r"^spec\.fusion\.dim: expected int or null, got 'x'$"):
        mmzoo.create_model(bad)
    bad = {**GOOD, "head": {"type": "fixture-classify", "num_clases": 2}}
    with pytest.raises(SpecError, match=r"spec\.head\.num_clases: unknown parameter; .*Did you mean 'num_classes'"):
        mmzoo.create_model(bad)
    bad = {**GOOD, "head": {"type": "fixture-classify"}}
    with pytest.raises(SpecError, match=r"spec\.head\.num_classes: required parameter missing"):
        mmzoo.create_model(bad)


def test_registry_model_parameter_error_names_the_model(install_plugin, tmp_path):
    install_base(install_plugin)
    (tmp_path / "zoo.yaml").write_text(
        "models:\n  foo:\n    encoders: {v: {type: fixture-vector, in_dim: 3}}\n"
        "    fusion: {type: fixture-concat, dim: x}\n    head: {type: fixture-classify, num_classes: 2}\n")
    plugin = (f"import mmzoo\n\n@mmzoo.hookimpl\ndef mmzoo_register_models(registry):\n"
              f"    registry.add_models_from_yaml({str(tmp_path / 'zoo.yaml')!r})\n")
    install_plugin("mmzoo-zoo2", {"fixture_zoo2": plugin}, {"z": "fixture_zoo2"})
    with pytest.raises(SpecError, match=r"^models\.foo\.fusion\.dim: expected int or null, got 'x'$"):
        mmzoo.create_model("foo")


def test_read_yaml_reports_file_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("encoders:\n  image: {type: cnn\nfusion: x\n")
    with pytest.raises(SpecError, match=r"bad\.yaml:\d+:\d+: invalid YAML"):
        read_yaml(path)
    with pytest.raises(SpecError, match="missing.yaml: file not found"):
        read_yaml(tmp_path / "missing.yaml")


def test_read_yaml_raises_the_callers_error_type(tmp_path):
    from mmzoo.errors import ConfigError

    with pytest.raises(ConfigError, match="run.yaml: config file not found"):
        read_yaml(tmp_path / "run.yaml", error=ConfigError, what="config file")
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2:1: invalid YAML"):
        read_yaml(tmp_path / "bad.yaml", error=ConfigError)


def test_yaml_is_read_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("encoders: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        read_yaml(path)


def test_overrides_merge_and_type_change_replaces_part():
    spec = Spec.from_dict(GOOD)
    merged = spec.merge({"head": {"num_classes": 5}, "fusion": {"type": "other"}}).to_dict()
    assert merged["head"] == {"type": "fixture-classify", "num_classes": 5}
    assert merged["fusion"] == {"type": "other"}
    added = spec.merge({"encoders": {"u": "fixture-vector"}})
    assert added.paths() == ["encoders.v", "encoders.u", "fusion", "head"]
    with pytest.raises(SpecError, match="unknown override 'haed'.*Did you mean 'head'"):
        spec.merge({"haed": {}})


# ----- property: whatever the input, the validator raises only SpecError ------------------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
keys = st.one_of(st.sampled_from(["encoders", "fusion", "head", "type", "dim", "target", "weights",
                                  "description", "repo", "sha256", "revision", "file"]), st.text(max_size=6))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
near_specs = st.fixed_dictionaries({}, optional={
    "encoders": st.one_of(values, st.dictionaries(st.text(max_size=5), values, max_size=3)),
    "fusion": values, "head": values, "weights": values, "description": values})


@settings(max_examples=400, deadline=None)
@given(st.one_of(values, near_specs))
def test_validator_raises_only_spec_errors(data):
    try:
        parse_registry_entry("m", data, "models.m")
    except SpecError as exc:
        assert str(exc).startswith("models.m")
    try:
        Spec.from_dict(GOOD).merge({"head": data})
    except SpecError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.one_of(values, near_specs))
def test_create_model_on_arbitrary_dicts_raises_only_mmzoo_errors(data):
    if isinstance(data, dict):
        try:
            mmzoo.create_model(data)
        except MmzooError:
            pass


# ----- property: well-formed specs of builtin parts with arbitrary parameter values ------------
param_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 600), st.floats(-2, 2, allow_nan=False),
                         st.text(max_size=4), st.lists(st.integers(-2, 40), max_size=3))
encoder_specs = st.one_of(
    st.fixed_dictionaries({"type": st.just("mlp")}, optional={"in_dim": param_values, "output_dim": param_values,
                                                              "hidden_dims": param_values, "dropout": param_values}),
    st.fixed_dictionaries({"type": st.just("cnn")}, optional={"in_channels": param_values, "channels": param_values,
                                                              "image_size": param_values, "output_dim": param_values}),
    st.fixed_dictionaries({"type": st.just("byte-gru")}, optional={"hidden_dim": param_values,
                                                                   "max_length": param_values}),
)
fusion_specs = st.fixed_dictionaries(
    {"type": st.sampled_from(["concat", "sum", "gated", "attention", "cross-attention", "bilinear", "film",
                              "project"])},
    optional={"dim": param_values, "heads": param_values, "rank": param_values, "condition": param_values})
head_specs = st.fixed_dictionaries(
    {"type": st.sampled_from(["classification", "multilabel", "regression", "contrastive"])},
    optional={"num_classes": param_values, "num_labels": param_values, "num_outputs": param_values,
              "temperature": param_values})


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["image", "text", "vec"]), encoder_specs, min_size=1, max_size=3),
       fusion_specs, head_specs)
def test_builtin_specs_with_arbitrary_parameters_fail_only_with_mmzoo_errors(encoders, fusion, head):
    try:
        mmzoo.create_model({"encoders": encoders, "fusion": fusion, "head": head})
    except MmzooError as exc:
        assert str(exc).startswith("spec"), str(exc)

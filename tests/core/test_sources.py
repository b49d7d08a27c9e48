"""Model sources: every form create_model accepts is classified in one place, and ambiguity is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mmzoo
from mmzoo.errors import MmzooError, SpecError
from mmzoo.sources import parse_source
from tests.core.plugin_sources import install_foo

SPEC = {"encoders": {"x": {"type": "mlp", "in_dim": 3, "output_dim": 4}}, "fusion": {"type": "concat"},
        "head": {"type": "classification", "num_classes": 2}}


def test_each_form_is_told_apart_without_building_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "saved").mkdir()
    (tmp_path / "spec.yaml").write_text("encoders: {}\n")
    cases = {
        "hf-hub:org/repo@v1": ("hf-hub", "org/repo@v1"),
        "local-dir:saved": ("local-dir", Path("saved")),
        "saved": ("local-dir", Path("saved")),
        "spec.yaml": ("spec-file", Path("spec.yaml")),
        "missing.yml": ("spec-file", Path("missing.yml")),
        "digits-av-gated": ("registry", "digits-av-gated"),
        "digits-av-gated.in1k": ("registry", "digits-av-gated.in1k"),
        "mmzoo:digits-av-gated": ("registry", "mmzoo:digits-av-gated"),
    }
    for given, (kind, target) in cases.items():
        source = parse_source(given)
        assert (source.kind, source.target, source.label) == (kind, target, given), given
    assert parse_source(Path("saved")).kind == "local-dir" and parse_source(Path("x.json")).kind == "spec-file"
    assert parse_source(SPEC).kind == "spec"
    with pytest.raises(SpecError, match="nothing after 'local-dir:'"):
        parse_source("local-dir:")
    with pytest.raises(SpecError, match="expected a model name, 'hf-hub:org/repo', 'local-dir:PATH'"):
        parse_source(3.5)


def test_a_folder_named_like_a_registry_model_is_refused_naming_both(install_plugin, tmp_path, monkeypatch):
    install_foo(install_plugin)
    monkeypatch.chdir(tmp_path)
    mmzoo.create_model("foo-words-max").save_pretrained("foo-words-max")
    with pytest.raises(SpecError) as err:
        mmzoo.create_model("foo-words-max")
    message = str(err.value)
    assert "'foo-words-max' is both a directory" in message and str(tmp_path / "foo-words-max") in message
    assert "'local-dir:foo-words-max' for the directory" in message
    assert "'mmzoo-foo:foo-words-max' for the registry model" in message
    from_dir = mmzoo.create_model("local-dir:foo-words-max")
    assert from_dir.load_report.complete and from_dir.load_report.source == "local-dir:foo-words-max"
    from_registry = mmzoo.create_model("mmzoo-foo:foo-words-max")
    assert from_registry.load_report is None  # a registry model without weights: freshly initialised
    assert mmzoo.create_model(Path("foo-words-max")).load_report.complete  # a Path is never a registry name


def test_local_dir_prefix_needs_a_directory(tmp_path):
    with pytest.raises(SpecError, match="local-dir:.*nowhere: no such directory"):
        mmzoo.create_model(f"local-dir:{tmp_path / 'nowhere'}")
    with pytest.raises(SpecError, match="not an mmzoo model directory"):
        mmzoo.create_model(f"local-dir:{tmp_path}")


def test_pretrained_needs_a_source_with_weights(tmp_path):
    (tmp_path / "spec.yaml").write_text("encoders: {x: {type: mlp, in_dim: 3}}\nfusion: concat\n"
                                        "head: {type: classification, num_classes: 2}\n")
    with pytest.raises(MmzooError, match="spec.yaml is a spec file without weights"):
        mmzoo.create_model(tmp_path / "spec.yaml", pretrained=True)
    torch.manual_seed(0)
    assert mmzoo.create_model(str(tmp_path / "spec.yaml"), head={"num_classes": 5}).head.num_classes == 5

"""The core distribution registers its builtin parts lazily, through the public hook."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import mmzoo
import mmzoo.parts
from mmzoo.parts import ENCODERS, FUSIONS, HEADS, mmzoo_register_components


class RecordingRegistry:
    def __init__(self):
        self.calls = []

    def add_encoder(self, name, factory, *, modality, description=""):
        self.calls.append(("encoder", name, factory, modality, description))

    def add_fusion(self, name, factory, *, description=""):
        self.calls.append(("fusion", name, factory, None, description))

    def add_head(self, name, factory, *, description=""):
        self.calls.append(("head", name, factory, None, description))


def _load(factory: str):
    module, _, attr = factory.partition(":")
    return getattr(importlib.import_module(module), attr)


def test_hook_registers_every_builtin_with_lazy_factories_and_one_line_descriptions():
    registry = RecordingRegistry()
    mmzoo_register_components(registry)
    names = {(kind, name) for kind, name, *_ in registry.calls}
    assert names == ({("encoder", n) for n in ENCODERS} | {("fusion", n) for n in FUSIONS}
                     | {("head", n) for n in HEADS})
    assert {n for _, n in names} >= {
        "mlp", "cnn", "byte-gru", "mel-cnn", "concat", "sum", "gated", "attention", "cross-attention",
        "bilinear", "film", "project", "classification", "multilabel", "regression", "contrastive",
    }
    for kind, name, factory, modality, description in registry.calls:
        assert isinstance(factory, str) and ":" in factory, name
        cls = _load(factory)
        assert isinstance(cls, type), name
        assert description and "\n" not in description and len(description) < 100, name
        if kind == "encoder":
            assert modality == cls.modality and modality in {"image", "text", "audio", "vector"}


def test_hook_is_called_by_pluggy_like_any_plugin():
    import pluggy

    from mmzoo import hookspecs

    manager = pluggy.PluginManager("mmzoo")
    manager.add_hookspecs(hookspecs)
    manager.register(mmzoo.parts, name="mmzoo/parts")
    registry = RecordingRegistry()
    manager.hook.mmzoo_register_components(registry=registry)
    assert {name for _, name, *_ in registry.calls} == set(ENCODERS) | set(FUSIONS) | set(HEADS)


def test_importing_the_plugin_module_and_the_kit_does_not_import_torch():
    code = ("import sys, mmzoo.parts, mmzoo.testing; mmzoo.parts.mmzoo_register_components; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_base_classes_are_reachable_lazily():
    from mmzoo.parts.base import Encoder, Fusion, Head

    assert mmzoo.parts.Encoder is Encoder and mmzoo.parts.Fusion is Fusion and mmzoo.parts.Head is Head
    assert Fusion.output_kind == "tensor" and Fusion.requires_tokens is False
    assert Head.input_kind == "tensor" and Head.requires_target is True
    with pytest.raises(AttributeError, match="Nope"):
        mmzoo.parts.Nope  # noqa: B018


def test_builtins_are_listed_and_resolved_through_the_installed_entry_point(fresh_plugins):
    from mmzoo.plugins import get_registry

    listed = set(mmzoo.list_components())
    assert listed >= set(ENCODERS) | set(FUSIONS) | set(HEADS)
    registry = get_registry()
    resolved = registry.resolve("encoder", "mmzoo:mel-cnn")
    assert resolved.modalities() == ("audio",) and resolved.dist == "mmzoo"
    assert resolved.factory().__name__ == "MelCNNEncoder"

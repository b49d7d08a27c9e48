"""Every model in registry.yaml (and every plugin's models) builds: a broken entry fails CI."""

from __future__ import annotations

import pytest

import mmzoo
from mmzoo.builder import build_model
from mmzoo.plugins import get_registry, reset
from mmzoo.weights import skip_init


def _zoo_names():
    reset()
    names = mmzoo.list_models()
    reset()
    return names


def test_registry_has_no_problems():
    reset()
    registry = get_registry()
    assert registry.problems == [], [p.message for p in registry.problems]
    failed = {p.dist: p.error for p in mmzoo.plugins.plugin_infos() if p.status == "failed"}
    assert failed == {}


@pytest.mark.parametrize("name", _zoo_names())
def test_every_registry_model_builds(name):
    entry, _ = get_registry().model(name)
    with skip_init():  # parameters on the meta device: nothing allocated
        model = build_model(entry.spec, name=name, where=f"models.{name}", for_weights=True)
    assert model.part_parameters()["head"] > 0
    assert set(model.encoders) == set(entry.spec.encoders)
    assert all(d != "unknown" for d in model.requires.values())

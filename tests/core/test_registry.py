"""The registry's own interface: families with per-member modalities, one listing routine, commits."""

from __future__ import annotations

import json

import pytest

import mmzoo
from mmzoo.errors import MissingPluginError, SpecError
from mmzoo.registry import Registry
from mmzoo.spec import Spec
from tests.core.plugin_sources import BASE_PARTS
from tests.support import run_cli

FAMILY_PLUGIN = '''
import mmzoo


@mmzoo.hookimpl
def mmzoo_register_components(registry):
    registry.add_family("encoder", "sense/", "fixture_sense:build", modality=["sight", "sound"],
                        members="fixture_sense:members", modality_of="fixture_sense:modality_of",
                        description="sight or sound, by member")
    registry.add_encoder("both-ways", "fixture_base_parts:VectorEncoder", modality="sight|sound")


def build(member, in_dim=3, output_dim=4):
    from fixture_base_parts import VectorEncoder

    return VectorEncoder(in_dim, output_dim)


def members():
    return ["eye", "ear", "nose"]


def modality_of(member, params):
    return params.get("as") or {"eye": "sight", "ear": "sound"}.get(member)
'''


@pytest.fixture
def senses(install_plugin):
    return install_plugin("mmzoo-senses", {"fixture_sense_plugin": FAMILY_PLUGIN, "fixture_sense": FAMILY_PLUGIN,
                                           "fixture_base_parts": BASE_PARTS}, {"senses": "fixture_sense_plugin"})


def test_family_members_resolve_their_own_modality(senses):
    from mmzoo.plugins import get_registry

    registry = get_registry()
    assert registry.resolve("encoder", "sense/eye").modalities() == ("sight",)
    assert registry.resolve("encoder", "sense/ear").modalities() == ("sound",)
    assert registry.resolve("encoder", "sense/nose").modalities() == ("sight", "sound")  # resolver cannot tell
    assert registry.resolve("encoder", "sense/nose").modalities({"as": ["smell"]}) == ("smell",)
    assert registry.resolve("encoder", "both-ways").modalities() == ("sight", "sound")  # "a|b" still accepted


def test_one_listing_routine_serves_names_rows_and_the_cli(senses):
    assert mmzoo.list_components("encoder", "sense*") == ["sense/*"]
    assert mmzoo.list_components("encoder", "sense/e*") == ["sense/ear", "sense/eye"]
    from mmzoo.listing import component_rows

    rows = component_rows("encoder", "sense/*")
    assert [(r["name"], r["modality"], r["family"]) for r in rows] == [
        ("sense/ear", "sight|sound", False), ("sense/eye", "sight|sound", False), ("sense/nose", "sight|sound", False)]
    assert component_rows("encoder", "sense*")[0]["family"] is True
    listed = json.loads(run_cli("list", "sense/*", "--json", pythonpath=[senses]).stdout)
    assert [r["name"] for r in listed] == ["sense/ear", "sense/eye", "sense/nose"]


def test_registering_bad_modalities_is_a_spec_error():
    registrar = Registry().registrar("mmzoo-x")
    with pytest.raises(SpecError, match="add_encoder\\('e'\\): modality must name one or more modalities"):
        registrar.add_encoder("e", "m:E", modality=["image", ""])
    with pytest.raises(SpecError, match="add_family\\('f/'\\): an encoder family needs a modality"):
        registrar.add_family("encoder", "f/", "m:F")
    with pytest.raises(SpecError, match="modality_of=...\\): a lazy factory must look like"):
        registrar.add_family("encoder", "f/", "m:F", modality="image", modality_of="nocolon")


def test_staged_parts_appear_only_when_committed_and_failures_are_recorded():
    registry = Registry()
    registrar = registry.registrar("mmzoo-x")
    registrar.add_fusion("mine", "m:Mine")
    assert registry.names("fusion") == []
    registry.commit(registrar)
    assert registry.names("fusion") == ["mine"]
    registry.mark_failed("mmzoo", "ImportError: nope")  # an installed distribution whose plugin failed
    assert registry.failed_dists == {"mmzoo": "ImportError: nope"}
    head = Spec.from_dict({"encoders": {"a": "x"}, "fusion": "y", "head": "z"}).head
    with pytest.raises(MissingPluginError, match="unknown head 'z'.*Installed plugin.s. mmzoo failed to load"):
        registry.resolve_part(head, requires={"mmzoo": mmzoo.__version__})
    with pytest.raises(MissingPluginError, match=r"not installed: mmzoo-y 1\.0; install with: pip install 'mmzoo-y==1"):
        registry.resolve_part(head, requires={"mmzoo-y": "1.0"})

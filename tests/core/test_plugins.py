"""Plugin discovery through real entry points: isolation, allowlist, strictness, name clashes."""

from __future__ import annotations

import pytest

import mmzoo
from mmzoo.errors import AmbiguousNameError, MissingPluginError, PluginError, UnknownNameError
from tests.core.plugin_sources import BASE_PARTS, BASE_PLUGIN, install_base, install_foo


def _info(plugins, dist):
    return next(p for p in plugins.plugin_infos() if p.dist == dist)


def test_third_party_plugin_parts_usable_by_name_and_mixed_with_others(install_plugin):
    install_foo(install_plugin)
    assert "hashed-words" in mmzoo.list_components("encoder")
    assert "max" in mmzoo.list_components("fusion")
    assert "foo-words-max" in mmzoo.list_models()
    model = mmzoo.create_model("foo-words-max")
    batch = model.preprocess([{"text": "a cat", "vec": [1, 2, 3, 4], "target": 1},
                              {"text": "the stock market", "vec": [0, 0, 1, 0], "target": 2}])
    out = model(batch)
    assert out.outputs.shape == (2, 3)
    out.loss.backward()
    assert model.encoders["text"].proj.weight.grad is not None
    # a spec that mixes the plugin's parts with another distribution's, qualified names included
    mixed = mmzoo.create_model({"encoders": {"t": {"type": "mmzoo-foo:hashed-words"}},
                                "fusion": {"type": "fixture-concat", "dim": 5},
                                "head": {"type": "fixture-classify", "num_classes": 2}})
    assert mixed.requires.keys() == {"mmzoo-foo", "mmzoo-fixture-base"}


def test_broken_import_is_skipped_reported_and_warned_once(install_plugin, capsys):
    install_base(install_plugin)
    install_plugin("mmzoo-broken", {"fixture_broken": "import not_a_module_anywhere\n"}, {"broken": "fixture_broken"})
    assert "fixture-vector" in mmzoo.list_components("encoder")  # others keep working
    mmzoo.list_models()
    err = capsys.readouterr().err
    assert err.count("mmzoo-broken") == 1 and "not_a_module_anywhere" in err
    info = _info(mmzoo.plugins, "mmzoo-broken")
    assert info.status == "failed" and "ModuleNotFoundError" in info.error


def test_hook_that_raises_leaves_nothing_half_registered(install_plugin, capsys):
    source = BASE_PLUGIN.replace("    registry.add_head(\"fixture-pairs\", \"fixture_base_parts:Pairs\")\n",
                                 "    raise RuntimeError('boom in hook')\n")
    install_plugin("mmzoo-halfway", {"fixture_half": source, "fixture_base_parts": BASE_PARTS}, {"h": "fixture_half"})
    assert "fixture-vector" not in mmzoo.list_components()
    info = _info(mmzoo.plugins, "mmzoo-halfway")
    assert info.status == "failed" and "boom in hook" in info.error
    assert "mmzoo-halfway" in capsys.readouterr().err


def test_strict_mode_makes_failures_fatal(install_plugin, monkeypatch):
    install_plugin("mmzoo-broken", {"fixture_broken": "raise ValueError('bad plugin')\n"}, {"broken": "fixture_broken"})
    monkeypatch.setenv("MMZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="mmzoo-broken.*bad plugin"):
        mmzoo.list_models()


def test_allowlist_loads_only_named_distributions(install_plugin, monkeypatch):
    install_foo(install_plugin)
    monkeypatch.setenv("MMZOO_PLUGINS", "mmzoo-fixture-base")
    mmzoo.plugins.reset()
    assert "fixture-vector" in mmzoo.list_components()
    assert "hashed-words" not in mmzoo.list_components()
    assert _info(mmzoo.plugins, "mmzoo-foo").status == "disabled"
    assert _info(mmzoo.plugins, "mmzoo").status == "loaded"  # the core's own parts always load


def test_same_name_from_two_distributions_is_ambiguous_with_qualified_choices(install_plugin):
    install_base(install_plugin)
    clash = BASE_PLUGIN.replace("fixture_base_parts", "fixture_clash_parts")
    install_plugin("mmzoo-clash", {"fixture_clash": clash, "fixture_clash_parts": BASE_PARTS}, {"c": "fixture_clash"})
    spec = {"encoders": {"v": {"type": "fixture-vector", "in_dim": 2}}, "fusion": "fixture-concat",
            "head": {"type": "fixture-classify", "num_classes": 2}}
    with pytest.raises(AmbiguousNameError) as err:
        mmzoo.create_model(spec)
    message = str(err.value)
    assert "'mmzoo-clash:fixture-vector'" in message and "'mmzoo-fixture-base:fixture-vector'" in message
    assert "spec.encoders.v.type" in message
    spec = {"encoders": {"v": {"type": "mmzoo-clash:fixture-vector", "in_dim": 2}},
            "fusion": "mmzoo-clash:fixture-concat", "head": {"type": "mmzoo-clash:fixture-classify", "num_classes": 2}}
    assert mmzoo.create_model(spec).requires.keys() == {"mmzoo-clash"}
    assert "mmzoo-clash:fixture-vector" in [r["name"] for r in __import__("mmzoo.listing").listing.component_rows(
        "encoder")]


def test_unknown_name_suggests_close_matches(install_plugin):
    install_base(install_plugin)
    registry = mmzoo.plugins.get_registry()
    with pytest.raises(UnknownNameError, match=r"unknown encoder 'fixture-vectr'\. Did you mean 'fixture-vector'"):
        registry.resolve("encoder", "fixture-vectr")
    with pytest.raises(UnknownNameError, match="'fixture-concat' is a fusion, not a encoder|is a fusion"):
        registry.resolve("encoder", "fixture-concat")


def test_misspelled_hook_name_fails_the_plugin_with_a_suggestion(install_plugin):
    source = "import mmzoo\n\n@mmzoo.hookimpl\ndef mmzoo_register_component(registry):\n    pass\n"
    install_plugin("mmzoo-typo", {"fixture_typo": source}, {"t": "fixture_typo"})
    mmzoo.list_models()
    info = _info(mmzoo.plugins, "mmzoo-typo")
    assert info.status == "failed" and "Did you mean 'mmzoo_register_components'" in info.error


def test_registry_yaml_with_a_bad_entry_keeps_the_good_ones(install_plugin, tmp_path, capsys):
    install_base(install_plugin)
    good = ("  good:\n    encoders: {v: {type: fixture-vector, in_dim: 2}}\n    fusion: fixture-concat\n"
            "    head: {type: fixture-classify, num_classes: 2}\n")
    bad = "  bad:\n    encoders: {}\n    fusion: fixture-concat\n    head: fixture-classify\n"
    (tmp_path / "zoo.yaml").write_text("models:\n" + good + bad, encoding="utf-8")
    (tmp_path / "list.yaml").write_text("- not\n- a mapping\n", encoding="utf-8")
    plugin = (f"import mmzoo\n\n@mmzoo.hookimpl\ndef mmzoo_register_models(registry):\n"
              f"    registry.add_models_from_yaml({str(tmp_path / 'zoo.yaml')!r})\n"
              f"    registry.add_models_from_yaml({str(tmp_path / 'list.yaml')!r})\n")
    install_plugin("mmzoo-zoo", {"fixture_zoo": plugin}, {"z": "fixture_zoo"})
    assert "good" in mmzoo.list_models() and "bad" not in mmzoo.list_models()
    problems = [p.message for p in mmzoo.plugins.get_registry().problems if p.dist == "mmzoo-zoo"]
    assert any("models.bad.encoders: needs at least one encoder" in m for m in problems)
    assert any("list.yaml: expected a mapping with a top-level 'models:'" in m for m in problems)
    assert "models.bad.encoders" in capsys.readouterr().err


def test_registering_a_name_twice_in_one_distribution_fails_that_plugin(install_plugin):
    source = ("import mmzoo\n\n@mmzoo.hookimpl\ndef mmzoo_register_components(registry):\n"
              "    registry.add_fusion('twice', 'x:Y')\n    registry.add_fusion('twice', 'x:Z')\n")
    install_plugin("mmzoo-twice", {"fixture_twice": source}, {"t": "fixture_twice"})
    mmzoo.list_components()
    assert "registered twice" in _info(mmzoo.plugins, "mmzoo-twice").error


def test_part_of_a_known_but_uninstalled_plugin_names_what_to_install():
    from mmzoo.registry import Registry

    with pytest.raises(MissingPluginError, match="'mmzoo-timm' distribution, which is not installed.*pip install "
                       "mmzoo-timm"):
        Registry().resolve("encoder", "timm/resnet18")


def test_part_of_a_plugin_left_out_by_mmzoo_plugins_says_so(fresh_plugins, monkeypatch):
    monkeypatch.setenv("MMZOO_PLUGINS", "mmzoo-transformers")  # the timm plugin is installed, but left out
    spec = {"encoders": {"image": {"type": "timm/resnet18"}}, "fusion": "concat",
            "head": {"type": "classification", "num_classes": 2}}
    with pytest.raises(MissingPluginError, match="'mmzoo-timm' distribution, which MMZOO_PLUGINS leaves out"):
        mmzoo.create_model(spec)


def test_lazy_factory_that_fails_to_import_names_the_distribution(install_plugin):
    source = ("import mmzoo\n\n@mmzoo.hookimpl\ndef mmzoo_register_components(registry):\n"
              "    registry.add_fusion('ghost', 'fixture_no_such_module:Ghost')\n")
    install_plugin("mmzoo-ghost", {"fixture_ghost": source}, {"g": "fixture_ghost"})
    with pytest.raises(PluginError, match="registered by mmzoo-ghost"):
        mmzoo.plugins.get_registry().resolve("fusion", "ghost").factory()


def test_builtin_entry_points_missing_from_old_metadata_still_load(tmp_path, monkeypatch, fresh_plugins):
    """An editable install made before an entry point was added declares fewer builtin modules: the
    missing ones load anyway, as the installed core distribution's."""
    import importlib

    from tests.support import write_distribution

    stale = {"parts": "mmzoo.parts", "datasets": "mmzoo.data", "zoo": "mmzoo.zoo"}  # no loggers
    monkeypatch.syspath_prepend(str(write_distribution(tmp_path / "site", "mmzoo", {}, stale, version="0.0.9")))
    importlib.invalidate_caches()
    fresh_plugins.reset()
    assert "tensorboard" in mmzoo.list_components("logger")
    core = _info(mmzoo.plugins, "mmzoo")
    assert core.version == "0.0.9" and core.status == "loaded"
    assert "loggers = mmzoo.loggers" in core.entry_points
    assert fresh_plugins.get_registry().resolve("logger", "tensorboard").dist == "mmzoo"

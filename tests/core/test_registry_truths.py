"""What the registry and builder say about plugins' mistakes: models naming unknown parts, an
MMZOO_PLUGINS name that matches nothing, and an encoder whose output_dim is not its real width."""

from __future__ import annotations

import json

import pytest

import mmzoo
from mmzoo.cli import main
from mmzoo.errors import BuildError, PluginError, UnknownNameError

MODELS_PLUGIN = '''
import mmzoo


@mmzoo.hookimpl
def mmzoo_register_models(registry):
    head = {"type": "classification", "num_classes": 2}
    vec = {"type": "mlp", "in_dim": 4, "output_dim": 8}
    registry.add_model("uses-a-later-plugin", {"encoders": {"v": {"type": "late-vector"}}, "fusion": "concat",
                                               "head": head})
    registry.add_model("names-a-typo", {"encoders": {"v": vec}, "fusion": {"type": "concatt"}, "head": head})
'''

PARTS_PLUGIN = '''
import mmzoo


@mmzoo.hookimpl
def mmzoo_register_components(registry):
    registry.add_encoder("late-vector", "fixture_zz_parts:LateVector", modality="vector")
    registry.add_encoder("liar", "fixture_zz_parts:Liar", modality="vector")
'''

PARTS = '''
import torch
from torch import nn


class LateVector(nn.Module):
    def __init__(self, in_dim=4, output_dim=8):
        super().__init__()
        self.output_dim = output_dim
        self.net = nn.Linear(in_dim, output_dim)

    def preprocess(self, examples):
        return torch.tensor(examples, dtype=torch.float32)

    def forward(self, x):
        return self.net(x)


class Liar(LateVector):
    """Says it is 16 wide, returns 8-wide features (and 8-wide tokens when asked)."""

    def __init__(self, tokens=False):
        super().__init__(4, 8)
        self.output_dim = 16
        self.tokens = tokens

    def forward(self, x):
        from mmzoo import EncoderOutput

        pooled = self.net(x)
        if self.tokens:
            return EncoderOutput(torch.zeros(x.shape[0], 16), tokens=pooled[:, None, :])
        return pooled
'''


@pytest.fixture
def two_plugins(install_plugin):
    """``mmzoo-aa-models`` (sorted first) names a part of ``mmzoo-zz-parts`` and a part nobody has."""
    install_plugin("mmzoo-zz-parts", {"fixture_zz": PARTS_PLUGIN, "fixture_zz_parts": PARTS}, {"zz": "fixture_zz"})
    return install_plugin("mmzoo-aa-models", {"fixture_aa": MODELS_PLUGIN}, {"aa": "fixture_aa"})


def test_a_model_naming_an_unknown_part_is_listed_with_the_problem(two_plugins, capsys):
    assert {"uses-a-later-plugin", "names-a-typo"} <= set(mmzoo.list_models())
    assert capsys.readouterr().err == ""  # no warning on every command: list and plugins say it
    assert main(["list", "--kind", "model", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["uses-a-later-plugin"]["problems"] == []  # another plugin's part: resolved once all registered
    (problem,) = rows["names-a-typo"]["problems"]
    assert "models.names-a-typo.fusion.type: unknown fusion 'concatt'. Did you mean 'concat'?" in problem
    assert main(["list", "names-*"]) == 0
    text = capsys.readouterr().out
    assert "  names-a-typo" in text and "    problem: models.names-a-typo.fusion.type: unknown fusion" in text
    assert main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "problem: model 'names-a-typo' cannot be built: models.names-a-typo.fusion.type: unknown fusion" in text
    assert "uses-a-later-plugin' cannot" not in text
    with pytest.raises(UnknownNameError, match="unknown fusion 'concatt'"):
        mmzoo.create_model("names-a-typo")
    assert mmzoo.create_model("uses-a-later-plugin").encoders["v"].output_dim == 8


def test_strict_plugins_make_an_unbuildable_model_fatal(two_plugins, monkeypatch):
    monkeypatch.setenv("MMZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="mmzoo-aa-models: .*unknown fusion 'concatt'"):
        mmzoo.list_models()


def test_mmzoo_plugins_naming_no_installed_distribution_warns(two_plugins, monkeypatch, capsys):
    monkeypatch.setenv("MMZOO_PLUGINS", "mmzoo-zz-part,mmzoo-aa-models")
    mmzoo.list_models()
    err = capsys.readouterr().err
    assert ("mmzoo: warning: MMZOO_PLUGINS names 'mmzoo-zz-part', which is not an installed plugin distribution. "
            "Did you mean 'mmzoo-zz-parts'? Installed plugin distributions: ") in err
    assert "mmzoo-aa-models, " in err and err.count("warning: MMZOO_PLUGINS") == 1
    mmzoo.plugins.reset()
    monkeypatch.setenv("MMZOO_PLUGINS", "mmzoo_zz_parts,aa")  # a distribution, and an entry-point name
    mmzoo.list_models()
    assert "MMZOO_PLUGINS" not in capsys.readouterr().err
    mmzoo.plugins.reset()
    monkeypatch.setenv("MMZOO_STRICT_PLUGINS", "1")
    monkeypatch.setenv("MMZOO_PLUGINS", "nothing-like-it")
    with pytest.raises(PluginError, match="MMZOO_PLUGINS names 'nothing-like-it'"):
        mmzoo.list_models()


@pytest.mark.parametrize(("tokens", "what"), [(False, "pooled"), (True, "tokens")])
def test_an_encoder_whose_output_dim_lies_is_named_before_the_fusion_runs(two_plugins, tokens, what):
    model = mmzoo.create_model({"encoders": {"v": {"type": "liar", "tokens": tokens}}, "fusion": "concat",
                                "head": {"type": "classification", "num_classes": 2}})
    batch = model.preprocess([{"v": [1.0, 2.0, 3.0, 4.0]}, {"v": [0.0, 1.0, 0.0, 1.0]}])
    with pytest.raises(BuildError) as err:
        model(batch)
    message = str(err.value)
    assert message.startswith(f"encoders.v (liar): output_dim says 16 but forward returned {what} features of "
                               "width 8")
    assert "head" not in message.split(";")[0]

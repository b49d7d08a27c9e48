"""#15 point 3: the install hint quotes only what was validated from a saved model's ``requires``.

``requires`` comes from a config.json (a directory or the Hub): every distribution name must be a PEP 508
name and every version a PEP 440 version before it can reach a message or a ``pip install`` line.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmzoo
from mmzoo.errors import MissingPluginError, SpecError
from mmzoo.plugins import get_registry
from mmzoo.saved import check_requires, read_model_dir

SPEC = {"encoders": {"x": {"type": "mlp", "in_dim": 3, "output_dim": 4}},
        "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}}


def saved_with(tmp_path, requires, fusion="concat"):
    mmzoo.create_model(SPEC).save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["requires"] = requires
    config["spec"]["fusion"]["type"] = fusion
    path.write_text(json.dumps(config))
    return tmp_path / "m"


@pytest.mark.parametrize("requires, message", [
    ({"mmzoo-fancy": "latest"}, "requires.mmzoo-fancy: expected a version such as '1.2.0' (PEP 440), got 'latest'"),
    ({"mmzoo-fancy": "1.0!!"}, "got '1.0!!'"),
    ({"mmzoo-fancy": "1.0 "}, "got '1.0 '"),
    ({"mmzoo-fancy": "1.0\n"}, "got '1.0\\n'"),
    ({"-mmzoo-fancy": "1.0"}, "'-mmzoo-fancy' is not a distribution name"),
    ({"mmzoo fancy": "1.0"}, "'mmzoo fancy' is not a distribution name"),
    ({"mmzoo-fancy": 2}, "got 2"),
])
def test_names_and_versions_that_are_not_pep_508_and_440_are_refused(tmp_path, requires, message):
    directory = saved_with(tmp_path, requires, fusion="fancy-fusion")
    with pytest.raises(SpecError) as err:
        mmzoo.create_model(directory)
    assert message in str(err.value) and "pip install" not in str(err.value)


def test_valid_requirements_are_quoted_in_the_install_hint(tmp_path):
    directory = saved_with(tmp_path, {"mmzoo": mmzoo.__version__, "Fancy_Plugin": "2.0rc1+local"},
                           fusion="fancy-fusion")
    with pytest.raises(MissingPluginError, match=r"install with: pip install 'Fancy_Plugin==2\.0rc1\+local'"):
        mmzoo.create_model(directory)
    assert read_model_dir(directory).requires["Fancy_Plugin"] == "2.0rc1+local"


@pytest.mark.parametrize("requires", [["mmzoo-fancy"], "mmzoo-fancy==1.0", 3, {"mmzoo-fancy": None}])
def test_requirement_advice_refuses_requires_of_the_wrong_type_with_a_spec_error(requires):
    """Before: a list or a string reached ``requires.items()`` and raised AttributeError."""
    with pytest.raises(SpecError, match="requires"):
        get_registry().requirement_advice(requires)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=12), st.integers(), st.none()), max_size=3))
def test_whatever_requires_holds_the_advice_quotes_only_safe_text(requires):
    try:
        checked = check_requires(requires)
    except SpecError:
        return
    advice = get_registry().requirement_advice(checked)
    for dist, version in checked.items():
        assert all(c.isalnum() or c in "._-" for c in dist)
        assert all(c.isalnum() or c in ".+!_-" for c in version)
    assert not any(c in advice for c in "\n;&|$`\"\\")

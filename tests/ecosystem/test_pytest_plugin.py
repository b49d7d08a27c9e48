"""mmzoo's pytest plugin (the ``pytest11`` entry point): fixtures for plugin authors, loaded cheaply."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import metadata

PLUGIN_TESTS = '''
import os
import subprocess
import sys

import mmzoo


def test_isolated_registry_starts_fresh_and_clears_the_plugin_env(mmzoo_plugins):
    assert "MMZOO_PLUGINS" not in os.environ and "MMZOO_STRICT_PLUGINS" not in os.environ
    assert "cnn" in mmzoo_plugins.get_registry().names("encoder")
    assert "concat" in mmzoo.list_components("fusion")


def test_conformance_fixtures_are_the_kit(mmzoo_check_encoder, mmzoo_check_fusion, mmzoo_check_head):
    import torch
    from mmzoo.testing import check_encoder

    assert mmzoo_check_encoder is check_encoder
    mmzoo_check_encoder("mlp", {"in_dim": 4, "output_dim": 8})
    mmzoo_check_fusion("gated", {"a": 8, "b": 6}, {"dim": 4})
    mmzoo_check_head("classification", 8, {"num_classes": 3}, target=torch.tensor([0, 1, 2, 0, 1, 2]))


def test_the_logger_fixture_is_the_kit(mmzoo_check_logger, tmp_path):
    from mmzoo.testing import check_logger

    assert mmzoo_check_logger is check_logger
    mmzoo_check_logger("tensorboard", run_dir=tmp_path)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_local_hub_round_trip(mmzoo_hub, tmp_path):
    import torch

    assert os.environ["HF_ENDPOINT"] == mmzoo_hub.url and os.environ["HF_HUB_DISABLE_XET"] == "1"
    torch.manual_seed(0)
    spec = {"encoders": {"x": {"type": "mlp", "in_dim": 4, "output_dim": 8}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}}
    model = mmzoo.create_model(spec)
    model.push_to_hub("me/tiny")
    assert "model.safetensors" in mmzoo_hub.repo("me/tiny").resolve("main").files
    child = subprocess.run(
        [sys.executable, "-c", "import mmzoo; print(type(mmzoo.create_model('hf-hub:me/tiny')).__name__)"],
        env={**os.environ, **mmzoo_hub.env}, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    again = mmzoo.create_model("hf-hub:me/tiny")
    batch = model.preprocess([{"x": [1.0, 2.0, 3.0, 4.0]}])
    model.eval(), again.eval()
    assert torch.allclose(model(batch).outputs, again(batch).outputs, atol=1e-6)
'''


def test_the_entry_point_is_declared():
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
    assert eps["mmzoo"] == "mmzoo.testing.pytest_plugin"


def test_fixtures_work_in_a_plugin_authors_test_suite(tmp_path):
    (tmp_path / "test_author.py").write_text(textwrap.dedent(PLUGIN_TESTS))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_author.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout


def test_loading_the_plugin_imports_nothing_heavy():
    code = ("import sys, json, mmzoo.testing.pytest_plugin\n"
            "print(json.dumps([m for m in ('torch', 'huggingface_hub', 'numpy', 'mmzoo.plugins') "
            "if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []

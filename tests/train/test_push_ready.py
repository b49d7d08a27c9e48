"""A finished run directory is what `mmzoo push` publishes: pushed to a local Hub and rebuilt from it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from mmzoo.testing.hub_server import HubServer, client_env
from tests.train.helpers import cli_env, run_cli, toy_config, write_yaml

TOKEN = "hf_mmzooTrainerTestToken0123456789abcd"

CHECK = textwrap.dedent("""
    import json, sys, torch, mmzoo
    hub = mmzoo.create_model("hf-hub:trainer/toy-blobs@" + sys.argv[1])
    local = mmzoo.create_model(sys.argv[2])
    data = mmzoo.create_dataset("toy-blobs", split="test", size=6)
    batch = local.preprocess([data[i] for i in range(6)])
    hub.eval(), local.eval()
    with torch.no_grad():
        print(json.dumps(bool(torch.equal(hub(batch).outputs, local(batch).outputs))))
""")


@pytest.mark.hub
def test_a_trained_run_pushes_and_loads_back_from_the_hub(toy_site, tmp_path):
    config = write_yaml(tmp_path / "run.yaml", toy_config(tmp_path / "run", optim__steps=4))
    trained = run_cli(["train", str(config)], toy_site, tmp_path)
    assert trained.returncode == 0, trained.stderr

    with HubServer(tokens={TOKEN: "trainer"}) as hub:
        env = client_env(hub.url, tmp_path / "hf-home", TOKEN)
        pushed = run_cli(
            ["push", str(tmp_path / "run"), "trainer/toy-blobs", "--json"], toy_site, tmp_path, **env
        )
        assert pushed.returncode == 0, pushed.stderr
        result = json.loads(pushed.stdout)
        assert {"config.json", "model.safetensors", "README.md", "curves.png"} <= set(result["files"])
        repo = hub.repo("trainer/toy-blobs")
        commit = repo.resolve(result["revision"])
        card = repo.read(commit.files["README.md"]).decode()
        metrics = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["metrics"]
        assert "toy-blobs" in card and "accuracy" in card and f"{metrics['accuracy']:.4g}" in card

        loaded = subprocess.run(
            [sys.executable, "-c", CHECK, result["revision"], str(tmp_path / "run" / "model")],
            capture_output=True,
            text=True,
            env=cli_env(toy_site, **env),
            timeout=240,
        )
        assert loaded.returncode == 0, loaded.stderr
        assert json.loads(loaded.stdout.strip().splitlines()[-1]) is True

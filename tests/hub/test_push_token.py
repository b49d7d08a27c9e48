"""#15 point 4: ``mmzoo push`` refuses when the token it pushes with appears in any file it would upload.

Before, only config.json was checked, and only against a token passed explicitly: a token in the weights'
metadata, the model card, the curves, or one that came from HF_TOKEN or the stored login, was published.
(The check is :mod:`mmzoo.hub.leaks`; tests/hub/test_publish_run.py covers the run's training files.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError
from safetensors.torch import load_file, save_file

from mmzoo.errors import HubError
from mmzoo.hub import push_to_hub
from mmzoo.testing.hub_server import HubServer
from tests.hub.support import TOKEN, tiny_model

pytestmark = pytest.mark.hub


def saved_dir(tmp_path: Path, name: str = "m") -> Path:
    tiny_model().save_pretrained(tmp_path / name, extra={"training": {"steps": 1}})  # trained: no warning
    return tmp_path / name


def assert_refused(source, repo_id: str, culprit: str, **kwargs) -> None:
    with pytest.raises(HubError) as err:
        push_to_hub(source, repo_id, **kwargs)
    message = str(err.value)
    assert message.startswith(f"push to {repo_id}: {culprit} contains a Hub token")
    assert "nothing was uploaded" in message
    assert TOKEN not in message
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=TOKEN).model_info(repo_id)


def test_a_token_in_the_weights_metadata_is_refused(hub: HubServer, tmp_path):
    directory = saved_dir(tmp_path)
    weights = directory / "model.safetensors"
    save_file(load_file(str(weights)), str(weights), metadata={"format": "pt", "note": f"pushed with {TOKEN}"})
    assert_refused(directory, "org/leaky-weights", "model.safetensors", token=TOKEN)


def test_a_token_in_the_config_is_refused(hub: HubServer, tmp_path):
    directory = saved_dir(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["name"] = TOKEN
    (directory / "config.json").write_text(json.dumps(config))
    assert_refused(directory, "org/leaky-config", "config.json")


def test_a_token_in_the_curves_of_a_run_is_refused(hub: HubServer, tmp_path):
    run_dir = tmp_path / "run"
    saved_dir(run_dir, "model")
    (run_dir / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000 + TOKEN.encode() + b"\x00" * 10)
    assert_refused(run_dir, "org/leaky-curves", "curves.png")


def test_the_token_from_hf_token_or_the_stored_login_counts_too(hub: HubServer, tmp_path, monkeypatch):
    directory = saved_dir(tmp_path)
    weights = directory / "model.safetensors"
    save_file(load_file(str(weights)), str(weights), metadata={"format": "pt", "note": TOKEN})
    assert_refused(directory, "org/leaky-env", "model.safetensors")  # HF_TOKEN (set by the hub fixture)
    monkeypatch.delenv("HF_TOKEN")
    home = Path(hub.env["HF_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "token").write_text(TOKEN)  # where `hf auth login` stores it
    assert_refused(directory, "org/leaky-login", "model.safetensors")


def test_clean_files_push_as_before(hub: HubServer, tmp_path):
    result = push_to_hub(saved_dir(tmp_path), "org/clean", token=TOKEN)
    assert {"README.md", "config.json", "model.safetensors"} <= set(result.files)

"""An unreachable Hub (or HF_HUB_OFFLINE) fails at once with one line, and the cache still serves."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest
import torch

import mmzoo
from mmzoo.cli import main
from mmzoo.errors import HubError
from mmzoo.hub import push_to_hub
from mmzoo.testing.hub_server import HubServer
from tests.hub.support import predict, tiny_model, train_steps
from tests.support import run_cli

pytestmark = pytest.mark.hub


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE")}
    env["HF_HOME"] = str(tmp_path / "hf")
    return {**env, **extra}


@pytest.mark.timeout(60)  # the client's own retries on a closed port take about half a minute
@pytest.mark.parametrize("offline", [False, True], ids=["closed-port", "HF_HUB_OFFLINE"])
def test_info_of_a_hub_model_with_no_hub_is_one_line_and_no_retries(tmp_path, offline):
    url = closed_port_url()
    env = _fresh_env(tmp_path, HF_ENDPOINT=url, **({"HF_HUB_OFFLINE": "1"} if offline else {}))
    done = run_cli("info", "hf-hub:org/absent", env=env, timeout=55)
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Retrying" not in done.stderr and "Traceback" not in done.stderr
    expected = "HF_HUB_OFFLINE is set" if offline else f"cannot reach the Hub at {url}"
    assert expected in lines[0] and "'config.json' in org/absent" in lines[0] and "not in the Hub cache" in lines[0]


@pytest.mark.timeout(120)
def test_a_cached_model_loads_while_the_hub_is_unreachable(hub: HubServer, monkeypatch, caplog, capsys):
    model = train_steps(tiny_model(seed=3))
    push_to_hub(model, "org/kept")
    mmzoo.create_model("hf-hub:org/kept")  # fills the cache
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    with caplog.at_level(logging.WARNING, logger="huggingface_hub"):
        again = mmzoo.create_model("hf-hub:org/kept")
    assert torch.equal(predict(again), predict(model))
    assert not [r for r in caplog.records if "Retrying" in r.getMessage()]
    with pytest.raises(HubError, match="cannot reach the Hub at .* not in the Hub cache"):
        mmzoo.create_model("hf-hub:org/never-fetched")
    assert main(["info", "hf-hub:org/kept"]) == 0  # config and weights facts from the cache
    assert "model.safetensors" in capsys.readouterr().out


def test_the_online_path_still_downloads_config_and_weights(hub: HubServer):
    model = train_steps(tiny_model(seed=4))
    push_to_hub(model, "org/online")
    before = len(hub.requests)
    loaded = mmzoo.create_model("hf-hub:org/online")
    assert torch.equal(predict(loaded), predict(model))
    fetched = [r.path.rsplit("/", 1)[-1] for r in hub.requests[before:] if r.method == "GET"]
    assert "config.json" in fetched and "model.safetensors" in fetched

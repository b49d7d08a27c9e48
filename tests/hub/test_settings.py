"""mmzoo.hub.settings: the Hub settings every part of mmzoo (and its plugins) reads, at call time."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from mmzoo.hub.settings import hub_cache_dir, hub_endpoint, hub_settings, offline_requested, reachable


@pytest.fixture
def clean_env(monkeypatch):
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_offline_is_read_from_the_environment_when_asked(clean_env):
    from huggingface_hub import constants

    clean_env.setattr(constants, "HF_HUB_OFFLINE", False)
    assert offline_requested() is False
    clean_env.setenv("TRANSFORMERS_OFFLINE", "1")
    assert offline_requested() is True
    clean_env.setenv("HF_HUB_OFFLINE", "0")  # HF_HUB_OFFLINE wins when both are set
    assert offline_requested() is False
    clean_env.setenv("HF_HUB_OFFLINE", "yes")
    assert offline_requested() is True and hub_settings().offline is True


def test_endpoint_and_cache_follow_the_environment(clean_env, tmp_path):
    clean_env.setenv("HF_ENDPOINT", "http://127.0.0.1:9/mirror/")
    assert hub_endpoint() == "http://127.0.0.1:9/mirror"
    clean_env.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == str(tmp_path / "home" / "hub")
    clean_env.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert hub_cache_dir() == str(tmp_path / "cache")
    settings = hub_settings()
    assert settings.endpoint == "http://127.0.0.1:9/mirror" and settings.cache_dir == str(tmp_path / "cache")


def test_reachable_probes_a_port_quickly():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        assert reachable(url) is True
    start = time.monotonic()
    assert reachable(url, timeout=2.0) is False  # closed now: refused at once, no waiting on the timeout
    assert time.monotonic() - start < 1.5
    assert reachable("not a url") is False and reachable("http://host:notaport") is False


def test_importing_the_settings_is_cheap():
    code = "import sys, mmzoo.hub.settings; assert not {'torch', 'huggingface_hub'} & set(sys.modules), sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

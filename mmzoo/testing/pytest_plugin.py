"""pytest fixtures for plugin authors, loaded automatically wherever mmzoo is installed.

The ``pytest11`` entry point named ``mmzoo`` registers this module, so a plugin's tests use these
fixtures with no import and no ``conftest.py`` (``pytest -p no:mmzoo`` turns them off):

- ``mmzoo_plugins``: plugin discovery starts afresh before and after the test, with
  ``MMZOO_PLUGINS`` and ``MMZOO_STRICT_PLUGINS`` cleared (and restored afterwards). The value is
  :mod:`mmzoo.plugins`: ``mmzoo_plugins.get_registry()`` discovers what is installed now.
- ``mmzoo_hub``: a local Hugging Face Hub (:class:`~mmzoo.testing.hub_server.HubServer`) on
  127.0.0.1, with this process and its children pointed at it (``HF_ENDPOINT``,
  ``HF_HUB_DISABLE_XET=1``, a private ``HF_HOME`` and a write token ``mmzoo_hub.token``), so
  ``push_to_hub`` and ``create_model("hf-hub:...")`` run for real with no network.
- ``mmzoo_check_encoder``, ``mmzoo_check_fusion``, ``mmzoo_check_head``, ``mmzoo_check_dataset``,
  ``mmzoo_check_logger``: the conformance checks of :mod:`mmzoo.testing` (the same functions; torch
  loads when a part check is requested).

Loading this module costs next to nothing: it imports pytest and nothing of torch or the Hub.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

HUB_TOKEN = "hf_mmzooPytestPluginToken0123456789"
_HUB_ENV_CLEARED = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")


@pytest.fixture
def mmzoo_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Fresh plugin discovery for one test; the plugin environment variables are cleared and restored."""
    import mmzoo.plugins

    monkeypatch.delenv("MMZOO_PLUGINS", raising=False)
    monkeypatch.delenv("MMZOO_STRICT_PLUGINS", raising=False)
    mmzoo.plugins.reset()
    yield mmzoo.plugins
    mmzoo.plugins.reset()


def point_hub_client(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Set ``env`` (see :func:`mmzoo.testing.hub_server.client_env`) for this process and its children, and
    the constants huggingface_hub read at import, so this process's client talks to that Hub too."""
    for key in _HUB_ENV_CLEARED:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        from huggingface_hub import constants
    except ImportError:  # nothing imported it, so the environment is all it will read
        return
    home = env["HF_HOME"]
    patched = {
        "ENDPOINT": env["HF_ENDPOINT"],
        "HUGGINGFACE_CO_URL_TEMPLATE": env["HF_ENDPOINT"] + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": home,
        "HF_HUB_CACHE": env["HF_HUB_CACHE"],
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_TOKEN_PATH": os.path.join(home, "token"),
        "HF_STORED_TOKENS_PATH": os.path.join(home, "stored_tokens"),
        "AGENT_HARNESSES_PATH": os.path.join(home, ".agent_harnesses.json"),  # its daily check stays local
    }
    for name, value in patched.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)


@pytest.fixture
def mmzoo_hub(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A running local Hub; the client (here and in child processes) uses it with the token ``.token``.

    The server object gives ``.url``, ``.token``, ``.env`` (the variables set, to hand to a child
    process) and ``.repo(repo_id)`` to inspect what was pushed.
    """
    from mmzoo.testing.hub_server import HubServer, client_env

    server = HubServer(tokens={HUB_TOKEN: "mmzoo-tester"})
    server.start()
    try:
        server.token = HUB_TOKEN
        server.env = client_env(server.url, tmp_path_factory.mktemp("hf_home"), HUB_TOKEN)
        point_hub_client(monkeypatch, server.env)
        yield server
    finally:
        server.stop()


@pytest.fixture
def mmzoo_check_encoder() -> Callable[..., Any]:
    """:func:`mmzoo.testing.check_encoder`."""
    from mmzoo.testing import check_encoder

    return check_encoder


@pytest.fixture
def mmzoo_check_fusion() -> Callable[..., Any]:
    """:func:`mmzoo.testing.check_fusion`."""
    from mmzoo.testing import check_fusion

    return check_fusion


@pytest.fixture
def mmzoo_check_head() -> Callable[..., Any]:
    """:func:`mmzoo.testing.check_head`."""
    from mmzoo.testing import check_head

    return check_head


@pytest.fixture
def mmzoo_check_dataset() -> Callable[..., Any]:
    """:func:`mmzoo.testing.check_dataset`."""
    from mmzoo.testing import check_dataset

    return check_dataset


@pytest.fixture
def mmzoo_check_logger() -> Callable[..., Any]:
    """:func:`mmzoo.testing.check_logger`."""
    from mmzoo.testing import check_logger

    return check_logger

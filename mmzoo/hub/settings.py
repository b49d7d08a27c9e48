"""The Hugging Face Hub as this process should use it now: endpoint, cache, offline mode, reachability.

Public helpers for plugin authors: a plugin that fetches files from the Hub (an encoder's pretrained
weights, a tokenizer) asks these instead of reading the environment itself, so every part of mmzoo
honours the same settings. Each call reads the environment at that moment: ``HF_ENDPOINT``,
``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``), ``HF_HUB_CACHE`` / ``HF_HOME``; unset variables
fall back to ``huggingface_hub``'s own defaults. Importing this module is cheap (no torch, and
``huggingface_hub`` only when a setting falls back to its defaults).

Typical use, before a download that would otherwise wait on retries::

    from mmzoo.hub.settings import hub_endpoint, offline_requested, reachable

    if offline_requested() or not reachable(hub_endpoint()):
        raise HubError("... is not in the local cache and the Hub cannot be reached ...")
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

DEFAULT_ENDPOINT = "https://huggingface.co"
#: Seconds a reachability probe waits (DNS lookup included) before calling the Hub unreachable.
PROBE_TIMEOUT = 3.0
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubSettings:
    """Where the Hub is and how to reach it, as read by :func:`hub_settings`."""

    endpoint: str
    cache_dir: str
    offline: bool


def hub_settings() -> HubSettings:
    """Endpoint, cache directory and offline mode, as the environment sets them now."""
    return HubSettings(hub_endpoint(), hub_cache_dir(), offline_requested())


def hub_endpoint() -> str:
    """The Hub's base URL: ``HF_ENDPOINT`` if set, else ``huggingface_hub``'s endpoint (no trailing '/')."""
    endpoint = os.environ.get("HF_ENDPOINT")
    if not endpoint:
        endpoint = _constant("ENDPOINT", DEFAULT_ENDPOINT)
    return endpoint.rstrip("/")


def hub_cache_dir() -> str:
    """The Hub cache: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``huggingface_hub``'s default."""
    cache = os.environ.get("HF_HUB_CACHE")
    if not cache and os.environ.get("HF_HOME"):
        cache = os.path.join(os.environ["HF_HOME"], "hub")
    if not cache:
        cache = _constant("HF_HUB_CACHE", os.path.join("~", ".cache", "huggingface", "hub"))
    return os.path.expanduser(cache)


def offline_requested() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for offline mode.

    ``HF_HUB_OFFLINE`` wins when both are set; when neither is, ``huggingface_hub``'s own setting
    (read when it was imported) decides.
    """
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = (os.environ.get(variable) or "").strip().lower()
        if value:
            return value in _TRUE
    return bool(_constant("HF_HUB_OFFLINE", False))


def reachable(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True if a TCP connection to ``url``'s host opens within ``timeout`` seconds (DNS included).

    A cheap probe before a download, so that an offline machine gets one clear error at once
    instead of minutes of retries.
    """
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:  # a port that is not a number
        return False
    outcome: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=probe, daemon=True)  # a thread bounds the DNS lookup too
    worker.start()
    worker.join(timeout)
    return bool(outcome and outcome[0])


def _constant(name: str, default):
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of mmzoo
        return default
    return getattr(constants, name, default)

"""Hugging Face Hub I/O: download published models and registry weights, publish models.

Everything goes through ``huggingface_hub`` and its standard cache. The environment is read when a
function is called (not when a module is imported): ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` /
``HF_HUB_CACHE`` and ``HF_TOKEN`` are honoured (see :mod:`mmzoo.hub.settings`, public for plugins).

Safety rules:

- weights are safetensors; a repo or registry entry with only a pickle checkpoint (``.bin``, ``.pt``,
  ``.pth``, ``.ckpt``, ``.pkl``, ``.pickle``) is refused unless the caller passes ``allow_pickle=True``;
- every weights file is verified before use: against the registry's ``sha256`` when there is one, and
  against the sha256 the Hub announced for LFS files; a file that fails is deleted from the cache;
  a truncated or corrupted safetensors file is a :class:`~mmzoo.errors.WeightsError` naming it;
- only ``config.json`` (parsed as JSON) and the weights are downloaded; nothing from a repo is executed;
  a config naming a part no installed plugin provides fails before the weights are downloaded;
- tokens are passed to the client and never written into messages, cards or configs.

Modules: :mod:`~mmzoo.hub.settings` (endpoint, cache, offline, reachability),
:mod:`~mmzoo.hub.download`, :mod:`~mmzoo.hub.push`, :mod:`~mmzoo.hub.errors`. The names below are
importable from ``mmzoo.hub`` itself; each loads its module on first use.
"""

from __future__ import annotations

TYPE_CHECKING = False

_LAZY = {
    "HubSettings": "mmzoo.hub.settings",
    "hub_settings": "mmzoo.hub.settings",
    "parse_hub_id": "mmzoo.hub.download",
    "check_repo_id": "mmzoo.hub.download",
    "download_config": "mmzoo.hub.download",
    "download_model_dir": "mmzoo.hub.download",
    "download_registry_weights": "mmzoo.hub.download",
    "check_parts_installed": "mmzoo.hub.download",
    "sha256_of": "mmzoo.hub.download",
    "verify_download": "mmzoo.hub.download",
    "PushResult": "mmzoo.hub.push",
    "push_to_hub": "mmzoo.hub.push",
    "resolve_push_source": "mmzoo.hub.push",
    "translate_error": "mmzoo.hub.errors",
}
__all__ = [
    "HubSettings",
    "PushResult",
    "check_parts_installed",
    "check_repo_id",
    "download_config",
    "download_model_dir",
    "download_registry_weights",
    "hub_settings",
    "parse_hub_id",
    "push_to_hub",
    "resolve_push_source",
    "sha256_of",
    "translate_error",
    "verify_download",
]

if TYPE_CHECKING:
    from mmzoo.hub.download import (
        check_parts_installed,
        check_repo_id,
        download_config,
        download_model_dir,
        download_registry_weights,
        parse_hub_id,
        sha256_of,
        verify_download,
    )
    from mmzoo.hub.errors import translate_error
    from mmzoo.hub.push import PushResult, push_to_hub, resolve_push_source
    from mmzoo.hub.settings import HubSettings, hub_settings


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmzoo.hub' has no attribute {name!r}")

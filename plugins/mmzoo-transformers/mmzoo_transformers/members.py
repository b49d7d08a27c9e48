"""The members of the ``hf/`` family: the model repos in the local Hugging Face cache, whether a name is one,
and what each reads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def list_cached_models() -> list[str]:
    """Repo ids of the models cached locally (the ones an offline machine can build)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    from mmzoo.hub.settings import hub_cache_dir

    try:
        cache = scan_cache_dir(hub_cache_dir())
    except CacheNotFound:
        return []
    return sorted(repo.repo_id for repo in cache.repos if repo.repo_type == "model")


def is_model(member: str) -> bool | None:
    """Whether ``hf/<member>`` names a model: a local folder with a ``config.json``, a repo in the local
    cache, or (asked with one metadata request) a model repo on the Hub. None when the Hub cannot be
    asked here (offline, or unreachable); nothing is downloaded."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    from mmzoo.hub.settings import hub_cache_dir, hub_endpoint, offline_requested, reachable

    folder = Path(member).expanduser()
    if folder.is_dir():
        return (folder / "config.json").is_file()
    try:
        if isinstance(try_to_load_from_cache(member, "config.json", cache_dir=hub_cache_dir()), str):
            return True
        if offline_requested() or not reachable(hub_endpoint()):
            return None
        return HfApi(endpoint=hub_endpoint()).repo_exists(member)
    except HFValidationError:  # not a repo id at all
        return False
    except Exception:  # the Hub answered with an error, or the connection broke: cannot tell
        return None


def member_modality(member: str, params: Mapping[str, Any]) -> str | None:
    """What ``hf/<member>`` encodes (``"text"`` or ``"audio"``), for model cards and ``mmzoo info``.

    ``params`` are the part's parameters in the spec: an explicit ``modality`` wins, then the model
    type of ``config`` (a model built from scratch), then the model type in the ``config.json`` of the
    local folder or of the cached snapshot (at ``revision``). Nothing is downloaded; None when the
    model type is not known here.
    """
    requested = params.get("modality")
    if isinstance(requested, str):
        return requested
    config = params.get("config")
    model_type = config.get("model_type") if isinstance(config, Mapping) else None
    if model_type is None:
        model_type = _local_model_type(member, params.get("revision"))
    if not isinstance(model_type, str):
        return None
    from mmzoo_transformers.backbones import modality_of_model_type

    return modality_of_model_type(model_type)


def _local_model_type(member: str, revision: Any) -> Any:
    from huggingface_hub import try_to_load_from_cache

    from mmzoo.hub.settings import hub_cache_dir

    folder = Path(member).expanduser()
    try:
        if folder.is_dir():
            path = folder / "config.json"
        else:
            found = try_to_load_from_cache(member, "config.json", cache_dir=hub_cache_dir(),
                                           revision=revision if isinstance(revision, str) else None)
            if not isinstance(found, str):
                return None
            path = Path(found)
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # no such file, not JSON (or nested past parsing), not a repo id
        return None
    return config.get("model_type") if isinstance(config, dict) else None

"""Which weights files a model has, without reading (or downloading) them: name, size, sha256, cache.

Each file is one plain dict (what ``mmzoo info --json`` prints): ``file`` and ``size`` (bytes, None when
unknown), ``sha256`` (the Hub's LFS record or the registry's pin; None for local files, which would have
to be read whole), ``format`` (``safetensors`` or ``pickle``), and, for Hub files, ``source`` and
``cached`` (whether the standard Hub cache holds it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mmzoo.hub.errors import hub_errors
from mmzoo.hub.settings import hub_cache_dir, hub_settings
from mmzoo.saved import WEIGHTS_NAME, SavedModel, is_pickle

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def local_file(path: Path, shown: str, **extra: Any) -> dict[str, Any]:
    """A weights file on this machine."""
    return {"file": shown, "size": path.stat().st_size, "sha256": None,
            "format": "pickle" if is_pickle(path.name) else "safetensors", **extra}


def model_dir_files(saved: SavedModel, prefix: str = "") -> list[dict[str, Any]]:
    """The weights of a model directory: ``model.safetensors`` and any pickle checkpoints beside it."""
    out = []
    if saved.weights_file is not None:
        out.append(local_file(saved.weights_file, prefix + WEIGHTS_NAME))
    out += [local_file(saved.directory / name, prefix + name) for name in saved.pickles]
    return out


def cached_path(repo_id: str, filename: str, revision: str | None) -> Path | None:
    """Where the Hub cache holds ``filename`` of ``repo_id`` at ``revision``, or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir(), revision=revision)
    return Path(found) if isinstance(found, str) else None


def hub_file(repo_id: str, filename: str, revision: str | None, *, size: int | None = None,
             sha256: str | None = None, **extra: Any) -> dict[str, Any]:
    """A file of a Hub repo: what the Hub (or a registry pin) says of it, and whether it is cached; a
    cached file fills in its size, and its sha256 from the blob it is stored as (named by it)."""
    cached = cached_path(repo_id, filename, revision)
    if cached is not None:
        size = size if size is not None else cached.stat().st_size
        blob = cached.resolve().name
        sha256 = sha256 or (blob if _SHA256_HEX.fullmatch(blob) else None)
    at = f"@{revision}" if revision else ""
    return {"file": filename, "size": size, "sha256": sha256,
            "format": "pickle" if is_pickle(filename) else "safetensors",
            "source": f"hf-hub:{repo_id}{at}", "cached": cached is not None, **extra}


def hub_model_files(repo_id: str, commit: str) -> list[dict[str, Any]]:
    """The weights files a published model has at ``commit``: listed by the Hub with their sizes and
    sha256 (one metadata request, nothing downloaded); offline or with the Hub unreachable, what the cache
    has."""
    from mmzoo.hub.download import endpoint_answers

    settings = hub_settings()
    if settings.offline or not endpoint_answers(settings.endpoint):  # no Hub to ask: what the cache has
        found = [hub_file(repo_id, WEIGHTS_NAME, commit)]
        return [f for f in found if f["cached"]] or [{**found[0], "listed": False}]
    from huggingface_hub import HfApi

    with hub_errors(repo_id, commit, None, settings):
        info = HfApi(endpoint=settings.endpoint).model_info(repo_id, revision=commit, files_metadata=True)
    out = []
    for sibling in info.siblings or []:
        name = sibling.rfilename
        if "/" in name or not (name == WEIGHTS_NAME or is_pickle(name)):
            continue
        lfs = getattr(sibling, "lfs", None)
        out.append(hub_file(repo_id, name, commit, size=sibling.size, sha256=getattr(lfs, "sha256", None)))
    return out


def registry_files(weights: dict[str, dict]) -> list[dict[str, Any]]:
    """The files a registry entry's ``weights:`` pins, by tag (the sha256 is the entry's own)."""
    out = []
    for tag, ref in weights.items():
        filename = ref.get("file") or WEIGHTS_NAME
        pinned = ref.get("sha256") if isinstance(ref.get("sha256"), str) else None
        out.append(hub_file(ref["repo"], filename, ref.get("revision"), sha256=pinned, tag=tag))
    return out

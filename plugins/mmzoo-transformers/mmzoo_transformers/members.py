"""The members of the ``hf/`` family: the model repos in the local Hugging Face cache."""

from __future__ import annotations


def list_cached_models() -> list[str]:
    """Repo ids of the models cached locally (the ones an offline machine can build)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir()
    except CacheNotFound:
        return []
    return sorted(repo.repo_id for repo in cache.repos if repo.repo_type == "model")

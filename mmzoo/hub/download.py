"""Downloading from the Hub: published models (``hf-hub:org/repo[@rev]``) and registry weights.

Only ``config.json`` (read by :func:`mmzoo.saved.read_model_dir`, JSON only) and weights are
fetched. The config is checked, and every part it names must be provided by an installed plugin,
before the weights are downloaded; the weights are verified against the sha256 the registry or the
Hub announced, and a file that fails is removed from the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from urllib.parse import urlparse

from mmzoo.errors import HubError, SpecError, WeightsError
from mmzoo.hub.errors import hub_errors, where_in_repo
from mmzoo.hub.settings import HubSettings, hub_settings, reachable
from mmzoo.localpaths import shorten
from mmzoo.saved import CONFIG_NAME, WEIGHTS_NAME, SavedModel, is_pickle, read_model_dir
from mmzoo.sources import HF_HUB_PREFIX
from mmzoo.tensorfile import read_layout

_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")  # the Hub's 96 per name
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def parse_hub_id(name: str) -> tuple[str, str | None]:
    """``"hf-hub:org/repo@rev"`` (prefix optional) -> ``("org/repo", "rev")``; revision ``None`` means main."""
    body = name[len(HF_HUB_PREFIX) :] if name.startswith(HF_HUB_PREFIX) else name
    repo_id, _, revision = body.partition("@")
    check_repo_id(repo_id, what=repr(shorten(name, 200)))
    if "@" in body and not revision:
        raise SpecError(f"{name!r}: nothing after '@'; give a branch, tag or commit sha, or drop the '@'")
    return repo_id, revision or None


def check_repo_id(repo_id: str, what: str = "repo id") -> str:
    """``repo_id`` if it is a Hub repo id like ``org/name``; a SpecError otherwise."""
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        shown = repo_id if not isinstance(repo_id, str) or len(repo_id) <= 200 else f"{repo_id[:200]}…"
        raise SpecError(f"{what}: expected a Hub repo id like 'org/name' (letters, digits, '.', '_', '-'; at most "
                        f"96 characters each), got {shown!r}")
    return repo_id


def _download(repo_id: str, filename: str, revision: str | None, settings: HubSettings,
              asked_revision: str | None = None) -> Path:
    """``hf_hub_download`` with the settings of the moment; errors name ``asked_revision`` (what the user
    wrote) when ``revision`` is the commit it was resolved to.

    When the endpoint does not answer a TCP probe, only the cache is asked (what the client would
    fall back to after half a minute of retries), so an unreachable Hub fails at once with one message.
    """
    from huggingface_hub import hf_hub_download

    local_only = settings.offline or not endpoint_answers(settings.endpoint)
    with hub_errors(repo_id, asked_revision or revision, filename, settings):
        return Path(hf_hub_download(repo_id, filename, revision=revision, endpoint=settings.endpoint,
                                    cache_dir=settings.cache_dir, local_files_only=local_only,
                                    library_name="mmzoo"))


_ANSWERED: dict[str, float] = {}  # endpoint -> when it last answered a probe (time.monotonic)
#: Seconds a successful probe is trusted, so a model's config and weights downloads share one probe.
PROBE_MEMORY = 60.0


def endpoint_answers(endpoint: str) -> bool:
    """Whether the Hub at ``endpoint`` (or the proxy the environment sets for it) accepts a TCP
    connection (:func:`~mmzoo.hub.settings.reachable`); a yes is trusted for :data:`PROBE_MEMORY` s."""
    import time
    import urllib.request

    answered = _ANSWERED.get(endpoint)
    if answered is not None and time.monotonic() - answered < PROBE_MEMORY:
        return True
    scheme = urlparse(endpoint).scheme
    host = urlparse(endpoint).hostname or ""
    proxy = urllib.request.getproxies().get(scheme)
    target = proxy if proxy and not urllib.request.proxy_bypass(host) else endpoint
    if reachable(target if "://" in target else f"http://{target}"):
        _ANSWERED[endpoint] = time.monotonic()
        return True
    return False


def sha256_of(path: str | Path) -> str:
    """The sha256 of a file, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _discard_cached(path: Path) -> None:
    """Remove a downloaded file from the Hub cache: the snapshot link and the blob it points to."""
    blob = path.resolve()
    for p in {path, blob}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def verify_download(path: Path, where: str, expected_sha256: str | None = None) -> str:
    """Check a downloaded file against ``expected_sha256`` and the sha256 its cache blob is named by
    (the Hub's LFS oid); on mismatch delete it from the cache and raise WeightsError. Returns its sha256."""
    actual = sha256_of(path)
    announced = path.resolve().name if _SHA256_HEX.fullmatch(path.resolve().name) else None
    for expected, by in ((expected_sha256, "the registry entry"), (announced, "the Hub's LFS record")):
        if expected is not None and actual != expected:
            _discard_cached(path)
            raise WeightsError(f"{where}: sha256 {actual} does not match {by} ({expected}); the file was "
                               f"refused and removed from the cache. If the repo was changed on purpose, update "
                               f"the sha256; otherwise download again")
    return actual


def check_parts_installed(saved: SavedModel, source: str) -> None:
    """Every part ``saved`` names must be provided by an installed plugin; otherwise raise
    MissingPluginError naming the distribution(s) and version(s) its ``requires`` lists."""
    from mmzoo.plugins import get_registry

    registry = get_registry()
    for part in saved.spec.parts():
        registry.resolve_part(part, where=f"{source}: {CONFIG_NAME} spec", requires=saved.requires)


def download_config(repo_id: str, revision: str | None = None) -> tuple[SavedModel, str]:
    """Only the ``config.json`` of a published model (from the cache when it is there, or offline), read
    and checked; returns it and the commit it was resolved to. Nothing else is downloaded."""
    check_repo_id(repo_id)
    settings = hub_settings()
    source = f"{HF_HUB_PREFIX}{where_in_repo(repo_id, revision)}"
    config_path = _download(repo_id, CONFIG_NAME, revision, settings)
    commit = config_path.parent.name  # snapshots/<commit sha>/config.json: pin the rest to that commit
    return read_model_dir(config_path.parent, source=source), commit


def download_model_dir(repo_id: str, revision: str | None = None, *, allow_pickle: bool = False) -> Path:
    """Download a published model (``config.json`` + ``model.safetensors``) into the Hub cache and return
    the snapshot directory holding them. ``revision``: branch, tag or commit sha (default: main).

    The config is checked before the weights are fetched; the weights are verified. A repo with only a
    pickle checkpoint is refused unless ``allow_pickle=True``.
    """
    settings = hub_settings()
    source = f"{HF_HUB_PREFIX}{where_in_repo(repo_id, revision)}"
    saved, commit = download_config(repo_id, revision)
    config_path = saved.directory / CONFIG_NAME
    check_parts_installed(saved, source)
    try:
        weights = _download(repo_id, WEIGHTS_NAME, commit, settings, revision or "main")
    except HubError:
        if settings.offline:
            raise
        pickles = _pickle_files(repo_id, commit, settings)
        if not pickles:
            raise
        chosen = dataclasses.replace(saved, weights_file=None, pickles=tuple(pickles))
        pickle = chosen.weights_to_load(allow_pickle=allow_pickle, source=source)  # refused unless opted in
        _download(repo_id, pickle.name, commit, settings, revision or "main")
        return config_path.parent
    verify_download(weights, f"{source} {WEIGHTS_NAME}")
    read_layout(weights, source)
    return config_path.parent


def _pickle_files(repo_id: str, commit: str, settings: HubSettings) -> list[str]:
    from huggingface_hub import HfApi

    with hub_errors(repo_id, commit, None, settings):
        files = HfApi(endpoint=settings.endpoint).list_repo_files(repo_id, revision=commit)
    return sorted(f for f in files if "/" not in f and is_pickle(f))


def download_registry_weights(weights: dict, *, allow_pickle: bool = False) -> Path:
    """Download the file a registry entry's ``weights:`` names (``repo``, ``revision``, ``file``, ``sha256``)
    and return its local path, verified against ``sha256`` when given (a mismatch is refused and the file
    removed from the cache)."""
    if not isinstance(weights, dict) or not isinstance(weights.get("repo"), str):
        raise SpecError(f"weights: expected a mapping with repo, revision, file, sha256; got {weights!r}")
    repo_id = check_repo_id(weights["repo"], "weights.repo")
    revision = weights.get("revision") or None
    filename = weights.get("file") or WEIGHTS_NAME
    expected = weights.get("sha256")
    source = f"{HF_HUB_PREFIX}{where_in_repo(repo_id, revision)} {filename}"
    if is_pickle(filename) and not allow_pickle:
        raise WeightsError(f"{source} is a pickle checkpoint, which can run code when loaded; mmzoo loads "
                           f"safetensors. Pass allow_pickle=True if you trust the publisher")
    path = _download(repo_id, filename, revision, hub_settings())
    verify_download(path, source, expected.lower() if isinstance(expected, str) else None)
    if not is_pickle(filename):
        read_layout(path, source)
    return path

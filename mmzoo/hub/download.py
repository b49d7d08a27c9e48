"""Hugging Face Hub I/O: download published models and registry weights, publish models.

Everything goes through ``huggingface_hub`` and its standard cache. The environment is read when a
function is called (not when a module is imported): ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` /
``HF_HUB_CACHE`` and ``HF_TOKEN`` are honoured.

Safety rules:

- weights are safetensors; a repo or registry entry with only a pickle checkpoint (``.bin``, ``.pt``,
  ``.pth``, ``.ckpt``, ``.pkl``) is refused unless the caller passes ``allow_pickle=True`` (by name);
- every weights file is verified before use: against the registry's ``sha256`` when there is one, and
  against the sha256 the Hub announced for LFS files; a file that fails is deleted from the cache;
  a truncated or corrupted safetensors file is a :class:`~mmzoo.errors.WeightsError` naming it;
- only ``config.json`` (parsed as JSON) and the weights are downloaded; nothing from a repo is executed;
  a config naming a part no installed plugin provides fails before the weights are downloaded;
- tokens are passed to the client and never written into messages, cards or configs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mmzoo.errors import HubError, MissingPluginError, MmzooError, SpecError, UnknownNameError, WeightsError

HUB_PREFIX = "hf-hub:"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubSettings:
    """Where the Hub is and how to reach it, read from the environment at call time."""

    endpoint: str
    cache_dir: str
    offline: bool


def hub_settings() -> HubSettings:
    """``HF_ENDPOINT``, the Hub cache (``HF_HUB_CACHE`` or ``HF_HOME/hub``) and ``HF_HUB_OFFLINE`` as set now."""
    from huggingface_hub import constants

    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    cache = os.environ.get("HF_HUB_CACHE")
    if not cache and os.environ.get("HF_HOME"):
        cache = os.path.join(os.environ["HF_HOME"], "hub")
    offline_env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    offline = offline_env.strip().lower() in _TRUE if offline_env is not None else constants.HF_HUB_OFFLINE
    return HubSettings(endpoint, os.path.expanduser(cache or constants.HF_HUB_CACHE), offline)


def parse_hub_id(name: str) -> tuple[str, str | None]:
    """``"hf-hub:org/repo@rev"`` (prefix optional) -> ``("org/repo", "rev")``; revision ``None`` means main."""
    body = name[len(HUB_PREFIX) :] if name.startswith(HUB_PREFIX) else name
    repo_id, _, revision = body.partition("@")
    check_repo_id(repo_id, what=repr(name))
    if "@" in body and not revision:
        raise SpecError(f"{name!r}: nothing after '@'; give a branch, tag or commit sha, or drop the '@'")
    return repo_id, revision or None


def check_repo_id(repo_id: str, what: str = "repo id") -> str:
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise SpecError(f"{what}: expected a Hub repo id like 'org/name' (letters, digits, '.', '_', '-'), "
                        f"got {repo_id!r}")
    return repo_id


def _where(repo_id: str, revision: str | None, filename: str | None = None) -> str:
    at = f"{repo_id}@{revision}" if revision else repo_id
    return f"'{filename}' in {at}" if filename else at


def _is_connection_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectionError", "ConnectError", "TimeoutException", "ConnectTimeout", "Timeout"})


def translate_error(exc: BaseException, repo_id: str, revision: str | None, filename: str | None = None,
                    *, settings: HubSettings, writing: bool = False, has_token: bool = True) -> MmzooError:
    """Turn a ``huggingface_hub`` exception into a :class:`HubError` that says what and what to do."""
    from huggingface_hub import errors as hf

    where = _where(repo_id, revision, filename)
    endpoint = settings.endpoint
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, hf.RevisionNotFoundError):
        return HubError(f"revision '{revision}' does not exist in Hub repo {repo_id} ({endpoint}); use a branch, "
                        f"tag or full commit sha of that repo, or leave the revision out for 'main'")
    remote_missing = getattr(hf, "RemoteEntryNotFoundError", hf.EntryNotFoundError)  # its name before 1.0
    if isinstance(exc, remote_missing) and not isinstance(exc, hf.LocalEntryNotFoundError):
        return HubError(f"Hub repo {_where(repo_id, revision)} has no file '{filename}' ({endpoint}); "
                        f"an mmzoo model repo holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    if isinstance(exc, hf.RepositoryNotFoundError) and not (writing and status in (401, 403)):
        return HubError(f"Hub repo {repo_id} was not found at {endpoint}; check the name, and for a private "
                        f"repo set HF_TOKEN (or `hf auth login`) to a token that can read it")
    if isinstance(exc, (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)) or _is_connection_error(exc):
        if settings.offline:
            return HubError(f"HF_HUB_OFFLINE is set and {where} is not in the Hub cache ({settings.cache_dir}); "
                            f"download it once online, or unset HF_HUB_OFFLINE")
        return HubError(f"cannot reach the Hub at {endpoint} and {where} is not in the Hub cache "
                        f"({settings.cache_dir}); check the network and HF_ENDPOINT")
    if status == 401 and writing and not has_token:
        return HubError(f"pushing to {repo_id} needs a Hub token with write access ({endpoint} answered 401); "
                        f"pass --token (token=) or set HF_TOKEN, or log in with `hf auth login`")
    if status == 401:
        return HubError(f"the Hub at {endpoint} refused the token for {repo_id} (401): it is not valid or has "
                        f"expired; set HF_TOKEN (or --token) to a valid token")
    if status == 403:
        return HubError(f"the Hub at {endpoint} refused access to {repo_id} (403): the token has no "
                        f"{'write' if writing else 'read'} permission there; use a token that does")
    kind = f"HTTP {status}" if status else type(exc).__name__
    return HubError(f"the Hub at {endpoint} failed on {where} ({kind}); try again later")


@contextmanager
def _hub_errors(repo_id: str, revision: str | None, filename: str | None, settings: HubSettings,
                *, writing: bool = False, has_token: bool = True):
    from huggingface_hub import errors as hf

    try:
        yield
    except MmzooError:
        raise
    except Exception as exc:
        hub_error = (hf.HfHubHTTPError, hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)
        if isinstance(exc, hub_error) or _is_connection_error(exc):
            raise translate_error(exc, repo_id, revision, filename, settings=settings, writing=writing,
                                  has_token=has_token) from None
        raise


# ----- download --------------------------------------------------------------------------------
def _download(repo_id: str, filename: str, revision: str | None, settings: HubSettings,
              asked_revision: str | None = None) -> Path:
    """``hf_hub_download`` with the settings of the moment; errors name ``asked_revision`` (what the user
    wrote) when ``revision`` is the commit it was resolved to."""
    from huggingface_hub import hf_hub_download

    with _hub_errors(repo_id, asked_revision or revision, filename, settings):
        return Path(hf_hub_download(repo_id, filename, revision=revision, endpoint=settings.endpoint,
                                    cache_dir=settings.cache_dir, local_files_only=settings.offline,
                                    library_name="mmzoo"))


def sha256_of(path: str | Path) -> str:
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


def check_safetensors(path: Path, where: str) -> None:
    """Check a safetensors file's structure (header and data size) without loading it."""
    size = path.stat().st_size
    problem = None
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            problem = f"{size} bytes, too short for its header"
        else:
            try:
                header = json.loads(f.read(n))
                ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
                if 8 + n + max(ends, default=0) != size:
                    problem = f"its tensors need {8 + n + max(ends, default=0)} bytes but it has {size}"
            except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                problem = "its header is not valid safetensors JSON"
    if problem:
        raise WeightsError(f"{where}: {path.name} is not a valid safetensors file ({problem}); it is truncated "
                           f"or corrupted — publish or download it again")


def read_model_config(path: Path, source: str) -> dict:
    """Parse an mmzoo ``config.json`` (JSON only) and check it describes an mmzoo model."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HubError(f"{source}: {CONFIG_NAME} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != "mmzoo" or not isinstance(config.get("spec"), dict):
        raise HubError(f"{source}: {CONFIG_NAME} is not an mmzoo config (it needs \"format\": \"mmzoo\" and a "
                       f"\"spec\"); it is not a model published with mmzoo")
    return config


def check_parts_installed(config: dict, source: str) -> None:
    """Every part the config names must be provided by an installed plugin; otherwise raise
    MissingPluginError naming the distribution(s) and version(s) the config's ``requires`` lists."""
    from mmzoo.plugins import get_registry

    registry = get_registry()
    spec = config["spec"]
    parts = [("encoder", f"encoders.{k}", p) for k, p in (spec.get("encoders") or {}).items()]
    parts += [("fusion", "fusion", spec.get("fusion")), ("head", "head", spec.get("head"))]
    for kind, at, part in parts:
        name = part.get("type") if isinstance(part, dict) else None
        if not isinstance(name, str):
            raise SpecError(f"{source}: {CONFIG_NAME} spec.{at} has no 'type'")
        try:
            registry.resolve(kind, name, where=f"{source}: spec.{at}.type")
        except UnknownNameError:
            requires = config.get("requires") if isinstance(config.get("requires"), dict) else {}
            advice = _requirement_advice(requires, registry)
            if advice:
                raise MissingPluginError(f"{source}: {kind} '{name}' (spec.{at}) is provided by no installed "
                                         f"plugin. {advice}") from None
            raise


def _requirement_advice(requires: dict, registry) -> str:
    missing, other_version, failed = [], [], []
    for dist, version in requires.items():
        try:
            installed = metadata.version(dist)
        except metadata.PackageNotFoundError:
            missing.append((dist, version))
            continue
        if dist in getattr(registry, "failed_dists", {}):
            failed.append(dist)
        elif version not in (installed, "unknown"):
            other_version.append((dist, version, installed))
    if missing:
        pins = " ".join(f"'{d}=={v}'" if v != "unknown" else d for d, v in missing)
        listed = ", ".join(f"{d} {v}" for d, v in missing)
        return f"The model needs {listed}, not installed; install with: pip install {pins}"
    if failed:
        return f"Installed plugin(s) {', '.join(failed)} failed to load; see 'mmzoo plugins'"
    if other_version:
        listed = ", ".join(f"{d}=={v} (installed: {i})" for d, v, i in other_version)
        return f"The model was saved with {listed}; install those versions"
    return ""


def download_model_dir(repo_id: str, revision: str | None = None, *, allow_pickle: bool = False) -> Path:
    """Download a published model (``config.json`` + ``model.safetensors``) into the Hub cache and return
    the snapshot directory holding them. ``revision``: branch, tag or commit sha (default: main).

    The config is checked before the weights are fetched; the weights are verified. A repo with only a
    pickle checkpoint is refused unless ``allow_pickle=True``.
    """
    check_repo_id(repo_id)
    settings = hub_settings()
    source = f"{HUB_PREFIX}{_where(repo_id, revision)}"
    config_path = _download(repo_id, CONFIG_NAME, revision, settings)
    commit = config_path.parent.name  # snapshots/<commit sha>/config.json: pin the rest to that commit
    config = read_model_config(config_path, source)
    check_parts_installed(config, source)
    try:
        weights = _download(repo_id, WEIGHTS_NAME, commit, settings, revision or "main")
    except HubError:
        if settings.offline:
            raise
        pickles = _pickle_files(repo_id, commit, settings)
        if not pickles:
            raise
        if not allow_pickle:
            raise WeightsError(f"{source} has only pickle weights ({', '.join(pickles)}), which can run code "
                               f"when loaded; mmzoo loads {WEIGHTS_NAME}. Pass allow_pickle=True if you trust "
                               f"the publisher") from None
        _download(repo_id, pickles[0], commit, settings, revision or "main")
        return config_path.parent
    verify_download(weights, f"{source} {WEIGHTS_NAME}")
    check_safetensors(weights, source)
    return config_path.parent


def _pickle_files(repo_id: str, commit: str, settings: HubSettings) -> list[str]:
    from huggingface_hub import HfApi

    with _hub_errors(repo_id, commit, None, settings):
        files = HfApi(endpoint=settings.endpoint).list_repo_files(repo_id, revision=commit)
    return sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))


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
    source = f"{HUB_PREFIX}{_where(repo_id, revision)} {filename}"
    if filename.endswith(PICKLE_SUFFIXES) and not allow_pickle:
        raise WeightsError(f"{source} is a pickle checkpoint, which can run code when loaded; mmzoo loads "
                           f"safetensors. Pass allow_pickle=True if you trust the publisher")
    path = _download(repo_id, filename, revision, hub_settings())
    verify_download(path, source, expected.lower() if isinstance(expected, str) else None)
    if not filename.endswith(PICKLE_SUFFIXES):
        check_safetensors(path, source)
    return path


# ----- upload ----------------------------------------------------------------------------------
@dataclass
class PushResult:
    """What a push made: the commit (revision) and the registry entry that pins it."""

    repo_id: str
    revision: str
    branch: str
    url: str
    commit_url: str
    sha256: str
    files: list[str]
    name: str
    registry_entry: dict[str, Any] = field(default_factory=dict)

    @property
    def registry_yaml(self) -> str:
        """The ``registry.yaml`` entry (to put under ``models:``) that pins this exact revision."""
        import yaml

        lines = [yaml.safe_dump({self.name: None}, width=1000).rstrip().rsplit(":", 1)[0] + ":"]
        for key, value in self.registry_entry.items():
            flow = None if key in ("encoders", "fusion", "head") else False  # parts inline, like registry.yaml
            text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=flow, width=1000)
            lines.extend("  " + line for line in text.rstrip().splitlines())
        return "\n".join(lines) + "\n"


def resolve_push_source(path: str | Path) -> tuple[Path, Path | None]:
    """A model directory (``config.json`` + ``model.safetensors``) or a run directory holding ``model/``:
    returns (model dir, run dir or None); anything else is a HubError saying what is expected."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise HubError(f"push: {path} is not a directory; give a training run directory (with model/ inside) "
                       f"or a model directory written by save_pretrained ({CONFIG_NAME} + {WEIGHTS_NAME})")
    if (path / CONFIG_NAME).is_file():
        model_dir, run_dir = path, (path.parent if path.name == "model" else None)
    elif (path / "model" / CONFIG_NAME).is_file():
        model_dir, run_dir = path / "model", path
    else:
        raise HubError(f"push: {path} is not a model: it has no {CONFIG_NAME} (nor model/{CONFIG_NAME}); give a "
                       f"training run directory or a directory written by model.save_pretrained()")
    read_model_config(model_dir / CONFIG_NAME, str(model_dir))
    weights = model_dir / WEIGHTS_NAME
    if not weights.is_file():
        pickles = sorted(p.name for p in model_dir.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
        extra = f" (it has {', '.join(pickles)}: convert pickle checkpoints to safetensors)" if pickles else ""
        raise HubError(f"push: {model_dir} has {CONFIG_NAME} but no {WEIGHTS_NAME}{extra}")
    check_safetensors(weights, str(model_dir))
    return model_dir, run_dir


def push_to_hub(model_or_dir: Any, repo_id: str, *, private: bool = False, branch: str | None = None,
                message: str | None = None, token: str | None = None, run_dir: str | Path | None = None,
                license: str | None = None) -> PushResult:
    """Publish a model (a MultimodalModel, a save_pretrained directory or a run directory) to ``repo_id``.

    Uploads ``config.json``, ``model.safetensors``, a ``README.md`` model card and, when the run has it,
    ``curves.png``, in one commit on ``branch`` (default main; created if missing). The repo is created
    if needed (``private`` applies then). Returns the commit sha and the registry entry that pins it.
    """
    from mmzoo.modelcard import CURVES_FILE, build_model_card, read_run

    check_repo_id(repo_id)
    settings = hub_settings()
    if settings.offline:
        raise HubError(f"cannot push to {repo_id} while HF_HUB_OFFLINE is set; unset it to publish")
    token = token or None
    with tempfile.TemporaryDirectory(prefix="mmzoo-push-") as tmp:
        staging = Path(tmp) / "upload"
        if isinstance(model_or_dir, (str, os.PathLike)):
            model_dir, found_run = resolve_push_source(model_or_dir)
            run_dir = run_dir if run_dir is not None else found_run
            staging.mkdir()
            for name in (CONFIG_NAME, WEIGHTS_NAME):
                shutil.copyfile(model_dir / name, staging / name)
        elif hasattr(model_or_dir, "save_pretrained"):
            model_or_dir.save_pretrained(staging)
        else:
            raise HubError(f"push_to_hub: expected a model or a directory, got {type(model_or_dir).__name__}")
        config = read_model_config(staging / CONFIG_NAME, repo_id)
        config_text = (staging / CONFIG_NAME).read_text(encoding="utf-8")
        if token and token in config_text:
            raise HubError(f"push: {CONFIG_NAME} contains the Hub token; remove it before publishing")
        run = read_run(run_dir)
        card = build_model_card(config, repo_id=repo_id, run=run, license=license)
        (staging / "README.md").write_text(card, encoding="utf-8")
        if run.curves is not None:
            shutil.copyfile(run.curves, staging / CURVES_FILE)
        digest = sha256_of(staging / WEIGHTS_NAME)
        name = config.get("name") or repo_id.split("/")[-1]
        summary = message or f"Upload {name} with mmzoo {config.get('mmzoo_version', '')}".rstrip()
        commit = _upload(staging, repo_id, private=private, branch=branch, message=summary, token=token,
                         settings=settings)
        files = sorted(p.name for p in staging.iterdir())
    entry = {"description": f"{name}, published at {repo_id}", **config["spec"],
             "weights": {"repo": repo_id, "revision": commit.oid, "file": WEIGHTS_NAME, "sha256": digest}}
    return PushResult(repo_id=repo_id, revision=commit.oid, branch=branch or "main",
                      url=f"{settings.endpoint}/{repo_id}", commit_url=commit.commit_url, sha256=digest,
                      files=files, name=name, registry_entry=entry)


def _upload(staging: Path, repo_id: str, *, private: bool, branch: str | None, message: str, token: str | None,
            settings: HubSettings):
    from huggingface_hub import HfApi, get_token

    api = HfApi(endpoint=settings.endpoint, token=token, library_name="mmzoo")
    has_token = bool(token or get_token())
    with _hub_errors(repo_id, branch, None, settings, writing=True, has_token=has_token):
        api.create_repo(repo_id, private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        return api.upload_folder(folder_path=staging, repo_id=repo_id, revision=branch, commit_message=message)

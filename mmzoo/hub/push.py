"""Publishing to the Hub: ``model.push_to_hub(repo_id)``, ``push_to_hub(dir, repo_id)`` and ``mmzoo push``.

One commit holds ``config.json``, ``model.safetensors`` and the model card; from a run directory also
``curves.png``, ``training/config.yaml`` and ``training/metrics.jsonl`` (:mod:`mmzoo.hub.staging`). A
repo that already has a card keeps its author's text (:mod:`mmzoo.hub.card`). Tokens go to the client
only: every staged file is checked for them, and for paths into home directories, before anything is
uploaded (:mod:`mmzoo.hub.leaks`).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmzoo.errors import HubError
from mmzoo.hub.download import check_repo_id, sha256_of
from mmzoo.hub.errors import hub_errors
from mmzoo.hub.leaks import check_no_leaks, known_tokens
from mmzoo.hub.settings import HubSettings, hub_settings
from mmzoo.hub.staging import (
    RUN_MODEL_DIR,
    resolve_push_source,
    stage_checkpoint,
    stage_directory,
    stage_run_files,
)
from mmzoo.saved import CONFIG_NAME, WEIGHTS_NAME, SavedModel, read_model_dir

__all__ = ["RUN_MODEL_DIR", "PushResult", "push_to_hub", "resolve_push_source"]
CARD_NAME = "README.md"


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
    warnings: list[str] = field(default_factory=list)  # e.g. that the model looks untrained

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


def push_to_hub(model_or_dir: Any, repo_id: str, *, private: bool = False, branch: str | None = None,
                message: str | None = None, token: str | None = None, run_dir: str | Path | None = None,
                license: str | None = None, checkpoint: str | None = None,
                overwrite_card: bool = False) -> PushResult:
    """Publish a model (a MultimodalModel, a save_pretrained directory or a run directory) to ``repo_id``.

    Uploads ``config.json``, ``model.safetensors``, a ``README.md`` model card (made from what
    ``config.json`` holds: metrics, datasets, labels, which step) and, from a run directory,
    ``curves.png``, ``training/config.yaml`` and ``training/metrics.jsonl``, in one commit on ``branch``
    (default main; created if missing). ``checkpoint`` (``"best"``, ``"last"``, ``"step-N"``) publishes
    that checkpoint of the run instead of its ``model/``. A card already in the repo keeps its author's
    text and metadata; mmzoo replaces only its own (``overwrite_card=True``: a fresh card). The repo is
    created if needed (``private`` applies then). A model that looks untrained is published with a
    warning. Returns the commit sha and the registry entry that pins it.
    """
    check_repo_id(repo_id)
    settings = hub_settings()
    if settings.offline:
        raise HubError(f"cannot push to {repo_id} while HF_HUB_OFFLINE is set; unset it to publish")
    token = token or None
    with tempfile.TemporaryDirectory(prefix="mmzoo-push-") as tmp:
        staging = Path(tmp) / "upload"
        run_dir, loaded = _stage_model(model_or_dir, staging, run_dir=run_dir, checkpoint=checkpoint)
        saved = read_model_dir(staging, source=repo_id)
        texts = [CONFIG_NAME]
        if run_dir is not None:
            texts += stage_run_files(Path(run_dir), staging)
        notes = [] if loaded or not _untrained(saved) else [_untrained_note(model_or_dir)]
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=2)
        files = sorted([*(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()), CARD_NAME])
        digest = sha256_of(staging / WEIGHTS_NAME)
        name = saved.name or repo_id.split("/")[-1]
        summary = message or f"Upload {name} with mmzoo {saved.mmzoo_version or ''}".rstrip()
        from huggingface_hub import HfApi, get_token

        tokens = known_tokens(token)
        check_no_leaks(staging, tokens, texts=dict.fromkeys(texts), repo_id=repo_id)  # before the repo exists
        api = HfApi(endpoint=settings.endpoint, token=token, library_name="mmzoo")
        has_token = bool(token or get_token())
        with hub_errors(repo_id, branch, None, settings, writing=True, has_token=has_token):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if branch:
                api.create_branch(repo_id, branch=branch, exist_ok=True)
            generated = _write_card(api, staging, saved, repo_id=repo_id, branch=branch, license=license,
                                    files=files, overwrite=overwrite_card, settings=settings)
            check_no_leaks(staging, tokens, texts={CARD_NAME: generated}, repo_id=repo_id, files=[CARD_NAME])
            commit = api.upload_folder(folder_path=staging, repo_id=repo_id, revision=branch,
                                       commit_message=summary)
    entry = {"description": f"{name}, published at {repo_id}", **saved.spec.to_dict(),
             "weights": {"repo": repo_id, "revision": commit.oid, "file": WEIGHTS_NAME, "sha256": digest}}
    return PushResult(repo_id=repo_id, revision=commit.oid, branch=branch or "main",
                      url=f"{settings.endpoint}/{repo_id}", commit_url=commit.commit_url, sha256=digest,
                      files=sorted(files), name=name, registry_entry=entry, warnings=notes)


def _stage_model(model_or_dir: Any, staging: Path, *, run_dir: str | Path | None,
                 checkpoint: str | None) -> tuple[Path | None, bool]:
    """Put the model's config and weights into ``staging``; returns the run directory it belongs to (or
    None) and whether the model was loaded from published or saved weights."""
    if isinstance(model_or_dir, (str, os.PathLike)):
        model_dir, found_run = resolve_push_source(model_or_dir, checkpoint=checkpoint)
        if model_dir is None:
            stage_checkpoint(found_run, checkpoint, staging)
        else:
            stage_directory(model_dir, staging)
        return (Path(run_dir) if run_dir is not None else found_run), False
    if hasattr(model_or_dir, "save_pretrained"):
        if checkpoint is not None:
            raise HubError("push_to_hub: checkpoint= picks a checkpoint of a run directory; pass the run "
                           "directory, not a model object")
        model_or_dir.save_pretrained(staging)
        return (Path(run_dir) if run_dir is not None else None), getattr(model_or_dir, "load_report", None) is not None
    raise HubError(f"push_to_hub: expected a model or a directory, got {type(model_or_dir).__name__}")


def _untrained(saved: SavedModel) -> bool:
    """No record of any training: config.json has neither ``training`` nor ``metrics``."""
    return not saved.training and not saved.metrics


def _untrained_note(source: Any) -> str:
    is_model = hasattr(source, "save_pretrained")
    fix = ("set model.provenance['training'] = {'steps': N} before pushing" if is_model
           else "save it with save_pretrained(dir, extra={'training': {'steps': N}})")
    return (f"push: {'the model' if is_model else str(source)} looks untrained (randomly initialised): its "
            f"config.json has no training record (training, metrics) and it was not loaded from saved weights. "
            f"It is published anyway; if you trained it outside `mmzoo train`, {fix} to record that")


def _write_card(api, staging: Path, saved: SavedModel, *, repo_id: str, branch: str | None, license: str | None,
                files: list[str], overwrite: bool, settings: HubSettings) -> str:
    """Write ``README.md``: a fresh card, or the repo's card with mmzoo's metadata and block merged in.
    Returns the card mmzoo generated (what the leak check reads: the author's text is theirs)."""
    from mmzoo.hub.card import merge_card
    from mmzoo.modelcard import CURVES_FILE, build_model_card, card_intro, card_metadata, generated_block

    curves = CURVES_FILE in files
    fresh = build_model_card(saved, repo_id=repo_id, curves=curves, license=license, files=files)
    existing = None if overwrite else _existing_card(api, repo_id, branch, settings)
    text = fresh
    if existing is not None:
        block = generated_block(saved, repo_id=repo_id, curves=curves, files=files)
        text = merge_card(existing, card_metadata(saved, repo_id=repo_id, license=license), block,
                          intro="\n".join(card_intro(saved, repo_id=repo_id)), repo_id=repo_id,
                          license_given=license is not None)
    (staging / CARD_NAME).write_text(text, encoding="utf-8")
    return fresh


def _existing_card(api, repo_id: str, branch: str | None, settings: HubSettings) -> str | None:
    """The repo's ``README.md`` on ``branch`` (None when it has none)."""
    from huggingface_hub import errors as hf

    missing = getattr(hf, "RemoteEntryNotFoundError", hf.EntryNotFoundError)
    try:
        path = api.hf_hub_download(repo_id, CARD_NAME, revision=branch, cache_dir=settings.cache_dir)
    except missing:
        return None
    return Path(path).read_text(encoding="utf-8", errors="replace")

"""Publishing to the Hub: ``model.push_to_hub(repo_id)``, ``push_to_hub(dir, repo_id)`` and ``mmzoo push``.

One commit holds ``config.json``, ``model.safetensors``, the model card and, from a run directory,
``curves.png``. Tokens go to the client only: an upload in which any file contains the token in use
(``--token``, ``HF_TOKEN`` or the stored login) is refused, and no message shows it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmzoo.errors import HubError
from mmzoo.hub.download import check_repo_id, sha256_of
from mmzoo.hub.errors import hub_errors
from mmzoo.hub.settings import HubSettings, hub_settings
from mmzoo.saved import CONFIG_NAME, WEIGHTS_NAME, read_model_dir
from mmzoo.tensorfile import read_layout

RUN_MODEL_DIR = "model"  # where a training run directory keeps its final model


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
        model_dir, run_dir = path, (path.parent if path.name == RUN_MODEL_DIR else None)
    elif (path / RUN_MODEL_DIR / CONFIG_NAME).is_file():
        model_dir, run_dir = path / RUN_MODEL_DIR, path
    else:
        raise HubError(f"push: {path} is not a model: it has no {CONFIG_NAME} (nor model/{CONFIG_NAME}); give a "
                       f"training run directory or a directory written by model.save_pretrained()")
    saved = read_model_dir(model_dir)
    if saved.weights_file is None:
        extra = ""
        if saved.pickles:
            extra = f" (it has {', '.join(saved.pickles)}: convert pickle checkpoints to safetensors)"
        raise HubError(f"push: {model_dir} has {CONFIG_NAME} but no {WEIGHTS_NAME}{extra}")
    read_layout(saved.weights_file, str(model_dir))
    return model_dir, run_dir


def push_to_hub(model_or_dir: Any, repo_id: str, *, private: bool = False, branch: str | None = None,
                message: str | None = None, token: str | None = None, run_dir: str | Path | None = None,
                license: str | None = None) -> PushResult:
    """Publish a model (a MultimodalModel, a save_pretrained directory or a run directory) to ``repo_id``.

    Uploads ``config.json``, ``model.safetensors``, a ``README.md`` model card (made from what
    ``config.json`` holds: metrics, datasets, labels) and, when the run directory has it, ``curves.png``,
    in one commit on ``branch`` (default main; created if missing). The repo is created if needed
    (``private`` applies then). Returns the commit sha and the registry entry that pins it.
    """
    from mmzoo.modelcard import CURVES_FILE, build_model_card

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
        saved = read_model_dir(staging, source=repo_id)
        curves = Path(run_dir) / CURVES_FILE if run_dir is not None else None
        has_curves = curves is not None and curves.is_file()
        card = build_model_card(saved, repo_id=repo_id, curves=has_curves, license=license)
        (staging / "README.md").write_text(card, encoding="utf-8")
        if has_curves:
            shutil.copyfile(curves, staging / CURVES_FILE)
        digest = sha256_of(staging / WEIGHTS_NAME)
        name = saved.name or repo_id.split("/")[-1]
        summary = message or f"Upload {name} with mmzoo {saved.mmzoo_version or ''}".rstrip()
        refuse_token_in_files(staging, token)
        commit = _upload(staging, repo_id, private=private, branch=branch, message=summary, token=token,
                         settings=settings)
        files = sorted(p.name for p in staging.iterdir())
    entry = {"description": f"{name}, published at {repo_id}", **saved.spec.to_dict(),
             "weights": {"repo": repo_id, "revision": commit.oid, "file": WEIGHTS_NAME, "sha256": digest}}
    return PushResult(repo_id=repo_id, revision=commit.oid, branch=branch or "main",
                      url=f"{settings.endpoint}/{repo_id}", commit_url=commit.commit_url, sha256=digest,
                      files=files, name=name, registry_entry=entry)


def refuse_token_in_files(staging: Path, token: str | None) -> None:
    """Refuse to publish when the Hub token in use (``token``, else ``HF_TOKEN`` or the stored login) appears
    in any file about to be uploaded from ``staging``. Every staged file goes through here, whatever put it
    there; the message names the file, never the token."""
    from huggingface_hub import get_token

    secret = (token or get_token() or "").strip()
    if not secret:
        return
    needle = secret.encode("utf-8")
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        if _file_contains(path, needle):
            name = path.relative_to(staging).as_posix()
            raise HubError(f"push: {name} contains the Hub token you are pushing with; nothing was uploaded. "
                           f"Remove the token from it (and revoke the token if that file was shared) before "
                           f"publishing")


def _file_contains(path: Path, needle: bytes, block: int = 1 << 20) -> bool:
    """Whether ``needle`` occurs in the file, read in blocks that overlap by ``len(needle) - 1`` bytes."""
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(block):
            if needle in tail + chunk:
                return True
            tail = chunk[-(len(needle) - 1):] if len(needle) > 1 else b""
    return False


def _upload(staging: Path, repo_id: str, *, private: bool, branch: str | None, message: str, token: str | None,
            settings: HubSettings):
    from huggingface_hub import HfApi, get_token

    api = HfApi(endpoint=settings.endpoint, token=token, library_name="mmzoo")
    has_token = bool(token or get_token())
    with hub_errors(repo_id, branch, None, settings, writing=True, has_token=has_token):
        api.create_repo(repo_id, private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        return api.upload_folder(folder_path=staging, repo_id=repo_id, revision=branch, commit_message=message)

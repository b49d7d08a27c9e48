"""Atomic checkpoints: ``checkpoints/step-000123/{model.safetensors, trainer_state.pt, checkpoint.json}``.

A checkpoint is written into a hidden temporary directory, every file fsynced, then the directory
is renamed into place and its parent fsynced. A crash at any moment leaves either the complete new
checkpoint or none of it; the previous ones stay usable. ``trainer_state.pt`` holds only tensors and
plain data, so it loads with ``torch.load(weights_only=True)``; ``checkpoint.json`` repeats the plain
facts (step, best, strategy, world size) for readers without torch (:class:`~mmzoo.train.rundir.RunDir`).
What the weights files are is the training strategy's business (:mod:`mmzoo.train.strategy`): the
manager writes whatever ``write`` puts into the temporary directory.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmzoo.errors import ConfigError, WeightsError
from mmzoo.storage import writing
from mmzoo.train.rundir import (
    CHECKPOINT_INFO,
    CHECKPOINT_STATE,
    CHECKPOINT_WEIGHTS,
    TEMP_PREFIX,
    checkpoint_name,
    is_sharded,
    list_checkpoints,
)

MODEL_FILE = CHECKPOINT_WEIGHTS
STATE_FILE = CHECKPOINT_STATE
_TEMP_PREFIX = TEMP_PREFIX


def _umask_mode(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temp_path)``, fsync, rename over ``path``, fsync the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX + path.name + ".", dir=path.parent)
    os.close(fd)
    temp_path = Path(temp)
    try:
        os.chmod(temp_path, _umask_mode(0o666))  # mkstemp makes 0600; give the file normal permissions
        write(temp_path)
        fsync_file(temp_path)
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


# --- RNG states (plain data, so weights_only loading works) -------------------------------------


def capture_rng() -> dict[str, Any]:
    """This process's torch (CPU and CUDA), numpy and python RNG states."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    npy = state["numpy"]
    np.random.set_state(
        (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))


# --- checkpoint directories ----------------------------------------------------------------------


class CheckpointManager:
    """The ``checkpoints/`` directory of a run: save atomically, list, prune (keep last k + best)."""

    def __init__(self, directory: Path, keep_last: int) -> None:
        self.directory = Path(directory)
        self.keep_last = keep_last

    def steps(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, oldest first."""
        return list_checkpoints(self.directory)

    def latest(self) -> Path | None:
        steps = self.steps()
        return steps[-1][1] if steps else None

    def path_for(self, step: int) -> Path:
        return self.directory / checkpoint_name(step)

    def remove_temporaries(self) -> None:
        """Leftovers of writes interrupted by a crash."""
        if self.directory.is_dir():
            for child in self.directory.iterdir():
                if child.name.startswith(_TEMP_PREFIX):
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(
                        missing_ok=True
                    )

    def save(
        self,
        step: int,
        state: dict[str, Any],
        write: Callable[[Path], None],
        *,
        info: dict[str, Any] | None = None,
        keep: set[int] = frozenset(),  # type: ignore[assignment]
    ) -> Path:
        """Write checkpoint ``step`` atomically: ``write(directory)`` puts the weights there, then the
        trainer ``state`` and ``info`` (checkpoint.json) follow; prune all but the last ``keep_last``
        and ``keep``."""
        final = self.path_for(step)
        then = self._kept_note(final)
        with writing(final, then=then):
            temp = self.begin(step)
        try:
            with writing(final / MODEL_FILE, then=then):
                write(temp)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return self.finish(temp, step, state, info=info, keep=keep)

    def _kept_note(self, final: Path) -> str:
        """What a full disk leaves behind while checkpoint ``final`` is written (for its message)."""
        previous = self.latest()
        kept = (f"; checkpoint {previous.name} is intact, and nothing of {final.name} was kept" if previous
                else f"; no earlier checkpoint exists, and nothing of {final.name} was kept")
        return f"{kept}. Free some space and continue with resume: auto"

    def finish(
        self,
        temp: Path,
        step: int,
        state: dict[str, Any],
        *,
        info: dict[str, Any] | None = None,
        keep: set[int] = frozenset(),  # type: ignore[assignment]
    ) -> Path:
        """Add the trainer ``state`` and ``info`` to ``temp`` (from :meth:`begin`, its weights written),
        make every file and directory in it durable, and :meth:`commit` it."""
        final = self.path_for(step)
        then = self._kept_note(final)
        try:
            with writing(final / STATE_FILE, then=then), open(temp / STATE_FILE, "wb") as handle:
                torch.save(state, handle)  # through a Python file, so a full disk surfaces as its OSError
            with writing(final / CHECKPOINT_INFO, then=then):
                (temp / CHECKPOINT_INFO).write_text(json.dumps({"step": step, **(info or {})}) + "\n",
                                                    encoding="utf-8")
            with writing(final, then=then):  # a file system may report a full disk only when flushing
                for child in temp.iterdir():
                    if child.is_file():
                        fsync_file(child)
                    elif child.is_dir():  # a sharded checkpoint's files (each fsynced by its writer)
                        fsync_dir(child)
                fsync_dir(temp)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return self.commit(temp, step, keep)

    def begin(self, step: int) -> Path:
        """A fresh hidden directory for checkpoint ``step``'s files (every file in it is fsynced by the
        writer before :meth:`commit`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path_for(step)
        temp = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{final.name}.", dir=self.directory))
        os.chmod(temp, _umask_mode(0o777))
        return temp

    def commit(self, temp: Path, step: int, keep: set[int] = frozenset()) -> Path:  # type: ignore[assignment]
        """Rename the written ``temp`` into place as checkpoint ``step`` (replacing one of the same step
        whole), make that durable, then prune."""
        final = self.path_for(step)
        try:
            if final.exists():  # the same step saved again (e.g. after a resume): replace it whole
                stale = final.with_name(f"{_TEMP_PREFIX}stale-{final.name}")
                os.replace(final, stale)
                os.replace(temp, final)
                shutil.rmtree(stale, ignore_errors=True)
            else:
                os.replace(temp, final)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        fsync_dir(self.directory)
        self.prune(keep | {step})
        return final

    def prune(self, keep: set[int]) -> None:
        steps = self.steps()
        recent = {step for step, _ in steps[-self.keep_last :]}
        for step, path in steps:
            if step not in recent and step not in keep:
                shutil.rmtree(path, ignore_errors=True)


def model_writer(module: torch.nn.Module, step: int | None = None) -> Callable[[Path], None]:
    """A ``write`` for :meth:`CheckpointManager.save`: the module's full state as model.safetensors."""

    def write(directory: Path) -> None:
        from safetensors.torch import save_model

        metadata = {"format": "pt"} if step is None else {"format": "pt", "step": str(step)}
        save_model(module, str(directory / MODEL_FILE), metadata=metadata, force_contiguous=True)

    return write


def load_state(path: Path) -> dict[str, Any]:
    """The trainer state of checkpoint directory ``path``."""
    try:
        return torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"resume: {path} is not a checkpoint (no {STATE_FILE})") from None
    except Exception as exc:  # a truncated or foreign file
        raise WeightsError(
            f"resume: cannot read {path / STATE_FILE} ({exc.__class__.__name__}: {exc})"
        ) from None


def load_model_weights(module: torch.nn.Module, path: Path) -> None:
    """Load checkpoint weights strictly, whole (model.safetensors) or sharded (gathered from every rank's
    file into this process's model); a mismatch names the differing keys."""
    from safetensors.torch import load_model

    if is_sharded(path):
        from mmzoo.train.sharded import load_sharded_model

        load_sharded_model(module, path)
        return
    try:
        missing, unexpected = load_model(module, str(path / MODEL_FILE), strict=False)
    except Exception as exc:
        raise WeightsError(f"resume: cannot load {path / MODEL_FILE} into the model ({exc})") from None
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        raise WeightsError(
            f"resume: checkpoint {path} does not match the configured model ({'; '.join(parts)}); "
            "was `model` changed since the run started?"
        )


def _few(names: list[str], n: int = 4) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")

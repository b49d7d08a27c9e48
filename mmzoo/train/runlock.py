"""One run at a time per run directory: an exclusive lock on ``output_dir``, held for the run's life.

Two runs started into the same new ``output_dir`` would otherwise both pass the "is it empty?" check and
interleave their checkpoints and metrics. The lock is ``filelock``'s (``flock`` on Linux): the kernel
drops it when its holder exits, however it exits, so a crashed or killed run never leaves the directory
locked. Beside it, a small file names the holder's pid for the refusal message.

Who holds it: the process that decides what the run does with its directory. ``mmzoo train`` in one
process holds it itself; ``mmzoo train --nproc N`` holds it in the launcher for as long as the ranks run
and tells them so (:data:`HOLDER_ENV`), so rank 0 does not try to take it a second time; under a
launcher that does not (``torchrun``), rank 0 takes it. Importing this module does not import torch.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from mmzoo.errors import ConfigError
from mmzoo.train.rundir import LOCK_FILE, LOCK_OWNER_FILE

#: Set by ``mmzoo train --nproc`` for its ranks: ``<launcher pid>:<run dir>``, the lock it holds for them.
HOLDER_ENV = "MMZOO_RUN_LOCK_HOLDER"


class RunDirLock:
    """The exclusive lock of one run directory. :meth:`acquire` creates the directory if needed and
    raises ConfigError when another process holds the lock (naming its pid) or the directory cannot be
    written; :meth:`release` (or leaving the ``with`` block) gives it back, and removes the folders
    acquire created when the run wrote nothing into them (a run refused for a config mistake leaves
    no empty output_dir behind)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir).expanduser()
        self._lock = None
        self._created: list[Path] = []  # the folders acquire made, the run dir first

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> RunDirLock:
        from filelock import FileLock, Timeout

        if self._lock is not None:
            return self
        where = f"output_dir: '{self.run_dir}'"
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ConfigError(f"{where} exists and is a file, not a directory")
        try:
            self._created = [p for p in (self.run_dir, *self.run_dir.parents) if not p.exists()]
            self.run_dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.run_dir / LOCK_FILE))
            lock.acquire(timeout=0)
        except Timeout:
            raise ConfigError(
                f"{where} is in use by another run ({describe_holder(self.run_dir)}); two runs never write "
                f"into one directory. Wait for that run to finish (or stop it), or choose another output_dir"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{where} cannot be written ({type(exc).__name__}: {exc.strerror or exc}); choose a directory "
                f"this user can create files in"
            ) from None
        self._lock = lock
        try:
            owner = {"pid": os.getpid(), "host": socket.gethostname()}
            (self.run_dir / LOCK_OWNER_FILE).write_text(json.dumps(owner) + "\n", encoding="utf-8")
        except OSError as exc:
            self.release()
            raise ConfigError(f"{where} cannot be written ({type(exc).__name__}: {exc.strerror or exc}); "
                              f"choose a directory this user can create files in") from None
        return self

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            (self.run_dir / LOCK_OWNER_FILE).unlink(missing_ok=True)
        except OSError:
            pass  # the lock itself still goes: the owner file only feeds the refusal message
        try:
            unused = bool(self._created) and not any(
                c.name not in (LOCK_FILE, LOCK_OWNER_FILE) for c in self.run_dir.iterdir())
            if unused:
                (self.run_dir / LOCK_FILE).unlink(missing_ok=True)
        except OSError:
            unused = False
        self._lock.release()
        self._lock = None
        if unused:
            for folder in self._created:
                try:
                    folder.rmdir()  # fails, and stops, at one that is not empty (another run started there)
                except OSError:
                    break
        self._created = []

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def describe_holder(run_dir: Path) -> str:
    """``pid 1234 on host h`` from the owner file of a locked run directory, as well as it can tell."""
    try:
        owner = json.loads((run_dir / LOCK_OWNER_FILE).read_text(encoding="utf-8"))
        pid, host = owner["pid"], owner.get("host")
    except (OSError, ValueError, KeyError, TypeError):
        return "its pid is not recorded yet"
    if isinstance(pid, bool) or not isinstance(pid, int):
        return "its pid is not recorded"
    here = socket.gethostname()
    return f"pid {pid}" + (f" on host {host}" if isinstance(host, str) and host != here else "")


def held_for_me(run_dir: str | os.PathLike[str]) -> bool:
    """True in a rank whose launcher (its parent process) holds the lock of ``run_dir`` for it."""
    holder, _, path = os.environ.get(HOLDER_ENV, "").partition(":")
    if not holder.isdigit() or int(holder) != os.getppid() or not path:
        return False
    return Path(path).resolve() == Path(run_dir).expanduser().resolve()


def holder_env(run_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The environment a launcher that holds the lock of ``run_dir`` gives its ranks."""
    return {HOLDER_ENV: f"{os.getpid()}:{Path(run_dir).expanduser().resolve()}"}

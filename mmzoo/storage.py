"""Writing files on a disk that may fill up: one clear error naming the file and the space left.

A full disk shows up differently in every writer: ``OSError(ENOSPC)`` from Python's own files, a
``SafetensorError`` whose text ends in ``(os error 28)``, a ``RuntimeError: unexpected pos`` from
``torch.save`` whose context holds the ``OSError``. :func:`writing` recognises all of them (and a quota
or a file-size limit, which stop a write the same way) and raises a :class:`~mmzoo.errors.StorageError`
instead. Importing this module is cheap.
"""

from __future__ import annotations

import errno
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmzoo.errors import StorageError

#: The errors a write gets when there is no room for it, and how messages say so.
NO_ROOM = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is over the file-size limit (ulimit -f)",
}
_OS_ERROR_CODE = re.compile(r"os error (\d+)|\[Errno (\d+)\]")


def out_of_room(exc: BaseException | None) -> int | None:
    """The errno of a write that failed for lack of room, found in ``exc`` or the exceptions it came
    from (``__cause__``/``__context__``); None when the failure is something else."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            return exc.errno
        for match in _OS_ERROR_CODE.finditer(str(exc)):
            code = int(match.group(1) or match.group(2))
            if code in NO_ROOM:
                return code
        exc = exc.__cause__ or exc.__context__
    return None


def free_space(path: str | Path) -> str:
    """How much room is left on the disk holding ``path`` ("1.5 GiB"), or "unknown"."""
    directory = Path(path).absolute()
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return "unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if free < 1024 or unit == "TiB":
            return f"{free} bytes" if unit == "bytes" else f"{free:.1f} {unit}"
        free /= 1024
    return "unknown"  # pragma: no cover - the loop always returns


@contextmanager
def writing(path: str | Path, *, then: str = "") -> Iterator[None]:
    """Run a write of ``path``; a failure for lack of room becomes a StorageError naming ``path`` and the
    free space, followed by ``then`` (what was kept, what to do). Other failures pass unchanged."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        code = out_of_room(exc)
        if code is None:
            raise
        raise StorageError(
            f"cannot write {path}: {NO_ROOM[code]} ({free_space(path)} free on that disk){then}"
        ) from None

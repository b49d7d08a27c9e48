"""What must never reach a public repo: Hub tokens, and local paths that reveal a user's home directory.

A push uploads files made from a run directory (the training config, the metrics log) and the model's
``config.json``. Before the upload :func:`check_no_leaks` reads every staged file: one that holds a
token known to this process is refused (the message names the file, never the token), and so is a text
file mmzoo wrote that names a home directory. The training files are first passed through
:func:`redact_home`, which rewrites such paths to ``~/...``; ``config.json`` is not rewritten, since it
rebuilds the model: a spec naming a file in a home directory cannot be rebuilt by anyone else anyway.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mmzoo.errors import HubError

# /home/alice, /Users/alice, C:\Users\alice (and C:/Users/alice): whoever's home a run was made in.
_HOMES = re.compile(r"(?<![\w.~-])(?:/home/[^/\s\"'`]+|/Users/[^/\s\"'`]+|[A-Za-z]:[\\/]Users[\\/][^\\/\s\"'`]+)")
_MIN_TOKEN_LENGTH = 8  # anything shorter is not a real token, and would match by chance


def known_tokens(token: str | None) -> list[str]:
    """The tokens this process could hold: the one passed, ``HF_TOKEN`` (and its older name) and the
    stored login."""
    found = [token, os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")]
    try:
        from huggingface_hub import get_token

        found.append(get_token())
    except Exception:  # no readable stored token: nothing more to look for
        pass
    return list(dict.fromkeys(t for t in found if isinstance(t, str) and len(t.strip()) >= _MIN_TOKEN_LENGTH))


def _this_home() -> str | None:
    try:
        home = str(Path.home())
    except (RuntimeError, KeyError):  # no home directory known for this user
        return None
    return home if len(home.rstrip("/\\")) > 1 else None


def redact_home(value: Any) -> Any:
    """``value`` (plain data: dicts, lists, strings) with every path into a home directory written as
    ``~/...``."""
    if isinstance(value, str):
        home = _this_home()
        if home and home in value:
            value = value.replace(home, "~")
        return _HOMES.sub("~", value)
    if isinstance(value, dict):
        return {redact_home(k) if isinstance(k, str) else k: redact_home(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_home(v) for v in value]
    return value


def home_path_in(text: str) -> str | None:
    """The first home-directory path in ``text`` (``/home/alice``...), or None."""
    home = _this_home()
    if home and home in text:
        return home
    match = _HOMES.search(text)
    return match.group(0) if match else None


def _contains_any(path: Path, needles: list[bytes], block: int = 1 << 20) -> bool:
    """Whether the file holds one of ``needles``, read block by block (weights files can be gigabytes)."""
    overlap = max(len(n) for n in needles) - 1
    tail = b""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            window = tail + chunk
            if any(n in window for n in needles):
                return True
            tail = window[-overlap:] if overlap else b""
    return False


def check_no_leaks(staging: Path, tokens: Iterable[str], *, texts: Mapping[str, str | None], repo_id: str,
                   files: Iterable[str] | None = None) -> None:
    """Refuse (HubError) to publish ``staging`` when one of its ``files`` (default: all) holds one of
    ``tokens``, or when one of the texts mmzoo wrote names a home directory: ``texts`` maps a file
    (relative to ``staging``) to the text to check for it (None: the file as staged)."""
    tokens = [t.encode() for t in tokens]
    if files is None:
        files = [p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()]
    for name in sorted(files):
        if tokens and _contains_any(staging / name, tokens):
            raise HubError(f"push to {repo_id}: {name} contains a Hub token; remove it from the source before "
                           f"publishing (nothing was uploaded)")
    for name, text in texts.items():
        if text is None:
            text = (staging / name).read_text(encoding="utf-8", errors="replace")
        found = home_path_in(text)
        if found:
            raise HubError(f"push to {repo_id}: {name} names a path in a home directory ({found}...), which a "
                           f"public repo must not show; use paths relative to the run, or a published source "
                           f"(hf-hub:...) instead of local files (nothing was uploaded)")

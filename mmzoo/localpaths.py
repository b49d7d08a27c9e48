"""Local paths: which part parameters name files on this machine, and paths that cannot be looked at.

A model's ``config.json`` (from a directory or the Hub) is hostile input, and must not name files outside
the model: ``pretrained_file: /home/me/.ssh/id_rsa``, ``type: hf//etc`` or ``hf/../../..`` would make a
part read them. Parts say which of their parameters are local paths (:data:`PATH_PARAMS`, an optional
attribute of a part's factory); the builder refuses a value of such a parameter that names a local file
when it comes from a loaded config (:func:`check_loaded_paths`). The same values are accepted from the
user's own code, spec files and registry YAML, which are trusted.

:func:`path_problem` tells why a path cannot even be looked at (a name too long for the file system,
symbolic links that loop), so that a source or a dataset can say so instead of raising ``OSError``.
Importing this module is cheap.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from mmzoo.errors import SpecError

#: The optional attribute of a part factory (a function or class) listing the parameters whose values
#: may name local files or folders, e.g. ``build_encoder.path_params = ("pretrained_file",)``. For a
#: family factory, list its first parameter (the member, ``hf/<member>``) when a member may be a path.
PATH_PARAMS = "path_params"

_SEPARATORS = re.compile(r"[\\/]")


def declared_path_params(factory: Any) -> tuple[str, ...]:
    """The parameter names ``factory`` (or the function it wraps) declares as local paths."""
    target = getattr(factory, "__wrapped__", factory)
    names = getattr(target, PATH_PARAMS, getattr(factory, PATH_PARAMS, ()))
    if isinstance(names, str) or not all(isinstance(n, str) for n in names or ()):
        return ()  # a malformed declaration declares nothing (a part cannot opt out of checks by it)
    return tuple(names or ())


def member_parameter(factory: Any) -> str | None:
    """The name of a family factory's first parameter: the one the member (``timm/<member>``) is bound to."""
    target = getattr(factory, "__wrapped__", factory)
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None
    return params[0].name if params and params[0].kind in (params[0].POSITIONAL_ONLY,
                                                            params[0].POSITIONAL_OR_KEYWORD) else None


def local_path_reason(value: str) -> str | None:
    """Why the string ``value`` names (or could name) a local file or folder, or None when it cannot
    (a Hub repo id such as ``org/name`` that is nothing on this machine)."""
    if value.lower().startswith("file:"):
        return "a file: URL"
    if value.startswith("~"):
        return "a path in a home folder"
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        return "an absolute path"
    if ".." in _SEPARATORS.split(value):
        return "a path that climbs out with '..'"
    try:
        if os.path.lexists(value):
            return "an existing local file or folder"
    except (OSError, ValueError):
        return "a path"
    return None


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` (nested mappings and lists), with where it sits."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def check_loaded_paths(name: str, params: Mapping[str, Any], loaded: Mapping[str, Any], member: str | None,
                       factory: Any, where: str) -> None:
    """Refuse the local paths of a part whose parameters come from a loaded model's config.

    ``params`` are the part's parameters as it will be built, ``loaded`` those the config gave it (values
    equal in both came from the config; others were overridden in the user's code and are trusted),
    ``member`` the family member of ``name`` when it is one. Raises SpecError naming the parameter.
    """
    declared = declared_path_params(factory)
    if not declared:
        return
    if member is not None and member_parameter(factory) in declared:
        reason = local_path_reason(member)
        if reason is not None:
            raise SpecError(f"{where}.type: {shorten(name, 200)!r} names {reason}{_REFUSED}")
    for key in declared:
        if key not in params or key not in loaded or loaded[key] != params[key]:
            continue
        for inside, text in _strings(params[key], f"{where}.{key}"):
            reason = local_path_reason(text)
            if reason is not None:
                raise SpecError(f"{inside}: {shorten(text, 200)!r} is {reason}{_REFUSED}")


_REFUSED = (". A model's config.json (from a model directory or the Hub) may not name local files: it could "
            "make mmzoo read files outside the model. Local paths are accepted from your own code, spec files "
            "and registry YAML; a published model names its parts' files by Hub repo id. To reload a model "
            "you saved from local files, give that part again in your code, e.g. "
            "create_model(DIR, encoders={'text': {'type': 'hf/<folder>'}})")


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be looked at (``"File name too long"``, ``"Too many levels of symbolic
    links"``...); None when it can (whether or not it exists)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    except ValueError as exc:  # an embedded NUL character
        return str(exc)
    return None


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters for a message (with how long it was)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"

"""Listing registered names without importing torch or any part's library."""

from __future__ import annotations

from mmzoo.errors import MmzooError, did_you_mean
from mmzoo.registry import COMPONENT_KINDS, REGISTERED_KINDS


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Sorted names of registered models matching ``pattern`` (fnmatch).

    With ``pretrained=True`` only models with weights, as ``name`` and ``name.tag``.
    """
    from mmzoo.plugins import get_registry

    return get_registry().model_names(pattern, pretrained=pretrained)


def list_components(kind: str | None = None, pattern: str = "*") -> list[str]:
    """Sorted names of registered parts and datasets; ``kind`` is encoder, fusion, head or dataset (or
    logger, for the experiment loggers, which are listed only when asked for).

    A name family shows as ``prefix*`` unless ``pattern`` reaches into it (``timm/vit*``).
    """
    from mmzoo.plugins import get_registry

    if kind is not None and kind not in REGISTERED_KINDS:
        raise MmzooError(f"unknown kind {kind!r}; expected one of {', '.join(REGISTERED_KINDS)}."
                         f"{did_you_mean(kind, REGISTERED_KINDS)}")
    registry = get_registry()
    kinds = COMPONENT_KINDS if kind is None else (kind,)
    return sorted({n for k in kinds for n in registry.names(k, pattern)})


def component_rows(kind: str, pattern: str = "*") -> list[dict]:
    """One row per part/dataset/family member of ``kind`` matching ``pattern``, for ``mmzoo list``."""
    from mmzoo.plugins import get_registry

    return [{"kind": row.kind, "name": row.shown, "modality": "|".join(row.modalities) or None, "dist": row.dist,
             "description": row.description, "family": row.family}
            for row in get_registry().listing(kind, pattern)]


def model_rows(pattern: str = "*") -> list[dict]:
    """One row per registered model matching ``pattern``, for ``mmzoo list``: its part names by spec key,
    and ``problems``: why it cannot be built here (a part no installed plugin provides), if anything."""
    import fnmatch

    from mmzoo.plugins import get_registry
    from mmzoo.spec import SECTIONS

    rows = []
    registry = get_registry()
    for name, entries in registry.models.items():
        if fnmatch.fnmatchcase(name, pattern):
            for e in entries:
                parts: dict = {}
                for ref in e.spec.parts():
                    if ref.key is None:
                        parts[SECTIONS[ref.kind]] = ref.name
                    else:
                        parts.setdefault(SECTIONS[ref.kind], {})[ref.key] = ref.name
                rows.append({"kind": "model", "name": name if len(entries) == 1 else f"{e.dist}:{name}",
                             "dist": e.dist, "description": e.description, "weights": list(e.weights), **parts,
                             "problems": registry.model_problems(name, e.dist)})
    return sorted(rows, key=lambda r: r["name"])

"""Listing registered names without importing torch or any part's library."""

from __future__ import annotations

from mmzoo.errors import MmzooError, did_you_mean
from mmzoo.registry import KINDS


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Sorted names of registered models matching ``pattern`` (fnmatch).

    With ``pretrained=True`` only models with weights, as ``name`` and ``name.tag``.
    """
    from mmzoo.plugins import get_registry

    return get_registry().model_names(pattern, pretrained=pretrained)


def list_components(kind: str | None = None, pattern: str = "*") -> list[str]:
    """Sorted names of registered parts and datasets; ``kind`` is encoder, fusion, head or dataset.

    A name family shows as ``prefix*`` unless ``pattern`` reaches into it (``timm/vit*``).
    """
    from mmzoo.plugins import get_registry

    if kind is not None and kind not in KINDS:
        raise MmzooError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}.{did_you_mean(kind, KINDS)}")
    registry = get_registry()
    kinds = KINDS if kind is None else (kind,)
    return sorted({n for k in kinds for n in registry.names(k, pattern)})


def component_rows(kind: str, pattern: str = "*") -> list[dict]:
    """One row per part/dataset/family member of ``kind`` matching ``pattern``, for ``mmzoo list``."""
    import fnmatch

    from mmzoo.plugins import get_registry
    from mmzoo.registry import reaches_into

    registry = get_registry()
    rows = []
    for name, comps in registry.components[kind].items():
        if fnmatch.fnmatchcase(name, pattern):
            for c in comps:
                shown = c.qualified_name if len(comps) > 1 else c.name
                rows.append({"kind": kind, "name": shown, "modality": c.modality, "dist": c.dist,
                             "description": c.description, "family": False})
    for fam in registry.families[kind]:
        base = {"kind": kind, "modality": fam.modality, "dist": fam.dist, "description": fam.description}
        members = []
        if reaches_into(pattern, fam.prefix):
            members = [n for n in fam.member_names() if fnmatch.fnmatchcase(n, pattern)]
            rows.extend({**base, "name": n, "family": False, "description": ""} for n in members)
        if not members and (fnmatch.fnmatchcase(fam.name, pattern) or fnmatch.fnmatchcase(fam.prefix, pattern)):
            # a family with no listable member here (e.g. nothing cached) is still shown
            rows.append({**base, "name": fam.name, "family": True})
    return sorted(rows, key=lambda r: r["name"])


def model_rows(pattern: str = "*") -> list[dict]:
    """One row per registered model matching ``pattern``, for ``mmzoo list``."""
    import fnmatch

    from mmzoo.plugins import get_registry

    rows = []
    for name, entries in get_registry().models.items():
        if fnmatch.fnmatchcase(name, pattern):
            for e in entries:
                rows.append({"kind": "model", "name": name if len(entries) == 1 else f"{e.dist}:{name}",
                             "dist": e.dist, "description": e.description, "weights": list(e.weights),
                             "encoders": {k: p["type"] for k, p in e.spec["encoders"].items()},
                             "fusion": e.spec["fusion"]["type"], "head": e.spec["head"]["type"]})
    return sorted(rows, key=lambda r: r["name"])

"""``mmzoo info PART``: a registered part, dataset or family member, and what it takes."""

from __future__ import annotations

import inspect
from typing import Any

from mmzoo.errors import UnknownNameError, did_you_mean
from mmzoo.registry import COMPONENT_KINDS, Family


def describe_part(name: str) -> dict[str, Any] | None:
    """Kind, providing distribution, modality, description and signature of ``name``; None when no
    kind registers it. A family member the family knows not to exist is an UnknownNameError."""
    from mmzoo.plugins import get_registry

    registry = get_registry()
    for kind in COMPONENT_KINDS:
        try:
            resolved = registry.resolve(kind, name)
        except UnknownNameError:
            continue
        member = None
        if isinstance(resolved.target, Family) and resolved.member is not None:
            member = _check_member(kind, resolved.name, resolved.target, resolved.member)
        factory = resolved.factory()
        try:
            signature = str(inspect.signature(getattr(factory, "__wrapped__", factory)))
        except (TypeError, ValueError):
            signature = "(...)"
        modality = "|".join(resolved.modalities()) or None
        return {"name": name, "kind": kind, "dist": resolved.dist, "modality": modality,
                "description": resolved.target.description, "signature": signature, "member": member}
    return None


def _check_member(kind: str, name: str, family: Family, member: str) -> dict[str, Any]:
    """Whether the family has ``member``: raise with close matches when it says no; otherwise say
    whether that was checked."""
    exists = family.has_member(member)
    if exists is False:
        try:
            known = family.member_names()
        except Exception:  # listing needs the family's library; the error stands without suggestions
            known = []
        raise UnknownNameError(f"{kind} '{name}': the {family.name} family (from {family.dist}) has no member "
                               f"'{member}'.{did_you_mean(name, known)} List its members with: "
                               f"mmzoo list '{family.prefix}*' --kind {kind}")
    return {"family": family.name, "checked": exists is True}

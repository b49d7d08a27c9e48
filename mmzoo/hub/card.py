"""A push to a repo that already has a model card keeps the author's card and updates only mmzoo's part.

mmzoo's part of a card is

- in the metadata: ``library_name``, ``pipeline_tag`` and ``base_model`` (replaced when mmzoo has one),
  ``tags``, ``datasets`` and ``metrics`` (mmzoo's added to the author's, none removed), ``license`` (only
  when the push names one, or the card has none) and the evaluation results in ``model-index`` whose
  source is mmzoo (the author's own results stay);
- in the text: the block between ``<!-- mmzoo:begin ... -->`` and ``<!-- mmzoo:end -->``
  (:data:`mmzoo.modelcard.BLOCK_BEGIN`), replaced whole. A card without that block gets it appended
  after the author's text.

Everything else (the author's prose, their own metadata keys) is uploaded again as it was. The card is
parsed and written with ``huggingface_hub``'s :class:`~huggingface_hub.ModelCard`.
"""

from __future__ import annotations

import re
from typing import Any

from mmzoo.errors import HubError
from mmzoo.modelcard import BLOCK_END, RESULTS_SOURCE

_BEGIN = re.compile(r"<!--\s*mmzoo:begin\b.*?-->", re.S)
_END = re.compile(re.escape(BLOCK_END))
_UNION_KEYS = ("tags", "datasets", "metrics")
_REPLACED_KEYS = ("library_name", "pipeline_tag", "base_model")


def merge_metadata(theirs: dict[str, Any], ours: dict[str, Any], *, license_given: bool) -> dict[str, Any]:
    """The card metadata after a push: the author's keys, with mmzoo's (see the module) merged in."""
    merged = dict(theirs)
    for key in _REPLACED_KEYS:
        if ours.get(key) is not None:
            merged[key] = ours[key]
    for key in _UNION_KEYS:
        values = [*_as_list(theirs.get(key)), *_as_list(ours.get(key))]
        if values:
            merged[key] = list(dict.fromkeys(values))
    if license_given or not theirs.get("license"):
        merged["license"] = ours.get("license", "unknown")
    index = _merge_results(theirs.get("model-index"), ours.get("model-index"))
    if index:
        merged["model-index"] = index
    else:
        merged.pop("model-index", None)
    return merged


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


def _ours(result: Any) -> bool:
    source = result.get("source") if isinstance(result, dict) else None
    return isinstance(source, dict) and source.get("name") == RESULTS_SOURCE[0]


def _merge_results(theirs: Any, ours: Any) -> list[dict[str, Any]]:
    """``model-index``: the author's entries without mmzoo's earlier results, then mmzoo's new ones."""
    kept = []
    for entry in theirs if isinstance(theirs, list) else []:
        if not isinstance(entry, dict):
            continue
        results = [r for r in entry.get("results") or [] if not _ours(r)]
        if results:
            kept.append({**entry, "results": results})
    new = [r for entry in ours or [] for r in entry.get("results", [])]
    if new and kept:
        kept[0] = {**kept[0], "results": [*kept[0]["results"], *new]}
    elif new:
        kept = [dict(ours[0])]
    return kept


def replace_block(text: str, block: str, *, intro: str, repo_id: str) -> str:
    """``text`` with mmzoo's block replaced by ``block`` (appended when it has none; after ``intro`` when
    the card has no text at all)."""
    begins, ends = list(_BEGIN.finditer(text)), list(_END.finditer(text))
    if not begins and not ends:
        body = text.strip("\n")
        return (body or intro.strip("\n")) + "\n\n" + block
    if len(begins) == 1 and len(ends) == 1 and begins[0].start() < ends[0].start():
        return text[: begins[0].start()] + block.rstrip("\n") + text[ends[0].end():]
    raise HubError(f"README.md in {repo_id} has {len(begins)} '<!-- mmzoo:begin' and {len(ends)} '{BLOCK_END}' "
                   f"markers, not one pair in order, so mmzoo cannot tell its block from your text; restore one "
                   f"pair (or remove both), or push with --overwrite-card to replace the whole card")


def merge_card(existing: str, ours: dict[str, Any], block: str, *, intro: str, repo_id: str,
               license_given: bool) -> str:
    """The ``README.md`` to upload over ``existing``: the author's card with mmzoo's metadata ``ours``
    (from :func:`mmzoo.modelcard.card_metadata`) and generated ``block`` merged in."""
    from huggingface_hub import ModelCard, ModelCardData

    theirs, text = {}, existing
    if existing.lstrip("\ufeff").startswith("---"):
        try:
            card = ModelCard(existing, ignore_metadata_errors=False)
        except Exception as exc:  # the client raises ValueError or a YAML error for a malformed header
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise HubError(f"README.md in {repo_id}: its metadata block cannot be read ({type(exc).__name__}: "
                           f"{first}); fix it on the Hub, or push with --overwrite-card to replace the whole "
                           f"card") from None
        theirs, text = card.data.to_dict(), card.text
    metadata = ModelCardData(**merge_metadata(theirs, ours, license_given=license_given))
    body = replace_block(text, block, intro=intro, repo_id=repo_id)
    return f"---\n{metadata.to_yaml()}\n---\n" + (body if body.startswith("\n") else "\n" + body)

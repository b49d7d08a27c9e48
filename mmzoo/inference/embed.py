"""Embeddings of one modality (``model.embed``) and zero-shot classification (``model.zero_shot``).

``model.embed(key, values)`` runs ``values`` through the encoder of batch key ``key`` and, for a
contrastive model (a fusion that keeps modalities apart, such as ``project``), through the fusion's
projection of that key alone, so that ``model.embed("image", images) @ model.embed("text", texts).T``
gives image-text similarities like open_clip's ``encode_image``/``encode_text``. A fusion with
``output_kind = "dict"`` must accept the features of some of its keys and return theirs alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from mmzoo.errors import MmzooError, did_you_mean
from mmzoo.inference.predict import check_batch_size, evaluating, head_task, model_device, to_device
from mmzoo.inference.results import ClassPrediction, EmbeddingPrediction
from mmzoo.outputs import EncoderOutput


def _values(values: Any) -> tuple[list, bool]:
    """A batch of raw values (list or tuple), or one value alone."""
    if isinstance(values, (list, tuple)):
        if not values:
            raise MmzooError("embed got no values; give a list of raw values of one modality")
        return list(values), False
    return [values], True


def _check_key(model: Any, key: Any, what: str) -> str:
    if key not in model.encoders:
        keys = list(model.encoders)
        raise MmzooError(f"{what}: the model has no encoder for {key!r}; its keys are {', '.join(keys)}."
                         f"{did_you_mean(str(key), keys)}")
    return key


def _project(model: Any, key: str, feature: EncoderOutput) -> torch.Tensor:
    """The fusion's embedding of ``key`` alone (contrastive models); the pooled feature otherwise."""
    if getattr(model.fusion, "output_kind", "tensor") != "dict":
        return feature.pooled
    try:
        fused = model.fusion({key: feature})
    except MmzooError as exc:
        raise MmzooError(f"embed: the model's fusion cannot project {key!r} alone ({exc}); a fusion that keeps "
                         "modalities apart must accept the features of some of its keys") from None
    if not isinstance(fused, Mapping) or key not in fused:
        raise MmzooError(f"embed: the model's fusion gave no embedding for {key!r} alone")
    return fused[key]


def embed(model: Any, key: str, values: Any, *, normalize: bool = True, batch_size: int = 32) -> torch.Tensor:
    """Embeddings ``[N, D]`` of ``values`` (raw values of batch key ``key``), on the model's device; see
    :meth:`mmzoo.model.MultimodalModel.embed`."""
    key = _check_key(model, key, "embed")
    items, single = _values(values)
    batch_size = check_batch_size(batch_size)
    encoder = model.encoders[key]
    device = model_device(model)
    rows = []
    with evaluating(model):
        for start in range(0, len(items), batch_size):
            inputs = encoder.preprocess(items[start : start + batch_size])
            inputs = inputs if device.type == "cpu" else to_device(inputs, device)
            out = encoder(inputs)
            feature = out if isinstance(out, EncoderOutput) else EncoderOutput(out)
            vectors = _project(model, key, feature).float()
            rows.append(F.normalize(vectors, dim=-1) if normalize else vectors)
    result = torch.cat(rows)
    return result[:1] if single else result


def embed_examples(model: Any, items: list, *, batch_size: int) -> list[EmbeddingPrediction]:
    """``model.predict`` for a contrastive model: each example's normalised embedding of every key it has."""
    keys = [k for k in model.encoders if all(isinstance(e, Mapping) and k in e for e in items)]
    if not keys:
        raise MmzooError(f"predict: the examples share none of the model's keys ({', '.join(model.encoders)})")
    columns = {k: embed(model, k, [e[k] for e in items], batch_size=batch_size).cpu().tolist() for k in keys}
    return [EmbeddingPrediction({k: tuple(columns[k][i]) for k in keys}) for i in range(len(items))]


def zero_shot(model: Any, values: Any, labels: Sequence[str], *, template: str = "a photo of {}",
              key: str | None = None, text_key: str | None = None, top_k: int | None = None,
              batch_size: int = 32) -> ClassPrediction | list[ClassPrediction]:
    """Zero-shot classification by a contrastive model (see :meth:`mmzoo.model.MultimodalModel.zero_shot`)."""
    if head_task(model) != "embedding":
        head = type(model.head).__name__
        raise MmzooError(
            f"zero_shot needs a contrastive model, whose fusion keeps modalities apart (e.g. 'project' with a "
            f"'contrastive' head) and embeds text and another modality in one space; this model has {head}. "
            "Use model.predict for its own classes"
        )
    labels = _check_labels(labels)
    if not isinstance(template, str) or template.count("{}") != 1:
        raise MmzooError(f"zero_shot: template must hold one '{{}}' for the label, e.g. 'a photo of {{}}'; "
                         f"got {template!r}")
    text_key = text_key or _text_key(model)
    _check_key(model, text_key, "zero_shot text_key")
    key = key or _other_key(model, text_key)
    _check_key(model, key, "zero_shot key")
    items, single = _values(values)
    if top_k is None:
        top_k = len(labels)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise MmzooError(f"top_k must be a positive integer (or None for every label), got {top_k!r}")
    prompts = embed(model, text_key, [template.format(label) for label in labels], batch_size=batch_size)
    inputs = embed(model, key, items, batch_size=batch_size)
    with torch.inference_mode():
        scale = model.head.logit_scale() if callable(getattr(model.head, "logit_scale", None)) else 1.0
        probs = (torch.as_tensor(scale).float().to(inputs.device) * inputs @ prompts.t()).softmax(dim=1)
        top = probs.topk(min(top_k, len(labels)), dim=1)
    results = [ClassPrediction(tuple(labels[i] for i in idx), tuple(sc))
               for idx, sc in zip(top.indices.tolist(), top.values.tolist())]
    return results[0] if single else results


def _check_labels(labels: Any) -> list[str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) < 2:
        raise MmzooError(f"zero_shot: labels must be a list of at least two class names, got {labels!r}")
    names = list(labels)
    if not all(isinstance(n, str) and n.strip() for n in names) or len(set(names)) != len(names):
        raise MmzooError(f"zero_shot: labels must be distinct non-empty strings, got {names!r}")
    return names


def _text_key(model: Any) -> str:
    texts = [k for k, enc in model.encoders.items() if _kind(enc) == "text"]
    if len(texts) != 1:
        found = f"{len(texts)} ({', '.join(texts)})" if texts else "none"
        raise MmzooError(f"zero_shot embeds the label prompts with the model's text encoder, and it has {found}; "
                         "name it with text_key=")
    return texts[0]


def _other_key(model: Any, text_key: str) -> str:
    pair = getattr(model.head, "names", None) or getattr(model.head, "pair", None)
    candidates = [k for k in (pair or model.encoders) if k != text_key and k in model.encoders]
    if len(candidates) != 1:
        raise MmzooError(f"zero_shot: say which batch key the values are with key= (one of "
                         f"{', '.join(k for k in model.encoders if k != text_key)})")
    return candidates[0]


def _kind(encoder: Any) -> str | None:
    raw = getattr(encoder, "raw_input", None)
    return getattr(raw, "kind", None) or getattr(encoder, "modality", None)

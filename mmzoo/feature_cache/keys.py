"""What a cached encoder output depends on, gathered into one key; its digest names the entry.

A key holds: the encoder (its batch key, its registered part resolved to ``DIST:name``, its spec
parameters, and the version of the distribution that provides it, which covers its preprocessing), a
digest of its weights (every parameter and buffer), the data (registered dataset resolved to
``DIST:name``, split, parameters, ``max_examples`` and the dataset's content fingerprint), and the
runtime (mmzoo and torch versions, precision, device type, whether tokens are kept). Any change in
any of them gives another digest: a miss, never a stale hit.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

FORMAT = 1


def weights_digest(module: nn.Module) -> str:
    """SHA-256 over every parameter and buffer of ``module``: names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach()
        if tensor.is_meta:
            raise ValueError(f"{name} is on the meta device (not materialised)")
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        data = tensor.cpu().contiguous().reshape(-1)
        if data.numel():
            digest.update(memoryview(data.view(torch.uint8).numpy()))
    return digest.hexdigest()


def canonical_name(kind: str, name: str) -> str:
    """``DIST:name`` of a registered part or dataset (the bare name when nothing resolves it)."""
    from mmzoo.errors import MmzooError
    from mmzoo.plugins import get_registry

    try:
        resolved = get_registry().resolve(kind, name)
    except MmzooError:
        return name
    return f"{resolved.dist}:{resolved.name}"


def provider_version(qualified: str) -> str | None:
    """The installed version of the distribution named before the ``:`` of ``qualified``."""
    from importlib.metadata import PackageNotFoundError, version

    dist = qualified.split(":", 1)[0] if ":" in qualified else None
    if not dist:
        return None
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def encoder_identity(key: str, part_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The encoder's part of the key: batch key, resolved part, spec parameters, provider version."""
    qualified = canonical_name("encoder", part_name)
    return {"key": key, "type": qualified, "params": dict(params), "provider": provider_version(qualified)}


def data_identity(split: Any, fingerprint: str) -> dict[str, Any]:
    """The data's part of the key, from a run config's split (``SplitConfig``) and its fingerprint."""
    return {
        "dataset": canonical_name("dataset", split.dataset),
        "split": split.split,
        "params": dict(split.params),
        "max_examples": split.max_examples,
        "fingerprint": fingerprint,
    }


def runtime_identity(*, precision: str, device: torch.device, tokens: bool) -> dict[str, Any]:
    import mmzoo

    return {
        "mmzoo": mmzoo.__version__,
        "torch": torch.__version__,
        "precision": precision,
        "device": device.type,
        "tokens": tokens,
    }


def make_key(encoder: dict[str, Any], weights: str, data: dict[str, Any], runtime: dict[str, Any]) -> dict:
    return {"format": FORMAT, "encoder": encoder, "weights": weights, "data": data, "runtime": runtime}


def key_digest(key: Mapping[str, Any]) -> str:
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_name(key: Mapping[str, Any]) -> str:
    """A readable, unique directory name: ``<batch key>-<encoder>--<dataset>-<split>--<digest>``."""
    encoder, data = key["encoder"], key["data"]
    readable = (
        f"{encoder['key']}-{encoder['type'].split(':')[-1]}--{data['dataset'].split(':')[-1]}-{data['split']}"
    )
    if key["runtime"]["tokens"]:
        readable += "-tokens"
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", readable)[:96]
    return f"{readable}--{key_digest(key)[:20]}"

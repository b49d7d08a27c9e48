"""Choosing submodules by name for the training strategy: FSDP's units (``fsdp.shard``) and the parts
whose activations are recomputed (``activation_checkpointing``).

A name is a module path (``encoders.image``, ``fusion``) or a pattern where ``*`` stands for one name
(``encoders.image.model.blocks.*``). A module list (``nn.ModuleList``, which has no forward of its own)
stands for each of its modules.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from torch import nn

from mmzoo.errors import ConfigError
from mmzoo.train.optim import check_part_name


def select_modules(model: nn.Module, names: Sequence[str], where: str) -> dict[str, nn.Module]:
    """The modules ``names`` pick in ``model``, by path, in model order; ``where`` (``fsdp.shard``)
    locates a name that picks nothing."""
    modules = dict(model.named_modules())
    picked: set[str] = set()
    for index, name in enumerate(names):
        if "*" in name:
            pattern = re.compile("^" + r"[^.]+".join(map(re.escape, name.split("*"))) + "$")
            found = [path for path in modules if path and pattern.match(path)]
            if not found:
                raise ConfigError(f"{where}[{index}]: '{name}' matches no module of this model ('*' stands "
                                  "for one name, e.g. encoders.image.model.blocks.*)")
        else:
            check_part_name(model, name, f"{where}[{index}]")
            found = [name]
        for path in found:
            module = modules[path]
            picked.update(_children(path, module) if isinstance(module, nn.ModuleList) else [path])
    return {path: module for path, module in modules.items() if path in picked}


def _children(path: str, modules: nn.ModuleList) -> list[str]:
    return [f"{path}.{name}" for name, _ in modules.named_children()]


def repeated_blocks(module: nn.Module, prefix: str) -> list[str]:
    """The blocks of ``module``'s largest stack of alike layers (a module list or sequential holding two or
    more modules of one class with parameters, e.g. a transformer's layers), by path; [] when it has none."""
    best: tuple[int, list[str]] = (0, [])
    for path, child in module.named_modules(prefix=prefix):
        if not isinstance(child, nn.ModuleList | nn.Sequential) or len(child) < 2:
            continue
        blocks = list(child.named_children())
        if len({type(block) for _, block in blocks}) != 1:
            continue
        size = sum(p.numel() for p in child.parameters())
        if size > best[0]:
            best = (size, [f"{path}.{name}" for name, _ in blocks])
    return best[1]


def auto_units(model: nn.Module) -> list[str]:
    """``fsdp.shard: auto``: each encoder's repeated blocks, each encoder, and the fusion (the head and
    whatever else stays with the model itself)."""
    units: list[str] = []
    for path, part in model.part_modules().items():
        if path.startswith("encoders."):
            units += repeated_blocks(part, path)
            units.append(path)
        elif path == "fusion":
            units.append(path)
    return units


def apply_activation_checkpointing(model: nn.Module, names: Sequence[str]) -> list[str]:
    """Recompute the activations of the modules ``names`` pick during backward instead of keeping them
    (torch's non-reentrant checkpoint, which keeps RNG draws such as dropout identical); returns their
    paths. Parameter names and state dicts are unchanged: only each module's forward is wrapped."""
    if not names:
        return []
    from torch.utils.checkpoint import checkpoint

    selected = select_modules(model, names, "activation_checkpointing")
    for module in selected.values():
        original = module.forward
        module.forward = functools.wraps(original)(
            functools.partial(checkpoint, original, use_reentrant=False)
        )
    return list(selected)

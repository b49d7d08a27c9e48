"""Saving and loading a composed model's weights (safetensors only), with a per-part report."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from mmzoo.errors import WeightsError
from mmzoo.saved import is_pickle
from mmzoo.tensorfile import read_layout


@dataclass
class PartLoad:
    """How one part (``encoders.image``, ``fusion``, ``head``) came out of a load."""

    part: str
    status: str  # "loaded" | "partial" | "initialised"
    reason: str = ""
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    """Per-part outcome of loading a weights file into a model."""

    source: str
    parts: list[PartLoad]
    ignored: list[str] = field(default_factory=list)
    cast: dict[str, str] = field(default_factory=dict)  # tensor -> "float16 -> float32": stored in another dtype

    @property
    def complete(self) -> bool:
        """True when every part was loaded from the file and nothing in it was ignored."""
        return all(p.status == "loaded" for p in self.parts) and not self.ignored

    def part(self, name: str) -> PartLoad:
        return next(p for p in self.parts if p.part == name)

    def __str__(self) -> str:
        width = max(len(p.part) for p in self.parts)
        lines = [f"weights from {self.source}:"]
        for p in self.parts:
            why = f" — {p.reason}" if p.reason else ""
            lines.append(f"  {p.part:<{width}}  {p.status:<11} {p.loaded} tensors{why}")
        if self.ignored:
            lines.append(f"  ignored {len(self.ignored)} tensors the model has no place for: "
                         f"{', '.join(self.ignored[:5])}{' …' if len(self.ignored) > 5 else ''}")
        by_change: dict[str, list[str]] = {}
        for name, change in self.cast.items():
            by_change.setdefault(change, []).append(name)
        for change, names in by_change.items():
            lines.append(f"  cast {len(names)} tensors {change} (the model's dtype): "
                         f"{', '.join(names[:5])}{' …' if len(names) > 5 else ''}")
        return "\n".join(lines)


def save_weights(model: nn.Module, path: str | Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``model``'s state to a safetensors file atomically (shared tensors stored once); a disk
    without room for it is a :class:`~mmzoo.errors.StorageError` naming the file, nothing half-written left."""
    from safetensors.torch import save_model

    from mmzoo.storage import writing

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with writing(path):
            save_model(model, str(tmp), metadata={"format": "pt", **(metadata or {})})
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def read_weights(path: str | Path, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read a weights file: safetensors; a pickle checkpoint only with ``allow_pickle=True``.

    Every tensor is allocated by torch (so it is aligned as torch aligns its own memory, and a
    kernel takes the same path on it as on the tensors of the model that saved it) and read from the
    file straight into place: the peak is the size of the weights, not twice it.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if is_pickle(path.name):
        if not allow_pickle:
            raise WeightsError(f"{path.name} is a pickle checkpoint, which can run code when loaded; mmzoo "
                               f"reads safetensors only. Convert it to safetensors, or pass allow_pickle=True "
                               f"if you trust its source")
        return _read_pickle(path)
    layout = read_layout(path)
    state: dict[str, torch.Tensor] = {}
    try:
        with open(path, "rb", buffering=0) as f:
            for entry in layout:
                dtype = _DTYPES.get(entry.dtype)
                if dtype is None or sys.byteorder != "little":
                    state[entry.name] = _read_with_safetensors(path, entry.name)
                    continue
                tensor = torch.empty(entry.shape, dtype=dtype)
                if tensor.numel():
                    f.seek(entry.start)
                    _read_into(f, memoryview(tensor.reshape(-1).view(torch.uint8).numpy()), path)
                state[entry.name] = tensor
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read it ({type(exc).__name__}: {exc})") from None
    return state


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    """A pickle checkpoint through torch's restricted unpickler; anything but a mapping of tensor names to
    tensors, or a file it cannot read, is a WeightsError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, EOFError, RuntimeError...: whatever a broken file raises
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
        raise WeightsError(f"{path}: cannot read this pickle checkpoint ({type(exc).__name__}: {detail[:300]}); it "
                           f"is truncated or corrupted, or holds more than tensors (torch's weights_only loading "
                           f"refuses anything else)") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise WeightsError(f"{path}: the pickle checkpoint holds {type(state).__name__}, not a state dict (tensor "
                           f"names -> tensors)")
    return state


# safetensors dtype -> torch dtype, for the dtypes read here directly (the rest go through safetensors)
_DTYPES = {"BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "F16": torch.float16,
           "BF16": torch.bfloat16, "I32": torch.int32, "F32": torch.float32, "F64": torch.float64,
           "I64": torch.int64}


def _read_into(f, buffer: memoryview, path: Path) -> None:
    done = 0
    while done < len(buffer):
        got = f.readinto(buffer[done:])
        if not got:
            raise WeightsError(f"{path}: the file ended early; it is truncated — save or download it again")
        done += got


def _read_with_safetensors(path: Path, name: str) -> torch.Tensor:
    """One tensor through the safetensors library (dtypes not read directly, big-endian hosts),
    copied into memory torch allocated."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.get_tensor(name).clone()
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise WeightsError(f"{path}: cannot read tensor '{name}' ({exc})") from None


# In-place methods that change a tensor's shape or autograd flags: these must still run on meta.
_KEEP_INPLACE = frozenset({"requires_grad_", "resize_", "resize_as_", "set_", "as_strided_", "squeeze_",
                           "unsqueeze_", "transpose_", "t_", "swapdims_", "swapaxes_", "detach_", "share_memory_"})


def _skip_meta_inplace_mode():
    from torch.overrides import TorchFunctionMode

    class SkipMetaInplace(TorchFunctionMode):
        """Make in-place ops on meta tensors no-ops (initialisers such as ``normal_`` or
        ``trunc_normal_`` would otherwise pull in torch's decompositions, seconds of imports)."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if name.endswith("_") and not name.endswith("__") and name not in _KEEP_INPLACE:
                target = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
                if isinstance(target, torch.Tensor) and target.is_meta:
                    return target
            return func(*args, **kwargs)

    return SkipMetaInplace()


@contextlib.contextmanager
def skip_init() -> Iterator[None]:
    """Build modules with parameters on the meta device: nothing is allocated or initialised.

    Buffers stay real (they are often computed, not learned). Parameters are filled later by
    :func:`load_weights` with ``assign=True``.
    """
    original = nn.Module.register_parameter

    def register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = type(param)(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register_on_meta
    try:
        with _skip_meta_inplace_mode():
            yield
    finally:
        nn.Module.register_parameter = original


def has_meta_tensors(module: nn.Module) -> bool:
    return any(t.is_meta for t in module.state_dict().values())


def load_weights(model, path: str | Path, *, strict: bool = True, relaxed: Collection[str] = (),
                 reasons: Mapping[str, str] | None = None,
                 materialize: Callable[[str], nn.Module] | None = None,
                 allow_pickle: bool = False) -> LoadReport:
    """Load a weights file into a :class:`~mmzoo.model.MultimodalModel`, part by part.

    A part whose tensors are missing or shaped differently is an error unless ``strict`` is false
    or the part is in ``relaxed`` (``reasons`` says why a part is relaxed, e.g. an override
    changed ``num_classes``); such a part keeps its fresh initialisation for what does not fit.
    ``materialize(part)`` returns a freshly initialised module for a part built with
    :func:`skip_init`, used when the file cannot fill it.
    """
    state = read_weights(path, allow_pickle=allow_pickle)
    reasons = dict(reasons or {})
    parts = model.part_modules()
    report = LoadReport(source=str(path), parts=[])
    claimed: set[str] = set()
    to_load: dict[str, torch.Tensor] = {}
    failures = []
    for part_name, module in parts.items():
        prefix = part_name + "."
        expected = module.state_dict()
        found = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        claimed.update(prefix + k for k in found)
        aliases = _aliases(module)
        missing = [k for k in expected if k not in found and not (aliases.get(k, set()) & found.keys())]
        mismatched = [f"{k}: file {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
                      for k in expected if k in found and found[k].shape != expected[k].shape]
        unexpected = [k for k in found if k not in expected]
        fits = {k: v for k, v in found.items() if k in expected and v.shape == expected[k].shape}
        fits = {k: _in_model_dtype(v, expected[k], prefix + k, path, report) for k, v in fits.items()}
        entry = PartLoad(part_name, "loaded", reasons.get(part_name, ""), len(fits), missing, mismatched, unexpected)
        if missing or mismatched or unexpected:
            entry.status = "partial" if fits else "initialised"
            if not entry.reason:
                entry.reason = _describe_problem(found, missing, mismatched, unexpected)
            if strict and part_name not in relaxed:
                failures.append(entry)
            elif materialize is not None and has_meta_tensors(module):
                _replace_part(model, part_name, materialize(part_name))
        report.parts.append(entry)
        to_load.update({prefix + k: v for k, v in fits.items()})
    report.ignored = sorted(k for k in state if k not in claimed)
    if failures or (strict and report.ignored):
        raise WeightsError(_strict_message(path, failures, report.ignored))
    groups = _tied_groups(model)
    model.load_state_dict(to_load, strict=False, assign=True)
    _retie(model, groups, to_load.keys())
    left = [k for k, v in model.state_dict().items() if v.is_meta]
    if left:
        raise WeightsError(f"{path}: no values for {len(left)} tensors ({', '.join(left[:5])}); "
                           f"the file does not match this model")
    return report


def _in_model_dtype(tensor: torch.Tensor, target: torch.Tensor, name: str, path: str | Path,
                    report: LoadReport) -> torch.Tensor:
    """``tensor`` from the file in the dtype of the model's ``target`` (loading assigns the file's tensors,
    so a float16 file would otherwise make a float16 model): another float dtype is cast and noted in the
    report; a non-float tensor for a float parameter, or a float one for an integer buffer, is refused."""
    if tensor.dtype == target.dtype:
        return tensor
    if tensor.dtype.is_floating_point != target.dtype.is_floating_point or tensor.is_complex() or target.is_complex():
        raise WeightsError(f"{Path(path).name}: tensor '{name}' is {_dtype_name(tensor.dtype)} in the file, but the "
                           f"model's is {_dtype_name(target.dtype)}; a weights file must hold "
                           f"{'floating-point' if target.dtype.is_floating_point else 'integer'} values there. "
                           f"The file does not belong to this model, or was written wrongly")
    report.cast[name] = f"{_dtype_name(tensor.dtype)} -> {_dtype_name(target.dtype)}"
    return tensor.to(target.dtype)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _aliases(module: nn.Module) -> dict[str, set[str]]:
    """Names that refer to one shared parameter (tied weights are stored once in a file)."""
    groups: dict[int, set[str]] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        groups.setdefault(id(param), set()).add(name)
    return {name: names - {name} for names in groups.values() if len(names) > 1 for name in names}


def _tied_groups(model: nn.Module) -> list[list[str]]:
    groups: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(param), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def _retie(model: nn.Module, groups: list[list[str]], loaded: Collection[str]) -> None:
    """After ``assign=True`` loading, point every name of a tied group at the one that was loaded."""
    for names in groups:
        source = next((n for n in names if n in loaded), None)
        if source is None:
            continue
        param = model.get_parameter(source)
        for name in names:
            if name != source:
                owner, _, attr = name.rpartition(".")
                setattr(model.get_submodule(owner) if owner else model, attr, param)


def _replace_part(model, path: str, fresh: nn.Module) -> None:
    owner, _, attr = path.rpartition(".")
    setattr(model.get_submodule(owner) if owner else model, attr, fresh)


def _describe_problem(found, missing, mismatched, unexpected) -> str:
    if not found:
        return "not in the weights file"
    bits = []
    if mismatched:
        bits.append(f"{len(mismatched)} shape mismatches ({mismatched[0]})")
    if missing:
        bits.append(f"{len(missing)} tensors missing ({missing[0]})")
    if unexpected:
        bits.append(f"{len(unexpected)} unexpected tensors ({unexpected[0]})")
    return "; ".join(bits)


def _strict_message(path, failures: list[PartLoad], ignored: list[str]) -> str:
    lines = [f"{Path(path).name} does not fit this model:"]
    for f in failures:
        lines.append(f"  {f.part}: {f.reason}")
    if ignored:
        lines.append(f"  {len(ignored)} tensors in the file belong to no part ({', '.join(ignored[:3])})")
    names = ", ".join(repr(f.part) for f in failures) or "'...'"
    lines.append(f"Build the model the weights were saved from, or accept fresh weights for these parts "
                 f"with strict=False or relaxed=[{names}]")
    return "\n".join(lines)

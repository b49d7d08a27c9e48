"""What an encoder takes as raw input: :class:`RawInput`, an optional part of the encoder contract.

An encoder may describe its raw input with a ``raw_input`` attribute (a plain attribute or a property)
holding a :class:`RawInput`: the kind of value its ``preprocess`` reads, the size, channels, sample
rate or length it brings inputs to, and which forms it accepts (file paths, PIL images, arrays...).
``mmzoo info`` shows it and the conformance kit checks it; an encoder without one keeps working.

Importing this module is cheap (no torch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The forms of raw value ``accepts`` may name.
ACCEPTS = {
    "path": "a file path (str or pathlib.Path) decoded by the encoder",
    "pil": "a PIL image",
    "array": "a numpy array",
    "tensor": "a torch tensor",
    "list": "a list of numbers",
    "audio-dict": 'a dict {"array": waveform, "sampling_rate": Hz}',
    "text": "a str of text",
    "bytes": "bytes of text",
}


@dataclass(frozen=True)
class RawInput:
    """A description of the raw values an encoder's ``preprocess`` takes.

    :param kind: what the values are: ``"image"``, ``"audio"``, ``"text"``, ``"vector"``, or a plugin's
        own kind.
    :param size: ``(height, width)`` images are resized to (None: used at the size given).
    :param channels: image channels the encoder reads (grey and RGB are converted to it).
    :param sample_rate: Hz audio is resampled to.
    :param max_seconds: audio longer than this is cut.
    :param max_length: texts are truncated to this many tokens (bytes for a byte-level encoder).
    :param dim: how many numbers a vector holds.
    :param accepts: the forms of value ``preprocess`` takes, from :data:`ACCEPTS` (``"path"``: a file
        path is decoded, with the data limits applied).
    :param description: one line for people, e.g. the normalisation applied.
    """

    kind: str
    size: tuple[int, int] | None = None
    channels: int | None = None
    sample_rate: int | None = None
    max_seconds: float | None = None
    max_length: int | None = None
    dim: int | None = None
    accepts: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind.strip():
            raise ValueError(f"RawInput.kind must be a non-empty string such as 'image', got {self.kind!r}")
        if self.size is not None:
            size = tuple(self.size)
            if len(size) != 2 or not all(_positive_int(v) for v in size):
                raise ValueError(f"RawInput.size must be (height, width) in pixels, got {self.size!r}")
            object.__setattr__(self, "size", size)
        for name in ("channels", "sample_rate", "max_length", "dim"):
            value = getattr(self, name)
            if value is not None and not _positive_int(value):
                raise ValueError(f"RawInput.{name} must be a positive integer or None, got {value!r}")
        seconds = self.max_seconds
        if seconds is not None and not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
                                        and seconds > 0):
            raise ValueError(f"RawInput.max_seconds must be a positive number or None, got {self.max_seconds!r}")
        accepts = (self.accepts,) if isinstance(self.accepts, str) else tuple(self.accepts)
        unknown = [a for a in accepts if a not in ACCEPTS]
        if unknown:
            raise ValueError(f"RawInput.accepts: unknown form(s) {unknown}; use any of {', '.join(ACCEPTS)}")
        object.__setattr__(self, "accepts", accepts)
        if not isinstance(self.description, str):
            raise ValueError(f"RawInput.description must be a string, got {type(self.description).__name__}")

    @property
    def accepts_paths(self) -> bool:
        """``preprocess`` decodes file paths (images, audio)."""
        return "path" in self.accepts

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, as JSON-ready values."""
        out = {k: v for k, v in asdict(self).items() if v not in (None, (), "")}
        for key in ("size", "accepts"):
            if key in out:
                out[key] = list(out[key])
        return out

    def summary(self) -> str:
        """One line, e.g. ``image 64x64, 3 channels; accepts path, pil, array, tensor``."""
        parts = [self.kind + (f" {self.size[0]}x{self.size[1]}" if self.size else "")]
        if self.channels:
            parts.append(f"{self.channels} channel{'s' if self.channels != 1 else ''}")
        if self.sample_rate:
            parts.append(f"{self.sample_rate} Hz")
        if self.max_seconds:
            parts.append(f"at most {self.max_seconds:g} s")
        if self.max_length:
            parts.append(f"at most {self.max_length} tokens")
        if self.dim:
            parts.append(f"{self.dim} numbers")
        text = ", ".join(parts)
        if self.accepts:
            text += f"; accepts {', '.join(self.accepts)}"
        return text + (f" ({self.description})" if self.description else "")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0

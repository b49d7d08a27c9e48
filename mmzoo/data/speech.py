"""Speech synthesis with eSpeak NG, loaded through ctypes from the ``espeakng-loader`` wheel.

The library keeps global state (one voice, one callback per process), so all calls go through one
lazily initialised :class:`Synthesizer` guarded by a lock. Signatures follow espeak-ng's
``speak_lib.h``.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from mmzoo.errors import DatasetError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_EE_OK, _EE_NOT_FOUND = 0, 2

# int callback(short *wav, int numsamples, espeak_EVENT *events): return 0 to continue, 1 to abort
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()
_instance: Synthesizer | None = None

RATE_RANGE = (80, 450)  # words per minute accepted by eSpeak NG
PITCH_RANGE = (0, 99)


class Synthesizer:
    """A handle on the process-wide eSpeak NG engine; use :func:`get_synthesizer`."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise DatasetError(
                "speech synthesis needs the 'espeakng-loader' package (pip install espeakng-loader)"
            ) from exc
        lib_path = espeakng_loader.get_library_path()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as exc:
            raise DatasetError(f"cannot load eSpeak NG from {lib_path}: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        self._set_seed = getattr(lib, "espeak_ng_SetRandSeed", None)  # missing before espeak-ng 1.51
        if self._set_seed is not None:
            self._set_seed.argtypes = [ctypes.c_long]
            self._set_seed.restype = None
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            where = data_path.decode()
            raise DatasetError(f"eSpeak NG failed to initialise with data at {where} (code {rate})")
        self.sample_rate = rate
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # kept referenced: C holds a pointer to it
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, num_samples, _events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.frombuffer(ctypes.string_at(wav, 2 * num_samples), dtype=np.int16))
        return 0

    def seed(self, value: int) -> None:
        """Seed eSpeak NG's random generator (its other state still depends on earlier utterances)."""
        if self._set_seed is not None:
            with _lock:
                self._set_seed(int(value))

    def speak(self, text: str, *, voice: str = "en", rate: int = 175, pitch: int = 50) -> np.ndarray:
        """Synthesize ``text`` and return int16 samples at :attr:`sample_rate` Hz.

        ``voice`` is an eSpeak NG voice name, optionally with a variant (``"en-us+f3"``); ``rate`` is
        in words per minute (80-450), ``pitch`` 0-99 (50 is the voice's normal pitch).
        """
        if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise DatasetError(f"speech rate must be within {RATE_RANGE} words per minute, got {rate}")
        if not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
            raise DatasetError(f"speech pitch must be within {PITCH_RANGE}, got {pitch}")
        lib = self._lib
        with _lock:
            status = lib.espeak_SetVoiceByName(voice.encode())
            if status != _EE_OK:
                raise DatasetError(
                    f"eSpeak NG has no voice '{voice}' (code {status}); use a language such as 'en', "
                    "'en-us' or 'en-gb-scotland', optionally with a variant such as '+f3' or '+m2'"
                )
            lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
            lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            self._chunks = []
            data = text.encode("utf-8")
            status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            if status != _EE_OK:
                raise DatasetError(f"eSpeak NG failed to synthesize {text!r} (code {status})")
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def get_synthesizer() -> Synthesizer:
    """The process-wide eSpeak NG engine, initialised on first use."""
    global _instance
    with _lock:
        if _instance is None:
            _instance = Synthesizer()
        return _instance


def trim_silence(samples: np.ndarray, threshold: float = 0.01, margin: int = 0) -> np.ndarray:
    """Drop leading and trailing samples quieter than ``threshold`` x the peak (keeping ``margin``)."""
    if len(samples) == 0:
        return samples
    level = np.abs(samples.astype(np.float32))
    loud = np.flatnonzero(level > threshold * level.max())
    if len(loud) == 0:
        return samples[:0]
    start, stop = max(0, loud[0] - margin), min(len(samples), loud[-1] + 1 + margin)
    return samples[start:stop]

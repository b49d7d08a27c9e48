"""A bank of spoken words: every (word, voice, rate, pitch) combination said once by eSpeak NG.

eSpeak NG carries state from one utterance to the next (its random generator and its pitch
"flutter"), so the same call gives slightly different audio depending on what the process said
before. To make a bank a pure function of its parameters, :func:`synthesize_bank` runs the
synthesis in a fresh Python process with a fixed random seed and a fixed order of calls. A
subprocess (not multiprocessing) also works from daemonic DataLoader workers.

Run as ``python -m mmzoo.data.speech_bank PARAMS_JSON OUT.npz`` (:func:`synthesize_bank` passes ``fd:N``,
an unnamed temporary file, so that nothing is left behind if it is killed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmzoo.errors import DatasetError

BANK_KEYS = ("samples", "offsets", "word", "voice", "rate", "pitch")
SPEECH_LEVEL = 0.1  # RMS every utterance is normalised to
ENGINE_SEED = 1


def bank_params(
    words: Sequence[str],
    sample_rate: int,
    voices: Sequence[str],
    rates: Sequence[int],
    pitches: Sequence[int],
) -> dict[str, Any]:
    """The parameters that identify a bank (and name its cache entry)."""
    return {
        "words": list(words),
        "sample_rate": int(sample_rate),
        "voices": list(voices),
        "rates": [int(r) for r in rates],
        "pitches": [int(p) for p in pitches],
        "synthesizer": "espeak-ng",
        "engine_seed": ENGINE_SEED,
    }


def synthesize_bank(params: Mapping[str, Any], timeout: float = 600.0) -> dict[str, np.ndarray]:
    """Build a bank in a fresh process (see the module docstring); returns its arrays.

    ``samples`` holds every utterance (silence trimmed, resampled to ``sample_rate``, RMS
    normalised to SPEECH_LEVEL, int16) back to back; utterance ``i`` is
    ``samples[offsets[i]:offsets[i + 1]]``; ``word`` and ``voice`` index the params' lists, ``rate``
    and ``pitch`` are the raw settings.
    """
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    # An unnamed temporary file (unlinked as it is created): the OS frees it when the last process
    # holding it ends, so a builder killed with SIGKILL leaves nothing behind in the temp folder.
    with tempfile.TemporaryFile(prefix="mmzoo-speech-") as out:
        fd = out.fileno()
        cmd = [sys.executable, "-m", "mmzoo.data.speech_bank", json.dumps(dict(params)), f"fd:{fd}"]
        try:
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=timeout, pass_fds=(fd,)
            )
        except subprocess.TimeoutExpired:
            raise DatasetError(f"speech synthesis did not finish within {timeout:g} s") from None
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            prefix = "mmzoo.errors.DatasetError: "
            message = last[len(prefix) :] if last.startswith(prefix) else f"speech synthesis failed: {last}"
            raise DatasetError(message)
        out.seek(0)
        with np.load(out, allow_pickle=False) as npz:
            return {key: npz[key] for key in BANK_KEYS}


def synthesize_bank_here(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Build a bank in this process (deterministic only in a process that has not spoken before)."""
    from mmzoo.data.audio import resample
    from mmzoo.data.speech import get_synthesizer, trim_silence

    synth = get_synthesizer()
    synth.seed(ENGINE_SEED)
    clips, words, voices, rates, pitches = [], [], [], [], []
    for v, voice in enumerate(params["voices"]):
        for rate in params["rates"]:
            for pitch in params["pitches"]:
                for w, word in enumerate(params["words"]):
                    raw = trim_silence(synth.speak(word, voice=voice, rate=rate, pitch=pitch))
                    if len(raw) == 0:
                        raise DatasetError(f"eSpeak NG produced silence for {word!r} with voice '{voice}'")
                    wave = raw.astype(np.float32) / 32768.0
                    wave = resample(wave, synth.sample_rate, params["sample_rate"])
                    wave *= SPEECH_LEVEL / max(float(np.sqrt(np.mean(wave**2))), 1e-8)
                    clips.append(np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16))
                    words.append(w)
                    voices.append(v)
                    rates.append(rate)
                    pitches.append(pitch)
    offsets = np.zeros(len(clips) + 1, np.int64)
    offsets[1:] = np.cumsum([len(c) for c in clips])
    return {
        "samples": np.concatenate(clips),
        "offsets": offsets,
        "word": np.asarray(words, np.int64),
        "voice": np.asarray(voices, np.int64),
        "rate": np.asarray(rates, np.int64),
        "pitch": np.asarray(pitches, np.int64),
    }


def main(argv: list[str]) -> int:
    """Subprocess entry: ``PARAMS_JSON OUT``, OUT an ``.npz`` path or ``fd:N`` (an open file descriptor)."""
    params, out = json.loads(argv[0]), argv[1]
    arrays = synthesize_bank_here(params)
    if out.startswith("fd:"):
        with os.fdopen(int(out[3:]), "wb", closefd=False) as f:
            np.savez(f, **arrays)
    else:
        np.savez(out, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

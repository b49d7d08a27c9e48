"""Audio files (soundfile, and scipy where soundfile is missing), resampling and eSpeak NG synthesis."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from mmzoo.data.audio import audio_value, read_audio, resample, write_wav
from mmzoo.data.speech import get_synthesizer, trim_silence
from mmzoo.errors import DatasetError


def _write_pcm(path, ints: np.ndarray, width: int, channels: int = 1, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 3:
            u = ints.astype(np.int64) & 0xFFFFFF
            raw = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=-1).astype(np.uint8).tobytes()
        else:
            raw = ints.astype({1: np.uint8, 2: "<i2", 4: "<i4"}[width]).tobytes()
        w.writeframes(raw)


@pytest.mark.parametrize(
    "width, ints, expected",
    [
        (1, np.array([128, 255, 0, 192]), [0.0, 127 / 128, -1.0, 0.5]),
        (2, np.array([0, 16384, -32768, 32767]), [0.0, 0.5, -1.0, 32767 / 32768]),
        (3, np.array([0, 1 << 22, -(1 << 23), -(1 << 22)]), [0.0, 0.5, -1.0, -0.5]),
        (4, np.array([0, 1 << 30, -(1 << 31), -(1 << 30)]), [0.0, 0.5, -1.0, -0.5]),
    ],
)
def test_read_audio_sample_widths(tmp_path, width, ints, expected):
    path = tmp_path / "x.wav"
    _write_pcm(path, ints, width)
    samples, rate = read_audio(path)
    assert rate == 8000 and samples.dtype == np.float32
    np.testing.assert_allclose(samples, expected, atol=1e-6)


def test_stereo_is_mixed_to_mono_and_write_round_trips(tmp_path):
    path = tmp_path / "stereo.wav"
    _write_pcm(path, np.array([16384, 0, -16384, -16384]), 2, channels=2)
    samples, _ = read_audio(path)
    np.testing.assert_allclose(samples, [0.25, -0.5])
    out = tmp_path / "mono.wav"
    signal = np.sin(np.linspace(0, 20, 500)).astype(np.float32) * 0.8
    write_wav(out, signal, 16000)
    back, rate = read_audio(out)
    assert rate == 16000 and np.max(np.abs(back - signal)) < 1e-4


def test_read_audio_errors_name_the_file(tmp_path):
    bad = tmp_path / "not.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(DatasetError, match="not.wav is not an audio file soundfile can read"):
        read_audio(bad)
    with pytest.raises(DatasetError, match="cannot read audio file .*missing.wav"):
        read_audio(tmp_path / "missing.wav")


def _peak_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


def test_resample_keeps_pitch_and_duration_and_removes_aliases():
    t = np.arange(22050) / 22050
    tone = np.sin(2 * np.pi * 440 * t) * 0.5
    down = resample(tone, 22050, 16000)
    assert len(down) == 16000 and down.dtype == np.float32
    assert abs(_peak_frequency(down, 16000) - 440) < 2
    assert abs(np.sqrt(np.mean(down**2)) - 0.5 / np.sqrt(2)) < 1e-3  # amplitude preserved
    high = np.sin(2 * np.pi * 10000 * t)  # above the new Nyquist (8 kHz): must vanish, not alias
    away_from_edges = resample(high, 22050, 16000)[500:-500]  # (the cut-off ends ring a little)
    assert np.max(np.abs(away_from_edges)) < 1e-3  # over 60 dB below the tone
    up = resample(down, 16000, 22050)
    assert len(up) == 22050 and np.max(np.abs(up - tone)[500:-500]) < 1e-4
    assert resample(tone, 22050, 22050).dtype == np.float32


def test_audio_value_convention():
    value = audio_value(np.zeros(4, np.float64), 16000)
    assert value["array"].dtype == np.float32 and value["sampling_rate"] == 16000


def test_espeak_synthesizes_words_with_varied_voices_rates_and_pitches():
    synth = get_synthesizer()
    assert synth.sample_rate == 22050
    base = trim_silence(synth.speak("seven", voice="en", rate=175, pitch=50))
    assert base.dtype == np.int16 and 0.2 * 22050 < len(base) < 1.0 * 22050
    slow = trim_silence(synth.speak("seven", voice="en", rate=100, pitch=50))
    assert len(slow) > 1.3 * len(base)
    female = trim_silence(synth.speak("seven", voice="en-us+f3", rate=175, pitch=50))
    high = trim_silence(synth.speak("seven", voice="en", rate=175, pitch=90))
    for other in (female, high):
        n = min(len(base), len(other))
        assert not np.array_equal(base[:n], other[:n])


def test_espeak_rejects_unknown_voices_and_bad_settings():
    synth = get_synthesizer()
    with pytest.raises(DatasetError, match="eSpeak NG has no voice 'xx-nowhere'"):
        synth.speak("one", voice="xx-nowhere")
    with pytest.raises(DatasetError, match="speech rate must be within"):
        synth.speak("one", rate=10)
    with pytest.raises(DatasetError, match="speech pitch must be within"):
        synth.speak("one", pitch=150)


def test_trim_silence():
    x = np.concatenate([np.zeros(10), np.ones(5), np.zeros(7)])
    assert len(trim_silence(x)) == 5 and len(trim_silence(x, margin=2)) == 9
    assert len(trim_silence(np.zeros(5))) == 0

"""av-digits: structure, splits, corruption that makes fusion matter, the speech cache and its builders."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import mmzoo
from mmzoo.data import avdigits
from mmzoo.data.avdigits import av_digits
from mmzoo.data.mnist import load_mnist5k
from mmzoo.data.speech_bank import bank_params, synthesize_bank
from mmzoo.errors import DatasetError, SpecError
from tests.data.support import SMALL_BANK

REPO = Path(__file__).resolve().parents[2]


def _same(a: dict, b: dict) -> bool:
    return (
        a["target"] == b["target"]
        and np.array_equal(a["image"], b["image"])
        and np.array_equal(a["audio"]["array"], b["audio"]["array"])
        and a["audio"]["sampling_rate"] == b["audio"]["sampling_rate"]
    )


def test_sizes_and_item_format():
    sizes = {split: len(av_digits(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 4000, "val": 500, "test": 500}
    ds = av_digits("val", limit=20)
    assert len(ds) == 20
    for example in ds:
        assert set(example) == {"image", "audio", "target"}
        assert example["image"].dtype == np.uint8 and example["image"].shape == (28, 28)
        audio = example["audio"]
        assert set(audio) == {"array", "sampling_rate"} and audio["sampling_rate"] == 16000
        assert audio["array"].dtype == np.float32 and audio["array"].shape == (16000,)
        assert np.abs(audio["array"]).max() <= 1.0
        assert type(example["target"]) is int and 0 <= example["target"] <= 9
    assert ds.num_classes == 10 and ds.labels[7] == "seven" and ds.keys == ("image", "audio")


def test_splits_are_deterministic_disjoint_and_stratified():
    parts = {split: av_digits(split).indices for split in ("train", "val", "test")}
    again = av_digits("train")
    assert np.array_equal(parts["train"], again.indices)
    assert all(_same(av_digits("train")[i], again[i]) for i in (0, 1, 2, 3999))
    together = np.concatenate(list(parts.values()))
    assert len(together) == len(set(together.tolist())) == 5000
    _, labels = load_mnist5k()
    assert np.bincount(np.asarray(labels)[parts["test"]]).tolist() == [50] * 10
    assert not np.array_equal(av_digits("train", seed=1).indices, parts["train"])
    assert len(av_digits("train", fractions={"train": 0.5, "test": 0.5})) == 2500


def test_limit_takes_a_mixed_prefix_of_the_split():
    small = av_digits("train", limit=30)
    assert np.array_equal(small.indices, av_digits("train").indices[:30])
    assert len({ex["target"] for ex in small}) >= 6  # not 30 zeros from the class-sorted source


def test_items_survive_pickling_and_dataloader_workers():
    import torch.utils.data

    ds = av_digits("test", limit=8)
    blob = pickle.dumps(ds)
    assert len(blob) < 100_000  # memory maps are reopened in workers, not shipped
    copy = pickle.loads(blob)
    assert all(_same(copy[i], ds[i]) for i in range(8))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, collate_fn=list)
    fetched = [ex for batch in loader for ex in batch]
    assert len(fetched) == 8 and all(_same(fetched[i], ds[i]) for i in range(8))


def test_corruption_follows_the_parameters():
    images, _ = load_mnist5k()
    clean = av_digits("val", limit=10, image_noise=0.0, occlusion=0.0, snr_db=(60, 60))
    noisy = av_digits("val", limit=10)
    for i in range(10):
        g = clean.indices[i]
        assert np.array_equal(clean[i]["image"], images[g])
        assert not np.array_equal(noisy[i]["image"], images[g])
        # the same utterance, gain and shift: only the added noise differs, and at SNR <= 5 dB the
        # noise is at least 1/1.78 of the speech level (itself above the whole clip's RMS)
        speech = clean[i]["audio"]["array"]
        noise = noisy[i]["audio"]["array"] - speech
        assert np.std(noise) > 0.5 * np.sqrt(np.mean(speech**2))
    # each modality has its own random stream: corrupting one differently leaves the other unchanged
    quiet_image = av_digits("val", limit=10, image_noise=0.0, occlusion=0.0)
    loud_audio = av_digits("val", limit=10, snr_db=(-20, -20))
    for i in range(10):
        assert np.array_equal(quiet_image[i]["audio"]["array"], noisy[i]["audio"]["array"])
        assert np.array_equal(loud_audio[i]["image"], noisy[i]["image"])
    same_digit = [ex for ex in av_digits("train", limit=200) if ex["target"] == 3][:2]
    assert not np.array_equal(same_digit[0]["audio"]["array"], same_digit[1]["audio"]["array"])


def test_bank_voices_sound_different_and_bank_is_reproducible_in_fresh_processes():
    params = bank_params(["seven"], 16000, ["en+m1", "en-us+f3"], [175], [50])
    first, second = synthesize_bank(params), synthesize_bank(params)
    for key in first:
        assert np.array_equal(first[key], second[key])
    a, b = (first["samples"][first["offsets"][i] : first["offsets"][i + 1]] for i in (0, 1))
    assert first["voice"].tolist() == [0, 1] and first["word"].tolist() == [0, 0]
    spectrum = [np.abs(np.fft.rfft(x.astype(np.float32), 16000)) for x in (a, b)]
    centroid = [float((s * np.arange(len(s))).sum() / s.sum()) for s in spectrum]
    assert abs(centroid[0] - centroid[1]) > 50  # a male and a female voice: different spectra


def _ridge_accuracy(train: np.ndarray, y: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> float:
    a = np.hstack([train, np.ones((len(train), 1))])
    b = np.hstack([test, np.ones((len(test), 1))])
    weights = np.linalg.solve(a.T @ a + 100.0 * np.eye(a.shape[1]), a.T @ np.eye(10)[y])
    return float(((b @ weights).argmax(1) == y_test).mean())


def _features(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_fft, bands = 512, 32
    edges = np.geomspace(3, n_fft // 2, bands + 1).astype(int)
    images, audio, targets = [], [], []
    for ex in ds:
        images.append(ex["image"][::2, ::2].reshape(-1) / 255.0)
        frames = np.lib.stride_tricks.sliding_window_view(ex["audio"]["array"], n_fft)[::256]
        power = np.abs(np.fft.rfft(frames * np.hanning(n_fft))) ** 2
        bands_power = np.stack([power[:, lo:hi].sum(1) for lo, hi in zip(edges[:-1], edges[1:])], 1)
        logspec = np.log(bands_power + 1e-8)
        loudest = logspec[np.sort(np.argsort(logspec.mean(1))[-16:])]
        audio.append(np.concatenate([logspec.mean(0), logspec.std(0), loudest.reshape(-1)]))
        targets.append(ex["target"])
    return np.stack(images), np.stack(audio), np.array(targets)


def test_each_modality_alone_is_imperfect_and_fusion_helps():
    """A linear probe per modality and on both: fusion must beat the better single modality clearly."""
    xi, xa, y = _features(av_digits("train", limit=1500))
    ti, ta, yt = _features(av_digits("val"))
    mean, std = xa.mean(0), xa.std(0) + 1e-6
    xa, ta = (xa - mean) / std, (ta - mean) / std
    image = _ridge_accuracy(xi, y, ti, yt)
    audio = _ridge_accuracy(xa, y, ta, yt)
    fused = _ridge_accuracy(np.hstack([xi, xa]), y, np.hstack([ti, ta]), yt)
    assert 0.3 < image < 0.9 and 0.3 < audio < 0.9, (image, audio)
    assert fused > max(image, audio) + 0.08, (image, audio, fused)


def test_sample_rate_and_duration():
    ds = av_digits("test", limit=2, sample_rate=8000, duration=0.8, **SMALL_BANK)
    assert ds[0]["audio"]["sampling_rate"] == 8000 and ds[0]["audio"]["array"].shape == (6400,)


def test_second_construction_reuses_the_cache(fresh_cache, monkeypatch):
    calls = []

    def counting(params):
        calls.append(params)
        return synthesize_bank(params)

    monkeypatch.setattr(avdigits, "synthesize_bank", counting)
    first = av_digits("train", limit=5, **SMALL_BANK)
    files = sorted((fresh_cache / "datasets").glob("av-digits-speech-*/*.npy"))
    stamps = [f.stat().st_mtime_ns for f in files]
    second = av_digits("test", limit=5, **SMALL_BANK)
    assert len(calls) == 1 and len(files) == 6
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert second.build_seconds == first.build_seconds  # read from the same entry's meta.json
    av_digits("train", limit=5, sample_rate=8000, **SMALL_BANK)  # a new bank for a new rate
    assert len(calls) == 2


_RACER = textwrap.dedent(
    """
    import hashlib, sys
    from mmzoo.data.avdigits import av_digits
    ds = av_digits("val", limit=6, voices=["en+m1", "en-us+f3"], rates=[150, 220], pitches=[50])
    h = hashlib.sha256()
    for ex in ds:
        h.update(ex["image"].tobytes())
        h.update(ex["audio"]["array"].tobytes())
        h.update(bytes([ex["target"]]))
    print(h.hexdigest())
    """
)


def test_concurrent_builders_both_succeed_and_agree(fresh_cache):
    env = {**os.environ, "MMZOO_CACHE": str(fresh_cache), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", _RACER]
    pipe = subprocess.PIPE
    procs = [subprocess.Popen(cmd, env=env, stdout=pipe, stderr=pipe, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    digests = {out.strip() for out, _ in results}
    assert len(digests) == 1
    banks = [p for p in (fresh_cache / "datasets").iterdir() if p.name.startswith("av-digits-speech")]
    assert sorted(p.suffix for p in banks) == ["", ".lock"]  # one complete entry, no temporaries
    local = hashlib.sha256()
    for ex in av_digits("val", limit=6, **SMALL_BANK):
        local.update(ex["image"].tobytes())
        local.update(ex["audio"]["array"].tobytes())
        local.update(bytes([ex["target"]]))
    assert digests == {local.hexdigest()}


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"split": "testing"},
            "av-digits: unknown split 'testing'; available splits: 'train', 'val', 'test'. "
            "Did you mean 'test'?",
        ),
        ({"snr_db": (10, -10)}, "snr_db must be (low, high) with -40 <= low <= high <= 60"),
        ({"sample_rate": 100}, "sample_rate must be an integer from 4000 to 48000, got 100"),
        ({"occlusion": 1.5}, "occlusion must be a number from 0 to 1, got 1.5"),
        ({"rates": [175, 900]}, "rates must be an integer from 80 to 450, got 900"),
        ({"voices": []}, "voices must be a non-empty list"),
        ({"limit": 0}, "limit must be a positive integer or None, got 0"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(DatasetError) as info:
        av_digits(**params)
    assert message in str(info.value)


def test_parameters_of_the_wrong_type_are_spec_errors_from_the_signature():
    with pytest.raises(SpecError, match=r"av-digits\.snr_db: expected Sequence, got 5"):
        av_digits(snr_db=5)


def test_unknown_voice_is_reported_from_the_synthesis_process(fresh_cache):
    with pytest.raises(DatasetError, match="eSpeak NG has no voice 'xx-nowhere'"):
        av_digits("train", voices=["en+m1", "xx-nowhere"], rates=[175], pitches=[50])
    assert [p.name for p in (fresh_cache / "datasets").iterdir() if ".tmp-" in p.name] == []


def test_registered_under_its_name():
    ds = mmzoo.create_dataset("av-digits", split="test", limit=3)
    assert len(ds) == 3 and _same(ds[2], av_digits("test")[2])

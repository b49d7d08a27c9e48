"""digit-captions (image-text pairs) and sklearn-digits (image + vector views)."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mmzoo
from mmzoo.data.captions import SLANTS, WEIGHTS, digit_captions, make_caption, style_attributes
from mmzoo.data.mnist import DIGIT_WORDS, load_mnist5k
from mmzoo.data.tabular import sklearn_digits
from mmzoo.errors import DatasetError

REPO = Path(__file__).resolve().parents[2]


def test_digit_captions_items_name_the_digit_and_its_measured_style():
    ds = digit_captions("val")
    assert len(ds) == 500 and ds.keys == ("image", "text")
    for i, ex in enumerate(ds):
        assert set(ex) == {"image", "text", "target"}
        assert ex["image"].dtype == np.uint8 and ex["image"].shape == (28, 28)
        digit = ex["target"]
        assert re.search(rf"\b({DIGIT_WORDS[digit]}|{digit})\b", ex["text"]), ex["text"]
        assert SLANTS[ds.attributes["slant"][i]] in ex["text"]
        assert WEIGHTS[ds.attributes["weight"][i]] in ex["text"]
    assert len(set(ds.captions)) > 300  # wording and style vary, not one caption per class


def test_style_measurements_follow_the_pixels():
    images, labels = load_mnist5k()
    img = np.zeros((28, 28), np.uint8)
    for row in range(4, 24):  # a stroke whose top leans right: column grows as row goes up
        col = 14 + (14 - row) // 2
        img[row, col - 1 : col + 2] = 255
    mirrored = img[:, ::-1]
    style = style_attributes(np.stack([img, mirrored, np.asarray(images[0])]), np.array([1, 1, 0]))
    assert SLANTS[style["slant"][0]] == "leaning right" and SLANTS[style["slant"][1]] == "leaning left"
    assert style["shear"][0] > 0.3 and style["shear"][1] < -0.3
    thick = np.asarray(images[:500], np.float64).sum(axis=(1, 2))  # the zeros: weight is rank within class
    measured = style_attributes(np.asarray(images[:500]), np.zeros(500, np.int64))
    assert thick[measured["weight"] == 2].min() >= thick[measured["weight"] == 0].max()


def test_captions_are_deterministic_split_disjoint_and_class_only_on_request():
    a, b = digit_captions("train"), digit_captions("train")
    assert a.captions == b.captions and np.array_equal(a.indices, b.indices)
    parts = [set(digit_captions(s).indices.tolist()) for s in ("train", "val", "test")]
    assert sum(map(len, parts)) == len(set().union(*parts)) == 5000
    plain = digit_captions("test", limit=40, detail="class")
    for ex in plain:
        assert not any(word in ex["text"] for word in WEIGHTS + SLANTS)
    assert make_caption(7, 2, 0, 2, np.random.default_rng(0)) == make_caption(
        7, 2, 0, 2, np.random.default_rng(0)
    )


def test_captions_pickle_small_and_registered():
    ds = digit_captions("test", limit=5)
    copy = pickle.loads(pickle.dumps(ds))
    assert all(
        np.array_equal(copy[i]["image"], ds[i]["image"]) and copy[i]["text"] == ds[i]["text"]
        for i in range(5)
    )
    made = mmzoo.create_dataset("digit-captions", split="test", limit=5)
    assert [ex["text"] for ex in made] == ds.captions
    with pytest.raises(
        DatasetError, match="detail must be one of style, class, got 'styles'. Did you mean 'style'?"
    ):
        digit_captions(detail="styles")


def test_sklearn_digits_views():
    ds = sklearn_digits("train")
    assert len(ds) + len(sklearn_digits("val")) + len(sklearn_digits("test")) == 1797
    ex = ds[0]
    assert set(ex) == {"image", "vector", "target"}
    assert ex["image"].dtype == np.uint8 and ex["image"].shape == (8, 8)
    assert ex["vector"].dtype == np.float32 and ex["vector"].shape == (64,) and ex["vector"].max() <= 1.0
    np.testing.assert_allclose(ex["image"].reshape(-1) / 256.0, ex["vector"], atol=1 / 16)
    assert set(sklearn_digits("val", views=["vector"])[0]) == {"vector", "target"}
    with pytest.raises(
        DatasetError, match="unknown view 'images'; choose from image, vector. Did you mean 'image'?"
    ):
        sklearn_digits(views=["images"])
    first, second = sklearn_digits("test"), sklearn_digits("test")
    assert all(np.array_equal(first[i]["vector"], second[i]["vector"]) for i in range(len(first)))
    assert len(mmzoo.create_dataset("sklearn-digits", split="val", limit=7)) == 7


def test_plugin_module_is_cheap_to_import_and_registers_every_dataset():
    code = (
        "import sys, mmzoo.data\n"
        "heavy = [m for m in ('torch', 'numpy', 'PIL', 'sklearn', 'mlxtend') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert set(mmzoo.list_components("dataset")) >= {
        "manifest",
        "av-digits",
        "digit-captions",
        "sklearn-digits",
    }

"""The manifest dataset: formats, splits, columns, types, targets, and every bad input's message."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmzoo
from mmzoo.data.audio import write_wav
from mmzoo.data.manifest import manifest
from mmzoo.errors import DatasetError, SpecError


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """A folder with 6 images (grayscale, RGB, palette) and 6 short WAV files at 8 kHz."""
    (tmp_path / "img").mkdir()
    (tmp_path / "wav").mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        pixels = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
        img = Image.fromarray(pixels[..., 0], "L") if i % 3 == 0 else Image.fromarray(pixels, "RGB")
        (img.convert("P") if i % 3 == 2 else img).save(tmp_path / "img" / f"{i}.png")
        write_wav(tmp_path / "wav" / f"{i}.wav", np.sin(np.arange(800) * (i + 1) * 0.05) * 0.5, 8000)
    return tmp_path


def _csv(folder: Path, text: str, name: str = "data.csv") -> Path:
    path = folder / name
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


CSV = '''
image,audio,caption,label,split
img/0.png,wav/0.wav,"a cat, sitting",cat,train
img/1.png,wav/1.wav,a dog,dog,train
img/2.png,wav/2.wav,another cat,cat,train
img/3.png,wav/3.wav,a bird,bird,val
img/4.png,wav/4.wav,a dog again,dog,val
img/5.png,wav/5.wav,"quoted ""cat""",cat,test
'''


def test_csv_with_split_column_media_and_label_names(media):
    path = _csv(media, CSV)
    train = manifest("train", path=str(path), columns={"image": "image", "audio": "audio", "text": "caption"},
                     target="label")  # fmt: skip
    assert len(train) == 3 and train.keys == ("image", "audio", "text")
    assert train.labels == ("bird", "cat", "dog") and train.num_classes == 3  # from every split
    ex = train[0]
    assert set(ex) == {"image", "audio", "text", "target"}
    assert ex["image"].dtype == np.uint8 and ex["image"].shape == (5, 7)  # grayscale stays [H, W]
    assert train[1]["image"].shape == (5, 7, 3) and train[2]["image"].shape == (5, 7, 3)  # palette -> RGB
    assert ex["audio"]["sampling_rate"] == 8000 and ex["audio"]["array"].dtype == np.float32
    assert ex["audio"]["array"].shape == (800,)
    assert ex["text"] == "a cat, sitting" and [e["target"] for e in train] == [1, 2, 1]
    test = manifest("test", path=path, columns={"text": "caption"}, target="label")
    assert test[0] == {"text": 'quoted "cat"', "target": 1}
    with pytest.raises(DatasetError) as info:
        manifest("valid", path=path, target="label")
    assert str(info.value) == "manifest: unknown split 'valid'; available splits: 'train', 'val', 'test'. " \
                              "Did you mean 'val'?"  # fmt: skip


def test_default_columns_types_and_resampling(media):
    path = _csv(media, CSV)
    ds = manifest("val", path=path, target="label", sample_rate=16000, image_mode="RGB")
    assert ds.keys == ("image", "audio", "caption") and ds.types == {
        "image": "image", "audio": "audio", "caption": "text"
    }  # fmt: skip
    ex = ds[0]
    assert ex["image"].shape == (5, 7, 3)
    assert ex["audio"]["sampling_rate"] == 16000 and ex["audio"]["array"].shape == (1600,)
    gray = manifest("val", path=path, target="label", image_mode="L")
    assert gray[0]["image"].shape == (5, 7)


def test_jsonl_with_lists_numbers_and_renamed_keys(media):
    rows = [
        {"photo": "img/0.png", "f": [0.5, 1.0], "n": 3, "tags": ["cat", "pet"]},
        {"photo": "img/1.png", "f": [1.5, 2.0], "n": 4, "tags": ["dog"]},
        {"photo": "img/2.png", "f": [2.5, 3.0], "n": 5, "tags": []},
    ]
    path = media / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    ds = manifest(path=path, columns={"pic": "photo", "features": "f", "count": "n"}, types={"pic": "image"},
                  target="tags")  # fmt: skip
    assert ds.types == {"pic": "image", "features": "vector", "count": "int"}
    assert ds.labels == ("cat", "dog", "pet")
    ex = ds[0]
    assert ex["features"].dtype == np.float32 and ex["features"].tolist() == [0.5, 1.0]
    assert ex["count"] == 3 and ex["target"] == [1.0, 0.0, 1.0] and ds[2]["target"] == [0.0, 0.0, 0.0]
    ex["features"][0] = 99.0  # items are copies: mutating one does not change the dataset
    assert ds[0]["features"][0] == 0.5


def test_target_types(tmp_path):
    path = _csv(tmp_path, 'x,y,z,w\n1,2,0.5,1 0 1\n2,0,1.5,0;1;1\n3,1,-2,"[1, 1, 0]"\n')
    assert [e["target"] for e in manifest(path=path, target="y")] == [2, 0, 1]
    assert [e["target"] for e in manifest(path=path, target="z")] == [0.5, 1.5, -2.0]
    ints_as_floats = manifest(path=path, target="y", target_type="float")
    assert [e["target"] for e in ints_as_floats] == [2.0, 0.0, 1.0]
    lists = manifest(path=path, target="w", target_type="list")
    assert [e["target"] for e in lists] == [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]
    named = manifest(path=path, target="y", labels=["zero", "one", "two"])
    assert named.labels == ("zero", "one", "two") and named[0]["target"] == 2
    assert manifest(path=path, target="y", labels={"b": 1, "a": 0, "c": 2}).labels == ("a", "b", "c")
    unlabelled = manifest(path=path, target=None, columns={"x": "x"})
    assert unlabelled[0] == {"x": 1}


def test_labels_given_as_names(tmp_path):
    path = _csv(tmp_path, "t,label\nhello,pos\nbye,neg\n")
    ds = manifest(path=path, target="label", labels=["neg", "pos"])
    assert [e["target"] for e in ds] == [1, 0]
    with pytest.raises(DatasetError) as info:
        manifest(path=path, target="label", labels=["negative", "pos"])
    assert str(info.value) == (
        f"{path} line 3, column 'label': unknown label 'neg'; labels are 'negative', 'pos'. "
        "Did you mean 'negative'?"
    )


def test_split_by_fractions_is_deterministic_and_disjoint(tmp_path):
    path = _csv(tmp_path, "x,target\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    parts = {s: [e["x"] for e in manifest(s, path=path, fractions={"train": 0.6, "val": 0.2, "test": 0.2})]
             for s in ("train", "val", "test")}  # fmt: skip
    assert [len(p) for p in parts.values()] == [30, 10, 10]
    assert sorted(sum(parts.values(), [])) == list(range(50))
    again = [e["x"] for e in manifest("train", path=path, fractions={"train": 0.6, "val": 0.2, "test": 0.2})]
    assert again == parts["train"]
    other_seed = manifest("train", path=path, fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=1)
    assert [e["x"] for e in other_seed] != parts["train"]
    assert len(manifest("val", path=path, fractions={"train": 0.6, "val": 0.2, "test": 0.2}, limit=4)) == 4


def test_one_file_per_split(tmp_path):
    train = _csv(tmp_path, "text,target\nab,0\ncd,1\n", "train.csv")
    test = _csv(tmp_path, "text\tTARGET\nef\tx\n".replace("TARGET", "target"), "test.tsv")
    paths = {"train": str(train), "test": str(test)}
    with pytest.raises(DatasetError, match="is not a number although other rows"):
        manifest("train", path=paths)  # the test file's 'x' is not a class index like the others
    paths_ok = {"train": str(train), "test": str(_csv(tmp_path, "text\ttarget\nef\t1\n", "test2.tsv"))}
    assert [e["text"] for e in manifest("train", path=paths_ok)] == ["ab", "cd"]
    assert manifest("test", path=paths_ok)[0] == {"text": "ef", "target": 1}
    with pytest.raises(DatasetError, match="available splits: 'train', 'test'"):
        manifest("val", path=paths_ok)


def test_a_file_without_split_information_is_the_train_split(tmp_path):
    path = _csv(tmp_path, "text,target\nab,0\n")
    assert len(manifest(path=path)) == 1
    with pytest.raises(DatasetError) as info:
        manifest("test", path=path)
    message = str(info.value)
    assert "has no 'split' column, so its only split is 'train' (asked for 'test')" in message
    assert "pass fractions=" in message and "path={'train': ..., 'test': ...}" in message


def test_items_are_picklable_and_cheap(media):
    ds = manifest("train", path=_csv(media, CSV), target="label")
    copy = pickle.loads(pickle.dumps(ds))
    for i in range(len(ds)):
        a, b = copy[i], ds[i]
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(
            a["audio"]["array"], b["audio"]["array"]
        )
        assert a["caption"] == b["caption"] and a["target"] == b["target"]


def test_registered_under_its_name(media):
    ds = mmzoo.create_dataset("manifest", split="val", path=str(_csv(media, CSV)), target="label")
    assert len(ds) == 2


# -- bad inputs: each says which file, line and column, and what would be right ------------------------


@pytest.mark.parametrize(
    "text, params, message",
    [
        ("a,target\n1,2,3\n", {}, "{path} line 2: expected 2 cells (a, target), found 3"),
        (
            "a,target\nx,notanumber\ny,3\n",
            {},
            "{path} line 2, column 'target': target 'notanumber' is not a number although other rows "
            "(e.g. {path} line 3) hold numbers",
        ),
        (
            "a,target\nx,1\ny,\n",
            {"target_type": "int"},
            "{path} line 3, column 'target': missing target",
        ),
        (
            "a,target\nx,1\n",
            {"target": "label"},
            "manifest: target 'label' is not a column of {path} (columns: a, target).",
        ),
        (
            "a,target\nx,1\n",
            {"columns": {"image": "img"}},
            "manifest: columns['image'] 'img' is not a column of {path} (columns: a, target).",
        ),
        (
            "a,targt\nx,1\n",
            {},
            "manifest: target 'target' is not a column of {path} (columns: a, targt). Did you mean 'targt'?",
        ),
        ("a,target\nx,1\n", {"types": {"b": "text"}}, "manifest: types names 'b', which is not a batch key"),
        (
            "a,target\nx,1\n",
            {"types": {"a": "img"}},
            "manifest: types['a'] is 'img'; use one of image, audio, "
            "text, int, float, vector, auto. Did you mean 'image'?",
        ),
        ("a,target\nx,1\n", {"target_type": "class"}, "manifest: unknown target_type 'class'"),
        (
            "image,target\nmissing.png,1\n",
            {},
            "{path} line 2, column 'image': image file 'missing.png' does "
            "not exist (looked at {dir}/missing.png)",
        ),
        (
            "image,target\n,1\n",
            {},
            "{path} line 2, column 'image': missing value for batch key 'image' (image)",
        ),
        ("a,target,split\nx,1,train\ny,2,\n", {}, "{path} line 3, column 'split': expected a split name"),
        (
            "a,target\nx,1\n",
            {"split_column": "fold"},
            "manifest: split_column 'fold' is not a column of {path}",
        ),
        (
            "a,target,split\nx,1,train\n",
            {"fractions": {"train": 1.0}},
            "has a 'split' column and fractions "
            "were given; use one (or pass split_column=None to split randomly)",
        ),
        (
            "a,target\nx,5\n",
            {"labels": ["a", "b"]},
            "{path} line 2, column 'target': class index 5 is outside 0..1 (the labels given)",
        ),
        ("a,target\nx,1\n", {"labels": ["a", "a"]}, "manifest: labels repeat 'a'"),
        (
            "a,target\nx,1\n",
            {"image_mode": "CMYK"},
            "manifest: image_mode must be None or one of L, RGB, RGBA",
        ),
        ("a,a\n1,2\n", {}, "manifest {path} line 1: column 'a' appears twice"),
        ("a,target\n", {}, "manifest {path} has no rows"),
        ("", {}, "manifest {path} is empty; the first line must name the columns"),
        (
            "a,v,target\nx,1;zz,1\n",
            {"types": {"v": "vector"}},
            "{path} line 2, column 'v': 'zz' is not a number",
        ),
    ],
)
def test_bad_csv_inputs(tmp_path, text, params, message):
    path = _csv(tmp_path, text) if text else tmp_path / "data.csv"
    if not text:
        path.write_text("")
    with pytest.raises(DatasetError) as info:
        manifest(path=path, **params)
    expected = message.format(path=path, dir=tmp_path)
    assert expected in str(info.value), str(info.value)


def test_bad_files_and_paths(tmp_path):
    with pytest.raises(DatasetError, match="manifest .*nothere.csv does not exist"):
        manifest(path=tmp_path / "nothere.csv")
    with pytest.raises(
        DatasetError, match=r"unsupported file type '\.xlsx'; use one of \.csv, \.tsv, \.jsonl"
    ):
        manifest(path=tmp_path / "data.xlsx")
    with pytest.raises(SpecError, match="manifest.path: expected str or PathLike or Mapping, got 3"):
        manifest(path=3)  # checked against the signature, like every dataset and part parameter
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"a": 1, "target": 0}\n{"a": 2, target: 1}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl line 2: invalid JSON \(Expecting property name"):
        manifest(path=bad_json)
    not_object = tmp_path / "list.jsonl"
    not_object.write_text('{"a": 1, "target": 0}\n[1, 2]\n')
    with pytest.raises(DatasetError, match="list.jsonl line 2: expected a JSON object, found list"):
        manifest(path=not_object)
    missing_key = tmp_path / "keys.jsonl"
    missing_key.write_text('{"text": "a", "target": 0}\n{"target": 1}\n')
    with pytest.raises(
        DatasetError, match="keys.jsonl line 2, column 'text': missing value for batch key 'text'"
    ):
        manifest(path=missing_key)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,target\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="latin.csv is not UTF-8 text"):
        manifest(path=latin)


def test_unreadable_media_fail_at_fetch_with_location(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "broken.wav").write_bytes(b"not a wav")
    path = _csv(tmp_path, "image,audio,target\nbroken.png,broken.wav,1\n")
    ds = manifest(path=path, columns={"image": "image"})
    with pytest.raises(DatasetError, match=f"{path} line 2, column 'image': cannot read image .*broken.png"):
        ds[0]
    ds = manifest(path=path, columns={"audio": "audio"})
    with pytest.raises(
        DatasetError, match=f"{path} line 2, column 'audio': .*broken.wav is not an? (audio|WAV) file"
    ):
        ds[0]


def test_empty_cells_are_missing_inputs_when_allowed(media):
    path = _csv(media, '''
image,audio,caption,score,label
img/0.png,,a cat,1,cat
,wav/1.wav,,2,dog
img/2.png,wav/2.wav,a bird,,bird
''')
    with pytest.raises(DatasetError, match=r"line 2, column 'audio': missing value for batch key 'audio' \(audio\); "
                                           r"pass missing='allow'"):
        manifest(path=path, target="label")
    data = manifest(path=path, target="label", missing="allow")
    assert data.types == {"image": "image", "audio": "audio", "caption": "text", "score": "int"}
    assert data[0]["audio"] is None and data[0]["image"].shape == (5, 7)
    assert data[1]["image"] is None and data[1]["caption"] is None and data[1]["audio"]["array"].shape == (800,)
    assert data[2]["score"] is None and data[2]["caption"] == "a bird"
    jsonl = media / "rows.jsonl"
    jsonl.write_text('{"caption": "x", "score": 3, "label": 0}\n{"score": null, "label": 1}\n')
    rows = manifest(path=jsonl, target="label", missing="allow")
    assert rows[1] == {"caption": None, "score": None, "target": 1}
    with pytest.raises(DatasetError, match="missing must be 'error' .* or 'allow' .* got 'alow'. Did you mean 'allow'"):
        manifest(path=jsonl, target="label", missing="alow")


def test_a_manifest_with_holes_trains_a_model_that_handles_missing_inputs(media):
    path = _csv(media, '''
image,caption,label
img/0.png,a cat,0
,a dog,1
img/2.png,,0
img/3.png,a bird,1
''')
    data = manifest(path=path, target="label", missing="allow", image_mode="RGB")
    model = mmzoo.create_model({
        "encoders": {"image": {"type": "cnn", "channels": [4], "output_dim": 8, "image_size": 8},
                     "caption": {"type": "byte-gru", "embed_dim": 4, "hidden_dim": 4, "output_dim": 8}},
        "fusion": {"type": "gated", "dim": 8}, "head": {"type": "classification", "num_classes": 2}})
    batch = model.preprocess([data[i] for i in range(len(data))])
    assert batch["present"]["image"].tolist() == [True, False, True, True]
    assert batch["present"]["caption"].tolist() == [True, True, False, True]
    out = model(batch)
    out.loss.backward()
    assert out.outputs.shape == (4, 2)

"""Modality dropout: seeded and reproducible, independent of worker count, training only, validated."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import mmzoo
from mmzoo.errors import ConfigError
from mmzoo.train.config import validate_config
from mmzoo.train.data import batch_seed, eval_loader, train_loader
from mmzoo.train.modality_dropout import ModalityDropout
from mmzoo.train.trainer import train
from tests.train.helpers import TINY_SPEC, load_tensors, max_abs_diff, toy_config

KEYS = ["vec", "img"]


def dataset(size: int = 40) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"vec": rng.standard_normal(8).astype(np.float32), "img": rng.integers(0, 255, (8, 8), dtype=np.uint8),
             "target": i % 3} for i in range(size)]


def lost(examples: list[dict]) -> list[tuple[str, ...]]:
    return [tuple(k for k in KEYS if e.get(k) is None) for e in examples]


def test_the_same_seed_drops_the_same_inputs_and_another_seed_others():
    dropout = ModalityDropout({"vec": 0.5, "img": 0.3}, KEYS)
    data = dataset(200)
    first = lost(dropout(data, seed=11))
    assert first == lost(dropout(data, seed=11))
    assert first != lost(dropout(data, seed=12))
    assert all(e["vec"] is not None and e["img"] is not None for e in data)  # the dataset's items are untouched


def test_rates_are_honoured_and_no_example_loses_its_last_input():
    dropout = ModalityDropout({"vec": 0.5, "img": 0.3}, KEYS)
    drops = [lost(dropout(dataset(100), seed=s)) for s in range(20)]
    flat = [d for batch in drops for d in batch]
    assert ("vec", "img") not in flat
    # both drawn (p = 0.15): one of the two is kept at random, so vec is lost with p = 0.5 - 0.075
    assert abs(sum("vec" in d for d in flat) / len(flat) - 0.425) < 0.03
    assert abs(sum("img" in d for d in flat) / len(flat) - 0.225) < 0.03
    alone = [{"vec": np.zeros(8, np.float32), "img": None}] * 50
    assert all(e["vec"] is not None for e in dropout(alone, seed=3))


def test_bad_settings_are_located():
    with pytest.raises(ConfigError, match=r"data.modality_dropout.vecc: not an input of the model, whose encoders "
                                          r"read vec, img. Did you mean 'vec'\?"):
        ModalityDropout({"vecc": 0.2}, KEYS)

    class OldFusion:
        part_name = "old"

    with pytest.raises(ConfigError, match="fusion 'old' does not handle missing inputs"):
        ModalityDropout({"vec": 0.2}, KEYS, fusion=OldFusion())
    raw = toy_config("out", data__modality_dropout={"vec": 1.0, "img": -0.1})
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    assert "data.modality_dropout.img: expected float in [0, 1], got -0.1" in str(info.value)
    raw = toy_config("out", data__modality_dropout={"vec": 1.0})
    with pytest.raises(ConfigError, match=r"data.modality_dropout.vec: expected a probability in \[0, 1\)"):
        validate_config(raw)


def _presence(loader) -> list[list[list[bool]]]:
    seen = []
    for _, batch in loader:
        present = batch.get("present")
        seen.append([present[k].tolist() for k in KEYS] if present is not None else None)
    return seen


@pytest.mark.parametrize("workers", [1, 2])
def test_dropout_does_not_depend_on_the_number_of_workers_and_evaluation_never_drops(workers):
    model = mmzoo.create_model(TINY_SPEC)
    dropout = ModalityDropout({"vec": 0.4, "img": 0.4}, KEYS, fusion=model.fusion)
    data = dataset()

    def loaders(num_workers):
        common = {"batch_size": 8, "rank": 0, "world_size": 1, "seed": 5, "num_workers": num_workers,
                  "prefetch_factor": None, "persistent_workers": False, "pin_memory": False}
        loader, sampler = train_loader(data, model.collator, shuffle=True, drop_last=False,
                                       modality_dropout=dropout, **common)
        sampler.set_position(0, 0)
        return loader, eval_loader(data, model.collator, **common)

    in_process, evaluation = loaders(0)
    expected = _presence(in_process)
    assert any(p is not None for p in expected)
    in_workers, _ = loaders(workers)
    assert _presence(in_workers) == expected
    assert _presence(evaluation) == [None] * 5
    # what was dropped is what the batch seed says: the first batch's first index seeds it
    first = next(iter(in_process.batch_sampler))
    assert first[0] == batch_seed(5, 0, first[1])


def test_training_with_modality_dropout_is_reproducible_and_recorded(toys, tmp_path):
    common = {"optim__steps": 6, "data__batch_size": 6}
    dropped = {"data__modality_dropout": {"vec": 0.5, "img": 0.5}}
    seen = []
    train(validate_config(toy_config(tmp_path / "a", **common, **dropped)),
          hooks=[lambda view: seen.append(view.model.training)])
    train(validate_config(toy_config(tmp_path / "b", **common, **dropped)))
    train(validate_config(toy_config(tmp_path / "plain", **common)))
    weights = {name: load_tensors(tmp_path / name / "model" / "model.safetensors") for name in ("a", "b", "plain")}
    assert max_abs_diff(weights["a"], weights["b"]) == 0.0
    assert max_abs_diff(weights["a"], weights["plain"]) > 0.0
    absent = [k for k in weights["a"] if k.startswith("fusion.absent.")]
    assert absent and all(max_abs_diff({k: weights["a"][k]}, {k: weights["plain"][k]}) > 0 for k in absent)
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved["data"]["modality_dropout"] == {"vec": 0.5, "img": 0.5}


def test_a_key_the_model_does_not_read_is_refused_before_training(toys, tmp_path):
    with pytest.raises(ConfigError, match="data.modality_dropout.image: not an input of the model"):
        train(validate_config(toy_config(tmp_path / "x", data__modality_dropout={"image": 0.2})))


def test_training_data_whose_first_example_lacks_an_input_is_accepted_when_the_fusion_handles_it():
    from mmzoo.train.datacheck import check_training_data

    model = mmzoo.create_model(TINY_SPEC)
    data = dataset(4)
    del data[0]["img"]  # the first example lacks an input; the others have it
    checked = check_training_data(model, {"data.train": data, "data.eval": None}, print)
    assert checked["data.train"][1]["img"] is data[1]["img"]
    without = [{k: v for k, v in e.items() if k != "img"} for e in data]  # no example has it: a misnamed column
    with pytest.raises(ConfigError, match="read 'img', which the data does not have"):
        check_training_data(model, {"data.train": without, "data.eval": None}, print)


def test_the_feature_cache_steps_aside_for_modality_dropout(toys, tmp_path, capsys):
    dropped = {"data__modality_dropout": {"vec": 0.5}}
    with pytest.raises(ConfigError, match=r"data.cache_features: true cannot be combined with data.modality_dropout"):
        validate_config(toy_config(tmp_path / "x", data__cache_features=True, **dropped))
    train(validate_config(toy_config(tmp_path / "auto", optim__steps=2, optim__freeze=["encoders.img"], **dropped)))
    err = capsys.readouterr().err
    assert err.count("feature cache: off (encoders.img: data.modality_dropout drops inputs as the model trains)") == 1

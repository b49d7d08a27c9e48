"""Labels travel with the model: a manifest of real photos with string labels is trained on, the class
names land in config.json, and evaluation maps targets by name (a file holding some of the classes
scores its examples exactly as the full split does)."""

from __future__ import annotations

import json

import pytest
import torch

import mmzoo
from mmzoo.cli import main
from mmzoo.errors import ConfigError, DatasetError
from mmzoo.train.config import validate_config
from mmzoo.train.rundir import RunDir
from mmzoo.train.trainer import train
from tests.inference.support import PHOTOS, photo_run_config, read_rows, write_csv, write_photo_manifest


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    """A model trained by the trainer on real photo crops labelled astronaut / cat / coffee / rocket."""
    folder = tmp_path_factory.mktemp("photos")
    manifest = write_photo_manifest(folder)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(validate_config(photo_run_config(manifest, folder / "run")))
    finally:
        torch.set_num_threads(threads)
    return folder, manifest, folder / "run"


def eval_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_class_names_are_saved_with_the_model(photo_run):
    _, _, run = photo_run
    saved = json.loads((run / "model" / "config.json").read_text())
    assert saved["labels"] == sorted(PHOTOS)
    assert mmzoo.create_model(str(run / "model")).labels == tuple(sorted(PHOTOS))


def test_a_file_with_some_of_the_classes_scores_its_examples_as_the_full_split_does(photo_run, capsys):
    folder, manifest, run = photo_run
    test_rows = [r for r in read_rows(manifest) if r["split"] == "test"]
    # coffee and rocket only: sorted within this file they would be classes 0 and 1 (astronaut and cat)
    subset_rows = [{k: v for k, v in r.items() if k != "split"}
                   for r in test_rows if r["target"] in ("coffee", "rocket")]
    subset = write_csv(folder / "coffee-and-rocket.csv", subset_rows)

    model = mmzoo.create_model(str(run / "model"))
    full = mmzoo.create_dataset("manifest", split="test", path=str(manifest))
    part = mmzoo.create_dataset("manifest", path=str(subset))
    full_predictions = {e["id"]: p.label for e, p in zip(full, model.predict(list(full)))}
    part_predictions = {e["id"]: p.label for e, p in zip(part, model.predict(list(part)))}
    assert part_predictions == {row["id"]: full_predictions[row["id"]] for row in subset_rows}

    full_metrics = eval_json(capsys, str(run))  # the run's evaluation data: the test split
    assert full_metrics["num_examples"] == len(test_rows)
    assert full_metrics["metrics"]["accuracy"] > 0.5  # learned: the bug below would show
    part_metrics = eval_json(capsys, str(run), "--data", "manifest", "--param", f"path={subset}", "--split", "train")
    expected = sum(part_predictions[r["id"]] == r["target"] for r in subset_rows) / len(subset_rows)
    assert part_metrics["num_examples"] == len(subset_rows)
    assert part_metrics["metrics"]["accuracy"] == pytest.approx(expected)
    assert expected == pytest.approx(
        sum(full_predictions[r["id"]] == r["target"] for r in subset_rows) / len(subset_rows))
    # a checkpoint keeps the class names too, so evaluating it maps by name as well
    checkpoint = RunDir(run).latest_checkpoint()
    assert json.loads((checkpoint / "checkpoint.json").read_text())["labels"] == sorted(PHOTOS)
    from_checkpoint = eval_json(capsys, str(checkpoint), "--data", "manifest", "--param", f"path={subset}",
                                "--split", "train")
    assert from_checkpoint["metrics"]["accuracy"] == pytest.approx(expected)


def test_a_label_the_model_does_not_know_is_an_error_naming_it(photo_run, capsys):
    folder, manifest, run = photo_run
    rows = [{"image": r["image"], "target": "dog" if i == 0 else r["target"]}
            for i, r in enumerate(read_rows(manifest)[:3])]
    path = write_csv(folder / "dog.csv", rows)
    assert main(["eval", str(run), "--data", "manifest", "--param", f"path={path}", "--split", "train"]) == 2
    err = capsys.readouterr().err
    assert "label(s) 'dog' that the model does not know" in err
    assert "'astronaut', 'cat', 'coffee', 'rocket'" in err and "Traceback" not in err


def test_training_checks_the_data_before_the_run_dir_exists(tmp_path):
    manifest = write_photo_manifest(tmp_path)
    too_few = photo_run_config(manifest, tmp_path / "few")
    too_few["model"] = {**too_few["model"], "head": {"type": "classification", "num_classes": 3}}
    with pytest.raises(ConfigError, match=r"data.train: the data has 4 classes \('astronaut', 'cat', 'coffee', "
                                          r"'rocket'\) but the model's head has num_classes=3"):
        train(validate_config(too_few))
    assert not (tmp_path / "few").exists()

    renamed = photo_run_config(manifest, tmp_path / "renamed")
    renamed["model"] = {**renamed["model"], "encoders": {"imgae": renamed["model"]["encoders"]["image"]}}
    with pytest.raises(ConfigError, match=r"read 'imgae', which the data does not have .* Did you mean 'image'\?"):
        train(validate_config(renamed))
    assert not (tmp_path / "renamed").exists()

    unlabelled = photo_run_config(manifest, tmp_path / "unlabelled")
    for split in ("train", "eval"):
        unlabelled["data"][split]["params"].update(target=None, columns={"image": "image"})
    with pytest.raises(ConfigError, match="data.train: the examples have no 'target'"):
        train(validate_config(unlabelled))
    assert not (tmp_path / "unlabelled").exists()


def test_one_regressed_value_over_named_classes_trains_without_labels(tmp_path):
    # tabular-image-film-reg regresses sklearn-digits' class index as a number: the class names are not
    # names of its one output, so the model takes no labels and nothing is refused
    config = {
        "model": {"encoders": {"vector": {"type": "mlp", "in_dim": 64, "output_dim": 8}}, "fusion": {"type": "concat"},
                  "head": {"type": "regression", "num_outputs": 1}},
        "data": {"train": {"dataset": "sklearn-digits", "max_examples": 32},
                 "eval": {"dataset": "sklearn-digits", "split": "test", "max_examples": 16}, "batch_size": 16},
        "optim": {"lr": 0.01, "steps": 2}, "output_dir": str(tmp_path / "run"),
    }
    result = train(validate_config(config))
    assert "mse" in result.metrics
    assert mmzoo.create_model(str(tmp_path / "run" / "model")).labels is None


def test_a_column_no_encoder_reads_is_noted_once(tmp_path, capsys):
    manifest = write_photo_manifest(tmp_path)
    config = photo_run_config(manifest, tmp_path / "run", steps=1)
    train(validate_config(config))
    err = capsys.readouterr().err
    assert err.count("no encoder reads") == 1
    assert "note: data.train, data.eval: no encoder reads 'id' (the model reads image); it is ignored" in err


def test_evaluation_matches_the_training_labels_by_name_too(tmp_path):
    # eval data from another file whose own sorted names differ from the training file's
    manifest = write_photo_manifest(tmp_path)
    rows = [{k: v for k, v in r.items() if k != "split"} | {"in": r["split"]} for r in read_rows(manifest)]
    train_file = write_csv(tmp_path / "train.csv", [r for r in rows if r["in"] == "train"])
    eval_rows = [r for r in rows if r["in"] == "test" and r["target"] != "astronaut"]
    eval_file = write_csv(tmp_path / "eval.csv", eval_rows)
    config = photo_run_config(manifest, tmp_path / "run", steps=12)
    config["data"]["train"] = {"dataset": "manifest", "split": "train", "params": {"path": str(train_file)}}
    config["data"]["eval"] = {"dataset": "manifest", "split": "train", "params": {"path": str(eval_file)}}
    result = train(validate_config(config))
    model = mmzoo.create_model(str(tmp_path / "run" / "model"))
    eval_set = mmzoo.create_dataset("manifest", path=str(eval_file))
    examples = [eval_set[i] for i in range(len(eval_set))]
    names = eval_set.labels
    correct = [p.label == names[e["target"]] for p, e in zip(model.predict(examples), examples)]
    assert result.metrics["accuracy"] == pytest.approx(sum(correct) / len(correct))


def test_dataset_labels_of_every_builtin_dataset():
    from tests.data.support import SMALL_BANK

    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    assert mmzoo.create_dataset("av-digits", split="test", limit=2, **SMALL_BANK).labels == words
    assert mmzoo.create_dataset("digit-captions", split="test", limit=2).labels == words
    assert mmzoo.create_dataset("sklearn-digits", split="test", limit=2).labels == tuple("0123456789")


def test_an_unknown_label_in_align_targets_is_a_dataset_error():
    from mmzoo.data.labels import align_targets

    class Data:
        labels = ("b", "zebra")

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return {"target": 1}

    with pytest.raises(DatasetError, match=r"label\(s\) 'zebra' that the model does not know; the model's labels "
                                           r"are 'a', 'b', 'c'"):
        align_targets(Data(), ("a", "b", "c"), "data.eval")

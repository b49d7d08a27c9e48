"""The model card: metadata, composition, labels and metrics, all from the model's config.json."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from huggingface_hub import ModelCard

from mmzoo.modelcard import base_models, build_model_card
from mmzoo.saved import read_model_dir
from mmzoo.spec import Spec
from tests.hub.support import SPEC


def saved(tmp_path: Path, spec: dict = SPEC, **extra) -> object:
    """A model directory's config.json (no weights needed for a card), read back as mmzoo reads it."""
    directory = tmp_path / "model"
    directory.mkdir(exist_ok=True)
    config = {"format": "mmzoo", "mmzoo_version": "0.1.0", "name": "demo", "spec": spec,
              "requires": {"mmzoo": "0.1.0", "mmzoo-transformers": "0.2.0"}, **extra}
    (directory / "config.json").write_text(json.dumps(config))
    return read_model_dir(directory)


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


def test_base_models_come_from_pretrained_encoders(tmp_path: Path):
    spec = {"encoders": {"text": {"type": "hf/sentence-transformers/all-MiniLM-L6-v2"},
                         "audio": {"type": "hf/facebook/wav2vec2-base", "pretrained": False},
                         "image": {"type": "mmzoo-timm:timm/resnet18", "pretrained": True},
                         "tab": {"type": "mlp", "in_dim": 3}},
            "fusion": {"type": "concat"}, "head": {"type": "regression", "num_outputs": 1}}
    assert base_models(Spec.from_dict(spec)) == ["sentence-transformers/all-MiniLM-L6-v2", "timm/resnet18"]
    meta = front_matter(build_model_card(saved(tmp_path, spec), repo_id="org/x"))
    assert meta["base_model"] == ["sentence-transformers/all-MiniLM-L6-v2", "timm/resnet18"]


def test_card_without_metrics_has_none_and_with_them_shows_config_json_metrics(tmp_path: Path):
    plain = build_model_card(saved(tmp_path), repo_id="org/demo", license="mit")
    meta = front_matter(plain)
    assert meta["library_name"] == "mmzoo" and meta["license"] == "mit"
    assert "datasets" not in meta and "model-index" not in meta and "## Evaluation" not in plain
    assert "## Classes" not in plain
    assert "pip install 'mmzoo==0.1.0' 'mmzoo-transformers==0.2.0'" in plain
    assert "| encoders.text | `byte-gru` | embed_dim=8, hidden_dim=12, output_dim=16, max_length=32 |" in plain
    trained = saved(tmp_path, metrics={"accuracy": 0.875}, datasets=["toy"], labels=["cat", "dog", "bird"],
                    training={"steps": 40, "eval_dataset": "toy", "eval_split": "test"})
    card = build_model_card(trained, repo_id="org/demo", curves=True)
    parsed = ModelCard(card).data
    assert parsed.eval_results is None and parsed.datasets is None  # 'toy' is no Hub dataset
    assert "| accuracy | 0.875 |" in card and "at step 40" in card and "![training curves](curves.png)" in card
    assert "optimizer steps: 40" in card
    assert "3 classes, by output index" in card and "`cat`, `dog`, `bird`" in card
    metrics_only = build_model_card(saved(tmp_path, metrics={"mae": 0.5}), repo_id="org/demo")
    assert "model-index" not in front_matter(metrics_only) and "| mae | 0.5 |" in metrics_only
    assert "training curves" not in metrics_only


def test_card_ignores_metrics_jsonl_of_the_directory(tmp_path: Path):
    """The card says what config.json says; a stray metrics.jsonl beside it changes nothing."""
    model = saved(tmp_path, metrics={"accuracy": 0.5})
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 9, "split": "eval", "eval_accuracy": 0.99}) + "\n")
    (model.directory / "metrics.jsonl").write_text(json.dumps({"step": 9, "split": "eval", "eval_f1": 0.1}) + "\n")
    card = build_model_card(model, repo_id="org/demo")
    assert "| accuracy | 0.5 |" in card and "0.99" not in card and "f1" not in card


def test_card_tags_family_members_with_the_modality_their_plugin_resolves(tmp_path: Path):
    """An hf/ encoder built from a config is tagged text (or audio), never with the family's 'text|audio'."""
    spec = {"encoders": {"caption": {"type": "hf/tiny", "config": {"model_type": "bert"}, "pretrained": False},
                         "speech": {"type": "hf/tiny-audio", "modality": "audio"}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}}
    meta = front_matter(build_model_card(saved(tmp_path, spec), repo_id="org/x"))
    assert "text" in meta["tags"] and "audio" in meta["tags"]
    assert not any("|" in tag for tag in meta["tags"])


def test_hub_task_ids_are_chosen_only_where_one_fits():
    from mmzoo.hub.tasks import hub_task

    cases = {
        ("classification", ("image",)): "image-classification",
        ("mmzoo:classification", ("image", "image")): "image-classification",  # two views of one modality
        ("multilabel", ("text",)): "text-classification",
        ("classification", ("audio",)): "audio-classification",
        ("classification", ("vector",)): "tabular-classification",
        ("regression", ("vector",)): "tabular-regression",
        ("contrastive", ("image", "text")): "zero-shot-image-classification",
        ("contrastive", ("text",)): "sentence-similarity",
        ("contrastive", ("audio", "text")): "feature-extraction",
        ("classification", ("image", "text")): None,  # the Hub has no image+text classification task
        ("classification", ("image", "audio")): None,
        ("regression", ("image",)): None,
        ("my-plugin:ranker", ("text",)): None,
    }
    for (head, modalities), expected in cases.items():
        task = hub_task(head, modalities)
        assert task.pipeline_tag == expected, (head, modalities)
        assert task.results_type == (expected or "other")


def test_card_metadata_uses_hub_tasks_and_names_only_hub_datasets(tmp_path: Path):
    image_only = {"encoders": {"image": {"type": "cnn", "in_channels": 1}}, "fusion": {"type": "concat"},
                  "head": {"type": "classification", "num_classes": 10}}
    card = build_model_card(saved(tmp_path, image_only, metrics={"accuracy": 0.9}, datasets=["av-digits"],
                                  training={"eval_dataset": "av-digits", "eval_split": "test"}), repo_id="org/x")
    meta = front_matter(card)
    assert meta["pipeline_tag"] == "image-classification"
    assert "datasets" not in meta and "model-index" not in meta and meta["metrics"] == ["accuracy"]
    assert "`av-digits` (mmzoo datasets" in card and "| accuracy | 0.9 |" in card

    on_hub = saved(tmp_path, image_only, metrics={"accuracy": 0.9}, datasets=["ylecun/mnist"],
                   training={"eval_dataset": "ylecun/mnist", "eval_split": "test"})
    meta = front_matter(build_model_card(on_hub, repo_id="org/x"))
    assert meta["datasets"] == ["ylecun/mnist"]
    result = ModelCard(build_model_card(on_hub, repo_id="org/x")).data.eval_results[0]
    assert (result.task_type, result.dataset_type, result.dataset_split) == ("image-classification",
                                                                              "ylecun/mnist", "test")
    assert (result.metric_type, result.metric_value, result.source_name) == ("accuracy", 0.9, "mmzoo")
    clip = {"encoders": {"image": {"type": "cnn"}, "text": {"type": "byte-gru"}}, "fusion": {"type": "project"},
            "head": {"type": "contrastive"}}
    assert front_matter(build_model_card(saved(tmp_path, clip), repo_id="org/x"))["pipeline_tag"] == \
        "zero-shot-image-classification"
    assert "pipeline_tag" not in front_matter(build_model_card(saved(tmp_path), repo_id="org/x"))  # text + vector

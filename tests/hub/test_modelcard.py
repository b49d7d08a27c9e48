"""The model card: metadata, composition, metrics and curves from a run directory."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from huggingface_hub import ModelCard

from mmzoo.modelcard import RunSummary, base_models, build_model_card, read_run

from .conftest import SPEC


def config(spec: dict = SPEC) -> dict:
    return {"format": "mmzoo", "mmzoo_version": "0.1.0", "name": "demo", "spec": spec,
            "requires": {"mmzoo": "0.1.0", "mmzoo-transformers": "0.2.0"}}


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


def test_read_run_picks_the_last_evaluation_and_skips_torn_lines(tmp_path: Path):
    lines = [{"step": 1, "loss": 2.0, "lr": 0.1}, {"step": 5, "split": "eval", "eval_loss": 1.5, "eval_f1": 0.4},
             {"step": 10, "split": "eval", "eval_loss": 1.0, "eval_f1": 0.6, "elapsed_s": 3.0},
             {"step": 12, "loss": 0.9}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 13, "lo')
    (tmp_path / "config.yaml").write_text("data:\n  train: digits\n  eval: {dataset: digits-eval, split: val}\n")
    run = read_run(tmp_path)
    assert run.metrics == {"loss": 1.0, "f1": 0.6} and run.metrics_step == 10
    assert run.datasets == ["digits", "digits-eval"] and run.eval_split == "val"
    assert run.steps == 12 and run.curves is None
    assert read_run(None) == RunSummary() and read_run(tmp_path / "missing") == RunSummary()


def test_base_models_come_from_pretrained_encoders():
    spec = {"encoders": {"text": {"type": "hf/sentence-transformers/all-MiniLM-L6-v2"},
                         "audio": {"type": "hf/facebook/wav2vec2-base", "pretrained": False},
                         "image": {"type": "mmzoo-timm:timm/resnet18", "pretrained": True},
                         "tab": {"type": "mlp", "in_dim": 3}},
            "fusion": {"type": "concat"}, "head": {"type": "regression", "num_outputs": 1}}
    assert base_models(spec) == ["sentence-transformers/all-MiniLM-L6-v2", "timm/resnet18"]
    meta = front_matter(build_model_card(config(spec), repo_id="org/x"))
    assert meta["base_model"] == ["sentence-transformers/all-MiniLM-L6-v2", "timm/resnet18"]


def test_card_without_a_run_has_no_metrics_and_with_one_has_them():
    plain = build_model_card(config(), repo_id="org/demo", license="mit")
    meta = front_matter(plain)
    assert meta["library_name"] == "mmzoo" and meta["license"] == "mit"
    assert "datasets" not in meta and "model-index" not in meta and "## Evaluation" not in plain
    assert "pip install 'mmzoo==0.1.0' 'mmzoo-transformers==0.2.0'" in plain
    assert "| encoders.text | `byte-gru` | embed_dim=8, hidden_dim=12, output_dim=16, max_length=32 |" in plain
    run = RunSummary(metrics={"accuracy": 0.875}, metrics_step=40, datasets=["toy"], eval_split="test",
                     steps=40, curves=Path("curves.png"))
    card = build_model_card(config(), repo_id="org/demo", run=run)
    parsed = ModelCard(card).data
    assert parsed.eval_results[0].metric_value == 0.875 and parsed.eval_results[0].dataset_name == "toy"
    assert "| accuracy | 0.875 |" in card and "![training curves](curves.png)" in card
    assert "optimizer steps: 40" in card
    metrics_only = build_model_card(config(), repo_id="org/demo", run=RunSummary(metrics={"mae": 0.5}))
    assert "model-index" not in front_matter(metrics_only) and "| mae | 0.5 |" in metrics_only

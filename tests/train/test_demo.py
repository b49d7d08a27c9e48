"""The demo end to end at a tiny budget: four runs, the comparison and robustness tables, an explained
example, a fused run ready to push."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.train.helpers import REPO, cli_env


@pytest.mark.slow
def test_demo_trains_compares_and_leaves_a_pushable_run(toy_site, tmp_path):
    out = tmp_path / "demo"
    args = [
        sys.executable,
        "-m",
        "mmzoo.train.demo",
        "--out",
        str(out),
        "--steps",
        "4",
        "--limit",
        "24",
        "--batch-size",
        "8",
        "--workers",
        "0",
    ]
    result = subprocess.run(
        args, capture_output=True, text=True, env=cli_env(toy_site), cwd=REPO, timeout=600
    )
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    rows = results["runs"]
    assert [r["run"] for r in rows] == ["image-only", "audio-only", "fused", "fused-dropout"]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["examples"] == 24 for r in rows)
    assert rows[3]["modality_dropout"] == {"image": 0.5, "audio": 0.4} and rows[2]["modality_dropout"] == {}
    assert "| fused: effnet-melcnn-attention-cls | yes | yes |" in result.stdout
    for row in rows[2:]:  # the fused models, evaluated with each input missing
        assert set(row["robustness"]) == {"all inputs", "image missing", "audio missing"}
        assert all(0.0 <= v <= 1.0 for v in row["robustness"].values())
    assert "| image only: EfficientNet-Lite0 (ImageNet, frozen) | 0." in result.stdout  # robustness table
    assert len(results["targets"]) == 3 and all(isinstance(t["met"], bool) for t in results["targets"])
    explained = results["explained"]
    assert abs(sum(explained["shapley"].values()) - (explained["score"] - explained["baseline"])) < 1e-5
    for name in ("example-0-shapley.png", "example-0-image-heatmap.png", "explanation.json"):
        assert (out / "fused-dropout" / "explain" / name).is_file(), name
    assert f"mmzoo push {out / 'fused'}" in result.stdout
    fused = out / "fused"
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "curves.png",
        "model/config.json",
        "model/model.safetensors",
    ):
        assert (fused / name).is_file(), name
    saved = json.loads((fused / "model" / "config.json").read_text())
    assert saved["name"] == "effnet-melcnn-attention-cls" and saved["datasets"] == ["av-digits"]
    assert saved["spec"]["encoders"]["image"]["img_size"] == 64
    assert saved["metrics"]["accuracy"] == pytest.approx(rows[2]["accuracy"])

    again = subprocess.run(args, capture_output=True, text=True, env=cli_env(toy_site), cwd=REPO, timeout=600)
    assert again.returncode == 0, again.stderr  # finished runs are reused, not refused or retrained
    assert json.loads((out / "results.json").read_text())["runs"][2]["accuracy"] == rows[2]["accuracy"]

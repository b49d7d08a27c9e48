"""The demo end to end at a tiny budget: three runs, a comparison table, a fused run ready to push."""

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
    rows = json.loads((out / "results.json").read_text())
    assert [r["run"] for r in rows] == ["image-only", "audio-only", "fused"]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["examples"] == 24 for r in rows)
    assert "| fused: effnet-melcnn-attention-cls | yes | yes |" in result.stdout
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
    assert json.loads((out / "results.json").read_text())[2]["accuracy"] == rows[2]["accuracy"]

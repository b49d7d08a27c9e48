"""#15 point 5: weights stored in another dtype than the model's.

Loading assigns the file's tensors to the model, so an fp16 file used to make an fp16 model (and a file
mixing dtypes a model that fails at forward); an integer tensor for a float parameter raised a raw
RuntimeError. Float tensors are now cast to the model's dtype, with a line in the load report; anything
else is a WeightsError naming the tensor.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

import mmzoo
from mmzoo.errors import WeightsError

SPEC = {"encoders": {"text": {"type": "byte-gru", "embed_dim": 8, "hidden_dim": 12, "output_dim": 16},
                     "x": {"type": "mlp", "in_dim": 4, "hidden_dims": [8], "output_dim": 16}},
        "fusion": {"type": "gated", "dim": 16}, "head": {"type": "classification", "num_classes": 3}}
EXAMPLES = [{"text": "a cat on a mat", "x": [0.1, 0.2, 0.3, 0.4]}, {"text": "rain", "x": [1.0, -0.5, 0.0, 2.0]}]


def saved(tmp_path, convert):
    """A saved model whose weights file had ``convert(name, tensor)`` applied to every tensor."""
    torch.manual_seed(0)
    model = mmzoo.create_model(SPEC).eval()
    model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    tensors = load_file(str(weights))
    save_file({name: convert(name, t) for name, t in tensors.items()}, str(weights), metadata={"format": "pt"})
    return model, tmp_path / "m", tensors


def outputs(model):
    with torch.no_grad():
        return model(model.preprocess(EXAMPLES)).outputs


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_float_weights_of_another_dtype_are_cast_to_the_models_and_reported(tmp_path, dtype):
    model, directory, tensors = saved(tmp_path, lambda name, t: t.to(dtype))
    loaded = mmzoo.create_model(directory).eval()
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    report = loaded.load_report
    name = str(dtype).removeprefix("torch.")
    assert report.cast == {k: f"{name} -> float32" for k in tensors}
    assert f"cast {len(tensors)} tensors {name} -> float32 (the model's dtype): " in str(report)
    tolerance = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float64: 0}[dtype]
    torch.testing.assert_close(outputs(loaded), outputs(model), atol=tolerance, rtol=tolerance)


def test_a_file_mixing_float_dtypes_gives_a_model_that_runs(tmp_path):
    model, directory, tensors = saved(tmp_path, lambda name, t: t.bfloat16() if name.startswith("encoders.x") else t)
    loaded = mmzoo.create_model(directory).eval()
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    assert set(loaded.load_report.cast) == {k for k in tensors if k.startswith("encoders.x")}
    torch.testing.assert_close(outputs(loaded), outputs(model), atol=5e-2, rtol=5e-2)


def test_a_file_in_the_models_dtype_reports_no_cast(tmp_path):
    _, directory, _ = saved(tmp_path, lambda name, t: t)
    loaded = mmzoo.create_model(directory)
    assert loaded.load_report.cast == {} and "cast" not in str(loaded.load_report)


@pytest.mark.parametrize("dtype, kind", [(torch.int64, "int64"), (torch.int8, "int8"), (torch.bool, "bool")])
def test_non_float_tensors_for_float_parameters_are_a_weights_error_naming_the_tensor(tmp_path, dtype, kind):
    bad = "head.net.1.weight"
    saved(tmp_path, lambda name, t: (t > 0).to(dtype) if name == bad else t)
    directory = tmp_path / "m"
    with pytest.raises(WeightsError) as err:
        mmzoo.create_model(directory)
    assert f"model.safetensors: tensor '{bad}' is {kind} in the file, but the model's is float32" in str(err.value)
    assert "floating-point values there" in str(err.value)

"""create_model(..., device="meta"): every builtin part and every registry model builds as a skeleton
(shapes and dtypes, no storage), which a sharding strategy materialises later."""

from __future__ import annotations

import pytest
import torch

import mmzoo
from mmzoo.builder import build_model
from mmzoo.errors import MmzooError
from mmzoo.plugins import get_registry, reset
from mmzoo.weights import skip_init
from tests.parts.test_composition import CASES, examples, spec_for


def _zoo_names():
    reset()
    names = mmzoo.list_models()
    reset()
    return names


def _tensors(model):
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def _layout(model):
    return {name: (tuple(t.shape), t.dtype) for name, t in _tensors(model).items()}


def _spec(fusion, head):
    spec = spec_for(fusion, head)
    if head == "contrastive":
        spec["encoders"] = {k: spec["encoders"][k] for k in ("image", "text")}
    return spec


@pytest.mark.parametrize(("fusion", "head"), CASES, ids=[f"{f['type']}-{h}" for f, h in CASES])
def test_every_builtin_part_builds_on_meta_and_materialises_to_the_same_model(fusion, head):
    """Every builtin encoder, fusion and head (mel-cnn's filterbank included) builds on meta with the
    layout of a normal build; materialised with to_empty and the normal build's values (state dict, and
    the derived buffers a state dict leaves out), it computes what the normal build computes."""
    spec = _spec(fusion, head)
    torch.manual_seed(0)
    reference = mmzoo.create_model(spec).eval()
    skeleton = mmzoo.create_model(spec, device="meta")
    assert all(t.is_meta for t in _tensors(skeleton).values())
    assert _layout(skeleton) == _layout(reference)

    model = skeleton.to_empty(device="cpu").eval()
    model.load_state_dict(reference.state_dict())
    buffers = dict(reference.named_buffers())
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            buffer.copy_(buffers[name])
        batch = reference.preprocess(examples(list(spec["encoders"]), head))
        assert torch.equal(model(batch).outputs, reference(batch).outputs)


@pytest.mark.parametrize("name", _zoo_names())
def test_every_registry_model_builds_on_meta(name):
    """Both first-party plugins' parts included: nothing is allocated, nothing fetched, and the layout is
    the one weights are loaded into."""
    model = mmzoo.create_model(name, device="meta")
    assert model.name == name
    assert all(t.is_meta for t in _tensors(model).values())
    entry, _ = get_registry().model(name)
    with skip_init():
        loadable = build_model(entry.spec, name=name, where=f"models.{name}", for_weights=True)
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in loadable.state_dict().items()
    }


def test_a_saved_model_on_meta_keeps_its_labels_and_reads_no_weights(tmp_path):
    spec = _spec({"type": "concat"}, "classification")
    saved = mmzoo.create_model(spec)
    saved.labels = ["a", "b", "c"]
    saved.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not read on meta")
    skeleton = mmzoo.create_model(str(tmp_path / "m"), device="meta")
    assert skeleton.labels == ("a", "b", "c") and skeleton.load_report is None
    assert all(t.is_meta for t in skeleton.state_dict().values())


def test_another_device_is_where_the_model_ends_up_and_a_bad_one_is_refused(tmp_path):
    spec = _spec({"type": "concat"}, "classification")
    mmzoo.create_model(spec).save_pretrained(tmp_path / "m")
    loaded = mmzoo.create_model(str(tmp_path / "m"), device=torch.device("cpu"))
    assert loaded.load_report is not None and {p.device.type for p in loaded.parameters()} == {"cpu"}
    with pytest.raises(MmzooError, match="create_model: device 'gpu0' is not a torch device; give e.g. 'cpu'"):
        mmzoo.create_model(spec, device="gpu0")


def test_a_part_that_reads_a_tensor_while_built_is_named_with_what_meta_forbids(monkeypatch):
    from mmzoo.errors import BuildError
    from mmzoo.parts.fusions import ConcatFusion

    init = ConcatFusion.__init__

    def reads_a_value(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.scale = float(torch.ones(()).item())

    monkeypatch.setattr(ConcatFusion, "__init__", reads_a_value)
    spec = _spec({"type": "concat"}, "classification")
    assert mmzoo.create_model(spec).fusion.scale == 1.0
    with pytest.raises(BuildError, match=r"fusion \(concat\): cannot build it: .* \(building on the meta device, "
                                         r"where tensors have shapes but no values: a part must not read"):
        mmzoo.create_model(spec, device="meta")

"""activation_checkpointing: the named parts keep only their inputs for backward and recompute the rest;
the gradients, and so training, stay exactly the same (any strategy; one process here)."""

from __future__ import annotations

import pytest
import torch

import mmzoo
from mmzoo.errors import ConfigError
from mmzoo.train.config import validate_config
from mmzoo.train.selection import apply_activation_checkpointing
from mmzoo.train.trainer import train
from tests.train.helpers import TINY_SPEC, load_tensors, max_abs_diff, toy_config

SPEC = {**TINY_SPEC, "encoders": {**TINY_SPEC["encoders"], "img": {**TINY_SPEC["encoders"]["img"],
                                                                 "channels": [8, 8]}}}


def saved_bytes_and_grads(names):
    """Bytes autograd keeps for backward during one forward, and the gradients of one backward."""
    torch.manual_seed(0)
    model = mmzoo.create_model(SPEC)
    apply_activation_checkpointing(model, names)
    dataset = mmzoo.create_dataset("toy-blobs", size=16)
    batch = model.preprocess([dataset[i] for i in range(16)])
    kept = []

    def pack(tensor):
        kept.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(batch).loss
    loss.backward()
    return sum(kept), {name: p.grad.clone() for name, p in model.named_parameters()}


def test_checkpointed_parts_keep_less_for_backward_and_give_the_same_gradients(toys):
    plain, expected = saved_bytes_and_grads([])
    whole, grads = saved_bytes_and_grads(["encoders.img"])
    assert whole < plain
    assert max_abs_diff(expected, grads) == 0.0
    per_block, grads = saved_bytes_and_grads(["encoders.img.blocks.*"])  # each block on its own
    assert whole < per_block < plain and max_abs_diff(expected, grads) == 0.0


def test_a_run_with_activation_checkpointing_ends_where_one_without_does(toys, tmp_path):
    train(validate_config(toy_config(tmp_path / "plain", model=SPEC, optim__steps=3)))
    train(validate_config(toy_config(tmp_path / "ac", model=SPEC, optim__steps=3,
                                     activation_checkpointing=["encoders.img", "fusion"])))
    a = load_tensors(tmp_path / "plain" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "ac" / "model" / "model.safetensors")
    assert max_abs_diff(a, b) == 0.0


def test_a_name_that_is_no_part_is_located(toys, tmp_path):
    with pytest.raises(ConfigError, match=r"activation_checkpointing\[1\]: 'encoders.imgg' is not a part of this "
                                          "model. Did you mean 'encoders.img'"):
        train(validate_config(toy_config(tmp_path / "bad", activation_checkpointing=["fusion", "encoders.imgg"])))

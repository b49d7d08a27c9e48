"""The conformance checks of the feature cache's contract pieces: an encoder's ``output_cacheable``
statement and a dataset's ``fingerprint()``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmzoo.testing import check_dataset_fingerprint, check_encoder


class Projection(nn.Module):
    """A vector encoder: linear projection, optional dropout and centring over the batch."""

    modality = "vector"

    def __init__(self, in_dim=6, output_dim=4, dropout=0.0, center=False, cacheable=None):
        super().__init__()
        self.in_dim, self.output_dim = in_dim, output_dim
        self.net = nn.Linear(in_dim, output_dim)
        self.dropout = nn.Dropout(dropout)
        self.center = center
        self.output_cacheable = cacheable

    def preprocess(self, examples):
        return torch.from_numpy(np.stack([np.asarray(e, np.float32) for e in examples]))

    def forward(self, x):
        out = self.dropout(self.net(x))
        return out - out.mean(dim=0, keepdim=True) if self.center else out


def test_a_true_statement_passes_and_false_or_none_need_nothing():
    check_encoder(Projection, {"cacheable": True})
    check_encoder(Projection, {"cacheable": False, "dropout": 0.5}, batch_independent=False)
    check_encoder(Projection, {"dropout": 0.5}, batch_independent=False)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cacheable": True, "dropout": 0.5}, "declares output_cacheable = True, but with its parameters frozen and "
                                              "in training mode its forward draws random numbers"),
        ({"cacheable": True, "center": True}, "depends on the other examples of its batch"),
        ({"cacheable": "yes"}, "output_cacheable must be True, False or None, got 'yes'"),
    ],
)
def test_a_false_statement_is_caught(params, message):
    with pytest.raises(AssertionError, match=message):
        check_encoder(Projection, params, batch_independent=False)


def test_the_first_party_encoders_built_frozen_state_it_truly():
    check_encoder("efficientnet-lite0", {"freeze": True, "img_size": 32, "pretrained": False})
    check_encoder("minilm", {"freeze": True}, atol=1e-4)


def test_builtin_dataset_fingerprints_follow_their_content():
    assert check_dataset_fingerprint("sklearn-digits", variants=[{"seed": 1}, {"limit": 100}, {"views": ["image"]}])
    assert check_dataset_fingerprint("digit-captions", {"limit": 40},
                                     variants=[{"detail": "class"}, {"seed": 3}, {"limit": 41}])
    assert check_dataset_fingerprint("av-digits", {"limit": 20},
                                     variants=[{"image_noise": 0.3}, {"snr_db": [-5, 5]}, {"duration": 0.5}])
    assert check_dataset_fingerprint("sklearn-digits", split="test") != check_dataset_fingerprint("sklearn-digits")


class Numbers:
    """A dataset whose fingerprint forgets its ``offset`` parameter."""

    def __init__(self, split="train", offset=0):
        self.offset = offset

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return {"vector": np.full(3, index + self.offset, np.float32), "target": index}

    def fingerprint(self):
        return "numbers"


def test_a_fingerprint_that_misses_a_change_is_caught():
    assert check_dataset_fingerprint(Numbers) == "numbers"
    with pytest.raises(AssertionError, match=r"parameters \{'offset': 1\} change the examples but not the fingerprint"):
        check_dataset_fingerprint(Numbers, variants=[{"offset": 1}])


def test_a_dataset_mapped_onto_a_models_labels_keeps_a_cheap_fingerprint_that_follows_the_mapping():
    from torch.utils.data import Subset

    from mmzoo.data.labels import align_targets
    from mmzoo.feature_cache.fingerprint import declared_fingerprint

    data = Numbers()
    data.labels = ("b", "a")
    onto_abc = align_targets(data, ("a", "b", "c"))
    onto_bca = align_targets(data, ("b", "c", "a"))
    assert declared_fingerprint(onto_abc) == declared_fingerprint(align_targets(data, ("a", "b", "c")))
    assert declared_fingerprint(onto_abc) not in (declared_fingerprint(onto_bca), "numbers", None)
    assert declared_fingerprint(Subset(onto_abc, [0, 1])) != declared_fingerprint(onto_abc)
    assert declared_fingerprint(align_targets(Subset(data, [0, 1]), ("a", "b", "c"))) is not None


def test_a_fingerprint_method_that_returns_no_string_is_refused():
    from mmzoo.feature_cache.fingerprint import Unfingerprintable, declared_fingerprint

    for value in (None, "", 7):
        data = Numbers()
        data.fingerprint = lambda value=value: value
        with pytest.raises(Unfingerprintable, match=r"fingerprint\(\) returned .*; it must return a non-empty string"):
            declared_fingerprint(data)

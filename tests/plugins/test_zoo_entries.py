"""The registry's models built from the first-party plugins, run on real photos, text and speech."""

from __future__ import annotations

import pytest
import torch

import mmzoo
from tests.plugins.support import photo

pytest.importorskip("timm")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

ENTRIES = ["effnet-minilm-gated-cls", "effnet-minilm-clip", "effnet-minilm-xattn-cls",
           "effnet-melcnn-attention-cls", "effnet-wav2vec2-sum-cls", "vit-minilm-xattn-tags"]
CAPTIONS = {"chelsea": "a tabby cat looking up", "coffee": "a cup of coffee on a saucer",
            "astronaut": "an astronaut in front of a flag"}


@pytest.fixture(scope="module")
def speech() -> dict[str, dict]:
    pytest.importorskip("espeakng_loader")
    from mmzoo.data.speech import get_synthesizer

    synth = get_synthesizer()
    return {name: {"array": synth.speak(text), "sampling_rate": synth.sample_rate}
            for name, text in CAPTIONS.items()}


def _examples(model, speech) -> list[dict]:
    keys = set(model.encoders)
    examples = []
    for i, name in enumerate(CAPTIONS):
        example = {"image": photo(name), "text": CAPTIONS[name], "audio": speech[name]}
        example = {k: v for k, v in example.items() if k in keys}
        if model.head.requires_target is not False:
            num_labels = getattr(model.head, "num_labels", None)
            example["target"] = [float(j == i) for j in range(num_labels)] if num_labels else i
        examples.append(example)
    return examples


def test_every_plugin_entry_is_registered():
    assert set(ENTRIES) <= set(mmzoo.list_models())


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_builds_and_trains_a_step_on_real_data(name, speech):
    model = mmzoo.create_model(name)
    batch = model.preprocess(_examples(model, speech))
    out = model(batch)
    assert out.loss is not None and torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.fusion.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_an_entry_carries_the_real_pretrained_encoders(speech):
    from mmzoo_timm.efficientnet_lite0 import build_efficientnet_lite0
    from mmzoo_transformers.minilm import build_minilm

    model = mmzoo.create_model("effnet-minilm-clip").eval()
    examples = _examples(model, speech)
    with torch.no_grad():
        features = model(model.preprocess(examples)).features
        image = build_efficientnet_lite0().eval()
        text = build_minilm().eval()
        expected_image = image(image.preprocess([e["image"] for e in examples])).pooled
        expected_text = text(text.preprocess([e["text"] for e in examples])).pooled
    torch.testing.assert_close(features["image"].pooled, expected_image)
    torch.testing.assert_close(features["text"].pooled, expected_text)
    sim = expected_text @ expected_text.T
    assert sim[0, 1] < 0.5 and torch.allclose(torch.diagonal(sim), torch.ones(3), atol=1e-5)

"""model.embed of one modality and zero-shot classification, on a CLIP-style model briefly trained on
digit-captions (real MNIST digits and captions), and the errors of a model that is not contrastive."""

from __future__ import annotations

import pytest
import torch

import mmzoo
from mmzoo.data.mnist import DIGIT_WORDS
from mmzoo.errors import MmzooError
from mmzoo.inference.results import EmbeddingPrediction
from tests.hub.support import EXAMPLES, tiny_model

CLIP_SPEC = {
    "encoders": {
        "image": {"type": "cnn", "in_channels": 1, "image_size": 28, "channels": [8, 16], "output_dim": 32},
        "text": {"type": "byte-gru", "output_dim": 32, "hidden_dim": 24, "embed_dim": 16, "max_length": 40},
    },
    "fusion": {"type": "project", "dim": 32},
    "head": {"type": "contrastive"},
}


@pytest.fixture(scope="module")
def clip():
    """A contrastive image-text model trained for 100 steps on digit-captions' class captions, and test pairs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = mmzoo.create_model(CLIP_SPEC)
        data = mmzoo.create_dataset("digit-captions", split="train", detail="class")
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        generator = torch.Generator().manual_seed(0)
        for _ in range(100):
            picks = torch.randint(len(data), (48,), generator=generator).tolist()
            loss = model(model.preprocess([{"image": data[i]["image"], "text": data[i]["text"]} for i in picks])).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    test = mmzoo.create_dataset("digit-captions", split="test", detail="class", limit=200)
    return model.eval(), [test[i] for i in range(len(test))]


def test_image_and_text_embeddings_retrieve_the_right_digit_well_above_chance(clip):
    model, pairs = clip
    images = model.embed("image", [p["image"] for p in pairs])
    texts = model.embed("text", [p["text"] for p in pairs])
    assert images.shape == texts.shape == (len(pairs), 32)
    assert torch.allclose(images.norm(dim=1), torch.ones(len(pairs)), atol=1e-5)
    best = (images @ texts.T).argmax(dim=1).tolist()
    same_digit = sum(pairs[j]["target"] == pairs[i]["target"] for i, j in enumerate(best)) / len(pairs)
    assert same_digit > 0.25  # chance: 0.1


def test_embeddings_are_what_the_model_itself_compares(clip):
    model, pairs = clip
    batch = model.preprocess([{"image": p["image"], "text": p["text"]} for p in pairs[:8]])
    with torch.no_grad():
        logits = model(batch).outputs
        scale = model.head.logit_scale()
    images = model.embed("image", [p["image"] for p in pairs[:8]])
    similarities = images @ model.embed("text", [p["text"] for p in pairs[:8]]).T
    assert torch.allclose(scale * similarities, logits, atol=1e-4)
    raw = model.embed("text", pairs[0]["text"], normalize=False)  # one value alone: [1, D]
    assert raw.shape == (1, 32) and not torch.allclose(raw.norm(), torch.tensor(1.0))


def test_zero_shot_classifies_digits_from_label_prompts(clip):
    model, pairs = clip
    results = model.zero_shot([p["image"] for p in pairs], list(DIGIT_WORDS), template="a handwritten {}")
    accuracy = sum(r.label == DIGIT_WORDS[p["target"]] for r, p in zip(results, pairs)) / len(pairs)
    assert accuracy > 0.25  # chance: 0.1
    assert sorted(results[0].labels) == sorted(DIGIT_WORDS) and sum(results[0].scores) == pytest.approx(1.0, abs=1e-5)
    top = model.zero_shot(pairs[0]["image"], ["three", "seven"], template="the digit {}", top_k=1)
    assert top.labels in (("three",), ("seven",))


def test_predict_on_a_contrastive_model_gives_each_modalitys_embedding(clip):
    model, pairs = clip
    both = model.predict(pairs[:3])
    assert all(isinstance(r, EmbeddingPrediction) and set(r.embeddings) == {"image", "text"} for r in both)
    images_only = model.predict([{"image": p["image"]} for p in pairs[:3]])
    expected = model.embed("image", [p["image"] for p in pairs[:3]])
    assert set(images_only[0].embeddings) == {"image"}
    assert torch.allclose(torch.tensor([r.embeddings["image"] for r in images_only]), expected, atol=1e-6)


def test_a_model_that_is_not_contrastive_embeds_with_its_encoder_and_refuses_zero_shot():
    model = tiny_model()
    with torch.no_grad():
        pooled = model.encoders["text"](model.encoders["text"].preprocess(["a cat"])).pooled
    assert torch.allclose(model.embed("text", ["a cat"], normalize=False), pooled, atol=1e-6)
    with pytest.raises(MmzooError, match="zero_shot needs a contrastive model.*this model has ClassificationHead"):
        model.zero_shot([EXAMPLES[0]["text"]], ["a", "b"])
    with pytest.raises(MmzooError, match=r"no encoder for 'txt'; its keys are text, x. Did you mean 'text'"):
        model.embed("txt", ["a"])


def test_zero_shot_mistakes_are_clear(clip):
    model, pairs = clip
    with pytest.raises(MmzooError, match="template must hold one"):
        model.zero_shot(pairs[0]["image"], ["one", "two"], template="a photo")
    with pytest.raises(MmzooError, match="labels must be a list of at least two class names"):
        model.zero_shot(pairs[0]["image"], ["one"])

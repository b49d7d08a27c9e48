"""mmzoo-transformers: a text encoder's tokenizer is read on first use; its errors still come out clearly."""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch

import mmzoo
from mmzoo.errors import HubError
from tests.plugins.support import TINY_BERT

transformers = pytest.importorskip("transformers")
from mmzoo_transformers.factory import TOKENIZER_FILES, build_hf_encoder, minilm_path  # noqa: E402
from mmzoo_transformers.minilm import build_minilm  # noqa: E402

TEXTS = ["a photo of a cat", "two dogs play in the snow"]


@pytest.fixture
def tiny_bert_folder(tmp_path):
    """A tiny BERT saved with save_pretrained, with the MiniLM tokenizer beside it."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(5)
    config = BertConfig(**{k: v for k, v in TINY_BERT.items() if k != "model_type"})
    folder = tmp_path / "tiny-bert"
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    return folder


def _reference(texts, max_length):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    return tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")


def test_minilm_reads_its_tokenizer_on_first_preprocess():
    encoder = build_minilm(pretrained=False)
    assert not encoder.tokenizer.is_loaded
    batch = encoder.preprocess(TEXTS)
    assert encoder.tokenizer.is_loaded
    expected = _reference(TEXTS, 256)
    assert batch.keys() == expected.keys()
    for key in batch:
        assert torch.equal(batch[key], expected[key])


def test_a_build_that_needs_the_vocabulary_reads_the_tokenizer_at_once():
    encoder = build_hf_encoder("scratch", config=TINY_BERT)  # fits its vocabulary to the tokenizer
    assert encoder.tokenizer.is_loaded and encoder.backbone.config.vocab_size == 30522


def test_a_saved_model_loads_without_reading_its_tokenizer_and_gives_the_same_outputs(tiny_bert_folder, tmp_path):
    spec = {"encoders": {"text": {"type": f"hf/{tiny_bert_folder}", "max_length": 16}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 3}}
    model = mmzoo.create_model(spec).eval()
    model.save_pretrained(tmp_path / "saved")
    # the saved config names a local folder: the user names it again (a model directory may not)
    loaded = mmzoo.create_model(tmp_path / "saved", encoders={"text": {"type": f"hf/{tiny_bert_folder}"}}).eval()
    assert loaded.load_report.complete
    assert not loaded.encoders["text"].tokenizer.is_loaded
    examples = [{"text": t} for t in TEXTS]
    with torch.no_grad():
        assert torch.equal(loaded(loaded.preprocess(examples)).outputs, model(model.preprocess(examples)).outputs)
    assert loaded.encoders["text"].tokenizer.is_loaded


def test_an_unread_tokenizer_pickles_and_is_read_where_it_is_used(tiny_bert_folder):
    encoder = build_hf_encoder(str(tiny_bert_folder), max_length=16)
    copy = pickle.loads(pickle.dumps(encoder.tokenizer))
    assert not copy.is_loaded
    assert torch.equal(copy(TEXTS, max_length=16)["input_ids"], _reference(TEXTS, 16)["input_ids"])
    assert not encoder.tokenizer.is_loaded  # the original was not read by its copy


def test_a_folder_without_tokenizer_files_is_refused_at_build(tiny_bert_folder):
    """transformers would build a 5-token tokenizer from the config alone (every word [UNK])."""
    for file in tiny_bert_folder.iterdir():
        if file.name in TOKENIZER_FILES:
            file.unlink()
    with pytest.raises(HubError) as info:
        build_hf_encoder(str(tiny_bert_folder), max_length=16)
    message = str(info.value)
    assert f"the folder {tiny_bert_folder} has no tokenizer file (none of tokenizer.json" in message
    assert "'tokenizer: minilm'" in message
    # choosing a tokenizer makes the same folder usable
    encoder = build_hf_encoder(str(tiny_bert_folder), max_length=16, tokenizer="minilm")
    assert encoder.preprocess(TEXTS)["input_ids"].shape[0] == 2


def test_an_unreadable_tokenizer_fails_clearly_on_first_use_and_every_use_after(tiny_bert_folder, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert_folder, broken)
    for name in TOKENIZER_FILES:
        if (broken / name).is_file():
            (broken / name).write_text('{"truncated": ')
    encoder = build_hf_encoder(str(broken), max_length=16)
    for _ in range(2):
        with pytest.raises(HubError, match=rf"hf/{broken}: local folder {broken} lacks the tokenizer files"):
            encoder.preprocess(TEXTS)
    assert not encoder.tokenizer.is_loaded

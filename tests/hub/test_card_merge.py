"""A second push keeps the card the author edited: only mmzoo's metadata and generated block change."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard

import mmzoo
from mmzoo.errors import HubError
from mmzoo.hub import push_to_hub
from mmzoo.hub.card import merge_metadata, replace_block
from mmzoo.modelcard import BLOCK_BEGIN, BLOCK_END
from mmzoo.testing.hub_server import HubServer
from tests.hub.support import tiny_model, train_steps

pytestmark = pytest.mark.hub


def readme(repo_id: str, revision: str | None = None) -> str:
    return Path(HfApi().hf_hub_download(repo_id, "README.md", revision=revision)).read_text()


def edit_card(repo_id: str, text: str) -> None:
    """Commit ``text`` as the repo's README.md, as its author would (the client warns about a card without
    metadata: that is the point of some tests here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        HfApi().create_commit(repo_id, [CommitOperationAdd("README.md", text.encode())],
                              commit_message="edit the card")


def with_metrics(model, **metrics):
    model.provenance.update(metrics=metrics, datasets=["toy-pairs"])
    return model


def test_second_push_keeps_the_authors_text_and_metadata(hub: HubServer, fresh_python, tmp_path: Path):
    model = with_metrics(train_steps(tiny_model()), accuracy=0.5)
    push_to_hub(model, "org/edited", license="apache-2.0")
    card = readme("org/edited")
    assert card.count(BLOCK_BEGIN) == 1 and card.count(BLOCK_END) == 1
    meta, body = card.split("\n---\n", 1)
    meta = meta.replace("license: apache-2.0", "license: mit\nlanguage: en\nauthor_note: keep me")
    meta = meta.replace("tags:\n", "tags:\n- my-own-tag\n")
    body = body.replace("# tiny" if "# tiny" in body else "# edited", "# My digits model\n\nWritten by me.")
    edited = meta + "\n---\n" + body + "\n## Citation\n\nPlease cite my thesis.\n"
    edit_card("org/edited", edited)

    with_metrics(train_steps(model, steps=2), accuracy=0.875)
    model.save_pretrained(tmp_path / "again")
    proc = fresh_python("-m", "mmzoo", "push", str(tmp_path / "again"), "org/edited", env=hub.env)
    assert "warning" not in proc.stderr
    merged = readme("org/edited")
    assert "Written by me." in merged and "Please cite my thesis." in merged
    assert merged.index("Written by me.") < merged.index(BLOCK_BEGIN) < merged.index("Please cite my thesis.")
    assert "| accuracy | 0.875 |" in merged and "| accuracy | 0.5 |" not in merged
    assert merged.count(BLOCK_BEGIN) == 1 and merged.count(BLOCK_END) == 1
    data = ModelCard(merged).data
    assert data.license == "mit" and data.language == "en" and data.author_note == "keep me"
    assert "my-own-tag" in data.tags and "mmzoo" in data.tags and data.library_name == "mmzoo"

    push_to_hub(model, "org/edited", license="apache-2.0")  # a license given on purpose replaces theirs
    assert ModelCard(readme("org/edited")).data.license == "apache-2.0"

    push_to_hub(model, "org/edited", overwrite_card=True)
    fresh = readme("org/edited")
    assert "Written by me." not in fresh and "author_note" not in fresh and "| accuracy | 0.875 |" in fresh


def test_a_card_without_markers_gets_the_block_appended(hub: HubServer):
    HfApi().create_repo("org/handwritten")
    edit_card("org/handwritten", "# Handwritten\n\nA card written before mmzoo pushed here.\n")
    push_to_hub(with_metrics(train_steps(tiny_model()), accuracy=0.75), "org/handwritten")
    card = readme("org/handwritten")
    assert card.startswith("---\n") and ModelCard(card).data.library_name == "mmzoo"
    assert card.index("A card written before mmzoo pushed here.") < card.index(BLOCK_BEGIN)
    assert "| accuracy | 0.75 |" in card and card.count("# Handwritten") == 1


def test_broken_markers_or_metadata_are_refused_with_a_way_out(hub: HubServer):
    model = train_steps(tiny_model())
    push_to_hub(model, "org/broken")
    edit_card("org/broken", readme("org/broken").replace(BLOCK_END, ""))
    markers = r"has 1 '<!-- mmzoo:begin' and 0 '<!-- mmzoo:end -->' markers.*--overwrite-card"
    with pytest.raises(HubError, match=markers):
        push_to_hub(model, "org/broken")
    # the Hub accepts this (it checks that model-index entries have a name and results), the client cannot
    # read it: a result without a dataset
    edit_card("org/broken", "---\nmodel-index:\n- name: x\n  results:\n  - task: {type: other}\n---\nhello\n")
    unreadable = r"README.md in org/broken: its metadata block cannot be read .*--overwrite-card"
    with pytest.raises(HubError, match=unreadable):
        push_to_hub(model, "org/broken")
    push_to_hub(model, "org/broken", overwrite_card=True)
    assert readme("org/broken").count(BLOCK_BEGIN) == 1


def test_metadata_merge_rules():
    theirs = {"license": "mit", "tags": ["mine", "mmzoo"], "datasets": ["org/pretrain"], "thumbnail": "x.png",
              "pipeline_tag": "text-classification",
              "model-index": [{"name": "m", "results": [
                  {"task": {"type": "other"}, "dataset": {"name": "a", "type": "org/a"},
                   "metrics": [{"type": "f1", "value": 0.1}]},
                  {"task": {"type": "other"}, "dataset": {"name": "b", "type": "org/b"},
                   "metrics": [{"type": "acc", "value": 0.2}], "source": {"name": "mmzoo", "url": "u"}}]}]}
    ours = {"library_name": "mmzoo", "license": "unknown", "tags": ["mmzoo", "image"], "metrics": ["accuracy"],
            "model-index": [{"name": "n", "results": [
                {"task": {"type": "other"}, "dataset": {"name": "c", "type": "org/c"},
                 "metrics": [{"type": "accuracy", "value": 0.9}], "source": {"name": "mmzoo", "url": "u"}}]}]}
    merged = merge_metadata(theirs, ours, license_given=False)
    assert merged["license"] == "mit" and merged["thumbnail"] == "x.png"
    assert merged["tags"] == ["mine", "mmzoo", "image"] and merged["datasets"] == ["org/pretrain"]
    assert merged["pipeline_tag"] == "text-classification"  # mmzoo had none to say: the author's stays
    results = merged["model-index"][0]["results"]
    assert [r["dataset"]["type"] for r in results] == ["org/a", "org/c"]  # mmzoo's old result replaced
    assert merge_metadata({}, ours, license_given=False)["license"] == "unknown"
    assert replace_block("intro", f"{BLOCK_BEGIN}\nnew\n{BLOCK_END}\n", intro="", repo_id="o/r").startswith("intro\n\n")
    body = f"a\n{BLOCK_BEGIN}\nold\n{BLOCK_END}\nb"
    assert replace_block(body, f"{BLOCK_BEGIN}\nnew\n{BLOCK_END}\n", intro="", repo_id="o/r") == \
        f"a\n{BLOCK_BEGIN}\nnew\n{BLOCK_END}\nb"
    edited_marker = body.replace(BLOCK_BEGIN, "<!-- mmzoo:begin (edited by hand) -->")
    assert "old" not in replace_block(edited_marker, f"{BLOCK_BEGIN}\nnew\n{BLOCK_END}", intro="", repo_id="o/r")


def test_pushing_an_untrained_model_warns(hub: HubServer, fresh_python, tmp_path: Path):
    with pytest.warns(UserWarning, match=r"looks untrained \(randomly initialised\)"):
        result = push_to_hub(tiny_model(), "org/untrained")
    assert len(result.warnings) == 1
    tiny_model().save_pretrained(tmp_path / "random")
    proc = fresh_python("-m", "mmzoo", "push", str(tmp_path / "random"), "org/untrained", env=hub.env)
    assert re.search(r"^warning: push: .*random looks untrained", proc.stderr, re.M)
    assert proc.stderr.count("warning:") == 1 and "UserWarning" not in proc.stderr

    loaded = mmzoo.create_model("hf-hub:org/untrained")  # loaded from published weights: not random
    assert loaded.provenance == {} and push_to_hub(loaded, "org/reloaded").warnings == []
    trained = train_steps(tiny_model())  # trained by hand, and recorded as such
    assert push_to_hub(trained, "org/trained").warnings == []

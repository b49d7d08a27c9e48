"""Publishing: the full round trip through fresh processes, the model card, `mmzoo push`, and refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import RepositoryNotFoundError

import mmzoo
from mmzoo.errors import HubError, SpecError, WeightsError
from mmzoo.hub import push_to_hub
from mmzoo.testing.hub_server import HubServer
from tests.hub.support import PREDICT_SCRIPT, TOKEN, point_client_at, predict, tiny_model, train_steps

pytestmark = pytest.mark.hub


def predict_in_fresh_process(fresh_python, env: dict, name: str, out: Path) -> dict:
    fresh_python("-c", PREDICT_SCRIPT, name, str(out), env=env)
    return torch.load(out, weights_only=True)


def test_round_trip_through_fresh_processes_and_pinned_revisions(hub: HubServer, fresh_python, tmp_path: Path):
    model = train_steps(tiny_model(seed=1))
    first = push_to_hub(model, "org/round-trip")
    old_outputs = predict(model)
    result = predict_in_fresh_process(fresh_python, hub.env, "hf-hub:org/round-trip", tmp_path / "a.pt")
    assert torch.equal(result["outputs"], old_outputs)  # bit-identical in another process
    assert "loaded" in result["report"] and "initialised" not in result["report"]

    train_steps(model, steps=4)
    second = push_to_hub(model, "org/round-trip", message="four more steps")
    new_outputs = predict(model)
    assert not torch.equal(new_outputs, old_outputs)
    assert second.revision != first.revision
    repo = hub.repo("org/round-trip")
    assert repo.commits[second.revision].parents == (first.revision,)
    assert repo.commits[second.revision].title == "four more steps"

    assert torch.equal(predict(mmzoo.create_model("hf-hub:org/round-trip")), new_outputs)
    pinned = f"hf-hub:org/round-trip@{first.revision}"
    old = predict_in_fresh_process(fresh_python, hub.env, pinned, tmp_path / "c.pt")
    assert torch.equal(old["outputs"], old_outputs)  # the pinned revision still gives the old weights


RUN_RECORD = {  # what the trainer stores in RUN_DIR/model/config.json (mmzoo.train.artifacts.save_model)
    "metrics": {"loss": 0.8, "accuracy": 0.75, "top1": 0.75},
    "datasets": ["toy-pairs"],
    "training": {"steps": 4, "world_size": 1, "precision": "fp32", "eval_dataset": "toy-pairs",
                 "eval_split": "test", "eval_examples": 4},
}


def make_run_dir(root: Path, model) -> Path:
    """A run directory laid out like the trainer's: model/, metrics.jsonl, curves.png, config.yaml."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    model.save_pretrained(root / "model", extra=RUN_RECORD)
    records = [{"step": s, "epoch": 0, "loss": 1.2 - 0.1 * s, "lr": 0.05} for s in range(1, 5)]
    records += [{"step": 2, "split": "eval", "eval_loss": 1.0, "eval_accuracy": 0.5},
                {"step": 4, "split": "eval", "eval_loss": 0.8, "eval_accuracy": 0.75, "eval_top1": 0.75}]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 5, "lo')
    figure, axis = plt.subplots()
    axis.plot([1, 2, 3, 4], [1.1, 1.0, 0.9, 0.8])
    figure.savefig(root / "curves.png")
    plt.close(figure)
    config = {"model": {"encoders": {}}, "data": {"train": {"dataset": "toy-pairs", "split": "train"},
                                                  "eval": {"dataset": "toy-pairs", "split": "test"}}}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def test_cli_push_of_a_run_dir_writes_card_curves_and_registry_entry(hub: HubServer, fresh_python, tmp_path):
    run_dir = make_run_dir(tmp_path / "run", train_steps(tiny_model()))
    proc = fresh_python("-m", "mmzoo", "push", str(run_dir), "org/card", "--license", "apache-2.0",
                        "-m", "first release", env=hub.env)
    main = hub.repo("org/card").branches["main"]
    assert f"revision: {main}" in proc.stdout
    entry_text = proc.stdout.split("(under models:):\n", 1)[1]
    entry = yaml.safe_load(entry_text)["card"]
    assert entry["weights"]["revision"] == main and entry["weights"]["repo"] == "org/card"
    assert entry["weights"]["sha256"] == hub.repo("org/card").resolve(main).files["model.safetensors"].etag
    assert entry["fusion"] == {"type": "gated", "dim": 16}

    api = HfApi()
    assert api.list_repo_files("org/card") == [".gitattributes", "README.md", "config.json", "curves.png",
                                               "model.safetensors", "training/config.yaml", "training/metrics.jsonl"]
    info = api.model_info("org/card")
    card = info.card_data
    assert card.library_name == "mmzoo" and card.license == "apache-2.0"
    assert {"mmzoo", "multimodal", "text", "vector", "byte-gru", "mlp", "gated", "classification"} <= set(card.tags)
    assert card.datasets is None and card.eval_results is None  # toy-pairs is an mmzoo dataset, not a Hub one
    assert card.pipeline_tag is None  # the Hub has no task for classifying text and vectors together
    assert set(card.metrics) == {"loss", "accuracy", "top1"}

    readme = Path(api.hf_hub_download("org/card", "README.md")).read_text()
    assert ModelCard(readme).data.library_name == "mmzoo"  # the client parses it
    assert "| accuracy | 0.75 |" in readme and "at step 4" in readme
    assert "`toy-pairs` (mmzoo datasets" in readme and "[`training/config.yaml`](training/config.yaml)" in readme
    assert "![training curves](curves.png)" in readme
    assert "pip install 'mmzoo==" in readme
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    ran = fresh_python("-c", snippet, env=hub.env)  # the card's "how to load" works as written
    assert "loaded" in ran.stdout and "initialised" not in ran.stdout


def test_pushing_a_model_publishes_the_metrics_its_config_json_has(hub: HubServer, tmp_path: Path):
    """Regression: the card was made from RUN_DIR/metrics.jsonl, so a model pushed without its run
    directory (a loaded model, or a copied model directory) published a card without its metrics."""
    train_steps(tiny_model()).save_pretrained(tmp_path / "trained", extra=RUN_RECORD)
    loaded = mmzoo.create_model(tmp_path / "trained")
    for name, source in (("org/object", loaded), ("org/directory", tmp_path / "trained")):
        result = loaded.push_to_hub(name) if source is loaded else push_to_hub(source, name)
        card = HfApi().model_info(name).card_data
        assert set(card.metrics) == set(RUN_RECORD["metrics"]), f"{name}: the card has no metrics"
        readme = Path(HfApi().hf_hub_download(name, "README.md", revision=result.revision)).read_text()
        assert "| accuracy | 0.75 |" in readme and "optimizer steps: 4" in readme
        assert "Final evaluation (toy-pairs, split `test`) at step 4" in readme
        published = json.loads(Path(HfApi().hf_hub_download(name, "config.json")).read_text())
        assert published["metrics"] == RUN_RECORD["metrics"] and published["datasets"] == ["toy-pairs"]


def test_labels_reach_the_published_config_and_card(hub: HubServer):
    model = train_steps(tiny_model())
    model.labels = ["cat", "stocks", "rain"]
    model.push_to_hub("org/labelled")
    readme = Path(HfApi().hf_hub_download("org/labelled", "README.md")).read_text()
    assert "3 classes, by output index" in readme and "`cat`, `stocks`, `rain`" in readme
    assert mmzoo.create_model("hf-hub:org/labelled").labels == ("cat", "stocks", "rain")


def test_card_tags_hf_encoders_with_their_own_modality(hub: HubServer):
    """Regression: the hf/ family registers text and audio, and cards were tagged 'text|audio'."""
    pytest.importorskip("transformers")
    from tests.plugins.support import TINY_AUDIO, TINY_BERT

    spec = {"encoders": {"caption": {"type": "hf/tiny-bert", "config": TINY_BERT, "tokenizer": "bytes"},
                         "speech": {"type": "hf/tiny-wav2vec2", "config": TINY_AUDIO["wav2vec2"]}},
            "fusion": {"type": "concat"}, "head": {"type": "classification", "num_classes": 2}}
    with pytest.warns(UserWarning, match="looks untrained"):  # built, never trained: said so
        mmzoo.create_model(spec).push_to_hub("org/hf-tags")
    tags = HfApi().model_info("org/hf-tags").card_data.tags
    assert {"text", "audio"} <= set(tags) and not any("|" in tag for tag in tags)


def test_push_model_dir_alone_and_model_object(hub: HubServer, tmp_path: Path):
    model = train_steps(tiny_model())
    model.save_pretrained(tmp_path / "saved")
    pushed = push_to_hub(tmp_path / "saved", "org/plain")
    assert pushed.files == ["README.md", "config.json", "model.safetensors"] and pushed.warnings == []
    readme = Path(HfApi().hf_hub_download("org/plain", "README.md")).read_text()
    assert "## Evaluation" not in readme and "license: unknown" in readme
    via_method = model.push_to_hub("org/plain", message="same weights again")
    assert via_method.sha256 == pushed.sha256
    assert torch.equal(predict(mmzoo.create_model("hf-hub:org/plain")), predict(model))


def test_push_to_a_branch_and_a_private_repo(hub: HubServer, tmp_path: Path):
    model = train_steps(tiny_model())
    api = HfApi()
    on_branch = push_to_hub(model, "org/branchy", branch="experiment")
    assert on_branch.branch == "experiment"
    assert api.list_repo_files("org/branchy") == [".gitattributes"]  # main untouched
    assert "model.safetensors" in api.list_repo_files("org/branchy", revision="experiment")
    assert torch.equal(predict(mmzoo.create_model("hf-hub:org/branchy@experiment")), predict(model))

    push_to_hub(model, "org/hidden", private=True)
    assert api.model_info("org/hidden").private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info("org/hidden")


@pytest.mark.parametrize("layout", ["empty", "not-mmzoo", "pickle-only", "no-weights", "a-file", "truncated"])
def test_push_refuses_what_is_not_a_model(hub: HubServer, fresh_python, tmp_path: Path, layout: str):
    source = tmp_path / "src"
    source.mkdir()
    expected = {
        "empty": "is not a model: it has no config.json",
        "not-mmzoo": "config.json is not an mmzoo config",
        "pickle-only": "has config.json but no model.safetensors (it has pytorch_model.bin: convert",
        "no-weights": "has config.json but no model.safetensors",
        "a-file": "is not a directory",
        "truncated": "model.safetensors is not a valid safetensors file",
    }[layout]
    if layout == "not-mmzoo":
        (source / "config.json").write_text('{"model_type": "bert"}')
    elif layout in ("pickle-only", "no-weights", "truncated"):
        tiny_model().save_pretrained(source)
        weights = source / "model.safetensors"
        if layout == "truncated":
            weights.write_bytes(weights.read_bytes()[:100])
        else:
            weights.rename(source / "pytorch_model.bin") if layout == "pickle-only" else weights.unlink()
    elif layout == "a-file":
        source = tmp_path / "notes.txt"
        source.write_text("hello")
    error = {"truncated": WeightsError, "not-mmzoo": SpecError}.get(layout, HubError)
    with pytest.raises(error, match=re.escape(expected)):
        push_to_hub(source, "org/refused")
    proc = fresh_python("-m", "mmzoo", "push", str(source), "org/refused", env=hub.env, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert hub.state.find("model", "org/refused") is None  # nothing was created


def test_bad_repo_ids_are_refused(hub: HubServer):
    for bad in ("no-namespace", "a/b/c", "org/", "org/bad name"):
        with pytest.raises(SpecError, match="expected a Hub repo id like 'org/name'"):
            push_to_hub(tiny_model(), bad)


def test_push_without_a_token_where_one_is_required(tmp_path: Path, monkeypatch, fresh_python):
    with HubServer(tokens={TOKEN: "tester"}) as server:
        env = point_client_at(monkeypatch, server.url, tmp_path / "home", token=None)
        model = train_steps(tiny_model())
        model.save_pretrained(tmp_path / "saved")
        with pytest.raises(HubError, match="pushing to org/locked needs a Hub token with write access"):
            push_to_hub(model, "org/locked")
        proc = fresh_python("-m", "mmzoo", "push", str(tmp_path / "saved"), "org/locked", env=env, check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "needs a Hub token" in proc.stderr
        proc = fresh_python("-m", "mmzoo", "push", str(tmp_path / "saved"), "org/locked", "--token", TOKEN, env=env)
        assert f"revision: {server.repo('org/locked').branches['main']}" in proc.stdout


def test_tokens_never_appear_in_outputs_cards_configs_or_caches(hub: HubServer, fresh_python, tmp_path: Path):
    run_dir = make_run_dir(tmp_path / "run", train_steps(tiny_model()))
    loud = {**hub.env, "HF_HUB_VERBOSITY": "debug"}  # the client's debug log shows every request
    outputs = []
    ok = fresh_python("-m", "mmzoo", "push", str(run_dir), "org/leak", "--token", TOKEN, env=loud)
    outputs += [ok.stdout, ok.stderr]
    bad_token = "hf_thisTokenIsNotKnownToTheServer00000"
    for args, env in [
        (("push", str(run_dir), "org/leak2", "--token", bad_token), loud),
        (("push", str(run_dir), "org/leak2"), {**loud, "HF_TOKEN": bad_token}),
        (("push", str(tmp_path), "org/leak3", "--token", TOKEN), loud),
    ]:
        proc = fresh_python("-m", "mmzoo", *args, env=env, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        outputs += [proc.stdout, proc.stderr]
    load = fresh_python("-c", PREDICT_SCRIPT, "hf-hub:org/leak", str(tmp_path / "p.pt"), env=loud)
    outputs += [load.stdout, load.stderr]
    for secret in (TOKEN, bad_token):
        assert not any(secret in text for text in outputs)
        repo = hub.repo("org/leak")
        stored = [*repo.blobs.values(), *repo.lfs.values()]
        assert not any(secret.encode() in data for data in stored)  # card, config, weights, curves
        cached = [p for p in Path(hub.env["HF_HOME"]).rglob("*") if p.is_file() and p.name != "token"]
        assert cached and not any(secret.encode() in p.read_bytes() for p in cached)
    assert "refused the token" in outputs[3]

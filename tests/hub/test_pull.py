"""Loading published models from the (local) Hub: verification, pinning, offline use and every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitOperationAdd, HfApi

import mmzoo
from mmzoo.errors import HubError, MissingPluginError, SpecError, UnknownNameError, WeightsError
from mmzoo.hub import download_model_dir, download_registry_weights, parse_hub_id, push_to_hub, sha256_of
from mmzoo.testing.hub_server import HubServer
from tests.hub.support import SPEC, TOKEN, predict, set_offline, tiny_model, train_steps

pytestmark = pytest.mark.hub


def publish(repo_id: str, seed: int = 0):
    model = train_steps(tiny_model(seed))
    return model, push_to_hub(model, repo_id)


def resolve_requests(hub: HubServer, filename: str) -> list[str]:
    return [r.path for r in hub.requests if r.method == "GET" and r.path.endswith(f"/{filename}")]


def upload(repo_id: str, files: dict[str, bytes]) -> str:
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    return api.create_commit(repo_id, [CommitOperationAdd(p, c) for p, c in files.items()], commit_message="x").oid


def mmzoo_config(**changes) -> bytes:
    config = {"format": "mmzoo", "mmzoo_version": mmzoo.__version__, "name": None, "spec": SPEC,
              "requires": {"mmzoo": mmzoo.__version__}}
    config.update(changes)
    return json.dumps(config).encode()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("hf-hub:org/repo", ("org/repo", None)), ("hf-hub:org/repo@v1.0", ("org/repo", "v1.0")),
     ("org/m.x-1@" + "a" * 40, ("org/m.x-1", "a" * 40))],
)
def test_parse_hub_id(name, expected):
    assert parse_hub_id(name) == expected


@pytest.mark.parametrize("bad", ["hf-hub:repo", "hf-hub:org/repo@", "hf-hub:a/b/c", "hf-hub:org/../x", "hf-hub:"])
def test_parse_hub_id_refuses_malformed_names(bad):
    with pytest.raises(SpecError, match="org/name|after '@'"):
        parse_hub_id(bad)


def test_hf_hub_model_loads_bit_identical_and_is_verified(hub: HubServer):
    model, pushed = publish("org/tiny")
    loaded = mmzoo.create_model("hf-hub:org/tiny")
    assert torch.equal(predict(loaded), predict(model))
    assert loaded.load_report.complete
    directory = download_model_dir("org/tiny")
    assert directory.name == pushed.revision  # the snapshot of the commit that main pointed to
    assert sha256_of(directory / "model.safetensors") == pushed.sha256


def test_registry_weights_through_create_model_pretrained(hub: HubServer, install_plugin):
    model, pushed = publish("org/zoo-tiny")
    root = install_plugin("mmzoo-hubzoo", {"fixture_hubzoo": HUBZOO_PLUGIN}, {"hubzoo": "fixture_hubzoo"})
    tampered = pushed.registry_yaml.replace(pushed.sha256, "ab" * 32).replace(f"{pushed.name}:", "tampered:", 1)
    (root / "hubzoo.yaml").write_text("models:\n" + _indent(pushed.registry_yaml) + _indent(tampered))
    assert {pushed.name, "tampered"} <= set(mmzoo.list_models(pretrained=True))
    loaded = mmzoo.create_model(pushed.name, pretrained=True)
    assert torch.equal(predict(loaded), predict(model))
    assert [p.status for p in loaded.load_report.parts] == ["loaded"] * 4
    fresh = mmzoo.create_model(pushed.name)  # without pretrained: the same composition, its own init
    assert not torch.equal(predict(fresh), predict(model))
    with pytest.raises(WeightsError, match="does not match the registry entry"):
        mmzoo.create_model("tampered", pretrained=True)


HUBZOO_PLUGIN = """
from pathlib import Path
import mmzoo

@mmzoo.hookimpl
def mmzoo_register_models(registry):
    registry.add_models_from_yaml(Path(__file__).with_name("hubzoo.yaml"))
"""


def _indent(text: str) -> str:
    return "".join("  " + line + "\n" for line in text.splitlines())


def test_sha256_mismatch_is_refused_and_the_file_is_not_kept(hub: HubServer):
    _, pushed = publish("org/sha")
    weights = {"repo": "org/sha", "revision": pushed.revision, "file": "model.safetensors", "sha256": "0" * 64}
    with pytest.raises(WeightsError) as exc:
        download_registry_weights(weights)
    message = str(exc.value)
    assert "org/sha" in message and "model.safetensors" in message and "0" * 64 in message
    assert pushed.sha256 in message and "removed from the cache" in message
    snapshot = Path(hub.env["HF_HUB_CACHE"]) / "models--org--sha" / "snapshots" / pushed.revision
    assert not (snapshot / "model.safetensors").exists()
    assert not list((snapshot.parent.parent / "blobs").glob(pushed.sha256))
    good = download_registry_weights({**weights, "sha256": pushed.sha256})
    assert sha256_of(good) == pushed.sha256


def test_corrupted_transfer_is_caught_against_the_lfs_oid(hub: HubServer):
    _, pushed = publish("org/flaky")
    real = hub.repo("org/flaky").read(hub.repo("org/flaky").resolve("main").files["model.safetensors"])
    hub.serve_corrupted("org/flaky", "model.safetensors", real[:-1] + bytes([real[-1] ^ 1]))
    with pytest.raises(WeightsError, match="does not match the Hub's LFS record") as exc:
        mmzoo.create_model("hf-hub:org/flaky")
    assert "hf-hub:org/flaky model.safetensors" in str(exc.value)
    blobs = Path(hub.env["HF_HUB_CACHE"]) / "models--org--flaky" / "blobs"
    assert not (blobs / pushed.sha256).exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage-header"])
def test_truncated_or_corrupted_safetensors_is_a_weights_error(hub: HubServer, damage: str, tmp_path: Path):
    tiny_model().save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    bad = data[: len(data) // 2] if damage == "truncated" else b"\x10\x00\x00\x00\x00\x00\x00\x00{not json!}....."
    upload("org/broken", {"config.json": (tmp_path / "config.json").read_bytes(), "model.safetensors": bad})
    with pytest.raises(WeightsError, match=r"model\.safetensors is not a valid safetensors file") as exc:
        mmzoo.create_model("hf-hub:org/broken")
    assert "hf-hub:org/broken" in str(exc.value) and "\n" not in str(exc.value)


def test_missing_repo_revision_and_files(hub: HubServer):
    with pytest.raises(HubError, match="Hub repo org/nothing was not found at http://127.0.0.1"):
        mmzoo.create_model("hf-hub:org/nothing")
    publish("org/there")
    with pytest.raises(HubError, match="revision 'v9' does not exist in Hub repo org/there"):
        mmzoo.create_model("hf-hub:org/there@v9")
    upload("org/no-config", {"model.safetensors": b"\x00" * 16})
    with pytest.raises(HubError, match="org/no-config has no file 'config.json'"):
        mmzoo.create_model("hf-hub:org/no-config")
    upload("org/no-weights", {"config.json": mmzoo_config()})
    with pytest.raises(HubError, match="has no file 'model.safetensors'"):
        mmzoo.create_model("hf-hub:org/no-weights")
    upload("org/transformers-model", {"config.json": b'{"model_type": "bert"}'})
    with pytest.raises(SpecError, match="not an mmzoo config"):  # one reader, one error type for config.json
        mmzoo.create_model("hf-hub:org/transformers-model")


def test_invalid_token_is_reported_without_showing_it(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    publish("org/public")
    bad = "hf_notAValidTokenForThisServer0000000"
    monkeypatch.setenv("HF_TOKEN", bad)
    monkeypatch.setenv("HF_HUB_CACHE", hub.env["HF_HUB_CACHE"] + "-other")
    with pytest.raises(HubError, match="refused the token for org/public [(]401[)]") as exc:
        mmzoo.create_model("hf-hub:org/public")
    assert bad not in str(exc.value)


def test_private_repo_needs_a_token(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    model = train_steps(tiny_model())
    push_to_hub(model, "org/secret", private=True)
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HUB_CACHE", hub.env["HF_HUB_CACHE"] + "-anon")  # nothing cached for this user
    with pytest.raises(HubError, match="org/secret was not found .* private repo set HF_TOKEN"):
        mmzoo.create_model("hf-hub:org/secret")
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # read when the call is made
    assert torch.equal(predict(mmzoo.create_model("hf-hub:org/secret")), predict(model))


def test_offline_uses_the_cache_and_fails_clearly_without_it(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    model, pushed = publish("org/cached")
    mmzoo.create_model(f"hf-hub:org/cached@{pushed.revision}")
    mmzoo.create_model("hf-hub:org/cached")
    set_offline(monkeypatch)
    before = len(hub.requests)
    for name in (f"hf-hub:org/cached@{pushed.revision}", "hf-hub:org/cached"):
        assert torch.equal(predict(mmzoo.create_model(name)), predict(model))
    assert len(hub.requests) == before  # offline: not one request
    with pytest.raises(HubError) as exc:
        mmzoo.create_model("hf-hub:org/never-downloaded")
    assert "HF_HUB_OFFLINE is set" in str(exc.value) and "not in the Hub cache" in str(exc.value)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        download_registry_weights({"repo": "org/cached", "revision": "0" * 40})


def test_offline_set_in_the_environment_after_import(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    publish("org/late")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # huggingface_hub.constants still says online
    before = len(hub.requests)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        mmzoo.create_model("hf-hub:org/late")
    assert len(hub.requests) == before


def test_unknown_part_names_the_distribution_and_skips_the_weights(hub: HubServer):
    spec = {**SPEC, "fusion": {"type": "fancy-fusion", "dim": 8}}
    config = mmzoo_config(spec=spec, requires={"mmzoo": mmzoo.__version__, "mmzoo-fancy": "1.2.3"})
    upload("org/fancy", {"config.json": config, "model.safetensors": b"\x00" * 64})
    with pytest.raises(MissingPluginError) as exc:
        mmzoo.create_model("hf-hub:org/fancy")
    message = str(exc.value)
    assert "fusion 'fancy-fusion'" in message and "mmzoo-fancy 1.2.3" in message
    assert "pip install 'mmzoo-fancy==1.2.3'" in message
    assert not resolve_requests(hub, "model.safetensors")  # refused before the weights were fetched

    config = mmzoo_config(spec={**SPEC, "head": {"type": "classificaton", "num_classes": 3}})
    upload("org/typo", {"config.json": config, "model.safetensors": b"\x00" * 64})
    with pytest.raises(UnknownNameError, match="Did you mean 'classification'"):
        mmzoo.create_model("hf-hub:org/typo")


def test_nothing_from_the_hub_is_executed(hub: HubServer, tmp_path: Path):
    marker = tmp_path / "pwned"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n".encode()
    spec = {**SPEC, "fusion": {"type": "os:system", "command": f"touch {marker}"}}
    upload("org/evil", {
        "config.json": mmzoo_config(spec=spec),
        "model.safetensors": b"\x00" * 64,
        "modeling.py": payload, "__init__.py": payload, "mmzoo_plugin.py": payload,
    })
    with pytest.raises(MissingPluginError, match="no installed distribution is called 'os'"):
        mmzoo.create_model("hf-hub:org/evil")
    assert not marker.exists()
    fetched = {r.path.rsplit("/", 1)[-1] for r in hub.requests if r.method == "GET" and "/resolve/" in r.path}
    assert fetched == {"config.json"}


def test_pickle_only_repo_is_refused_unless_opted_in(hub: HubServer, tmp_path: Path):
    model = train_steps(tiny_model())
    checkpoint = tmp_path / "pytorch_model.bin"
    torch.save(model.state_dict(), checkpoint)
    upload("org/pickled", {"config.json": mmzoo_config(), "pytorch_model.bin": checkpoint.read_bytes()})
    with pytest.raises(WeightsError) as exc:
        mmzoo.create_model("hf-hub:org/pickled")
    assert "only pickle weights (pytorch_model.bin)" in str(exc.value) and "allow_pickle=True" in str(exc.value)
    assert not resolve_requests(hub, "pytorch_model.bin")  # refused without downloading it
    with pytest.raises(WeightsError, match="pickle checkpoint"):
        download_registry_weights({"repo": "org/pickled", "file": "pytorch_model.bin"})

    directory = download_model_dir("org/pickled", allow_pickle=True)
    assert (directory / "pytorch_model.bin").is_file()
    loaded = mmzoo.create_model(directory, allow_pickle=True)
    assert torch.equal(predict(loaded), predict(model))
    with pytest.raises(WeightsError, match="allow_pickle=True"):
        mmzoo.create_model(directory)
    opted_in = mmzoo.create_model("hf-hub:org/pickled", allow_pickle=True)  # the opt-in reaches the download
    assert torch.equal(predict(opted_in), predict(model))


def test_info_describes_a_hub_model(hub: HubServer, capsys):
    from mmzoo.cli import main

    publish("org/described")
    assert main(["info", "hf-hub:org/described", "--json"]) == 0
    info = __import__("json").loads(capsys.readouterr().out)
    assert [p["part"] for p in info["parts"]][-1] == "head" and info["parameters"] > 0


def test_published_classifier_with_new_num_classes_rebuilds_only_the_head(hub: HubServer):
    model, _ = publish("org/cls")
    changed = mmzoo.create_model("hf-hub:org/cls", head={"num_classes": 5})
    report = changed.load_report
    assert report.part("head").status == "initialised"
    assert "num_classes: 3 -> 5" in report.part("head").reason
    assert [report.part(p).status for p in ("encoders.text", "encoders.x", "fusion")] == ["loaded"] * 3
    assert "num_classes" in str(report)
    for name, tensor in model.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(changed.state_dict()[name], tensor), name
    assert predict(changed).shape == (4, 5)


def test_every_load_refusal_is_one_line_naming_the_source(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    """The CLI prints ``error: <message>``: each message must be a single line that names what failed."""
    _, pushed = publish("org/good")
    upload("org/cut", {"config.json": mmzoo_config(), "model.safetensors": b"\x05" * 40})
    upload("org/pkl", {"config.json": mmzoo_config(), "model.pt": b"\x80\x04not really"})
    upload("org/odd", {"config.json": mmzoo_config(spec={**SPEC, "head": {"type": "x-head"}},
                                                   requires={"mmzoo-x": "2.0"})})
    wrong_sha = {"repo": "org/good", "revision": pushed.revision, "sha256": "f" * 64}
    cases = [
        ("org/absent", lambda: mmzoo.create_model("hf-hub:org/absent")),
        ("revision 'nope'", lambda: mmzoo.create_model("hf-hub:org/good@nope")),
        ("'absent.safetensors'", lambda: download_registry_weights({"repo": "org/good", "file": "absent.safetensors"})),
        ("hf-hub:org/cut", lambda: mmzoo.create_model("hf-hub:org/cut")),
        (f"hf-hub:org/good@{pushed.revision}", lambda: download_registry_weights(wrong_sha)),
        ("hf-hub:org/odd", lambda: mmzoo.create_model("hf-hub:org/odd")),
        ("hf-hub:org/pkl", lambda: mmzoo.create_model("hf-hub:org/pkl")),
    ]
    for needle, call in cases:
        with pytest.raises(mmzoo.MmzooError) as exc:
            call()
        message = str(exc.value)
        assert "\n" not in message and needle in message, message
    set_offline(monkeypatch)
    with pytest.raises(HubError) as exc:
        mmzoo.create_model("hf-hub:org/uncached")
    assert "\n" not in str(exc.value) and "org/uncached" in str(exc.value)


def test_environment_is_read_at_call_time(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model, _ = publish("org/env")
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "other-home"))
    directory = download_model_dir("org/env")
    assert directory.is_relative_to(tmp_path / "other-home" / "hub" / "models--org--env")
    with HubServer(tokens={TOKEN: "tester"}) as second:
        monkeypatch.setenv("HF_ENDPOINT", second.url)
        other = train_steps(tiny_model(seed=7))
        push_to_hub(other, "org/env")  # same name, another Hub
        assert torch.equal(predict(mmzoo.create_model("hf-hub:org/env")), predict(other))
        assert any(r.method == "POST" for r in second.requests)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    assert torch.equal(predict(mmzoo.create_model("hf-hub:org/env")), predict(model))

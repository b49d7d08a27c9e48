"""mmzoo-transformers never runs a model's own code: ``auto_map`` models are refused, no prompt appears."""

from __future__ import annotations

import ast
import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mmzoo
from mmzoo.errors import HubError, SpecError
from tests.plugins.support import TINY_BERT
from tests.support import read_terminal

pytest.importorskip("transformers")

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mmzoo-transformers" / "mmzoo_transformers"
PROMPT = "Do you wish to run the custom code"
# Running this module would leave a marker file: the tests check it never does.
EVIL_MODULE = """
import os, pathlib
pathlib.Path(os.environ.get("MMZOO_TEST_MARKER", "/nonexistent/marker")).write_text("custom code ran")
from transformers import PretrainedConfig, PreTrainedModel
class EvilConfig(PretrainedConfig):
    model_type = "evil"
class EvilModel(PreTrainedModel):
    config_class = EvilConfig
"""
EVIL_MAP = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel", "AutoTokenizer": ["evil.Tok", None]}


def spec_for(part: dict) -> dict:
    return {"encoders": {"text": part}, "fusion": {"type": "concat"}, "head": {"type": "classification",
                                                                                "num_classes": 2}}


def hostile_files(model_type: str = "evil") -> dict[str, bytes]:
    """A repo whose config asks transformers to import ``evil.py`` from the repo itself."""
    config = {**TINY_BERT, "model_type": model_type, "auto_map": EVIL_MAP}
    return {"config.json": json.dumps(config).encode(), "evil.py": EVIL_MODULE.encode()}


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def marker(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "custom-code-ran"
    monkeypatch.setenv("MMZOO_TEST_MARKER", str(path))
    return path


def test_every_transformers_entry_point_is_called_with_trust_remote_code_false():
    calls = []
    for source in sorted(PLUGIN.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            func = getattr(node, "func", None)
            if (
                isinstance(node, ast.Call)
                and isinstance(func, ast.Attribute)
                and func.attr in ("from_pretrained", "from_config")
                and isinstance(func.value, ast.Name)
                and func.value.id.startswith("Auto")
            ):
                trust = {k.arg: k.value for k in node.keywords}.get("trust_remote_code")
                safe = isinstance(trust, ast.Constant) and trust.value is False
                calls.append((f"{source.name}:{node.lineno} {func.value.id}.{func.attr}", safe))
    assert len(calls) >= 5  # AutoConfig, AutoModel (x2), AutoTokenizer, AutoFeatureExtractor
    assert [where for where, safe in calls if not safe] == []


@pytest.mark.parametrize("model_type", ["evil", "bert"])
def test_a_folder_whose_config_has_auto_map_is_refused(tmp_path, marker, model_type):
    folder = write_folder(tmp_path / "repo", hostile_files(model_type))
    with pytest.raises(HubError) as exc:
        mmzoo.create_model(spec_for({"type": f"hf/{folder}", "pretrained": False}))
    message = str(exc.value)
    assert "config.json" in message and "'auto_map'" in message and str(folder) in message
    assert "never runs code" in message and "\n" not in message
    assert not marker.exists()


def test_a_tokenizer_that_needs_custom_code_is_refused(tmp_path, marker):
    tokenizer = write_folder(tmp_path / "tok", {
        "tokenizer_config.json": json.dumps({"tokenizer_class": "EvilTokenizer",
                                             "auto_map": {"AutoTokenizer": ["evil.EvilTokenizer", None]}}).encode(),
        "vocab.txt": b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n",
        "evil.py": EVIL_MODULE.encode(),
    })
    part = {"type": "hf/scratch", "config": TINY_BERT, "tokenizer": str(tokenizer)}
    with pytest.raises(HubError, match=r"tokenizer_config\.json in local folder .* sets 'auto_map'"):
        mmzoo.create_model(spec_for(part))
    assert not marker.exists()


@pytest.mark.parametrize("key", ["auto_map", "trust_remote_code", "custom_pipelines"])
def test_config_settings_that_would_import_code_are_refused(key):
    part = {"type": "hf/scratch", "config": {**TINY_BERT, key: {"AutoModel": "evil.EvilModel"}}}
    with pytest.raises(SpecError, match=rf"config\.{key}: not allowed"):
        mmzoo.create_model(spec_for(part))


def test_a_deeply_nested_config_is_a_clean_error(tmp_path):
    folder = write_folder(tmp_path / "deep", {"config.json": b"[" * 100_000 + b"]" * 100_000})
    with pytest.raises(HubError, match="config.json in local folder .* is nested too deeply"):
        mmzoo.create_model(spec_for({"type": f"hf/{folder}"}))


BUILD = """
import sys, mmzoo
spec = {"encoders": {"text": {"type": "hf/" + sys.argv[1]}}, "fusion": {"type": "concat"},
        "head": {"type": "classification", "num_classes": 2}}
try:
    mmzoo.create_model(spec)
except mmzoo.MmzooError as exc:
    print("REFUSED:", exc, flush=True)
    sys.exit(3)
"""


def build_on_a_terminal(target: str, env: dict, limit: float = 120.0) -> tuple[int | None, str, float]:
    """Build ``hf/<target>`` in a child whose stdin, stdout and stderr are a pseudo-terminal.

    Nothing is ever typed: a child that asks a question waits until ``limit`` and is then killed.
    """
    main, side = pty.openpty()
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", BUILD, target], stdin=side, stdout=side, stderr=side,
                             env=env, start_new_session=True, cwd=Path(__file__).resolve().parents[2])
    os.close(side)
    output = b""
    try:
        output = read_terminal(main, child, started + limit, poll=0.5)
    finally:
        if child.poll() is None:
            child.kill()
        code = child.wait()
        os.close(main)
    return code, output.decode("utf-8", "replace"), time.monotonic() - started


@pytest.mark.timeout(300)
def test_on_a_terminal_an_auto_map_folder_ends_in_an_error_without_a_prompt(tmp_path, marker):
    folder = write_folder(tmp_path / "repo", hostile_files())
    code, output, _ = build_on_a_terminal(str(folder), dict(os.environ))
    assert PROMPT not in output and "[y/N]" not in output
    assert code == 3, output
    assert "REFUSED:" in output and "'auto_map'" in output and "Traceback" not in output
    assert not marker.exists()


@pytest.mark.hub
@pytest.mark.timeout(300)
def test_on_a_terminal_an_auto_map_repo_from_the_hub_ends_in_an_error_without_a_prompt(
    tmp_path, marker, monkeypatch
):
    from huggingface_hub import CommitOperationAdd, HfApi

    from mmzoo.testing.hub_server import HubServer
    from tests.hub.support import TOKEN, point_client_at

    with HubServer(tokens={TOKEN: "org"}) as hub:
        env = point_client_at(monkeypatch, hub.url, tmp_path / "hf", TOKEN)
        api = HfApi(endpoint=hub.url, token=TOKEN)
        api.create_repo("org/evil")
        files = [CommitOperationAdd(p, data) for p, data in hostile_files().items()]
        api.create_commit("org/evil", files, commit_message="custom code")

        code, output, _ = build_on_a_terminal("org/evil", {**os.environ, **env})
        assert PROMPT not in output and "[y/N]" not in output
        assert code == 3, output
        assert "REFUSED:" in output and "org/evil" in output and "'auto_map'" in output
        served = [r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]
        assert any(p.endswith("/config.json") for p in served)
        assert not any(p.endswith(".py") for p in served)  # the code is never even fetched

        with pytest.raises(HubError, match=r"hf/org/evil: config\.json in the Hub snapshot of org/evil"):
            mmzoo.create_model(spec_for({"type": "hf/org/evil"}))
    assert not marker.exists()

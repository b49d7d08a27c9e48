"""The README's Python tour runs as written (the Hub line is covered by tests/hub)."""

from __future__ import annotations

import re

from tests.support import REPO


def test_readme_tour_runs(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A 30-second tour\n\n```python\n(.*?)```", text, re.S).group(1)
    hub_line = 'model = mmzoo.create_model("hf-hub:org/repo@<revision>")'
    assert hub_line in block
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMZOO_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    exec(compile(block.replace(hub_line, ""), "README.md", "exec"), namespace)
    assert namespace["out"].outputs.shape == (8, 10)
    assert (tmp_path / "my-model" / "model.safetensors").is_file()


def test_readme_run_config_is_valid():
    import yaml

    from mmzoo.train.config import validate_config

    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(model: .*?)```", text, re.S).group(1)
    config = validate_config(yaml.safe_load(block))
    assert config.optim.steps == 300

"""Habits users expect: shell completion, a discoverable public API, a version, delimiter hints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mmzoo
from mmzoo.errors import DatasetError
from tests.support import run_cli

BIN = str(Path(sys.executable).parent)


def completion_script(shell: str) -> str:
    done = run_cli("completion", shell)
    assert done.returncode == 0, done.stderr
    return done.stdout


def complete_in_bash(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (COMP_* set as bash sets them on <TAB>)."""
    line = " ".join(words)
    array = " ".join(f"'{w}'" for w in words)
    driver = (f"source {script}\nCOMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=({array}); "
              f"COMP_CWORD={len(words) - 1}; COMP_TYPE=9\n_python_argcomplete mmzoo\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_parses_and_completes_commands_and_choices(tmp_path):
    script = tmp_path / "mmzoo.bash"
    script.write_text(completion_script("bash"))
    parsed = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr
    assert complete_in_bash(script, "mmzoo", "in") == ["info", "install"]
    assert set(complete_in_bash(script, "mmzoo", "completion", "")) >= {"bash", "zsh", "fish"}
    assert "--kind" in complete_in_bash(script, "mmzoo", "list", "--k")


def test_zsh_and_fish_scripts_name_mmzoo():
    assert "mmzoo" in completion_script("zsh") and "compdef" in completion_script("zsh")
    assert "complete" in completion_script("fish") and "mmzoo" in completion_script("fish")


def test_unknown_shell_is_refused_with_the_choices():
    done = run_cli("completion", "klingon")
    assert done.returncode == 2 and "choose from" in done.stderr and "bash" in done.stderr


def test_version_comes_from_the_installed_metadata():
    from importlib.metadata import version

    assert mmzoo.__version__ == version("mmzoo")
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"mmzoo {version('mmzoo')}"


def test_dir_shows_the_public_api():
    public = [name for name in dir(mmzoo) if not name.startswith("_")]
    assert public == sorted(name for name in mmzoo.__all__ if not name.startswith("_"))
    assert "__version__" in dir(mmzoo)
    for name in public:
        assert getattr(mmzoo, name) is not None


@pytest.mark.parametrize(("suffix", "text", "said"), [
    (".csv", "image;text;target\na.png;hello;1\n", "with ';', but a .csv manifest is read with commas"),
    (".csv", "image\ttext\ttarget\na.png\thello\t1\n", "with tabs, but a .csv manifest is read with commas"),
    (".tsv", "image,text,target\na.png,hello,1\n", "with ',', but a .tsv manifest is read with tabs"),
])
def test_a_manifest_with_another_delimiter_gets_a_hint(tmp_path, suffix, text, said):
    path = tmp_path / f"data{suffix}"
    path.write_text(text)
    with pytest.raises(DatasetError, match="line 1: the header is one column") as caught:
        mmzoo.create_dataset("manifest", path=str(path))
    assert said in str(caught.value)

"""No code from a model folder or the Hub ever runs: models that ask for their own code are refused.

transformers can run Python files shipped beside a model: a ``config.json``, ``tokenizer_config.json``
or ``preprocessor_config.json`` whose ``auto_map`` names classes in the repo's own modules. Asked
without ``trust_remote_code``, it prompts "Do you wish to run the custom code? [y/N]" on a terminal
(and runs it on ``y``). This plugin passes ``trust_remote_code=False`` to every transformers entry
point, and :func:`refuse_custom_code` rejects such a model before transformers reads it at all, so
no prompt can appear and the message says what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmzoo.errors import HubError, SpecError

# The files transformers consults for classes to import; any of them may carry an ``auto_map``.
CONFIG_FILES = (
    "config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "feature_extractor_config.json",
    "image_processor_config.json",
    "video_preprocessor_config.json",
)
# Keys that ask transformers to import code named by the repo.
CODE_KEYS = ("auto_map", "custom_pipelines")
# Settings a spec's ``config:`` may not set: they would re-open the same door.
FORBIDDEN_SETTINGS = (*CODE_KEYS, "trust_remote_code")
MAX_CONFIG_BYTES = 64 * 1024 * 1024


def refuse_custom_code(folder: Path, name: str, where: str, files: tuple[str, ...] = CONFIG_FILES) -> None:
    """Raise :class:`HubError` if a config file in ``folder`` asks transformers to run the repo's code.

    ``name`` is the part (``hf/org/model``) and ``where`` the folder's description, for the message.
    A config file too large or too deeply nested to read is refused as well. One that is not JSON
    is left to transformers, which cannot take any class names from it either and says so.
    """
    for file in files:
        path = folder / file
        if not path.is_file():
            continue
        data = _read_json(path, name, where)
        keys = [key for key in CODE_KEYS if isinstance(data, dict) and data.get(key)]
        if keys:
            raise HubError(
                f"{name}: {file} in {where} sets '{keys[0]}', so the model needs Python code shipped "
                f"with it; mmzoo never runs code from a model folder or the Hub (trust_remote_code is "
                f"always off). Use a model whose architecture transformers itself provides."
            )


def refuse_code_settings(settings: dict, name: str) -> None:
    """Raise :class:`SpecError` if a spec's ``config:`` overrides try to set ``auto_map`` and the like."""
    for key in FORBIDDEN_SETTINGS:
        if key in settings:
            raise SpecError(
                f"{name}.config.{key}: not allowed; it would make transformers import code named by "
                f"the model, and mmzoo never runs code from a model's files"
            )


def _read_json(path: Path, name: str, where: str) -> object:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise HubError(
                f"{name}: {path.name} in {where} is {size} bytes, over the {MAX_CONFIG_BYTES} bytes a "
                f"config file may have"
            )
        return json.loads(path.read_bytes())
    except ValueError:
        return None
    except RecursionError:
        raise HubError(f"{name}: {path.name} in {where} is nested too deeply to read") from None
    except OSError as exc:
        raise HubError(f"{name}: cannot read {path.name} in {where}: {exc.strerror or exc}") from None

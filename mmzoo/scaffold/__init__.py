"""Write a ready-to-install plugin package (``mmzoo new-plugin``) from the templates beside this module.

The package has a pyproject with the ``mmzoo`` entry point, a hook module that stays cheap to import,
one encoder, one fusion and one head (small working torch modules), a models YAML, tests that run the
conformance kit and train its model one step, and a README. Its tests pass as generated.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from mmzoo.errors import MmzooError

TEMPLATES = Path(__file__).with_name("templates")
# PEP 508 distribution names: letters, digits, '-', '_', '.', starting and ending with a letter or digit.
DIST_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# template path -> path in the new package ("package" becomes the module's name)
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "gitignore.tmpl": ".gitignore",
    "package/__init__.py.tmpl": "{module}/__init__.py",
    "package/parts.py.tmpl": "{module}/parts.py",
    "package/models.yaml.tmpl": "{module}/models.yaml",
    "tests/test_parts.py.tmpl": "tests/test_parts.py",
    "tests/test_model.py.tmpl": "tests/test_model.py",
}


@dataclass(frozen=True)
class PluginNames:
    """The names a new plugin is written with."""

    dist: str  # the distribution, as given: "mmzoo-foo"
    module: str  # the Python package: "mmzoo_foo"
    short: str  # the entry point's name and the prefix of its parts: "foo"


def plugin_names(name: str) -> PluginNames:
    """Check ``name`` (a PEP 508 distribution name that gives an importable, new package name)."""
    if not DIST_NAME.match(name):
        raise MmzooError(
            f"'{name}' is not a valid distribution name: use letters, digits, '-', '_' and '.', starting and "
            "ending with a letter or digit (for example mmzoo-foo)"
        )
    canonical = re.sub(r"[-_.]+", "-", name).lower()
    if canonical in ("mmzoo", "mmzoo-timm", "mmzoo-transformers"):
        raise MmzooError(f"'{name}' is the name of an mmzoo distribution; choose another (for example mmzoo-foo)")
    module = canonical.replace("-", "_")
    if not module.isidentifier() or keyword.iskeyword(module):
        raise MmzooError(
            f"'{name}' would give the Python package '{module}', which cannot be imported; start the name "
            "with a letter (for example mmzoo-foo)"
        )
    if importlib.util.find_spec(module) is not None:
        raise MmzooError(
            f"a module named '{module}' is already importable here, and the plugin's package would clash "
            "with it; choose another name (for example mmzoo-" + canonical.removeprefix("mmzoo-") + "-parts)"
        )
    short = canonical.removeprefix("mmzoo-") or canonical
    return PluginNames(dist=name, module=module, short=short)


def mmzoo_requirement() -> str:
    """``mmzoo>=MAJOR.MINOR`` of the running mmzoo (plain ``mmzoo`` when it runs uninstalled)."""
    import mmzoo

    match = re.match(r"(\d+)\.(\d+)", mmzoo.__version__)
    return f"mmzoo>={match[1]}.{match[2]}" if match and mmzoo.__version__ != "0+unknown" else "mmzoo"


def write_plugin(name: str, directory: Path | None = None) -> tuple[Path, list[Path]]:
    """Write the package for plugin ``name`` into ``directory`` (default ``./NAME``); return it and its files.

    Refuses an invalid name and a directory that exists and is not empty.
    """
    names = plugin_names(name)
    root = Path(directory) if directory is not None else Path(names.dist)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise MmzooError(f"{root} already exists and is not an empty directory; choose another with --dir")
    values = {"dist": names.dist, "module": names.module, "short": names.short,
              "entry_point": names.short.replace("-", "_"), "mmzoo_requirement": mmzoo_requirement()}
    written = []
    for template, target in LAYOUT.items():
        path = root / target.format(module=names.module)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return root, written

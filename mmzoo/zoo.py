"""The core distribution's model zoo: registers the models of ``registry.yaml``."""

from __future__ import annotations

from pathlib import Path

from mmzoo.plugins import hookimpl

REGISTRY_FILE = Path(__file__).with_name("registry.yaml")


@hookimpl
def mmzoo_register_models(registry) -> None:
    """Add every model of the zoo's ``registry.yaml``."""
    registry.add_models_from_yaml(REGISTRY_FILE)

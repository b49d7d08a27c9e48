"""The hooks a plugin may implement.

A plugin is a module named by an entry point in the ``mmzoo`` group::

    [project.entry-points.mmzoo]
    foo = "mmzoo_foo"

and decorates functions with :data:`mmzoo.hookimpl`. Every hook is optional. Hooks are called
once per process, the first time parts or models are looked up, with a registry that records
which distribution registered what. Keep plugin modules cheap to import: no ``import torch`` at
their top level; name factories as ``"module.path:Attribute"`` strings so that heavy modules load
only when a model is built.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mmzoo")


@hookspec
def mmzoo_register_components(registry) -> None:
    """Register parts and datasets.

    :param registry: the component registry. Call any of::

        registry.add_encoder(name, factory, *, modality, description="")
        registry.add_fusion(name, factory, *, description="")
        registry.add_head(name, factory, *, description="")
        registry.add_dataset(name, factory, *, description="")
        registry.add_family(kind, prefix, factory, *, modality=None, description="", members=None,
                            modality_of=None)

    ``factory`` is a callable or a lazy ``"module.path:Attribute"`` string; it is called with
    the part's parameters from the spec (fusions also get ``input_dims``, heads ``input_dim``,
    datasets ``split``). ``modality`` is a name (``"image"``) or a list of names. ``add_family``
    registers every name starting with ``prefix`` (``"timm/"``): the factory is called as
    ``factory(member, **params)`` with the rest of the name, ``members`` (callable or lazy string)
    lists the members on demand, and ``modality_of(member, params)`` (optional, callable or lazy
    string) tells what one member reads, or None when it cannot tell.

    Each part is reachable by its bare name and as ``DIST:name``, DIST being the name of the
    distribution that provides the plugin. Registering a name twice within one distribution is
    an error; two distributions registering the same name make the bare name ambiguous.

    If this hook raises, nothing it registered is kept and the plugin is reported as failed;
    other plugins are unaffected.
    """


@hookspec
def mmzoo_register_models(registry) -> None:
    """Register named models (complete compositions).

    :param registry: the model registry. Call ``registry.add_model(name, spec)`` with a spec
        mapping (``encoders``, ``fusion``, ``head``, optional ``description`` and ``weights``)
        or ``registry.add_models_from_yaml(path)`` with a file that has the schema of
        ``registry.yaml`` (a top-level ``models:`` mapping).

    Called after every plugin's :func:`mmzoo_register_components`, so specs may name parts of
    any installed distribution. A spec's structure is validated when registered: a malformed entry
    is reported (with its location in the file) and skipped while the valid entries are kept. The
    part names are checked once every plugin has registered: a model naming a part that no
    installed plugin provides stays listed, marked as a problem in ``mmzoo list`` and
    ``mmzoo plugins``, and building it says what is missing.
    """


@hookspec
def mmzoo_register_loggers(registry) -> None:
    """Register experiment loggers: where the trainer sends its metrics besides ``metrics.jsonl``.

    :param registry: call ``registry.add_logger(name, factory, *, description="")``; ``factory``
        is a callable or a lazy ``"module.path:Attribute"`` string.

    A run config names loggers in ``log_to:`` (``[tensorboard, {type: NAME, param: value}]``); the
    trainer calls ``factory(**params)`` on rank 0 only, then the logger's optional
    ``start(run)`` with a :class:`mmzoo.loggers.RunInfo`, ``log(record)`` with every record
    written to ``metrics.jsonl`` (a dict: ``step``, ``time``, ``timestamp``, the loss or the
    ``eval_*`` metrics, ...), and its optional ``close()`` when the run ends. A logger that raises
    is warned about once and dropped for the rest of the run; training goes on
    (``MMZOO_STRICT_PLUGINS=1`` makes that fatal). See :mod:`mmzoo.loggers`.
    """

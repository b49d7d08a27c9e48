"""Plugin discovery through the ``mmzoo`` entry-point group, with pluggy.

Each entry point's module is imported and registered with pluggy; then each distribution's hook
implementations are called one by one against a staging :class:`~mmzoo.registrar.Registrar`, so a
plugin that fails to import or whose hook raises is skipped whole, warned about once on stderr and
shown by ``mmzoo plugins``, while every other plugin keeps working.

Environment:
    ``MMZOO_PLUGINS=a,b``      load only these distributions (or entry-point names); the core's
                               builtin parts always load; a name that matches nothing installed
                               is warned about, with a did-you-mean.
    ``MMZOO_STRICT_PLUGINS=1`` make any plugin failure fatal.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from mmzoo import hookspecs
from mmzoo.errors import PluginError, did_you_mean
from mmzoo.registrar import Registrar
from mmzoo.registry import Registry, normalize_dist

GROUP = "mmzoo"
CORE_DIST = "mmzoo"
HOOKS = ("mmzoo_register_components", "mmzoo_register_loggers", "mmzoo_register_models")
# The core's own entry points (as in pyproject.toml), registered directly when mmzoo runs from a
# source tree that was never installed, the way llm registers its default plugins.
BUILTIN_ENTRY_POINTS = {"parts": "mmzoo.parts", "datasets": "mmzoo.data", "loggers": "mmzoo.loggers",
                        "zoo": "mmzoo.zoo"}

hookimpl = pluggy.HookimplMarker("mmzoo")


@dataclass
class PluginInfo:
    """One distribution's plugin state, as ``mmzoo plugins`` shows it."""

    dist: str
    version: str
    entry_points: list[str] = field(default_factory=list)
    status: str = "loaded"  # loaded | failed | disabled
    error: str = ""


@dataclass
class PluginState:
    registry: Registry
    plugins: dict[str, PluginInfo]


_state: PluginState | None = None


def get_registry() -> Registry:
    """The registry filled by every installed plugin (loaded once per process)."""
    return _load().registry


def plugin_infos() -> list[PluginInfo]:
    """Every distribution that declares ``mmzoo`` entry points, sorted by name."""
    return sorted(_load().plugins.values(), key=lambda p: p.dist)


def reset() -> None:
    """Forget what was loaded, so the next lookup discovers plugins again (for tests)."""
    global _state
    _state = None


def _load() -> PluginState:
    global _state
    if _state is None:
        _state = discover()
    return _state


def _allowlist() -> set[str] | None:
    raw = os.environ.get("MMZOO_PLUGINS", "").strip()
    if not raw:
        return None
    return {normalize_dist(x.strip()) for x in raw.split(",") if x.strip()}


def _strict() -> bool:
    return os.environ.get("MMZOO_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def _check_hook_names(manager: pluggy.PluginManager, module: object) -> None:
    """Refuse a hook implementation whose name is not a hook (a typo would be silently ignored)."""
    for attr in dir(module):
        if manager.parse_hookimpl_opts(module, attr) is not None and attr not in HOOKS:
            raise PluginError(f"'{attr}' is marked @mmzoo.hookimpl but is not a hook; hooks are "
                              f"{', '.join(HOOKS)}.{did_you_mean(attr, HOOKS)}")


def _entry_points() -> list[tuple[str, str, EntryPoint]]:
    """``(dist, version, entry point)`` for each entry point of the group, sorted; the core's builtin
    modules are included even when the installed ``mmzoo`` metadata does not declare them (a source
    tree that was never installed, or an editable install made before an entry point was added)."""
    found = [(ep.dist.name if ep.dist else "unknown", ep.dist.version if ep.dist else "?", ep)
             for ep in entry_points(group=GROUP)]
    core = [(dist, version, ep) for dist, version, ep in found if normalize_dist(dist) == CORE_DIST]
    declared = {ep.name for _, _, ep in core}
    missing = {name: value for name, value in BUILTIN_ENTRY_POINTS.items() if name not in declared}
    if missing:
        if core:
            dist, version = core[0][0], core[0][1]
        else:
            import mmzoo

            dist, version = CORE_DIST, mmzoo.__version__
        found += [(dist, version, EntryPoint(name, value, GROUP)) for name, value in missing.items()]
    return sorted(found, key=lambda item: (item[0], item[2].name))


def _check_allowlist(allow: set[str], found: list[tuple[str, str, EntryPoint]]) -> str | None:
    """A warning for ``MMZOO_PLUGINS`` names that match no installed plugin distribution (or entry
    point), with a did-you-mean over the installed ones; None when every name matches."""
    dists = sorted({normalize_dist(dist) for dist, _, _ in found} - {CORE_DIST})
    known = set(dists) | {normalize_dist(ep.name) for _, _, ep in found} | {CORE_DIST}
    unknown = sorted(allow - known)
    if not unknown:
        return None
    named = " ".join(f"MMZOO_PLUGINS names '{name}', which is not an installed plugin distribution."
                     f"{did_you_mean(name, dists)}" for name in unknown)
    return f"{named} Installed plugin distributions: {', '.join(dists) or 'none'}"


def discover() -> PluginState:
    """Import every entry point of the ``mmzoo`` group and run its hooks into a new registry."""
    allow = _allowlist()
    strict = _strict()
    manager = pluggy.PluginManager("mmzoo")
    manager.add_hookspecs(hookspecs)
    registry = Registry()
    plugins: dict[str, PluginInfo] = {}

    def fail(info: PluginInfo, what: str, exc: BaseException) -> None:
        info.status = "failed"
        info.error = f"{what}: {type(exc).__name__}: {exc}"
        registry.mark_failed(info.dist, info.error)
        message = f"plugin distribution '{info.dist}' {info.error}"
        if strict:
            raise PluginError(message + " (MMZOO_STRICT_PLUGINS=1 makes this fatal)") from exc
        sys.stderr.write(f"mmzoo: warning: {message}; skipped it (see 'mmzoo plugins')\n")

    found = _entry_points()
    if allow is not None:
        warning = _check_allowlist(allow, found)
        if warning is not None and strict:
            raise PluginError(warning + " (MMZOO_STRICT_PLUGINS=1 makes this fatal)")
        if warning is not None:
            sys.stderr.write(f"mmzoo: warning: {warning}\n")
    for dist, version, ep in found:
        info = plugins.setdefault(dist, PluginInfo(dist, version))
        info.entry_points.append(f"{ep.name} = {ep.value}")
        if allow is not None and normalize_dist(dist) != CORE_DIST and not (
            normalize_dist(dist) in allow or normalize_dist(ep.name) in allow
        ):
            info.status = "disabled"
            info.error = "not in MMZOO_PLUGINS"
            registry.mark_disabled(dist)
            continue
        if info.status == "failed":
            continue
        try:
            module = ep.load()
            _check_hook_names(manager, module)
            manager.register(module, name=f"{dist}/{ep.name}")
        except Exception as exc:
            fail(info, f"failed to load entry point '{ep.name} = {ep.value}'", exc)

    registrars: dict[str, Registrar] = {}
    for hook_name in HOOKS:
        for impl in reversed(getattr(manager.hook, hook_name).get_hookimpls()):  # registration order
            dist = impl.plugin_name.split("/", 1)[0]
            info = plugins[dist]
            if info.status != "loaded":
                continue
            registrar = registrars.setdefault(dist, registry.registrar(dist))
            try:
                impl.function(registry=registrar)
            except Exception as exc:
                fail(info, f"hook {hook_name} in {impl.plugin_name.split('/', 1)[1]} raised", exc)

    for dist, registrar in registrars.items():
        if plugins[dist].status == "loaded":
            registry.commit(registrar)
    skipped = list(registry.problems)
    unbuildable = registry.check_models()  # shown by `mmzoo list` and `mmzoo plugins`, not on every command
    for problem in skipped + (unbuildable if strict else []):
        if strict:
            raise PluginError(f"{problem.dist}: {problem.message} (MMZOO_STRICT_PLUGINS=1 makes this fatal)")
        sys.stderr.write(f"mmzoo: warning: {problem.dist}: {problem.message}; entry skipped\n")
    return PluginState(registry, plugins)

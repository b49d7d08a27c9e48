"""The error types every user-facing mistake is raised as.

All of them derive from :class:`MmzooError`, so a caller can catch one type and the CLI can print
the message alone, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class MmzooError(Exception):
    """Base class of every error mmzoo raises for a user mistake or an unusable input."""


class SpecError(MmzooError, ValueError):
    """A model spec, registry entry or config is malformed; the message says where."""


class ConfigError(SpecError):
    """A training or evaluation config is malformed."""


class UnknownNameError(MmzooError, KeyError):
    """A part, model or dataset name that nothing registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class AmbiguousNameError(MmzooError, LookupError):
    """A bare name that two distributions register; the message lists the qualified choices."""


class PluginError(MmzooError):
    """A plugin failed to import or its hook raised (fatal only with MMZOO_STRICT_PLUGINS=1)."""


class MissingPluginError(UnknownNameError):
    """A spec names a part whose plugin distribution is not installed."""


class BuildError(MmzooError):
    """Parts that cannot be composed: dimensions that do not fit, fusion and head that disagree."""


class WeightsError(MmzooError):
    """Weights that cannot be loaded: missing, corrupt, wrong shapes, refused formats."""


class HubError(MmzooError):
    """The Hub (or a local mirror of it) could not give what was asked for."""


class DatasetError(MmzooError):
    """A dataset that cannot be built or read."""


class StorageError(MmzooError):
    """A file could not be written for lack of room: the disk is full, a quota or a file-size limit was
    reached. The message names the file and the space left."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" Did you mean 'a' or 'b'?"`` for the closest of ``choices``, or ``""``."""
    import difflib

    choices = list(dict.fromkeys(choices))
    scored = sorted(((difflib.SequenceMatcher(None, name, c).ratio(), c) for c in choices), reverse=True)
    best = scored[0][0] if scored else 0.0
    # only the names about as close as the closest: one clear suggestion beats three vague ones
    close = [c for score, c in scored[:n] if score >= 0.6 and score >= best - 0.05]
    if not close:
        lowered = name.lower()
        close = [c for c in choices if lowered and (lowered in c.lower() or c.lower() in lowered)][:n]
    if not close:
        return ""
    quoted = [f"'{c}'" for c in close]
    joined = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" Did you mean {joined}?"

"""Plug-ins found by name through Python entry points, loaded only when asked for.

The core never imports its optional parts (``reference``, ``mapping``): they
declare themselves in ``pyproject.toml`` and are looked up here, as Lava picks
a ProcessModel by tag.  Groups and what an entry point must name:

``neurochip.backends``
    ``factory(net, **kw) -> Backend`` (:class:`neurochip.backend.Backend`):
    ``numba`` (the core), ``torch`` (:mod:`reference.backend`), ``lava``
    (:mod:`mapping.backend`).
``neurochip.exporters``
    ``export(net, path, **kw)`` writing one file: ``lava`` (HDF5, :mod:`mapping.export`).
``neurochip.storage``
    a :class:`neurochip.budget.fit.SynapseStorage`: ``mapped`` (:mod:`mapping.resources`).
``neurochip.measurements``
    ``measure(net, **kw) -> dict | None``: ``bptt_k`` (:mod:`reference.bptt_memory`).

Entry points are read from the installed distribution metadata
(``pip install -e .`` writes them), so a plug-in of another package registers
the same way.
"""
from __future__ import annotations

import importlib.metadata

from .errors import UserError

GROUPS = ("neurochip.backends", "neurochip.exporters", "neurochip.storage",
          "neurochip.measurements")
_WHAT = {"neurochip.backends": "backend", "neurochip.exporters": "exporter",
         "neurochip.storage": "synapse storage", "neurochip.measurements": "measurement"}
#: the core's own plug-ins, found even when the package metadata is absent (a bare checkout)
BUILTIN = {"neurochip.backends": {"numba": "neurochip.backend:NumbaBackend"}}
_loaded: dict[tuple[str, str], object] = {}


class PluginUnavailable(UserError):
    """A plug-in is declared but its module (or a package it needs) cannot be imported."""


def _entry_points(group: str) -> dict:
    if group not in GROUPS:
        raise ValueError(f"unknown plug-in group {group!r}; groups: {', '.join(GROUPS)}")
    found = {name: importlib.metadata.EntryPoint(name, value, group)
             for name, value in BUILTIN.get(group, {}).items()}
    for ep in importlib.metadata.entry_points(group=group):
        if ep.name not in BUILTIN.get(group, {}):
            found.setdefault(ep.name, ep)   # the first distribution on sys.path wins
    return found


def names(group: str) -> list[str]:
    """Names declared in ``group``, sorted (nothing is imported)."""
    return sorted(_entry_points(group))


def get(group: str, name: str):
    """The object the entry point ``name`` of ``group`` names, imported on first use.

    Raises :class:`~neurochip.errors.UserError` for an unknown name (listing the
    known ones) and :class:`PluginUnavailable` when its module cannot be imported.
    """
    key = (group, name)
    if key in _loaded:
        return _loaded[key]
    eps = _entry_points(group)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none (is neurochip installed? pip install -e .)"
        raise UserError(f"unknown {_WHAT[group]} {name!r}; available: {known}")
    try:
        obj = eps[name].load()
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise PluginUnavailable(f"{_WHAT[group]} {name!r} needs {missing}, which is not "
                                "installed here") from None
    _loaded[key] = obj
    return obj


def available(group: str, name: str) -> bool:
    """Whether ``name`` is declared in ``group`` and imports."""
    try:
        get(group, name)
    except UserError:
        return False
    return True

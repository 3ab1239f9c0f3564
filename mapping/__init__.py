"""Lava mapping of neurochip networks: bit-exact fixed_pt processes, export, resources.

``to_lava(network)`` (Lava processes, :mod:`mapping.builder`), ``export_lava`` /
``load_lava`` (HDF5, :mod:`mapping.export`; its netx part, which lava-dl netx
loads, is :mod:`mapping.netx`) and ``check_resources`` (Loihi budgets,
:mod:`mapping.resources`).  Lava itself (lava-nc 0.10, Python 3.10) is
imported only when processes are built; the resource checks and the HDF5
export need only NumPy and h5py.  Lava Processes and ProcessModels live in the
import-safe sub-package :mod:`mapping.procs` (lava.md pitfall P1).
"""
from __future__ import annotations

__all__ = ["to_lava", "LavaNet", "LavaBackend", "export_lava", "load_lava", "load_network",
           "check_resources", "ResourceError", "MappingError"]


def __getattr__(name):   # lazy: importing ``mapping`` never imports Lava
    if name in ("to_lava", "LavaNet"):
        from . import builder
        return getattr(builder, name)
    if name == "LavaBackend":
        from .backend import LavaBackend
        return LavaBackend
    if name in ("export_lava", "load_lava", "load_network"):
        from . import export
        return getattr(export, name)
    if name in ("check_resources", "ResourceError"):
        from . import resources
        return getattr(resources, name)
    if name == "MappingError":
        from .layout import MappingError
        return MappingError
    raise AttributeError(f"module 'mapping' has no attribute {name!r}")

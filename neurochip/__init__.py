"""neurochip: spiking convolutional networks that learn on-chip with Equilibrium Propagation,
every number a B-bit integer (docs/numerics.md).

The Python API (docs/api.md)::

    import neurochip as nc
    net = nc.Network.from_preset("digits", bits=8, seed=0)      # or nc.Network.create(arch, ...)
    data = nc.load_dataset("digits")                            # or nc.Dataset.from_arrays(x, y, ...)
    run = nc.train(net, data, epochs=2, callbacks=[nc.PrintProgress()])
    print(nc.evaluate(net, data).error)
    nc.save_checkpoint("net.npz", net)
    print(nc.format_report(nc.budget_report(net, run.tally)))

Names are imported on first use, so ``import neurochip`` stays cheap.
"""
from __future__ import annotations

import importlib

from ._version import __version__

#: public name -> module that defines it
_EXPORTS = {
    # the network description and presets
    "Architecture": "network", "Hyper": "network", "Widths": "network", "Network": "network",
    "Preset": "network", "PRESETS": "network", "get_preset": "network",
    # data
    "Dataset": "dataset", "load_dataset": "data", "load_digits": "data", "DATASETS": "data",
    # training and evaluation
    "train": "training", "evaluate": "training", "Evaluation": "training", "TrainingRun": "training",
    "load_run": "training", "output_states": "training",
    "evaluate_ensemble": "ensemble", "EnsembleEvaluation": "ensemble",
    "fit": "trainer", "train_step": "trainer", "train_epoch": "trainer", "epoch_order": "trainer",
    "Tally": "trainer", "TrainingState": "trainer", "Callback": "trainer", "StopTraining": "trainer",
    "EarlyStopping": "trainer", "PrintProgress": "trainer", "LambdaCallback": "trainer",
    # checkpoints
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    # the hardware budget
    "budget_report": "training", "format_report": ("budget.report", "format_table"),
    "write_report": ("budget.report", "write_report"),
    # backends by name
    "Backend": "backend", "make_backend": "backend", "backend_names": "backend",
    # errors
    "UserError": "errors", "DataError": "errors", "CheckpointError": "errors",
    "ArchitectureError": "errors",
}
_SUBMODULES = ("registry", "numerics", "trainer", "training", "budget", "backend", "network",
               "data", "dataset", "checkpoint", "errors", "ensemble")

__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]


def __getattr__(name: str):
    if name in _EXPORTS:
        where = _EXPORTS[name]
        module, attr = where if isinstance(where, tuple) else (where, name)
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'neurochip' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

"""Training and evaluation for Python users: a network, a dataset, a backend by name.

These wrap :mod:`neurochip.trainer` (the loops over quantised arrays that the
command line uses too), so a run here and ``python -m neurochip.run`` with the
same settings give the same integers::

    import neurochip as nc
    net = nc.Network.from_preset("digits", bits=8)
    data = nc.load_dataset("digits")
    run = nc.train(net, data, epochs=2, callbacks=[nc.PrintProgress()])
    print(nc.evaluate(net, data).error)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import trainer
from .backend import make_backend
from .dataset import Dataset
from .errors import DataError
from .network import Network


class Evaluation(NamedTuple):
    """Free-phase result on a set of samples.

    error: error fraction; loss: mean MSE loss; confusion: int64 counts, shape (classes,
    classes), row = true label, column = predicted class (its trace is the number right).
    """

    error: float
    loss: float
    confusion: np.ndarray

    @property
    def error_by_class(self) -> np.ndarray:
        """Error fraction per true class, shape (classes,), float64; NaN for a class with no sample."""
        return trainer.error_by_class(self.confusion)


@dataclass
class TrainingRun:
    """What :func:`train` returns: the trained ``net`` (trained in place), the loop's
    :class:`~neurochip.trainer.TrainingState` (history, position: pass it back as
    ``state=`` to continue), the counts (:class:`~neurochip.trainer.Tally`) and the backend."""

    net: Network
    state: trainer.TrainingState
    tally: trainer.Tally
    backend: object

    @property
    def history(self) -> list[dict]:
        return self.state.history

    def save(self, path: str, dataset: str | None = None) -> None:
        """Checkpoint the network, the run's position and its counts (atomically).

        Continue with :func:`load_run`; ``python -m neurochip.run --load PATH``
        evaluates the file, and ``--resume PATH --dataset NAME`` continues it
        when ``dataset`` names one of the bundled datasets.
        """
        from .checkpoint import save_checkpoint
        training = {**self.state.state_dict(), "tally": self.tally.state_dict()}
        if dataset is not None:
            training["dataset"] = dataset
        save_checkpoint(path, self.net, training)


def check_fits(net: Network, data: Dataset) -> None:
    """Refuse data whose image shape or labels the network cannot take (one-line DataError)."""
    if tuple(data.input_shape) != tuple(net.arch.input_shape):
        raise DataError(f"dataset {data.name} has images of shape {data.input_shape}, but the "
                        f"architecture {net.arch} expects {net.arch.input_shape}")
    for part, y in (("training", data.train_y), ("test", data.test_y)):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= net.arch.num_classes):
            raise DataError(f"dataset {data.name}: {part} labels must be in "
                            f"[0, {net.arch.num_classes - 1}] for {net.arch}")


def _backend(net: Network, backend, options: dict):
    return make_backend(net, backend, **options) if isinstance(backend, str) else backend


def _release(backend, made_here: bool) -> None:
    """Stop the live processes of a backend made here by name (Lava); it restarts on next use."""
    close = getattr(backend, "close", None)
    if made_here and callable(close):
        close()


def train(net: Network, data: Dataset, epochs: int = 1, *, backend="numba", callbacks=(),
          evaluate_on: tuple[np.ndarray, np.ndarray] | None = None,
          state: trainer.TrainingState | None = None, tally: trainer.Tally | None = None,
          lr_schedule=None, augment=None, **backend_options) -> TrainingRun:
    """Train ``net`` in place on ``data``'s training split for ``epochs`` epochs.

    Parameters
    ----------
    backend : a registered backend name (``neurochip.backend_names()``: 'numba', 'torch', ...)
        or a backend object; ``backend_options`` go to its factory (``device='cuda'``).
    callbacks : :class:`~neurochip.trainer.Callback` s, called per batch and per epoch.
    evaluate_on : ``(images, labels)`` (raw pixels like ``data.train_x``) evaluated after every
        epoch into the history (``val_error``/``val_loss`` keys).  Use a validation split
        carved from the training set for any choice; keep the test split for the end.
    state, tally : continue an earlier run (``run.state``, ``run.tally``).
    lr_schedule : a :class:`neurochip.schedule.LRSchedule` (per-epoch factor on every
        layer's rate, recorded as ``lr_factor``); None: the rates as given.
    augment : a :class:`neurochip.augment.Augment` (random left-right mirroring and
        whole-pixel shifts of the training images, a pure function of seed and epoch);
        None: images as given.
    """
    check_fits(net, data)
    if augment is not None:
        augment.validate(tuple(net.arch.input_shape[1:]))
    be = _backend(net, backend, backend_options)
    sbits = net.widths.state_bits
    tally = tally if tally is not None else trainer.Tally.zeros(net.arch.n_layers)
    validation = None
    if evaluate_on is not None:
        validation = (data.quantised(np.asarray(evaluate_on[0]), sbits), np.asarray(evaluate_on[1]))
    try:
        st = trainer.fit(be, net, data.quantised(data.train_x, sbits), data.train_y, epochs,
                         validation=validation, tally=tally, callbacks=callbacks, state=state,
                         lr_schedule=lr_schedule, augment=augment)
    finally:
        _release(be, isinstance(backend, str))
    return TrainingRun(net, st, tally, be)


def load_run(path: str, *, backend="numba", **backend_options) -> TrainingRun:
    """A :class:`TrainingRun` from a checkpoint (:meth:`TrainingRun.save`, ``--save``): continue
    it with ``nc.train(run.net, data, epochs, state=run.state, tally=run.tally)``."""
    from .checkpoint import load_checkpoint
    net, training = load_checkpoint(path)
    training = training or {}
    tally = trainer.Tally.zeros(net.arch.n_layers)
    if isinstance(training.get("tally"), dict):
        tally.load_state_dict(training["tally"])
    return TrainingRun(net, trainer.TrainingState.from_state_dict(training), tally,
                       _backend(net, backend, backend_options))


def split_arrays(data: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``data``'s ``split`` ('test' or 'train') as ``(images, labels)``; another name is a DataError."""
    if split not in ("test", "train"):
        raise DataError(f"split must be 'test' or 'train', got {split!r}")
    return (data.test_x, data.test_y) if split == "test" else (data.train_x, data.train_y)


def evaluate(net: Network, data: Dataset, split: str = "test", *, backend="numba",
             batch_size: int = 256, tally: trainer.Tally | None = None,
             **backend_options) -> Evaluation:
    """Free-phase error and loss of ``net`` on ``data``'s ``split`` ('test' or 'train')."""
    check_fits(net, data)
    x, y = split_arrays(data, split)
    be = _backend(net, backend, backend_options)
    try:
        confusion = np.zeros((net.arch.num_classes, net.arch.num_classes), np.int64)
        err, loss = trainer.evaluate(be, net, data.quantised(x, net.widths.state_bits), y,
                                     batch_size=batch_size, tally=tally, confusion=confusion)
    finally:
        _release(be, isinstance(backend, str))
    return Evaluation(err, loss, confusion)


def output_states(net: Network, data: Dataset, split: str = "test", *, backend="numba",
                  batch_size: int = 256, **backend_options) -> tuple[np.ndarray, np.ndarray]:
    """Free phase only: ``(s_free, predictions)`` of every sample of ``data``'s ``split``.

    ``s_free``: int64 ``(N, classes)``, the output state after the free phase (state units:
    ``2**net.widths.state_bits`` is 1.0); ``predictions``: int64 ``(N,)``, the predicted
    classes (the first maximum of each row of ``s_free``).  What :mod:`neurochip.ensemble` sums.
    """
    check_fits(net, data)
    x, _ = split_arrays(data, split)
    be = _backend(net, backend, backend_options)
    try:
        return trainer.output_states(be, net, data.quantised(x, net.widths.state_bits),
                                     batch_size=batch_size)
    finally:
        _release(be, isinstance(backend, str))


def budget_report(net: Network, tally: trainer.Tally | None = None, data: Dataset | None = None,
                  sample: int = 0, **options) -> dict:
    """The hardware-budget report (:mod:`neurochip.budget`) of ``net``.

    ``tally``: the counts of a run (``run.tally``); ``data``: record test image
    ``sample`` too (spike raster, per-sample synaptic operations, NeuroBench
    metrics).  ``options`` go to :func:`neurochip.budget.report.build_report`
    (``chips=``, ``mem_batch=``, ...).  Print it with ``nc.format_report(report)``.
    """
    from .budget.report import build_report, simulate_sample
    counts = raster = None
    if data is not None:
        check_fits(net, data)
        x = data.quantised(data.test_x[sample:sample + 1], net.widths.state_bits)[0]
        counts, raster, _ = simulate_sample(net, x, int(data.test_y[sample]), train=True)
    return build_report(net, tally, sample_counts=counts, sample_raster=raster, **options)

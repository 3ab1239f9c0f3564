"""Training and evaluation loops, independent of the backend that simulates.

A *backend* (:mod:`neurochip.backend`) simulates batches (``run``) and
re-reads the parameters after an update (``refresh``).  The Numba core is the
default; others plug in by name through :mod:`neurochip.registry`.  The EP
update itself is the core's :mod:`neurochip.learning`, shared by all backends.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import learning
from .backend import Backend, NumbaBackend, backend_names, layer_traces, make_backend  # noqa: F401
from .kinds import COUNT_NAMES, K_SAT_DEC, K_SAT_INPUT, K_SAT_PSI, K_SPIKES, N_COUNTS, PHASES
from .network import Network


@dataclass
class Tally:
    """Counts the core took while running, summed (int64)."""

    counts: np.ndarray                       # (3 phases, L+1 layers, N_COUNTS)
    samples_train: int = 0
    samples_eval: int = 0
    learning_products: np.ndarray | None = None
    weight_writes: np.ndarray | None = None
    weight_saturations: np.ndarray | None = None
    bias_saturations: np.ndarray | None = None
    updates: int = 0

    @staticmethod
    def zeros(n_layers: int) -> "Tally":
        z = np.zeros(n_layers, np.int64)
        return Tally(np.zeros((3, n_layers + 1, N_COUNTS), np.int64), 0, 0, z.copy(), z.copy(),
                     z.copy(), z.copy())

    def saturations(self) -> dict:
        c = self.counts
        return {"input_alignment": int(c[..., K_SAT_INPUT].sum()),
                "decoder": int(c[..., K_SAT_DEC].sum()),
                "encoder": int(c[..., K_SAT_PSI].sum()),
                "weights": int(self.weight_saturations.sum()),
                "biases": int(self.bias_saturations.sum())}

    def total_saturations(self) -> int:
        return int(sum(self.saturations().values()))

    def free_spikes_per_sample(self) -> list[float]:
        """Per layer 1..L, the free-phase spikes per sample (every sample counted: trained and
        evaluated ones alike run the free phase), summed over its ``T1`` steps; 0.0 with no sample."""
        n = max(self.samples_train + self.samples_eval, 1)
        return [float(v) / n for v in self.counts[0, 1:, K_SPIKES]]

    def state_dict(self) -> dict:
        """Everything, as JSON-ready lists (a checkpoint's ``training["tally"]``)."""
        return {"counts": self.counts.ravel().tolist(), "samples_train": int(self.samples_train),
                "samples_eval": int(self.samples_eval), "updates": int(self.updates),
                "learning_products": self.learning_products.tolist(),
                "weight_writes": self.weight_writes.tolist(),
                "weight_saturations": self.weight_saturations.tolist(),
                "bias_saturations": self.bias_saturations.tolist()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output (KeyError/TypeError/ValueError if malformed)."""
        self.counts[...] = np.asarray(state["counts"], np.int64).reshape(self.counts.shape)
        self.samples_train = int(state["samples_train"])
        self.samples_eval = int(state["samples_eval"])
        self.updates = int(state["updates"])
        for key in ("learning_products", "weight_writes", "weight_saturations", "bias_saturations"):
            arr = getattr(self, key)
            arr[...] = np.asarray(state[key], np.int64).reshape(arr.shape)

    def as_dict(self) -> dict:
        per_phase = {}
        for p, pname in enumerate(PHASES):
            per_phase[pname] = {name: [int(v) for v in self.counts[p, :, k]]
                                for k, name in enumerate(COUNT_NAMES)}
        return {"per_phase_per_layer": per_phase, "samples_train": self.samples_train,
                "samples_eval": self.samples_eval, "updates": self.updates,
                "learning_products": [int(v) for v in self.learning_products],
                "weight_writes": [int(v) for v in self.weight_writes],
                "saturations": self.saturations()}


@dataclass
class StepResult:
    """One update: predictions, loss, update statistics, and (for diagnostics,
    :mod:`neurochip.health`) the per-layer traces and contrastive sums."""

    predictions: np.ndarray
    loss: float
    stats: learning.UpdateStats | None = None
    traces: list | None = None
    grads: list | None = None


def mse_loss(net: Network, s_free: np.ndarray, labels: np.ndarray) -> float:
    """``1/2 sum_k (s_k - y_k)^2`` of the free-phase output, mean over the batch."""
    one = 1 << net.widths.state_bits
    y = np.zeros_like(s_free, dtype=np.float64)
    y[np.arange(len(labels)), labels] = 1.0
    return float(0.5 * ((s_free / one - y) ** 2).sum(axis=1).mean())


def train_step(backend, net: Network, x_fp: np.ndarray, labels: np.ndarray,
               tally: Tally | None = None, lr_factor: float = 1.0) -> StepResult:
    """One EP update on a minibatch: three phases, contrastive sums, update.

    ``lr_factor`` scales every layer's learning rate (a schedule's factor).
    """
    res = backend.run(x_fp, labels, train=True)
    traces = backend.layer_traces(res)
    grads = learning.contrastive(net, traces)
    stats = learning.update_network(net, grads, lr_factor)
    backend.refresh()
    if tally is not None:
        tally.counts += res.counts.sum(axis=0)
        tally.samples_train += len(labels)
        tally.learning_products += learning.learning_products(net, len(labels))
        tally.weight_writes += stats.weight_writes
        tally.weight_saturations += stats.weight_saturations
        tally.bias_saturations += stats.bias_saturations
        tally.updates += 1
    return StepResult(res.predictions, mse_loss(net, res.s_free, labels), stats, traces, grads)


def free_batches(backend, x_fp: np.ndarray, labels: np.ndarray | None, batch_size: int = 256):
    """The free phase over ``x_fp`` in batches of ``batch_size``: yields ``(slice, BatchResult)``
    in sample order (``labels`` may be None: a free phase does not read them)."""
    for start in range(0, len(x_fp), batch_size):
        sl = slice(start, start + batch_size)
        yield sl, backend.run(x_fp[sl], None if labels is None else labels[sl], train=False)


def evaluate(backend, net: Network, x_fp: np.ndarray, labels: np.ndarray, batch_size: int = 256,
             tally: Tally | None = None, progress=None,
             confusion: np.ndarray | None = None) -> tuple[float, float]:
    """Free phase only; returns ``(error fraction, mean MSE loss)``.

    ``confusion``: if given, an int64 array of shape (classes, classes) to which each sample
    adds 1 at [true label, predicted class] (the same pass: no second inference).
    """
    wrong = 0
    loss = 0.0
    for sl, res in free_batches(backend, x_fp, labels, batch_size):
        wrong += int((res.predictions != labels[sl]).sum())
        if confusion is not None:
            np.add.at(confusion, (np.asarray(labels[sl], np.int64), np.asarray(res.predictions, np.int64)), 1)
        loss += mse_loss(net, res.s_free, labels[sl]) * len(res.predictions)
        if tally is not None:
            tally.counts += res.counts.sum(axis=0)
            tally.samples_eval += len(res.predictions)
        if progress is not None:
            progress(len(res.predictions))
    return wrong / max(len(labels), 1), loss / max(len(labels), 1)


def output_states(backend, net: Network, x_fp: np.ndarray, batch_size: int = 256, progress=None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Free phase only: ``(s_free, predictions)`` of every sample of ``x_fp``.

    ``s_free``: int64 ``(N, classes)``, the output state after the free phase (state units:
    ``2**state_bits`` is 1.0); ``predictions``: int64 ``(N,)``, the backend's predicted classes
    (the first maximum of ``s_free``, docs/numerics.md).
    """
    states, preds = [], []
    for _, res in free_batches(backend, x_fp, None, batch_size):
        states.append(np.asarray(res.s_free, np.int64))
        preds.append(np.asarray(res.predictions, np.int64))
        if progress is not None:
            progress(len(res.predictions))
    if not states:
        return np.zeros((0, net.arch.num_classes), np.int64), np.zeros(0, np.int64)
    return np.concatenate(states), np.concatenate(preds)


def error_by_class(confusion: np.ndarray) -> np.ndarray:
    """Error fraction per true class (rows of ``confusion``, see :func:`evaluate`): the share of
    its samples predicted as another class; shape (classes,), float64; NaN for a class with none."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, 1.0 - np.diag(confusion) / totals, np.nan)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The shuffled sample order of an epoch: a pure function of (seed, epoch)."""
    return np.random.Generator(np.random.PCG64([seed, epoch])).permutation(n)


def train_epoch(backend, net: Network, x_fp, labels, epoch: int, tally: Tally | None = None,
                start_batch: int = 0, on_batch=None, lr_factor: float = 1.0,
                augment=None) -> tuple[float, float]:
    """One epoch of minibatch EP; returns (train error on the fly, mean loss).

    ``x_fp``: int64 ``(N, N0)`` quantised pixels; ``labels``: int ``(N,)``.
    ``tally`` (optional) accumulates the counts; ``start_batch`` skips batches
    already done (resume); ``on_batch(i, step, wrong)`` is called after each
    update with the batch's misclassified count (progress, partial sums,
    checkpoints); ``lr_factor`` scales every layer's learning rate in this
    epoch (a schedule's factor); ``augment`` (a :class:`neurochip.augment.Augment`,
    optional) mirrors and translates each training image as the epoch's moves of its
    sample say (so the train error on the fly is measured on the moved images).
    :func:`fit` runs whole trainings with callbacks.
    """
    bs = net.hyper.batch_size
    order = epoch_order(net.seed, epoch, len(labels))
    moves = None
    if augment is not None and augment.active:
        moves = augment.epoch_moves(net.seed, epoch, len(labels))
    n_batches = len(labels) // bs
    wrong = 0
    loss = 0.0
    seen = 0
    for i in range(start_batch, n_batches):
        idx = order[i * bs:(i + 1) * bs]
        xb = x_fp[idx] if moves is None else augment.apply(x_fp[idx], net.arch.input_shape, moves, idx)
        step = train_step(backend, net, xb, labels[idx], tally, lr_factor)
        batch_wrong = int((step.predictions != labels[idx]).sum())
        wrong += batch_wrong
        loss += step.loss * bs
        seen += bs
        if on_batch is not None:
            on_batch(i, step, batch_wrong)
    return wrong / max(seen, 1), loss / max(seen, 1)


# ------------------------------------------------------------------ fit, callbacks
class StopTraining(Exception):
    """Raised by a callback to end :func:`fit` at the next consistent point (after the batch)."""


@dataclass
class TrainingState:
    """Where a training run stands; everything a checkpoint needs to resume it bit for bit.

    ``epoch``/``batch``: the next batch to run (``batch`` batches of ``epoch``
    are done); ``wrong``, ``loss``, ``seen``: the current epoch's partial sums
    of misclassified samples, summed loss and samples; ``history``: one record
    per finished epoch; ``train_seconds``: wall time spent in training batches.
    """

    epochs: int
    epoch: int = 0
    batch: int = 0
    wrong: int = 0
    loss: float = 0.0
    seen: int = 0
    train_seconds: float = 0.0
    history: list = field(default_factory=list)
    stopped: bool = False           # a callback raised StopTraining

    @property
    def finished(self) -> bool:
        return self.epoch >= self.epochs

    def state_dict(self) -> dict:
        """The position as a checkpoint's ``training`` keys (JSON-ready)."""
        return {"epoch": self.epoch, "batch": self.batch, "epochs": self.epochs,
                "history": self.history,
                "partial": {"wrong": self.wrong, "loss": self.loss, "seen": self.seen},
                "train_seconds": round(self.train_seconds, 6)}

    @staticmethod
    def from_state_dict(state: dict, epochs: int | None = None) -> "TrainingState":
        """A state from :meth:`state_dict`'s keys (missing keys: the start of training)."""
        partial = state.get("partial") or {}
        return TrainingState(
            epochs=int(epochs if epochs is not None else state.get("epochs") or 0),
            epoch=int(state.get("epoch", 0)), batch=int(state.get("batch", 0)),
            wrong=int(partial.get("wrong", 0)), loss=float(partial.get("loss", 0.0)),
            seen=int(partial.get("seen", 0)), train_seconds=float(state.get("train_seconds", 0.0)),
            history=list(state.get("history", [])))


@dataclass
class BatchEnd:
    """What :meth:`Callback.on_batch_end` receives: the batch index in its epoch, its
    :class:`StepResult` and its count of misclassified samples."""

    index: int
    step: StepResult
    wrong: int


class Callback:
    """Hooks into :func:`fit`; override the ones you need (each gets the :class:`TrainingState`).

    Raise :class:`StopTraining` from any hook to stop after the current batch
    (progress bars, logging, checkpoints, early stopping, schedules).
    """

    def on_train_begin(self, state: TrainingState) -> None: ...

    def on_epoch_begin(self, state: TrainingState) -> None: ...

    def on_batch_end(self, state: TrainingState, batch: BatchEnd) -> None: ...

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        """``record`` is the epoch's history entry (already appended); a hook may add keys."""

    def on_train_end(self, state: TrainingState) -> None: ...


def fit(backend, net: Network, x_fp: np.ndarray, labels: np.ndarray, epochs: int, *,
        test: tuple[np.ndarray, np.ndarray] | None = None,
        validation: tuple[np.ndarray, np.ndarray] | None = None, lr_schedule=None,
        tally: Tally | None = None, callbacks=(), state: TrainingState | None = None,
        clock=None, augment=None) -> TrainingState:
    """Train ``net`` for ``epochs`` epochs of minibatch EP, calling ``callbacks`` on the way.

    Parameters
    ----------
    x_fp, labels : int64 ``(N, N0)`` quantised pixels and int ``(N,)`` labels.
    test : optional ``(x_fp, labels)`` evaluated (free phase) after every epoch;
        its error and loss go into the epoch's history record as ``test_error``
        and ``test_loss`` (the CLI's per-epoch figure; never for choices).
    validation : optional ``(x_fp, labels)`` of a validation split carved from the
        training set, evaluated after every epoch before ``test`` (``val_error``,
        ``val_loss`` in the record), for choices and best-on-validation weights.
    lr_schedule : optional :class:`neurochip.schedule.LRSchedule` (anything with
        ``factor(epoch, epochs)``): every layer's rate times that factor in the
        epoch, recorded as ``lr_factor``; None: the rates as given.
    tally : optional :class:`Tally` accumulating the training counts.
    state : a :class:`TrainingState` to continue (resume); default: a new one.
    clock : seconds counter (default ``time.perf_counter``).
    augment : optional :class:`neurochip.augment.Augment`: training images mirrored
        and moved by random whole-pixel shifts, a pure function of (seed, epoch)
        (validation and test images never).

    Each history record holds ``epoch`` (1-based), ``train_error_on_the_fly``,
    ``train_loss``, with ``validation``: ``val_error``, ``val_loss`` and
    ``val_spikes_per_sample`` (per layer 1..L, free-phase spikes per validation
    sample: the hidden activity :mod:`neurochip.health` watches), with ``test``:
    ``test_error``, ``test_loss``, and ``seconds``.  Returns the final state
    (``stopped`` when a callback stopped it).
    """
    import time
    clock = clock or time.perf_counter
    st = state if state is not None else TrainingState(epochs=epochs)
    st.epochs = epochs
    bs = net.hyper.batch_size
    cbs = list(callbacks)

    def each(hook, *args):
        for cb in cbs:
            getattr(cb, hook)(st, *args)

    try:
        each("on_train_begin")
        while st.epoch < epochs:
            epoch = st.epoch
            each("on_epoch_begin")
            t_epoch = clock()
            t_last = [t_epoch]

            def on_batch(i, step, wrong):
                now = clock()
                st.train_seconds += now - t_last[0]
                t_last[0] = now
                st.wrong += wrong
                st.loss += step.loss * bs
                st.seen += bs
                st.batch = i + 1
                each("on_batch_end", BatchEnd(i, step, wrong))

            factor = 1.0 if lr_schedule is None else lr_schedule.factor(epoch, epochs)
            train_epoch(backend, net, x_fp, labels, epoch, tally, st.batch, on_batch, factor, augment)
            record = {"epoch": epoch + 1, "train_error_on_the_fly": st.wrong / max(st.seen, 1),
                      "train_loss": st.loss / max(st.seen, 1)}
            if lr_schedule is not None:
                record["lr_factor"] = factor
            if validation is not None:
                val_tally = Tally.zeros(net.arch.n_layers)
                record["val_error"], record["val_loss"] = evaluate(backend, net, validation[0],
                                                                   validation[1], tally=val_tally)
                record["val_spikes_per_sample"] = val_tally.free_spikes_per_sample()
            if test is not None:
                record["test_error"], record["test_loss"] = evaluate(backend, net, test[0], test[1])
            record["seconds"] = round(clock() - t_epoch, 3)
            st.history.append(record)
            st.epoch, st.batch = epoch + 1, 0
            st.wrong, st.loss, st.seen = 0, 0.0, 0
            each("on_epoch_end", record)
    except StopTraining:
        st.stopped = True
    each("on_train_end")
    return st


class EarlyStopping(Callback):
    """Stop when ``monitor`` (a history key, lower is better) has not improved for ``patience`` epochs.

    Choose on a validation split, never on the test set:
    ``neurochip.train(..., evaluate_on=validation)`` records ``val_error``.
    """

    def __init__(self, monitor: str = "val_error", patience: int = 3, min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best = float("inf")
        self.bad_epochs = 0

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        value = record[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                raise StopTraining


class PrintProgress(Callback):
    """One line per epoch (to ``stream``, default stderr)."""

    def __init__(self, stream=None):
        self.stream = stream

    def on_epoch_end(self, state: TrainingState, record: dict) -> None:
        import sys
        test = "".join(f", {key[:-6]} error {record[key]:.2%}" for key in record
                       if key.endswith("_error") and key != "train_error_on_the_fly")
        print(f"epoch {record['epoch']}/{state.epochs}: train error "
              f"{record['train_error_on_the_fly']:.2%} (on the fly){test}, {record['seconds']:.1f} s",
              file=self.stream or sys.stderr)


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_batch_end=lambda state, b: ...)``."""

    def __init__(self, **hooks):
        for name, fn in hooks.items():
            if not hasattr(Callback, name):
                raise TypeError(f"unknown hook {name!r}")
            setattr(self, name, fn)

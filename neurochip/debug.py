"""Debug mode: assert that every chip register stays within its declared width.

Enabled by ``python -m neurochip.run --debug`` or the environment variable
``NEUROCHIP_DEBUG=1`` (the test suite sets it).  :class:`DebugBackend` wraps
any backend (Numba core or PyTorch reference): every batch is simulated with
``record=True`` (in chunks of samples when the recording would be large;
samples are independent, so the integers are the same) and, after each batch
and each weight update, the values are checked against docs/numerics.md §2:

* state ``s`` and encoder memory ``enc_prev``: ``[0, ONE]`` (S+1 bits unsigned);
* decoder ``dec`` and encoder residue ``psi``: the 24-bit signed register;
* spikes: {0, 1}; traces: ``[0, 2**Bt - 1]``; max-pool argmax: ``[0, 3]``;
* free-phase output ``s``: ``[0, ONE]``; every count: ``>= 0``;
* weights: ``signed_range(Bw)``, biases: ``signed_range(Bb)``, int32, the
  architecture's shapes; the update counter advances by one per update.

A violation raises :class:`RegisterWidthError` naming the register, layer,
phase, sample and value.  It is an internal error (a bug in an execution),
never a user error.
"""
from __future__ import annotations

import os

import numpy as np

from . import numerics as nx
from .network import Network

ENV_VAR = "NEUROCHIP_DEBUG"
RECORD_BYTES = 64 << 20          # recorded arrays per chunk of samples, at most


class RegisterWidthError(AssertionError):
    """A register held a value outside its declared width (debug mode)."""


def enabled(flag: bool = False) -> bool:
    """``--debug`` given, or ``NEUROCHIP_DEBUG`` set to anything but '', 0, false, no, off."""
    env = os.environ.get(ENV_VAR, "").strip().lower()
    return bool(flag) or env not in ("", "0", "false", "no", "off")


def _layer_of(offsets: list[int], sizes: list[int], index: int) -> int:
    for l, (o, n) in enumerate(zip(offsets, sizes)):
        if o <= index < o + n:
            return l
    return -1


def _fail_range(what: str, arr: np.ndarray, lo: int, hi: int, where) -> None:
    bad = np.flatnonzero((arr < lo) | (arr > hi))
    if bad.size:
        pos = np.unravel_index(int(bad[0]), arr.shape)
        value = int(arr[pos])
        raise RegisterWidthError(f"debug: {what} = {value} outside [{lo}, {hi}] at {where(pos)} "
                                 f"({bad.size} values out of range)")


def check_batch(net: Network, res, train: bool, layout=None, sample0: int = 0) -> None:
    """Check one :class:`neurochip.core.BatchResult` (recorded or not) against §2."""
    from .core import CoreLayout, PHASES, REC_DEC, REC_ENC_PREV, REC_PSI, REC_S
    layout = layout or CoreLayout.build(net)
    one = 1 << net.widths.state_bits
    tmax = (1 << net.widths.trace_bits) - 1
    offs, sizes = layout.offsets, layout.sizes
    n_phases = 3 if train else 1

    def neuron(pos, phase_axis=None):
        b, n = pos[0], pos[-1]
        ph = f", phase {PHASES[pos[phase_axis]]}" if phase_axis is not None else ""
        return f"sample {sample0 + b}, layer {_layer_of(offs, sizes, n)}, neuron {n}{ph}"

    if res.rec_state is not None:
        st = res.rec_state[:, :n_phases]
        where = lambda pos: neuron((pos[0], pos[1], pos[2]), 1)   # noqa: E731  (b, phase, n)
        _fail_range("state s", st[:, :, REC_S], 0, one, where)
        _fail_range("encoder memory enc_prev", st[:, :, REC_ENC_PREV], 0, one, where)
        _fail_range("decoder dec", st[:, :, REC_DEC], nx.REG_MIN, nx.REG_MAX, where)
        _fail_range("encoder residue psi", st[:, :, REC_PSI], nx.REG_MIN, nx.REG_MAX, where)
    if res.rec_spikes is not None:
        _fail_range("spike q", res.rec_spikes, 0, 1,
                    lambda pos: f"sample {sample0 + pos[0]}, step {pos[1] + 1}, "
                                f"layer {_layer_of(offs, sizes, pos[2])}")
    _fail_range("free-phase output s", res.s_free, 0, one,
                lambda pos: f"sample {sample0 + pos[0]}, output {pos[1]}")
    if train:
        _fail_range("trace", res.traces, 0, tmax, lambda pos: neuron((pos[0], pos[2])) +
                    f", {'+beta' if pos[1] == 0 else '-beta'} trace")
        _fail_range("max-pool argmax", res.pool_idx, 0, 3,
                    lambda pos: f"sample {sample0 + pos[0]}, slot {pos[2]}")
    _fail_range("count", res.counts, 0, np.iinfo(np.int64).max,
                lambda pos: f"sample {sample0 + pos[0]}, index {pos[1:]}")


def check_parameters(net: Network) -> None:
    """Weights and biases within their widths, int32, of the architecture's shapes."""
    w_lo, w_hi = nx.signed_range.py_func(net.widths.weight_bits)
    b_lo, b_hi = nx.signed_range.py_func(net.widths.bias_bits)
    arch = net.arch
    for l, (w, b, ws, bs) in enumerate(zip(net.weights_q, net.biases_q, arch.weight_shapes(),
                                           arch.bias_shapes()), start=1):
        for what, arr, shape in (("weights", w, ws), ("biases", b, bs)):
            if arr.dtype != np.int32 or tuple(arr.shape) != tuple(shape):
                raise RegisterWidthError(f"debug: layer {l} {what} are {arr.dtype} {arr.shape}, "
                                         f"expected int32 {tuple(shape)}")
        _fail_range(f"layer {l} weight", w, w_lo, w_hi, lambda pos: f"index {tuple(map(int, pos))}")
        _fail_range(f"layer {l} bias", b, b_lo, b_hi, lambda pos: f"index {tuple(map(int, pos))}")


def _concat(parts: list):
    from .core import BatchResult
    if len(parts) == 1:
        return parts[0]
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts], axis=0)  # noqa: E731
    return BatchResult(cat("traces"), cat("pool_idx"), cat("s_free"), cat("predictions"),
                       cat("counts"))


class DebugBackend:
    """Wraps a backend; checks every batch and every update (see the module doc)."""

    def __init__(self, inner, net: Network, record_bytes: int = RECORD_BYTES):
        from .core import CoreLayout
        self.inner = inner
        self.net = net
        self.layout = CoreLayout.build(net)
        self.record_bytes = record_bytes
        self.batches_checked = 0
        self.updates_checked = 0
        self._updates = net.updates
        check_parameters(net)

    def __getattr__(self, name):          # layer_traces, name, device, core, ...
        return getattr(self.inner, name)

    def _chunk(self, train: bool) -> int:
        h = self.net.hyper
        steps = h.t1 + (2 * h.t2 if train else 0)
        per_sample = self.layout.n_all * (steps + 3 * 4 * 8)
        return max(1, self.record_bytes // max(per_sample, 1))

    def run(self, x_fp, labels=None, train=True, record=False):
        if record:
            res = self.inner.run(x_fp, labels, train, True)
            check_batch(self.net, res, train, self.layout)
            self.batches_checked += 1
            return res
        chunk = self._chunk(train)
        if len(x_fp) == 0:
            return self.inner.run(x_fp, labels, train, False)
        parts = []
        for start in range(0, len(x_fp), chunk):
            sl = slice(start, start + chunk)
            part = self.inner.run(x_fp[sl], None if labels is None else labels[sl], train, True)
            check_batch(self.net, part, train, self.layout, sample0=start)
            part.rec_spikes = part.rec_state = None
            parts.append(part)
        self.batches_checked += 1
        return _concat(parts)

    def refresh(self) -> None:
        check_parameters(self.net)
        if self.net.updates not in (self._updates, self._updates + 1):
            raise RegisterWidthError(f"debug: update counter jumped from {self._updates} "
                                     f"to {self.net.updates}")
        self._updates = self.net.updates
        self.updates_checked += 1
        self.inner.refresh()

"""Build a :class:`neurochip.network.Network` as connected Lava processes.

``to_lava(network)`` returns a :class:`LavaNet`: one :class:`EPEncoder` for the
input, one :class:`EPNeuron` per layer, the connection processes of every
edge (forward and its exact transpose as feedback) and optional spike probes
(sink ``RingBuffer``, int32).  A whole training sample (free, +beta, -beta) is
one ``RunSteps(T1 + 2*T2)``; an inference sample is ``RunSteps(T1)``.

Connection processes (all Lava built-ins, used only where they are plain
integer accumulation, docs/lava.md):

* conv layer forward: ``Conv`` with the fused ``(K+1)^2`` kernel, stride 2,
  flipped, WHC (default ``conv_forward='conv'``; its 24-bit wrap is excluded
  by a bound on the weight range, else the edge falls back to ``'sparse'``),
  or ``Sparse``/``Dense`` of the same matrix ``M`` (digits, see layout.py);
* conv feedback: ``Sparse(M.T)`` (default ``conv_feedback='sparse'``) or
  ``Dense(M.T)``: the exact transpose, so exactly symmetric;
* FC forward / feedback: ``Dense(W)`` / ``Dense(W.T)`` (columns or rows in
  WHC order after a conv layer).

Weights change on the host (``neurochip.learning``); :meth:`LavaNet.set_weights`
writes them into the running processes with ``Var.set`` (``Conv``, ``Dense``
and the biases).  Lava 0.10 cannot ``set`` a ``Sparse`` matrix holding zeros
(the model side drops explicit zeros), so a network with ``Sparse`` edges is
rebuilt instead (same results: every sample starts from zero state).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from neurochip import numerics as nx
from neurochip.core import (K_EVENTS_FB, K_EVENTS_FWD, N_COUNTS, BatchResult, CoreLayout)
from neurochip.network import Network

from . import layout as lay
from .layout import MappingError

CONV_FORWARD = ("conv", "sparse", "dense")
CONV_FEEDBACK = ("sparse", "dense")


def _allow_lava_fork() -> None:
    """Let Lava's import-time ``multiprocessing.set_start_method('fork')`` succeed.

    Lava 0.10 calls it without ``force`` when its message infrastructure is
    first imported, which raises "context has already been set" once anything
    has fixed the start method -- Numba's parallel runtime does so on the
    core's first ``run``.  When the method already is 'fork' (Linux), clearing
    the choice lets Lava set the same method again; nothing else changes.
    """
    import multiprocessing as mp
    import sys
    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    current = mp.get_start_method(allow_none=True)
    if current is None:
        return
    if current != "fork":
        raise MappingError(f"Lava needs the 'fork' multiprocessing start method, but "
                           f"'{current}' was already chosen in this interpreter")
    mp.context._default_context._actual_context = None


def _lava():
    """Import Lava lazily (Python 3.10 only); a clear error otherwise."""
    _allow_lava_fork()
    try:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer
        from lava.proc.sparse.process import Sparse
        from lava.utils.weightutils import SignMode
    except Exception as exc:  # pragma: no cover - depends on the environment
        raise MappingError(f"Lava (lava-nc 0.10, Python 3.10) is not importable: {exc}") from exc
    from .procs.ep import EPEncoder, EPNeuron
    return dict(RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Conv=Conv, Dense=Dense,
                Sparse=Sparse, RingBuffer=RingBuffer, SignMode=SignMode, EPEncoder=EPEncoder,
                EPNeuron=EPNeuron)


@dataclass
class Connection:
    """The Lava processes of one edge direction and how to write their weights."""

    layer: int                 # edge l-1 -> l
    direction: str             # 'fwd' or 'fb'
    impl: str                  # 'conv', 'dense' or 'sparse'
    procs: list                # Conv: [proc]; Dense/Sparse: one proc per digit
    n_digits: int = 1
    current: object = None     # the integer values now held (to skip unchanged writes)

    @property
    def settable(self) -> bool:
        return self.impl in ("conv", "dense")


@dataclass
class SampleTiming:
    """Wall time of the ``run`` calls only (no get/set), seconds and steps."""

    seconds: float = 0.0
    steps: int = 0

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.seconds / max(self.steps, 1)


class StopOnExit:
    """``with obj:`` calls ``obj.stop()`` on exit (a live Lava runtime is never left behind)."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class LavaNet(StopOnExit):
    """Connected Lava processes of one network, plus the host-side driver.

    ``encoder``: the input :class:`EPEncoder` (Var ``x``); ``neurons[l-1]``: the
    :class:`EPNeuron` of layer ``l`` (``neurons[-1]`` is the output: Vars ``s``,
    ``rec``, ``label``); ``probes[l]``: sink ``RingBuffer`` of layer ``l``'s
    spikes (``l = 0`` is the input) when ``probes=True``; ``connections``.
    Always :meth:`stop` it (``with to_lava(net) as ln: ...``).
    """

    def __init__(self, network: Network, *, train: bool = True, probes: bool = False,
                 conv_forward: str = "conv", conv_feedback: str = "sparse"):
        if conv_forward not in CONV_FORWARD:
            raise MappingError(f"conv_forward must be one of {CONV_FORWARD}, got {conv_forward!r}")
        if conv_feedback not in CONV_FEEDBACK:
            raise MappingError(f"conv_feedback must be one of {CONV_FEEDBACK}, got {conv_feedback!r}")
        self.network = network
        self.train = bool(train)
        self.probes_enabled = bool(probes)
        self.conv_forward = conv_forward
        self.conv_feedback = conv_feedback
        h = network.hyper
        self.period = h.t1 + 2 * h.t2 if self.train else h.t1
        self.edges = lay.edges(network)
        arch = network.arch
        self.shapes = [tuple(arch.input_shape)] + [tuple(s) for s in arch.state_shapes()]
        self.core_layout = CoreLayout.build(network)
        self.timing = SampleTiming()
        self.startup_s = 0.0
        self.rebuilds = 0
        self._runtime_ready = False
        self._x_now = None
        self._label_now = None
        self._build()

    # ------------------------------------------------------------ building
    def _params(self) -> dict:
        net = self.network
        k = net.constants()
        h = net.hyper
        return dict(period=self.period, t1=h.t1, t2=h.t2, train=self.train, lam_q=k.lam_q,
                    eps_q=k.eps_q, one=k.one, thr_lam=k.thr_lam, one_lam=k.one_lam,
                    beta_q=k.beta_q, trace_max=k.trace_max, state_bits=net.widths.state_bits,
                    reg_lo=nx.REG_MIN, reg_hi=nx.REG_MAX)

    def _edge_impl(self, edge: lay.EdgeSpec, direction: str) -> str:
        if edge.kind == "fc":
            return "dense"
        if direction == "fb":
            return self.conv_feedback
        if self.conv_forward == "conv" and edge.max_input() >= 2 ** (lay.LAVA_CONV_BITS - 1):
            return "sparse"      # Conv would wrap at 24 bits; Sparse accumulates in int64
        return self.conv_forward

    def _check_bounds(self, edge: lay.EdgeSpec) -> None:
        """Every Lava connection buffer is int32: each digit's partial sum must fit."""
        nd = edge.n_digits
        _, fan_in = edge.structure_counts()
        worst = int(fan_in.max()) * 128 * 256 ** (nd - 1)
        if worst > lay.INT32_MAX:
            raise MappingError(f"layer {edge.layer}: a digit's synaptic sum can reach {worst}, "
                               "beyond Lava's int32 connection buffers")

    def _build(self) -> None:
        L = _lava()
        self._L = L
        net, params = self.network, self._params()
        consts = net.constants()
        n_layers = net.arch.n_layers
        counts = [e.structure_counts() for e in self.edges]   # (fan-out fwd of src, fan-in of dst)
        lshapes = [lay.lava_shape(s) for s in self.shapes]

        def fanouts(l):
            fwd = counts[l][0] if l < n_layers else np.zeros(int(np.prod(self.shapes[l])), np.int64)
            fb = counts[l - 1][1] if l >= 2 else np.zeros(int(np.prod(self.shapes[l])), np.int64)
            return fwd.reshape(lshapes[l]), fb.reshape(lshapes[l])

        f_fwd, f_fb = fanouts(0)
        self.encoder = L["EPEncoder"](shape=lshapes[0], params=dict(params, fanout_fwd=f_fwd,
                                                                    fanout_fb=f_fb),
                                      name="input")
        self.neurons = []
        for l in range(1, n_layers + 1):
            lc = consts.layers[l - 1]
            f_fwd, f_fb = fanouts(l)
            p = dict(params, sh_fwd=lc.sh_fwd, fb_mult=lc.fb_mult, sh_fb=lc.sh_fb,
                     sh_out=lc.sh_out, is_output=(l == n_layers), fanout_fwd=f_fwd, fanout_fb=f_fb)
            self.neurons.append(L["EPNeuron"](shape=lshapes[l], bias=self._bias(l), params=p,
                                              name=f"layer{l}"))
        layers = [self.encoder] + self.neurons
        self.connections: list[Connection] = []
        for edge in self.edges:
            self._check_bounds(edge)
            l = edge.layer
            src, dst = layers[l - 1], layers[l]
            impl = self._edge_impl(edge, "fwd")
            self.connections.append(self._connect(edge, "fwd", impl, src, dst, lshapes[l - 1],
                                                  lshapes[l]))
            if l >= 2:   # no feedback into the clamped input
                impl = self._edge_impl(edge, "fb")
                self.connections.append(self._connect(edge, "fb", impl, dst, src, lshapes[l],
                                                      lshapes[l - 1]))
        self.probes = []
        if self.probes_enabled:
            for l, proc in enumerate(layers):
                sink = L["RingBuffer"](shape=lshapes[l], buffer=self.period)
                proc.s_out.connect(sink.a_in)
                self.probes.append(sink)
        self.layers = layers
        self._bias_now = [self._bias(l) for l in range(1, n_layers + 1)]

    def _bias(self, l: int) -> np.ndarray:
        return np.array(self.network.biases_q[l - 1], np.int32, copy=True)

    def _values(self, edge: lay.EdgeSpec, direction: str, impl: str, network=None):
        """What the processes of this edge direction hold (int64) for ``network``."""
        network = self.network if network is None else network
        if impl == "conv":
            return lay.lava_conv_weight(edge.kernel(network))
        m = edge.matrix(network)
        if direction == "fb":
            m = m.T
        if impl == "sparse":
            return m.tocsr() if hasattr(m, "tocsr") else m
        return m.toarray() if hasattr(m, "toarray") else np.asarray(m)

    def _connect(self, edge, direction, impl, src, dst, src_shape, dst_shape) -> Connection:
        L = self._L
        values = self._values(edge, direction, impl)
        port_in = dst.a_fwd if direction == "fwd" else dst.a_fb
        if impl == "conv":
            geo = edge.geometry
            proc = L["Conv"](weight=values.astype(np.int32), input_shape=src_shape,
                             padding=geo.pad, stride=2, num_message_bits=0,
                             name=f"conv{edge.layer}")
            if tuple(proc.a_out.shape) != tuple(dst_shape):
                raise MappingError(f"layer {edge.layer}: Conv output {proc.a_out.shape} != "
                                   f"layer shape {dst_shape}")
            src.s_out.connect(proc.s_in)
            proc.a_out.connect(port_in)
            return Connection(edge.layer, direction, impl, [proc], 1, values)
        nd = edge.n_digits
        cls = L["Dense"] if impl == "dense" else L["Sparse"]
        procs = []
        for k, digit in enumerate(self._digits(values, nd, impl)):
            proc = cls(weights=digit, weight_exp=lay.digit_weight_exp(k), num_weight_bits=8,
                       sign_mode=L["SignMode"].MIXED, num_message_bits=0,
                       name=f"{impl}{edge.layer}{direction}{k}")
            out = src.s_out.flatten() if len(src_shape) > 1 else src.s_out
            out.connect(proc.s_in)
            a = proc.a_out.reshape(dst_shape) if len(dst_shape) > 1 else proc.a_out
            a.connect(port_in)
            procs.append(proc)
        return Connection(edge.layer, direction, impl, procs, nd, values)

    @staticmethod
    def _digits(values, nd: int, impl: str) -> list:
        """Per digit, the weights passed to Lava: ``2 d`` (int32; csr for Sparse)."""
        if impl == "sparse":
            from scipy.sparse import csr_matrix
            parts = lay.split_digits(values.data, nd)
            return [csr_matrix((2 * d.astype(np.int32), values.indices, values.indptr),
                               shape=values.shape) for d in parts]
        return [np.ascontiguousarray(2 * d, np.int32) for d in lay.split_digits(values, nd)]

    # ------------------------------------------------------------- running
    def set_input(self, x_fp: np.ndarray, label: int = -1) -> None:
        """Set the image (canonical, state units) and the label of the next sample.

        Before the first run the values become the Vars' initial values (Lava
        can ``set`` only a started runtime); afterwards ``Var.set`` writes them.
        """
        x = np.asarray(x_fp, np.int64).reshape(-1)
        if self._x_now is None or not np.array_equal(self._x_now, x):
            xv = lay.to_lava(x, self.shapes[0])
            if self._runtime_ready:
                self.encoder.x.set(xv.astype(np.float64))
            else:
                self.encoder.x.init = xv.astype(np.int32)
            self._x_now = x.copy()
        if self._label_now != int(label):
            if self._runtime_ready:
                self.neurons[-1].label.set(np.array([int(label)], np.float64))
            else:
                self.neurons[-1].label.init = np.array([int(label)], np.int32)
            self._label_now = int(label)

    def run_steps(self, n: int | None = None) -> None:
        """Run ``n`` steps (default: one sample); timed in :attr:`timing`.

        The first call compiles and starts the runtime (timed separately in
        :attr:`startup_s`).
        """
        n = self.period if n is None else int(n)
        cond = self._L["RunSteps"](num_steps=n, blocking=True)
        t0 = time.perf_counter()
        if not self._runtime_ready:
            self._runtime_ready = True     # from here on stop() must run
            self.encoder.run(condition=cond, run_cfg=self._L["Loihi2SimCfg"](select_tag="fixed_pt"))
            self.startup_s = time.perf_counter() - t0
            return
        self.encoder.run(condition=cond)
        self.timing.seconds += time.perf_counter() - t0
        self.timing.steps += n

    def run_sample(self, x_fp: np.ndarray, label: int = -1, read: bool = True) -> dict | None:
        """One sample; returns its integers in canonical order (see :meth:`read_sample`)."""
        self.set_input(x_fp, label)
        self.run_steps()
        return self.read_sample() if read else None

    def read_sample(self) -> dict:
        """Integers of the last sample, canonical (C,H,W) order, per layer 0..L.

        ``rec[l]`` int64 (3, 4, N_l) state at the end of each phase
        (s, dec, psi, enc_prev); ``trace[l]`` (2, N_l) (train only);
        ``counts[l]`` (3, N_COUNTS) as the core books them; ``spikes[l]``
        uint8 (steps, N_l) with probes.
        """
        out = {"rec": [], "trace": [], "counts": [], "spikes": []}
        raw_counts = []
        for l, proc in enumerate(self.layers):
            shp = self.shapes[l]
            out["rec"].append(lay.to_canonical(proc.rec.get(), shp).astype(np.int64))
            if self.train:
                out["trace"].append(lay.to_canonical(proc.trace.get(), shp).astype(np.int64))
            raw_counts.append(proc.counts.get().astype(np.int64))
            if self.probes_enabled:
                data = self.probes[l].data.get()                      # (*lava_shape, period)
                sp = lay.to_canonical(np.moveaxis(data, -1, 0), shp)  # (period, N_l)
                out["spikes"].append(sp.astype(np.uint8))
        n_layers = len(self.layers) - 1
        for l in range(n_layers + 1):
            c = raw_counts[l].copy()
            c[:, K_EVENTS_FWD] = raw_counts[l - 1][:, K_EVENTS_FWD] if l >= 1 else 0
            c[:, K_EVENTS_FB] = raw_counts[l + 1][:, K_EVENTS_FB] if l < n_layers else 0
            out["counts"].append(c)
        return out

    def run(self, x_fp: np.ndarray, labels: np.ndarray | None = None) -> BatchResult:
        """A batch, one sample after the other, as the core's :class:`BatchResult`.

        Arrays use the core's internal order (``CoreLayout``) so they compare
        element for element with ``CoreNet.run(..., record=True)``.
        """
        x_fp = np.asarray(x_fp, np.int64)
        n_batch = x_fp.shape[0]
        labels = np.full(n_batch, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
        cl = self.core_layout
        n_layers = len(self.layers) - 1
        traces = np.zeros((n_batch, 2, cl.n_all), np.int32)
        s_free = np.zeros((n_batch, cl.sizes[-1]), np.int64)
        counts = np.zeros((n_batch, 3, n_layers + 1, N_COUNTS), np.int64)
        rec_state = np.zeros((n_batch, 3, 4, cl.n_all), np.int64)
        rec_spk = (np.zeros((n_batch, self.period, cl.n_all), np.uint8)
                   if self.probes_enabled else None)
        n_ph = 3 if self.train else 1
        for b in range(n_batch):
            r = self.run_sample(x_fp[b], int(labels[b]))
            for l in range(n_layers + 1):
                o, n = cl.offsets[l], cl.sizes[l]
                rec_state[b, :n_ph, :, o:o + n] = cl.to_internal(l, r["rec"][l][:n_ph])
                if self.train:
                    traces[b, :, o:o + n] = cl.to_internal(l, r["trace"][l])
                counts[b, :, l] = r["counts"][l]
                if rec_spk is not None:
                    rec_spk[b, :, o:o + n] = cl.to_internal(l, r["spikes"][l])
            s_free[b] = r["rec"][-1][0, 0]
        return BatchResult(traces, np.zeros((n_batch, 2, 1), np.int8), s_free,
                           np.argmax(s_free, axis=1), counts, rec_spk, rec_state)

    # ------------------------------------------------------------- weights
    def set_weights(self, network: Network | None = None) -> str:
        """Write the (updated) integer parameters into the processes.

        Returns ``'set'`` (written with ``Var.set``), ``'unchanged'`` or
        ``'rebuilt'`` (a ``Sparse`` edge changed: the network was rebuilt).
        """
        if network is not None:
            self.network = network
        pending = []
        for conn in self.connections:
            edge = self.edges[conn.layer - 1]
            new = self._values(edge, conn.direction, conn.impl)
            old = conn.current
            same = ((new != old).nnz == 0 if conn.impl == "sparse" else np.array_equal(new, old))
            if not same:
                pending.append((conn, new))
        if any(not c.settable for c, _ in pending):
            self.rebuild()
            return "rebuilt"
        if not self._runtime_ready:     # nothing runs yet: rebuild is free and exact
            if pending or self._bias_changed():
                self.rebuild()
                return "rebuilt"
            return "unchanged"
        changed = False
        for conn, new in pending:
            if conn.impl == "conv":
                conn.procs[0].weight.set(new.astype(np.float64))
            else:
                old_digits = self._digits(conn.current, conn.n_digits, conn.impl)
                for proc, d_new, d_old in zip(conn.procs, self._digits(new, conn.n_digits,
                                                                       conn.impl), old_digits):
                    if not np.array_equal(d_new, d_old):
                        proc.weights.set(d_new.astype(np.float64))
            conn.current = new
            changed = True
        for l, proc in enumerate(self.neurons, start=1):
            b = self._bias(l)
            if not np.array_equal(b, self._bias_now[l - 1]):
                proc.bias.set(b.astype(np.float64))
                changed = True
        self._bias_now = [self._bias(l) for l in range(1, len(self.neurons) + 1)]
        return "set" if changed else "unchanged"

    def _bias_changed(self) -> bool:
        return any(not np.array_equal(self._bias(l), self._bias_now[l - 1])
                   for l in range(1, len(self.neurons) + 1))

    def expected_weights(self, network: Network) -> list[dict]:
        """What :meth:`read_weights` must return when ``network`` is loaded."""
        out = []
        for conn in self.connections:
            v = self._values(self.edges[conn.layer - 1], conn.direction, conn.impl, network)
            out.append(dict(layer=conn.layer, direction=conn.direction, impl=conn.impl,
                            values=v.toarray() if hasattr(v, "toarray") else v))
        return out

    def read_weights(self) -> list[dict]:
        """What the connection processes hold now, read back with ``Var.get``.

        Per connection: ``layer``, ``direction``, ``impl`` and ``values`` (the
        integer matrix/kernel the edge computes with, digits recombined).
        """
        out = []
        for conn in self.connections:
            if conn.impl == "conv":
                vals = conn.procs[0].weight.get().astype(np.int64)
            else:
                total = None
                for k, proc in enumerate(conn.procs):
                    w = proc.weights.get()
                    w = w.toarray() if hasattr(w, "toarray") else w
                    part = (w.astype(np.int64) // 2) << (lay.DIGIT_BITS * k)
                    total = part if total is None else total + part
                vals = total
            out.append(dict(layer=conn.layer, direction=conn.direction, impl=conn.impl,
                            values=vals))
        return out

    def rebuild(self) -> None:
        """Stop the runtime and build the processes again from :attr:`network`."""
        self.stop()
        self._runtime_ready = False
        self._x_now = None
        self._label_now = None
        self.rebuilds += 1
        self._build()

    # ------------------------------------------------------------- lifetime
    def stop(self) -> None:
        """Stop the Lava runtime (idempotent)."""
        if self._runtime_ready:
            try:
                self.encoder.stop()
            finally:
                self._runtime_ready = False

    @property
    def n_processes(self) -> int:
        return (len(self.layers) + sum(len(c.procs) for c in self.connections)
                + len(self.probes))


def to_lava(network: Network, **kwargs) -> LavaNet:
    """Build ``network`` as Lava processes; see :class:`LavaNet` for the options."""
    return LavaNet(network, **kwargs)

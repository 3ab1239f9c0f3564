"""EP neuron and input encoder: Lava Processes and their fixed_pt ProcessModels.

Every integer rule comes from :mod:`neurochip.numerics` and the neuron's update
sequence from :mod:`neurochip.neuron` (their plain-Python twins ``pure.<step>``
on NumPy arrays, no Numba dispatch inside the Lava processes); this module
adds the Lava-side schedule (docs/numerics.md §5-6):

* each step the neuron receives the summed weights of the spikes its
  neighbours sent at the previous step (the connection processes are the
  1-step delay), on two ports: ``a_fwd`` (from the layer below) and ``a_fb``
  (from the layer above);
* it aligns them (``align_input``), decodes, adds its bias and, at the output,
  the local nudge, takes the Euler step, encodes and sends its spikes;
* the sample schedule is driven by ``time_step``: local step ``t`` in
  ``1..period``; ``t == 1`` starts a fresh sample (state zeroed, the stale
  input of the previous sample ignored, so no synapse buffer needs a reset);
  free phase ``t <= T1``, ``+beta`` up to ``T1+T2``, ``-beta`` after.  After
  step ``T1`` the complete state is snapshotted; the input received at
  ``T1+1`` (the spikes of step ``T1`` in flight) is recorded, and at the first
  ``-beta`` step the snapshot is restored and the recorded input replaces the
  stale one (lava.md §6).

Imports are absolute and nothing runs at import (Lava executes this file
while it discovers ProcessModels, lava.md P1).
"""
import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurochip import neuron
from neurochip import numerics as nx
from neurochip.neuron import Alignment, Dynamics, EncoderState, NeuronState

# per-phase counters (neurochip.kinds); the two event slots hold the events
# this layer's spikes cause *in its neighbours* (forward into l+1, feedback
# into l-1); the host moves them to the receiver.
from neurochip.kinds import (K_ACTIVE, K_EVENTS_FB, K_EVENTS_FWD, K_SAT_DEC,  # noqa: E402,F401
                             K_SAT_INPUT, K_SAT_PSI, K_SPIKES, K_UPDATES, N_COUNTS, REC_DEC,
                             REC_ENC_PREV, REC_PSI, REC_S)

_steps = neuron.pure          # the neuron's update sequence (neurochip.neuron), on NumPy arrays
_latch = nx.pure.trace_latch


# ------------------------------------------------------------------ processes
class EPEncoder(AbstractProcess):
    """Input layer: the predictive sigma-delta encoder of the clamped image.

    ``x`` (state units, the layer's own layout) is set by the host per sample.
    Vars: ``x, psi, enc_prev`` (+ snapshot), ``trace`` (2, *shape) latched at the
    end of the nudged phases, ``rec`` (3, 4, *shape) state at the end of each
    phase (s = x, dec = 0, psi, enc_prev), ``counts`` (3, N_COUNTS).
    """

    def __init__(self, *, shape, x=0, params, name=None):
        super().__init__(shape=shape, name=name, **params)
        self.s_out = OutPort(shape=shape)
        self.x = Var(shape=shape, init=x)
        self.psi = Var(shape=shape, init=0)
        self.enc_prev = Var(shape=shape, init=0)
        self.snap_psi = Var(shape=shape, init=0)
        self.snap_enc = Var(shape=shape, init=0)
        self.trace = Var(shape=(2,) + tuple(shape), init=0)
        self.rec = Var(shape=(3, 4) + tuple(shape), init=0)
        self.counts = Var(shape=(3, N_COUNTS), init=0)


class EPNeuron(AbstractProcess):
    """Hidden or output EP neuron layer (one Process per layer).

    Ports: ``a_fwd`` (forward weights from the layer below), ``a_fb``
    (feedback weights from the layer above), ``s_out`` (binary spikes).
    ``bias`` is per channel (broadcast over the last axis) or per neuron;
    ``label`` (output layer) is the class index for the nudge, -1 for none.
    """

    def __init__(self, *, shape, bias, params, name=None):
        super().__init__(shape=shape, name=name, **params)
        self.a_fwd = InPort(shape=shape)
        self.a_fb = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        bias = np.asarray(bias)
        self.bias = Var(shape=bias.shape, init=bias)
        self.label = Var(shape=(1,), init=-1)
        for name_ in ("s", "dec", "psi", "enc_prev", "snap_s", "snap_dec", "snap_psi",
                      "snap_enc", "in_fwd", "in_fb"):
            setattr(self, name_, Var(shape=shape, init=0))
        self.trace = Var(shape=(2,) + tuple(shape), init=0)
        self.rec = Var(shape=(3, 4) + tuple(shape), init=0)
        self.counts = Var(shape=(3, N_COUNTS), init=0)


# --------------------------------------------------------------- schedule
def _int32_vars(**precision):
    """Class decorator: an int32 ``LavaPyType`` per named Var, of the given precision (bits).

    Lava reads a model's Var types with ``getattr`` (inherited ones included,
    as in its own LIF models), so a table serves as well as one line per Var.
    """
    def declare(cls):
        for name, bits in precision.items():
            setattr(cls, name, LavaPyType(np.ndarray, np.int32, precision=bits))
        return cls
    return declare


@_int32_vars(psi=24, enc_prev=17, snap_psi=24, snap_enc=17, trace=16, rec=24)
class _Schedule:
    """Local step and phase of a sample from ``time_step``, and the Vars both models hold."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def _setup(self, p):
        self.period = int(p["period"])
        self.t1, self.t2 = int(p["t1"]), int(p["t2"])
        self.train = bool(p["train"])
        self.lam_q, self.thr_lam, self.one_lam = int(p["lam_q"]), int(p["thr_lam"]), int(p["one_lam"])
        self.trace_max, self.state_bits = int(p["trace_max"]), int(p["state_bits"])
        self.reg_lo, self.reg_hi = int(p["reg_lo"]), int(p["reg_hi"])
        # the encoder needs no eps/one; the neuron model fills them in (PyEPNeuronFixed)
        self.dyn = Dynamics(self.lam_q, 0, 0, self.thr_lam, self.one_lam, self.reg_lo, self.reg_hi)
        self.fan_fwd = np.asarray(p["fanout_fwd"], np.int64)
        self.fan_fb = np.asarray(p["fanout_fb"], np.int64)
        self.ev_snap = (0, 0)

    def _phase(self, t):
        if t <= self.t1:
            return 0
        return 1 if t <= self.t1 + self.t2 else 2

    def _count_events(self, t, q):
        """Events of this step's spikes, booked to the phase of the step that delivers them."""
        ev = (int((q * self.fan_fwd).sum()), int((q * self.fan_fb).sum()))
        if self.train and t == self.t1:
            self.ev_snap = ev
        if t >= self.period:
            return          # delivered in the next sample, which ignores it
        if self.train and t == self.t1 + self.t2:
            ev = self.ev_snap   # the -beta phase restarts with the spikes of step T1
        ph = self._phase(t + 1)
        self.counts[ph, K_EVENTS_FWD] += ev[0]
        self.counts[ph, K_EVENTS_FB] += ev[1]

    def _end_of_step(self, t, ph, s, dec, latched):
        """Record the phase's end state, snapshot after ``T1``, latch the traces.

        ``s``/``dec``: what ``rec`` holds as state and decoder; ``latched``: the
        value the traces latch; ``SNAPSHOT`` names the (Var, snapshot Var) pairs.
        """
        if t in (self.t1, self.t1 + self.t2, self.t1 + 2 * self.t2):
            self.rec[ph, REC_S] = s
            self.rec[ph, REC_DEC] = dec
            self.rec[ph, REC_PSI] = self.psi
            self.rec[ph, REC_ENC_PREV] = self.enc_prev
        if self.train:
            if t == self.t1:
                for var, snap in self.SNAPSHOT:
                    getattr(self, snap)[:] = getattr(self, var)
            elif t == self.t1 + self.t2:
                self.trace[0] = _latch(latched, self.trace_max, self.state_bits)
            elif t == self.t1 + 2 * self.t2:
                self.trace[1] = _latch(latched, self.trace_max, self.state_bits)

    def _restore(self):
        """The complete free state of step ``T1``, at the first -beta step."""
        for var, snap in self.SNAPSHOT:
            getattr(self, var)[:] = getattr(self, snap)

    def _encode_and_send(self, t, ph, a):
        """Encoder of every neuron (``a`` = new state or the clamped input)."""
        q, enc, sat = _steps.encode_step(
            a, EncoderState(self.psi.astype(np.int64), self.enc_prev.astype(np.int64)), self.dyn)
        self.counts[ph, K_SAT_PSI] += int(sat.sum())
        self.psi[:] = enc.psi
        self.enc_prev[:] = enc.prev
        q = q.astype(np.int32)
        self.counts[ph, K_SPIKES] += int(q.sum())
        self._count_events(t, q)
        self.s_out.send(q)


# ------------------------------------------------------------------ models
@implements(proc=EPEncoder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
@_int32_vars(x=17)
class PyEPEncoderFixed(_Schedule, PyLoihiProcessModel):
    SNAPSHOT = (("psi", "snap_psi"), ("enc_prev", "snap_enc"))

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._setup(proc_params)

    def run_spk(self):
        t = (self.time_step - 1) % self.period + 1
        ph = self._phase(t)
        if t == 1:
            self.psi[:] = 0
            self.enc_prev[:] = 0
            self.counts[:] = 0
        if self.train and t == self.t1 + self.t2 + 1:
            self._restore()
        x = self.x.astype(np.int64)
        self._encode_and_send(t, ph, x)
        self._end_of_step(t, ph, x, 0, x)


@implements(proc=EPNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
@_int32_vars(bias=24, label=16, s=17, dec=24, snap_s=17, snap_dec=24, in_fwd=32, in_fb=32)
class PyEPNeuronFixed(_Schedule, PyLoihiProcessModel):
    a_fwd: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=32)
    a_fb: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=32)

    SNAPSHOT = (("s", "snap_s"), ("dec", "snap_dec"), ("psi", "snap_psi"),
                ("enc_prev", "snap_enc"))

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._setup(proc_params)
        p = proc_params
        self.sh_fwd, self.fb_mult = int(p["sh_fwd"]), int(p["fb_mult"])
        self.sh_fb, self.sh_out = int(p["sh_fb"]), int(p["sh_out"])
        self.eps_q, self.one, self.beta_q = int(p["eps_q"]), int(p["one"]), int(p["beta_q"])
        self.is_output = bool(p["is_output"])
        self.align = Alignment(self.sh_fwd, self.fb_mult, self.sh_fb, self.sh_out)
        self.dyn = self.dyn._replace(eps_q=self.eps_q, one=self.one)

    def run_spk(self):
        u_fwd = self.a_fwd.recv().astype(np.int64)
        u_fb = self.a_fb.recv().astype(np.int64)
        t = (self.time_step - 1) % self.period + 1
        ph = self._phase(t)
        if t == 1:    # fresh sample: zero state; the input in flight belongs to the last one
            for v in (self.s, self.dec, self.psi, self.enc_prev, self.counts):
                v[:] = 0
            u_fwd[:] = 0
            u_fb[:] = 0
        if self.train:
            if t == self.t1 + 1:       # spikes of step T1 in flight: needed again at -beta
                self.in_fwd[:] = u_fwd
                self.in_fb[:] = u_fb
            elif t == self.t1 + self.t2 + 1:   # restore the complete free state
                self._restore()
                u_fwd = self.in_fwd.astype(np.int64)
                u_fb = self.in_fb.astype(np.int64)
        beta_q = _steps.phase_beta_q(ph, self.beta_q) if self.is_output else 0
        s = self.s.astype(np.int64)
        dec = self.dec.astype(np.int64)
        target = 0
        if beta_q != 0:
            target = np.where(np.arange(s.size).reshape(s.shape) == int(self.label[0]), self.one, 0)
        new, sat_in, sat_dec = _steps.neuron_step(u_fwd, u_fb, self.bias.astype(np.int64), target,
                                                  beta_q, NeuronState(s, dec), self.align, self.dyn)
        s_new = new.s
        c = self.counts[ph]
        c[K_UPDATES] += s.size
        c[K_ACTIVE] += int(((new.s != s) | (new.dec != dec)).sum())
        c[K_SAT_INPUT] += int(sat_in.sum())
        c[K_SAT_DEC] += int(sat_dec.sum())
        self.dec[:] = new.dec
        self.s[:] = s_new
        self._encode_and_send(t, ph, s_new)
        self._end_of_step(t, ph, self.s, self.dec, s_new)

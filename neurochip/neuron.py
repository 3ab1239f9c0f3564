"""The EP neuron's update sequence, written once, as functional steps over small typed state.

:mod:`neurochip.numerics` holds every integer *rule*; this module holds the
*sequence* the executions run them in (docs/numerics.md §5-6), in the style of
Norse's functional neuron steps: plain functions from (input, state,
parameters) to (new state, events).  The same mechanism as numerics applies:
each step is compiled by Numba (``neuron_step(...)``, inlined into kernels) and
has a plain-Python twin in :data:`pure` (``neuron.pure.neuron_step(...)``) that
runs the *same code object* on NumPy arrays and PyTorch tensors.  The PyTorch
mirror (``reference.mirror``) and the Lava process models
(``mapping.procs.ep``) call these twins.

One time step of a layer, per neuron (all integers, S fraction bits)::

    in    = saturate(align_input(u_fwd, u_fb, alignment))     # summed weights -> state units
    dec'  = saturate(decoder_step(dec, in, lam))              # predictive-coding decoder
    drive = dec' + bias (+ nudge_term(s, target, beta) at the output, when beta != 0)
    s'    = state_step(s, drive, eps)                         # Euler step, clamped to [0, ONE]
    psi', spike = encoder_step(psi, s', s_prev, lam); psi' saturated    # sigma-delta encoder
    s_prev' = s'

The phase schedule: free phase (beta 0, ``T1`` steps), then ``+beta`` and
``-beta`` (``T2`` steps each, the last one restarting from the free phase's
end state): :func:`phase_beta_q`, :func:`phase_steps`.
"""
from __future__ import annotations

from typing import NamedTuple

from .numerics import (_op, align_input, decoder_step, encoder_step, nudge_term, pure_twins,
                       saturate, state_step)

N_PHASES = 3          # free, +beta, -beta


class Alignment(NamedTuple):
    """Per-layer shifts of :func:`neurochip.numerics.align_input` (``LayerConstants``)."""

    sh_fwd: int
    fb_mult: int
    sh_fb: int
    sh_out: int


class Dynamics(NamedTuple):
    """Network-wide integer constants of the neuron (``IntConstants`` and the register range).

    ``lam_q``, ``eps_q``: Q12 lambda and epsilon; ``one = 2**S``; ``thr_lam``,
    ``one_lam``: the encoder's threshold and ``ONE`` times lambda; ``reg_lo``,
    ``reg_hi``: the 24-bit register range every saturated value is held in.
    """

    lam_q: int
    eps_q: int
    one: int
    thr_lam: int
    one_lam: int
    reg_lo: int
    reg_hi: int


class NeuronState(NamedTuple):
    """A layer's neuron registers: activation ``s`` and decoder ``dec`` (S fraction bits)."""

    s: object
    dec: object


class EncoderState(NamedTuple):
    """A layer's encoder registers: residue ``psi`` and the last encoded activation ``prev``."""

    psi: object
    prev: object


def alignment(layer_constants) -> Alignment:
    """The :class:`Alignment` of one :class:`~neurochip.network.LayerConstants`."""
    lc = layer_constants
    return Alignment(int(lc.sh_fwd), int(lc.fb_mult), int(lc.sh_fb), int(lc.sh_out))


def dynamics(constants) -> Dynamics:
    """The :class:`Dynamics` of a network's :class:`~neurochip.network.IntConstants`."""
    from .numerics import REG_MAX, REG_MIN
    k = constants
    return Dynamics(int(k.lam_q), int(k.eps_q), int(k.one), int(k.thr_lam), int(k.one_lam),
                    REG_MIN, REG_MAX)


@_op
def phase_beta_q(phase, beta_q):
    """Signed Q12 nudge of a phase: 0 (free), ``+beta_q`` (1), ``-beta_q`` (2)."""
    if phase == 1:
        return beta_q
    if phase == 2:
        return -beta_q
    return 0 * beta_q


@_op
def phase_steps(phase, t1, t2):
    """Time steps of a phase: ``T1`` for the free phase, ``T2`` for each nudged one."""
    if phase == 0:
        return t1
    return t2


@_op
def neuron_step(u_fwd, u_fb, bias, target, beta_q, state, align, dyn):
    """One step of a layer's neurons: align, saturate, decode, saturate, nudge, Euler step.

    Parameters
    ----------
    u_fwd, u_fb : summed forward / feedback weights of the spikes received (int64).
    bias : the neurons' biases (S fraction bits).
    target : ``ONE`` for the labelled output neuron, else 0 (used only when ``beta_q != 0``).
    beta_q : signed Q12 nudge of the phase at the output layer (:func:`phase_beta_q`), 0 elsewhere.
    state : :class:`NeuronState`; align : :class:`Alignment`; dyn : :class:`Dynamics`.

    Returns
    -------
    (NeuronState, sat_input, sat_dec) : the new registers and, per neuron, whether the
    aligned input and the decoder saturated (booleans, for the counters).
    """
    inp = align_input(u_fwd, u_fb, align.sh_fwd, align.fb_mult, align.sh_fb, align.sh_out)
    inp_s = saturate(inp, dyn.reg_lo, dyn.reg_hi)
    d = decoder_step(state.dec, inp_s, dyn.lam_q)
    d_s = saturate(d, dyn.reg_lo, dyn.reg_hi)
    drive = d_s + bias
    if beta_q != 0:
        drive = drive + nudge_term(state.s, target, beta_q)
    s_new = state_step(state.s, drive, dyn.eps_q, dyn.one)
    return NeuronState(s_new, d_s), inp_s != inp, d_s != d


@_op
def encode_step(a, state, dyn):
    """The sigma-delta encoder of activations ``a`` with the residue saturated.

    ``state``: :class:`EncoderState`; returns ``(spike, EncoderState(psi', a), saturated)``.
    """
    p, q = encoder_step(state.psi, a, state.prev, dyn.lam_q, dyn.thr_lam, dyn.one_lam)
    p_s = saturate(p, dyn.reg_lo, dyn.reg_hi)
    return q, EncoderState(p_s, a), p_s != p


pure = pure_twins(globals(), __name__)
"""Plain-Python twins of the steps (NumPy arrays, PyTorch tensors, Python ints)."""

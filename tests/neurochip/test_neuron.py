"""neurochip.neuron: the update sequence, compiled and pure twins identical, against the rules."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurochip import neuron as nr
from neurochip import numerics as nx

DYN = nr.Dynamics(lam_q=2048, eps_q=2048, one=4096, thr_lam=1024, one_lam=2048,
                  reg_lo=nx.REG_MIN, reg_hi=nx.REG_MAX)
ALIGN = nr.Alignment(sh_fwd=3, fb_mult=2048, sh_fb=0, sh_out=6)
REG = st.integers(nx.REG_MIN, nx.REG_MAX)


def _by_hand(u_fwd, u_fb, bias, target, beta_q, s, dec):
    """The sequence of docs/numerics.md §5 spelled out with the plain rules."""
    p = nx.pure
    inp = p.align_input(u_fwd, u_fb, *ALIGN)
    inp_s = p.saturate(inp, DYN.reg_lo, DYN.reg_hi)
    d = p.decoder_step(dec, inp_s, DYN.lam_q)
    d_s = p.saturate(d, DYN.reg_lo, DYN.reg_hi)
    drive = d_s + bias + (p.nudge_term(s, target, beta_q) if beta_q else 0)
    return p.state_step(s, drive, DYN.eps_q, DYN.one), d_s, inp_s != inp, d_s != d


@settings(max_examples=300, deadline=None)
@given(u_fwd=st.integers(-(1 << 40), 1 << 40), u_fb=st.integers(-(1 << 30), 1 << 30),
       bias=st.integers(-(1 << 15), 1 << 15), label=st.booleans(),
       beta_q=st.sampled_from([0, 2048, -2048, 4096]), s=st.integers(0, 4096), dec=REG)
def test_neuron_step_is_the_sequence(u_fwd, u_fb, bias, label, beta_q, s, dec):
    target = 4096 * label
    want = _by_hand(u_fwd, u_fb, bias, target, beta_q, s, dec)
    for step in (nr.neuron_step, nr.pure.neuron_step):
        new, sat_in, sat_dec = step(u_fwd, u_fb, bias, target, beta_q, nr.NeuronState(s, dec),
                                    ALIGN, DYN)
        assert (new.s, new.dec, bool(sat_in), bool(sat_dec)) == want


@settings(max_examples=300, deadline=None)
@given(a=st.integers(0, 4096), prev=st.integers(0, 4096), psi=REG)
def test_encode_step_is_encoder_then_saturate(a, prev, psi):
    p, q = nx.pure.encoder_step(psi, a, prev, DYN.lam_q, DYN.thr_lam, DYN.one_lam)
    want = (bool(q), (nx.pure.saturate(p, DYN.reg_lo, DYN.reg_hi), a), p > DYN.reg_hi or p < DYN.reg_lo)
    for step in (nr.encode_step, nr.pure.encode_step):
        spike, enc, sat = step(a, nr.EncoderState(psi, prev), DYN)
        assert (bool(spike), tuple(enc), bool(sat)) == want


def test_arrays_and_tensors_give_the_scalars():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    n = 200
    args = [rng.integers(-(1 << 20), 1 << 20, n), rng.integers(-(1 << 20), 1 << 20, n),
            rng.integers(-300, 300, n), (rng.random(n) < 0.1) * 4096]
    s, dec = rng.integers(0, 4097, n), rng.integers(-(1 << 22), 1 << 22, n)
    arr, ai, ad = nr.pure.neuron_step(*args, -2048, nr.NeuronState(s, dec), ALIGN, DYN)
    ten, ti, td = nr.pure.neuron_step(*map(torch.as_tensor, args), -2048,
                                      nr.NeuronState(torch.as_tensor(s), torch.as_tensor(dec)),
                                      ALIGN, DYN)
    assert np.array_equal(arr.s, ten.s.numpy()) and np.array_equal(arr.dec, ten.dec.numpy())
    assert np.array_equal(ai, ti.numpy()) and np.array_equal(ad, td.numpy())
    for i in range(0, n, 17):
        one, _, _ = nr.neuron_step(*(int(a[i]) for a in args), -2048,
                                   nr.NeuronState(int(s[i]), int(dec[i])), ALIGN, DYN)
        assert (one.s, one.dec) == (arr.s[i], arr.dec[i])


def test_phase_schedule():
    assert [nr.phase_beta_q(p, 1843) for p in range(3)] == [0, 1843, -1843]
    assert [nr.pure.phase_steps(p, 40, 10) for p in range(3)] == [40, 10, 10]


def test_the_executions_use_these_steps():
    """The mirror and the Lava models run the same code objects (not copies of the sequence)."""
    pytest.importorskip("torch")
    import reference.mirror as mirror
    assert mirror.steps is nr.pure
    from mapping.builder import _allow_lava_fork
    _allow_lava_fork()          # lava sets the 'fork' start method when imported
    pytest.importorskip("lava.magma.core.process.process")
    import mapping.procs.ep as ep
    assert ep._steps is nr.pure

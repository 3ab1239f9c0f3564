"""The hidden-layer update in 32-bit lanes (neurochip/core/lanes.py) against the int64 step.

The int64 step (``kernels._update_layer``, i.e. :func:`neurochip.neuron.neuron_step` and
:func:`~neurochip.neuron.encode_step`) is the reference here: the lanes must give its
integers for every register value the widths allow, and the bound that switches them on
must hold where the lanes are used and fail where they could overflow.
"""
import numpy as np
import pytest

from neurochip import numerics as nx
from neurochip.bounds import int32_lanes_exact
from neurochip.core import CoreNet
from neurochip.core.kernels import _update_layer
from neurochip.core.lanes import CHUNK, mul_q12, update_layer_lanes
from neurochip.core.meta import M_FB_MULT, M_NCOLS, M_SH_FB, M_SH_FWD, M_SH_OUT
from neurochip.kinds import N_COUNTS
from neurochip.network import Network, get_preset
from neurochip.neuron import Dynamics

from tests.helpers import digits_inputs


def _edge_ints(rng, lo, hi, n):
    """``n`` values in ``[lo, hi]``: the ends and their neighbours, then uniform draws."""
    edges = np.array([lo, lo + 1, hi - 1, hi, 0, 1, -1, 2047, 2048, -2048, -2049, 4095, 4096],
                     np.int64)
    edges = edges[(edges >= lo) & (edges <= hi)]
    return np.concatenate([edges, rng.integers(lo, hi, n - edges.size, endpoint=True)])


@pytest.mark.parametrize("c", [0, 1, 7, 2048, 2458, 4095, 4096])
def test_mul_q12_is_round_shift_of_the_product(c):
    rng = np.random.default_rng(c)
    d = _edge_ints(rng, -(1 << 30) + 1, (1 << 30) - 1, 4000)
    want = [nx.round_shift.py_func(int(c) * int(v), 12) for v in d]
    got = [int(mul_q12(np.int32(c), np.int32(v))) for v in d]
    assert got == want


def _case(seed, one, bias_bits, lam_q, eps_q, shifts, size):
    rng = np.random.default_rng(seed)
    lo, hi = nx.REG_MIN, nx.REG_MAX
    s = _edge_ints(rng, 0, one, size)
    state = dict(
        s=s, dec=_edge_ints(rng, lo, hi, size), psi=_edge_ints(rng, lo, hi, size),
        u_fwd=_edge_ints(rng, -(1 << 20), 1 << 20, size),
        u_fb=_edge_ints(rng, -(1 << 20), 1 << 20, size),
        bias=_edge_ints(rng, -(1 << (bias_bits - 1)), (1 << (bias_bits - 1)) - 1, size))
    for v in state.values():
        rng.shuffle(v)
    theta_fp = one // 2
    dyn = Dynamics(lam_q, eps_q, one, nx.round_shift.py_func(lam_q * theta_fp, 12),
                   nx.round_shift.py_func(lam_q * one, 12), lo, hi)
    row = np.zeros(M_NCOLS, np.int64)
    row[M_SH_FWD], row[M_FB_MULT], row[M_SH_FB], row[M_SH_OUT] = shifts
    return state, dyn, row


# (ONE, bias bits, lambda_q, epsilon_q, (sh_fwd, fb_mult, sh_fb, sh_out))
CASES = [
    (1 << 12, 16, 2048, 2048, (11, 2048, 0, 9)),          # mnist-small's conv1
    (1 << 12, 16, 2458, 410, (14, 2458, 0, 11)),          # paper-mnist's conv1
    (1 << 16, 24, 4096, 4096, (0, 4096, 3, 0)),           # widest state and bias, lambda = eps = 1
    (1 << 8, 10, 1, 1, (2, 1, 0, 5)),                     # narrowest
    (1 << 12, 14, 3277, 819, (5, 0, 0, 0)),               # no feedback, no rounding shift
]


@pytest.mark.parametrize("one,bias_bits,lam_q,eps_q,shifts", CASES)
@pytest.mark.parametrize("acc_dtype", [np.int32, np.int64])
def test_lanes_equal_the_int64_step_over_the_register_range(one, bias_bits, lam_q, eps_q, shifts,
                                                            acc_dtype):
    assert int32_lanes_exact(lam_q, eps_q, one, bias_bits, nx.REG_BITS)
    size = 3 * CHUNK + 77          # several chunks and a ragged one
    off = 5                         # a layer that does not start at 0
    n = off + size + 3
    st, dyn, row = _case(lam_q + one, one, bias_bits, lam_q, eps_q, shifts, size)

    def arrays(dtype):
        a = {k: np.zeros(n, dtype if k != "bias" else np.int32) for k in st}
        for k, v in st.items():
            a[k][off:off + size] = v
        a["u_fwd"] = a["u_fwd"].astype(acc_dtype)
        a["u_fb"] = a["u_fb"].astype(acc_dtype)
        a["encp"] = a["s"].copy()          # the invariant between steps: encp == s
        a["q"] = np.zeros(n, np.int8)
        a["counts"] = np.zeros(N_COUNTS, np.int64)
        return a

    ref, lan = arrays(np.int64), arrays(np.int32)
    for step in range(3):                   # three steps: the state carries over
        _update_layer(row, off, size, ref["bias"], ref["u_fwd"], ref["u_fb"], ref["s"],
                      ref["dec"], ref["psi"], ref["encp"], ref["q"], dyn, 0, -1, ref["counts"])
        update_layer_lanes(row, off, size, lan["bias"], lan["u_fwd"], lan["u_fb"], lan["s"],
                           lan["dec"], lan["psi"], lan["q"], np.zeros(CHUNK, np.int32), dyn,
                           lan["counts"])
        for k in ("s", "dec", "psi", "q", "u_fwd", "u_fb", "counts"):
            np.testing.assert_array_equal(lan[k], ref[k], err_msg=f"{k}, step {step}")
        np.testing.assert_array_equal(ref["encp"][off:off + size], lan["s"][off:off + size])
        assert not lan["u_fwd"].any() and not lan["u_fb"].any()      # consumed
        u = np.random.default_rng(step).integers(-(1 << 18), 1 << 18, (2, size))
        for a in (ref, lan):                                         # new input, same for both
            a["u_fwd"][off:off + size] = u[0]
            a["u_fb"][off:off + size] = u[1]
    # the ends were reached: saturations happened and were counted identically
    assert ref["counts"].sum() > 0


def test_bound_holds_for_every_width_the_network_accepts_and_fails_beyond():
    # the widest configuration Widths/Hyper validate: S = 16, 24-bit biases, lambda = eps = 1
    assert int32_lanes_exact(4096, 4096, 1 << 16, 24, nx.REG_BITS)
    assert not int32_lanes_exact(4097, 4096, 1 << 12, 16, nx.REG_BITS)    # factor above 1
    assert not int32_lanes_exact(4096, 4096, 1 << 20, 16, nx.REG_BITS)    # prediction product
    assert not int32_lanes_exact(4096, 4096, 1 << 12, 31, nx.REG_BITS)    # drive
    assert not int32_lanes_exact(4096, 4096, 1 << 12, 16, 31)             # decoder


@pytest.mark.parametrize("preset,pool", [("digits", "avg"), ("digits-2c", "max"),
                                         ("digits-fc", "avg")])
def test_network_with_and_without_lanes_gives_identical_integers(preset, pool):
    import dataclasses
    p = get_preset(preset)
    net = Network.create(p.arch, dataclasses.replace(p.hyper, pool=pool), p.widths, seed=1)
    x, y = digits_inputs(6)
    fast, slow = CoreNet(net), CoreNet(net)
    assert fast.lanes32
    slow.lanes32 = False
    a = fast.run(x, y, train=True, record=True)
    b = slow.run(x, y, train=True, record=True)
    for k in ("traces", "pool_idx", "s_free", "counts", "rec_spikes", "rec_state"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)

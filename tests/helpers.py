"""Helpers several test files share: small inputs and child processes that are always reaped."""
from __future__ import annotations

import subprocess
import time

import numpy as np

from neurochip.data import load_digits
from neurochip.network import Architecture, Hyper, Network, Widths


def digits_inputs(n: int, sbits: int = 12, start: int = 0):
    """``n`` training images of the 8x8 digits as quantised pixels, and their labels."""
    ds = load_digits()
    return ds.quantised(ds.train_x[start:start + n], sbits), ds.train_y[start:start + n]


def reap(p: subprocess.Popen) -> None:
    """Never leave a process behind, whatever happened in the test."""
    if p.poll() is None:
        p.kill()
    try:
        p.communicate(timeout=30)
    except (subprocess.TimeoutExpired, ValueError):
        pass


def wait_for(pred, proc, timeout: float, what: str):
    """Poll ``pred`` until it is truthy; fail if ``proc`` ends first or after ``timeout`` s."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        v = pred()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            v = pred()
            if v:
                return v
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.02)
    raise AssertionError(f"timeout waiting for {what}")


def saturating_network(seed=5) -> Network:
    """4-bit weights, S = 16, a huge learning rate.  Layer 1: rows alternately all +7 /
    all -8 with exponent 0 (one weight = 1.0), so a few input spikes overflow the 24-bit
    aligned input (64 x 7 x 2**16 > 2**23); the readout (exponent 8, small random
    weights) stays responsive, so learning drives its weights and biases into their
    ranges' edges."""
    arch = Architecture.parse("1x8x8:f32-f10")
    hyper = Hyper(beta=0.5, epsilon=0.5, lam=0.5, alpha=0.5, theta=0.5, t1=20, t2=8,
                  lrs=(10.0, 10.0), batch_size=20)
    widths = Widths(weight_bits=4, state_bits=16, trace_bits=2, bias_bits=18)
    s1, s2 = arch.weight_shapes()
    w1 = np.where(np.arange(s1[0])[:, None] % 2 == 0, 7, -8).repeat(s1[1], 1).astype(np.int32)
    w2 = np.random.default_rng(seed).integers(-4, 4, s2).astype(np.int32)
    bs = [np.zeros(s, np.int32) for s in arch.bias_shapes()]
    return Network(arch, hyper, widths, seed, [w1, w2], bs, [0, 8], 0, "")

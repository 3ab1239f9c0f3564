"""Helpers several test files share: small inputs and child processes that are always reaped."""
from __future__ import annotations

import subprocess
import time

from neurochip.data import load_digits


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

"""Section 5: start-up of ``python -m neurochip.run --bits 8`` until its first training batch."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from .common import ROOT

_PROBE = """
import os, sys
import neurochip.trainer as _tr
_orig = _tr.train_step
def _probe(*a, **k):
    out = _orig(*a, **k)
    sys.stderr.write("\\n@@first-update-done\\n")
    sys.stderr.flush()
    os._exit(0)
_tr.train_step = _probe
from neurochip.run import main
sys.exit(main(sys.argv[1:]))
"""


def _time_to_first_batch(env: dict, timeout: float = 300.0) -> dict:
    """Seconds from spawning ``python -m neurochip.run --bits 8`` to its first training batch.

    ``ready_s``: the command prints ``neurochip: ...`` once the network, the
    data and the backend are ready and training begins (``epoch 1/...``, the
    progress bar, follows at once).  ``first_update_s``: the first minibatch
    has been simulated and the weights updated (this includes loading the
    compiled kernels from Numba's cache, which happens on first use).  The
    same command runs through a probe that wraps ``neurochip.trainer.train_step``
    and stops the process after the first update.
    """
    import select
    cmd = [sys.executable, "-c", _PROBE, "--bits", "8"]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    buf = b""
    out = {"ready_s": None, "first_update_s": None}
    try:
        while time.perf_counter() - t0 < timeout:
            r, _, _ = select.select([p.stderr], [], [], 1.0)
            if r:
                chunk = os.read(p.stderr.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                if out["ready_s"] is None and b"neurochip:" in buf:
                    out["ready_s"] = time.perf_counter() - t0
                if b"@@first-update-done" in buf:
                    out["first_update_s"] = time.perf_counter() - t0
                    return out
            elif p.poll() is not None:
                break
    finally:
        p.kill()
        p.wait()
    out["stderr_tail"] = buf.decode(errors="replace")[-300:]
    return out


def bench_startup(args) -> dict:
    env = dict(os.environ)
    out = {"command": "python -m neurochip.run --bits 8"}
    if args.cold_start:
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            cold_env = dict(env, NUMBA_CACHE_DIR=d)
            out["cold_cache"] = _time_to_first_batch(cold_env)
            out["cold_cache_second_run"] = _time_to_first_batch(cold_env)
    out["first_run"] = _time_to_first_batch(env)
    out["second_run"] = _time_to_first_batch(env)
    return out


def report_startup(args, result) -> None:
    print("\n[5] start-up of `python -m neurochip.run --bits 8` (until its first training batch)")
    r5 = bench_startup(args)
    result["startup"] = r5
    for k in ("cold_cache", "cold_cache_second_run", "first_run", "second_run"):
        if k in r5:
            v = r5[k]
            if v.get("first_update_s") is None:
                print(f"  {k:22s} did not start: {v.get('stderr_tail', '')}")
            else:
                print(f"  {k:22s} training starts after {v['ready_s']:5.2f} s, first update "
                      f"done after {v['first_update_s']:5.2f} s")
    if r5["second_run"].get("ready_s") is not None:
        result["startup_second_run_s"] = r5["second_run"]["ready_s"]
        result["startup_second_run_first_update_s"] = r5["second_run"]["first_update_s"]

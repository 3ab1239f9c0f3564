"""Section 4: a minibatch on 1 and on 2 Numba threads, with per-thread CPU clocks."""
from __future__ import annotations

import os
import time

import numpy as np

from .common import Timed, fmt_ms, timed_train_step

def _thread_clocks() -> dict[int, tuple[int, int]]:
    """Per thread of this process: (ns on a CPU, ns waiting for one), from /proc schedstat."""
    out = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as fh:
                    run, wait = fh.read().split()[:2]
                out[int(tid)] = (int(run), int(wait))
            except (OSError, ValueError):
                pass
    except OSError:
        pass
    return out


def _clock_delta(before: dict, after: dict) -> tuple[float, float, float]:
    """(sum on-CPU s, max on-CPU s of one thread, sum run-queue wait s) between two snapshots."""
    runs, waits = [], []
    for tid, (run, wait) in after.items():
        r0, w0 = before.get(tid, (0, 0))
        runs.append(run - r0)
        waits.append(wait - w0)
    if not runs:
        return float("nan"), float("nan"), float("nan")
    return sum(runs) / 1e9, max(runs) / 1e9, sum(waits) / 1e9


def bench_threads(net0, x, y, args) -> dict:
    """Wall time of a minibatch on 1 and on 2 Numba threads, plus per-thread CPU clocks.

    On a shared machine the wall clock also measures the other processes: the
    run-queue wait (time our threads were ready but had no CPU) is reported,
    and the speed-up the work itself allows, from the busiest thread's CPU time
    (``projected``: 1-thread CPU time over the 2-thread critical path).
    """
    import numba
    from neurochip.trainer import make_backend
    if numba.config.NUMBA_NUM_THREADS < 2:
        return {"skipped": "fewer than 2 Numba threads available"}
    net = net0.copy()
    be = make_backend(net, "numba")
    be.run(x, y, train=True)
    sim = {1: [], 2: []}
    step = {1: [], 2: []}
    cpu = {1: [], 2: []}
    tb = Timed(be)
    for r in range(args.thread_rounds):
        for th in ((1, 2) if r % 2 == 0 else (2, 1)):
            numba.set_num_threads(th)
            c0 = _thread_clocks()
            t0 = time.perf_counter()
            be.run(x, y, train=True)
            sim[th].append(time.perf_counter() - t0)
            cpu[th].append(_clock_delta(c0, _thread_clocks()))
            step[th].append(timed_train_step(tb, net, x, y)["total"])
    numba.set_num_threads(args.threads)
    m = {k: float(np.median(v)) for k, v in sim.items()}
    ms = {k: float(np.median(v)) for k, v in step.items()}
    c = {k: [float(np.median([row[i] for row in v])) for i in range(3)] for k, v in cpu.items()}
    out = {"batch": len(y), "rounds": args.thread_rounds,
           "simulate_s": {"1": m[1], "2": m[2]}, "train_step_s": {"1": ms[1], "2": ms[2]},
           "threads_speedup": m[1] / m[2], "threads_speedup_train_step": ms[1] / ms[2]}
    if np.isfinite(c[2][1]) and c[2][1] > 0:
        out["cpu_s"] = {str(k): {"total": v[0], "busiest_thread": v[1], "run_queue_wait": v[2]}
                        for k, v in c.items()}
        out["threads_speedup_projected"] = c[1][1] / c[2][1]
    return out


def report_threads(net0, x, y, args, result) -> None:
    bsz = len(y)
    print(f"\n[4] Numba threads on a minibatch of {bsz} (training)")
    r4 = bench_threads(net0, x, y, args)
    result["threads"] = r4
    if "skipped" in r4:
        print(f"  skipped: {r4['skipped']}")
    else:
        result["threads_speedup"] = r4["threads_speedup"]
        result["threads_speedup_train_step"] = r4["threads_speedup_train_step"]
        print(f"  simulate: 1 thread {fmt_ms(r4['simulate_s']['1'])}, 2 threads "
              f"{fmt_ms(r4['simulate_s']['2'])} -> speed-up {r4['threads_speedup']:.2f}x")
        if "cpu_s" in r4:
            c1, c2 = r4["cpu_s"]["1"], r4["cpu_s"]["2"]
            result["threads_speedup_projected"] = r4["threads_speedup_projected"]
            print(f"  per-thread CPU clocks: 1 thread {fmt_ms(c1['busiest_thread'])} of work "
                  f"({fmt_ms(c1['run_queue_wait'])} waiting for a CPU); 2 threads "
                  f"{fmt_ms(c2['total'])} of work in all, the busiest {fmt_ms(c2['busiest_thread'])}"
                  f" ({fmt_ms(c2['run_queue_wait'])} waiting for a CPU) -> "
                  f"{r4['threads_speedup_projected']:.2f}x with the CPUs to itself")
        print(f"  whole train step (with the serial update): 1 thread "
              f"{fmt_ms(r4['train_step_s']['1'])}, 2 threads {fmt_ms(r4['train_step_s']['2'])}"
              f" -> {r4['threads_speedup_train_step']:.2f}x")

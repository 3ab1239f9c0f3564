"""Section 3: the core's time per sample against its synaptic events (1 thread, CPU time)."""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from .common import count_events

def _fit(e: np.ndarray, t: np.ndarray) -> dict:
    """Least squares ``t = a + b e`` (t in ms, e in events)."""
    if len(e) < 2 or np.ptp(e) == 0:
        return {"ns_per_event": float("nan"), "intercept_ms": float("nan"), "r2": float("nan")}
    slope, icpt = np.polyfit(e, t, 1)
    pred = slope * e + icpt
    r2 = 1.0 - float(((t - pred) ** 2).sum()) / max(float(((t - t.mean()) ** 2).sum()), 1e-30)
    return {"ns_per_event": 1e6 * float(slope), "intercept_ms": float(icpt), "r2": r2}


def bench_scaling(net0, x, y, args) -> dict:
    """Core simulation time per training sample against its synaptic events.

    Same weights and inputs; three knobs: the input intensity and the
    threshold theta at fixed steps (the per-step neuron updates stay, the
    events change), and the free-phase length T1 (steps and events change
    together).  Timed on one thread with the thread's CPU time (robust to the
    other processes of a shared machine) and with the wall clock.
    """
    import numba
    from neurochip.core import CoreNet
    from neurochip.network import Network

    numba.set_num_threads(1)

    def variant(**hyper):
        return CoreNet(Network(net0.arch, dataclasses.replace(net0.hyper, **hyper), net0.widths,
                               net0.seed, net0.weights_q, net0.biases_q, net0.weight_exp))

    configs = []
    for frac in args.intensities:
        xi = (x * int(round(frac * 256))) >> 8
        configs.append((f"intensity={frac:g}", "intensity", frac, CoreNet(net0), xi))
    for theta in args.thetas:
        configs.append((f"theta={theta:g}", "theta", theta, variant(theta=theta), x))
    for t1 in args.t1s:
        configs.append((f"T1={t1}", "t1", t1, variant(t1=t1), x))
    for _, _, _, core, xi in configs:
        core.run(xi[:1], y[:1], train=True)
    cpu = {c[0]: [] for c in configs}
    wall = {c[0]: [] for c in configs}
    events = {}
    for r in range(args.scaling_rounds):
        for c in (configs if r % 2 == 0 else configs[::-1]):
            name, _, _, core, xi = c
            t0, c0 = time.perf_counter(), time.thread_time()
            res = core.run(xi, y, train=True)
            cpu[name].append(time.thread_time() - c0)
            wall[name].append(time.perf_counter() - t0)
            events[name] = count_events(res.counts)
    # the natural variation: each sample of the minibatch alone
    single = CoreNet(net0)
    single.run(x[:1], y[:1], train=True)
    per = np.zeros((args.scaling_rounds, len(y)))
    per_ev = np.zeros(len(y))
    for r in range(args.scaling_rounds):
        for b in range(len(y)):
            c0 = time.thread_time()
            res = single.run(x[b:b + 1], y[b:b + 1], train=True)
            per[r, b] = time.thread_time() - c0
            per_ev[b] = count_events(res.counts)
    numba.set_num_threads(args.threads)
    rows = []
    n = len(y)
    for name, kind, value, core, _ in configs:
        t = float(np.median(cpu[name])) / n
        e = events[name] / n
        h = core.net.hyper
        rows.append({"config": name, "kind": kind, "value": value, "steps": h.t1 + 2 * h.t2,
                     "events_per_sample": e, "ms_per_sample": 1e3 * t,
                     "wall_ms_per_sample": 1e3 * float(np.median(wall[name])) / n,
                     "ns_per_event": 1e9 * t / max(e, 1)})
    out = {"rows": rows, "timer": "thread CPU time, 1 Numba thread, median", "fits": {}}
    t_per = 1e3 * np.median(per, axis=0)
    out["per_sample"] = {"events": per_ev.tolist(), "ms": t_per.tolist(),
                         "correlation": float(np.corrcoef(per_ev, t_per)[0, 1]),
                         "fit": dict(_fit(per_ev, t_per),
                                     events_range=[float(per_ev.min()), float(per_ev.max())],
                                     time_range_ms=[float(t_per.min()), float(t_per.max())])}
    for label, kinds in (("fixed_steps", ("intensity", "theta")), ("t1", ("t1",)),
                         ("all", ("intensity", "theta", "t1"))):
        sel = [r for r in rows if r["kind"] in kinds]
        e = np.array([r["events_per_sample"] for r in sel])
        t = np.array([r["ms_per_sample"] for r in sel])
        if len(sel):
            out["fits"][label] = dict(_fit(e, t), events_range=[float(e.min()), float(e.max())],
                                      time_range_ms=[float(t.min()), float(t.max())])
    return out


def report_scaling(net0, x, y, args, result) -> None:
    print("\n[3] core time per training sample (simulation; 1 thread, CPU time) vs synaptic events")
    r3 = bench_scaling(net0, x, y, args)
    result["spike_scaling"] = r3
    print(f"  {'config':16s}{'steps':>6s}{'events/sample':>15s}{'ms/sample':>11s}{'ns/event':>10s}"
          f"{'wall ms':>10s}")
    for row in r3["rows"]:
        print(f"  {row['config']:16s}{row['steps']:6d}{row['events_per_sample']:15,.0f}"
              f"{row['ms_per_sample']:11.3f}{row['ns_per_event']:10.3f}{row['wall_ms_per_sample']:10.3f}")
    ps = r3["per_sample"]
    f = ps["fit"]
    print(f"  the {len(ps['ms'])} samples of the minibatch one at a time: {f['events_range'][0]:,.0f}-"
          f"{f['events_range'][1]:,.0f} events, {f['time_range_ms'][0]:.3f}-"
          f"{f['time_range_ms'][1]:.3f} ms; correlation {ps['correlation']:.3f}")
    for label, f in r3["fits"].items():
        er, tr = f["events_range"], f["time_range_ms"]
        print(f"  fit {label:12s} time = {f['intercept_ms']:6.3f} ms + {f['ns_per_event']:.3f} ns x "
              f"events (R^2 {f['r2']:.3f}); events x{er[1] / max(er[0], 1):.2f} -> time "
              f"x{tr[1] / max(tr[0], 1e-9):.2f}")

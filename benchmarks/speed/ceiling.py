"""Section 8: the paper network's event rate against the scatter kernel's own ceiling.

``paper_events_per_s``: synaptic events per second of ``CoreNet.run`` (training: free and
both nudged phases) on a ``paper-mnist`` minibatch, on ``--threads`` threads, wall clock.

``scatter_ceiling_events_per_s``: the core's one-run scatter (``_add_run``: a spike adds
one contiguous run of int16 weights into int32 accumulators, what every event cost at
revision c0fb9bb) replaying the recorded spikes of one sample's densest edge (layer 1 ->
conv2, about two thirds of the events) with nothing else to do: no neuron updates, no
other tables in the caches; one replay per thread, ``--threads`` threads, wall clock.
Each recorded step's spikes are added once (a sample's events on this edge, up to the
phase boundaries).  The same replay through today's grouped scatter (``_scatter_forward``: the spikes of one
position summed four runs at a time) is reported beside it.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from numba import njit, prange

from neurochip.core.meta import M_C, M_IN_OFF, M_KF, M_OFF, M_SIZE, M_W, M_WF_OFF
from neurochip.core.scatter import _add_run, _scatter_forward

from .common import count_events, fmt_rate, load

# not cache=True: these inline the core's kernels, and Numba would validate a cached
# replay against this file only


@njit(parallel=True)
def _replay_one_run(meta, plan, l, w, idx_all, cnt_all, acc_proto, n_workers):
    """Every spike of every step adds its runs one at a time (no grouping)."""
    total = np.zeros(n_workers, np.int64)
    row = meta[l]
    in_off, off, wf = row[M_IN_OFF], row[M_OFF], row[M_WF_OFF]
    s_step = 2 * row[M_KF] * row[M_C]
    d_step = row[M_W] * row[M_C]
    for wk in prange(n_workers):
        acc = np.zeros_like(acc_proto)
        ev = 0
        for k in range(idx_all.shape[0]):
            for q in range(cnt_all[k, l - 1]):
                j = idx_all[k, in_off + q]
                nr, run = plan[j, 3], plan[j, 2]
                src, dst = wf + plan[j, 0], off + plan[j, 1]
                ev += nr * run
                for r in range(nr):
                    _add_run(acc, dst, w, src, run)
                    src += s_step
                    dst -= d_step
            acc[off:off + row[M_SIZE]] = 0      # consumed each step, like the neuron update
        total[wk] = ev
    return total.sum()


@njit(parallel=True)
def _replay_grouped(meta, coords, plan, l, w, idx_all, cnt_all, acc_proto, n_workers):
    """The same spikes through the core's forward scatter (grouped by position)."""
    total = np.zeros(n_workers, np.int64)
    off, size = meta[l, M_OFF], meta[l, M_SIZE]
    for wk in prange(n_workers):
        acc = np.zeros_like(acc_proto)
        cacc = np.zeros(1, acc_proto.dtype)
        pool_idx = np.zeros(1, np.int8)
        srcs = np.zeros(acc_proto.shape[0], np.int64)
        ev = 0
        for k in range(idx_all.shape[0]):
            # a conv edge: its table is w (the fc tables, unused, are passed as w too)
            ev += _scatter_forward(meta, coords, plan, l, w, w, idx_all[k], cnt_all[k], acc,
                                   cacc, pool_idx, 0, srcs)
            acc[off:off + size] = 0
        total[wk] = ev
    return total.sum()


def _spike_lists(layout, rec: np.ndarray):
    """Per step, the index lists the core scatters from: ``(idx (steps, n_all), cnt (steps, L+1))``."""
    from neurochip.core.meta import M_OFF, M_SIZE
    meta = layout.meta
    steps = rec.shape[0]
    idx = np.zeros((steps, layout.n_all), np.int32)
    cnt = np.zeros((steps, len(meta)), np.int64)
    for k in range(steps):
        for l in range(len(meta)):
            o, n = int(meta[l, M_OFF]), int(meta[l, M_SIZE])
            nz = np.nonzero(rec[k, o:o + n])[0] + o
            idx[k, o:o + len(nz)] = nz
            cnt[k, l] = len(nz)
    return idx, cnt


def bench_ceiling(args) -> dict:
    import numba
    from neurochip.core import CoreNet
    from neurochip.network import Network, get_preset
    pre = get_preset("paper-mnist")
    n = args.paper_batch
    net = Network.create(pre.arch, dataclasses.replace(pre.hyper, batch_size=n), pre.widths,
                         seed=args.seed)
    ds = load("mnist", args.data_dir)
    x = ds.quantised(ds.train_x[:n], net.widths.state_bits)
    y = ds.train_y[:n]
    core = CoreNet(net)
    numba.set_num_threads(args.threads)
    core.run(x[:1], y[:1], train=True)
    whole, ev_whole = [], 0
    for _ in range(args.ceiling_rounds):
        t0 = time.perf_counter()
        res = core.run(x, y, train=True)
        whole.append(time.perf_counter() - t0)
        ev_whole = count_events(res.counts)
    rec = core.run(x[:1], y[:1], train=True, record=True)
    idx, cnt = _spike_lists(core.layout, rec.rec_spikes[0])
    lay, l = core.layout, 2                 # layer 1 -> conv2: the densest edge
    proto = np.zeros(lay.n_all, lay.acc_dtype)
    workers = args.threads
    rates, counted = {}, {}
    for name, fn, fargs in (
            ("one_run", _replay_one_run, (lay.meta, lay.plan, l, core.w_fwd, idx, cnt, proto, workers)),
            ("grouped", _replay_grouped, (lay.meta, lay.coords, lay.plan, l, core.w_fwd, idx, cnt,
                                          proto, workers))):
        fn(*fargs[:-1], 1)
        ts = []
        for _ in range(args.ceiling_rounds):
            t0 = time.perf_counter()
            ev = fn(*fargs)
            ts.append(time.perf_counter() - t0)
        counted[name] = int(ev)
        rates[name] = ev / float(np.median(ts))
    # both replays add the same events (the grouped one only in another order)
    assert counted["one_run"] == counted["grouped"], counted
    edge_events = counted["one_run"] // workers
    t = float(np.median(whole))
    return {"batch": n, "threads": args.threads, "rounds": args.ceiling_rounds,
            "paper_ms_per_sample_simulate": 1e3 * t / n, "events_per_sample": ev_whole / n,
            "paper_events_per_s": ev_whole / t,
            "edge": "layer 1 -> conv2 (forward)", "edge_events_per_sample": edge_events,
            "scatter_ceiling_events_per_s": rates["one_run"],
            "grouped_scatter_events_per_s": rates["grouped"]}


def report_ceiling(args, result) -> None:
    print(f"\n[8] paper-mnist event rate vs the scatter kernel's ceiling ({args.threads} threads, "
          f"minibatch {args.paper_batch}, wall clock)")
    r = bench_ceiling(args)
    result["ceiling"] = r
    result["paper_events_per_s"] = r["paper_events_per_s"]
    result["scatter_ceiling_events_per_s"] = r["scatter_ceiling_events_per_s"]
    print(f"  whole training simulation: {r['paper_ms_per_sample_simulate']:.1f} ms/sample, "
          f"{r['events_per_sample'] / 1e6:.0f} M events/sample, {fmt_rate(r['paper_events_per_s'])}"
          f"events/s")
    print(f"  replay of {r['edge']} ({r['edge_events_per_sample'] / 1e6:.0f} M events/sample), "
          f"nothing else: one run per spike {fmt_rate(r['scatter_ceiling_events_per_s'])}events/s "
          f"(the ceiling), grouped {fmt_rate(r['grouped_scatter_events_per_s'])}events/s")
    print(f"  whole sample / ceiling: "
          f"{r['paper_events_per_s'] / r['scatter_ceiling_events_per_s']:.2f}")

"""``python benchmarks/speed.py``: how fast the Numba core trains and infers, in one run.

Times, on the same network, inputs and seed, and in one process so that every
ratio compares measurements taken side by side (the machine is shared: runs
are interleaved, alternating their order, and each figure is a median):

1. one EP training sample (free + two nudged phases + the update, i.e.
   ``neurochip.trainer.train_step`` on a minibatch, divided by its size) and one
   inference (free phase only) for the Numba core and for the PyTorch
   reference on the CPU (``make_backend(net, 'torch')``: the same integers,
   computed densely); the weights of both are compared after every update
   (they must stay identical);
2. the same for a small network (``--lava-preset``, default 'digits') in the
   Lava mapping (``mapping.LavaBackend``, one sample at a time), against the
   core one sample at a time on one thread;
3. how the core's time per sample grows with its synaptic events: a sweep of
   the threshold theta and of the input intensity (same weights and inputs),
   with a least-squares line ``time = a + b * events``;
4. the speed-up of a minibatch from 1 to 2 Numba threads;
5. the start-up of ``python -m neurochip.run --bits 8``: seconds until its
   first training batch starts, on a second run (warm Numba cache).

``--json PATH`` writes every figure, among them ``core_vs_torch_train_ratio``
(PyTorch-CPU seconds over core seconds per training sample, same run),
``threads_speedup`` (1-thread over 2-thread time of a minibatch) and the
network and sample counts used.  Wall-clock figures depend on the load of the
machine: the load average is printed before and after.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

DEFAULT_DATA = os.environ.get("NEUROCHIP_DATA", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "mnist"))


# ----------------------------------------------------------------- helpers
def _load(dataset: str, data_dir: str | None):
    """The dataset (neurochip's loader; plain gzip + NumPy IDX reading as a fallback)."""
    try:
        from neurochip.data import load_dataset
        return load_dataset(dataset, data_dir)
    except ImportError:     # pragma: no cover - only before neurochip.idx existed
        return _load_idx_fallback(dataset, data_dir)


def _load_idx_fallback(dataset: str, data_dir: str):  # pragma: no cover
    import gzip
    from neurochip.data import Dataset

    def read(name):
        for base in (name, name + ".gz"):
            path = os.path.join(data_dir, base)
            if os.path.exists(path):
                opener = gzip.open if path.endswith(".gz") else open
                with opener(path, "rb") as fh:
                    raw = fh.read()
                ndim = raw[3]
                shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
                return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)
        raise FileNotFoundError(os.path.join(data_dir, name))

    tx, ty = read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte")
    vx, vy = read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte")
    return Dataset(dataset, tx[:, None], ty.astype(np.int64), vx[:, None], vy.astype(np.int64), 255)


def dense_ops_per_sample(net, train: bool = True) -> int:
    """Synaptic multiply-adds a dense execution forms per sample (every synapse, every step).

    Forward into every layer plus feedback into every layer below the output,
    with the avg-pool conv as its fused stride-2 kernel (what the core and the
    reference compute), max-pool conv at full resolution.
    """
    arch, h = net.arch, net.hyper
    shapes = [arch.input_shape] + arch.state_shapes()
    per_step = 0
    for l, spec in enumerate(arch.layers):
        if spec.kind == "conv":
            cin = shapes[l][0]
            if h.pool == "max":
                _, hc, wc = arch.conv_shape(l)
                fwd = spec.channels * hc * wc * cin * spec.kernel ** 2
            else:
                _, hp, wp = shapes[l + 1]
                fwd = spec.channels * hp * wp * cin * (spec.kernel + 1) ** 2
        else:
            fwd = spec.channels * int(np.prod(shapes[l]))
        per_step += fwd * (2 if l >= 1 else 1)      # feedback mirrors the forward edge
    steps = h.t1 + (2 * h.t2 if train else 0)
    return int(per_step * steps)


def _load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _events(counts: np.ndarray) -> int:
    """Synaptic events (forward + feedback, all phases and layers) in a counts array."""
    from neurochip.core import K_EVENTS_FB, K_EVENTS_FWD
    return int(counts[..., K_EVENTS_FWD].sum() + counts[..., K_EVENTS_FB].sum())


class Timed:
    """A backend proxy that times ``run`` and ``refresh`` (what ``train_step`` calls)."""

    def __init__(self, backend):
        self.backend = backend
        self.t_run = self.t_refresh = 0.0
        self.events = 0

    def run(self, *args, **kwargs):
        t0 = time.perf_counter()
        res = self.backend.run(*args, **kwargs)
        self.t_run += time.perf_counter() - t0
        self.events += _events(res.counts)
        return res

    def refresh(self):
        t0 = time.perf_counter()
        self.backend.refresh()
        self.t_refresh += time.perf_counter() - t0

    def layer_traces(self, res):
        return self.backend.layer_traces(res)

    def reset(self):
        self.t_run = self.t_refresh = 0.0
        self.events = 0


def timed_train_step(tb: Timed, net, x, y) -> dict:
    """``neurochip.trainer.train_step`` on the minibatch, with its parts timed."""
    from neurochip.trainer import train_step
    tb.reset()
    t0 = time.perf_counter()
    train_step(tb, net, x, y)
    total = time.perf_counter() - t0
    return {"total": total, "simulate": tb.t_run, "refresh": tb.t_refresh,
            "learning": total - tb.t_run - tb.t_refresh, "events": tb.events}


def timed_inference(backend, x, y) -> dict:
    t0 = time.perf_counter()
    res = backend.run(x, y, train=False)
    return {"total": time.perf_counter() - t0, "events": _events(res.counts)}


def _median(rows: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in rows]))


def _fmt_ms(seconds: float) -> str:
    return f"{1e3 * seconds:9.3f} ms"


def _fmt_rate(per_s: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_s >= scale:
            return f"{per_s / scale:.2f} {unit}"
    return f"{per_s:.0f} "


def _summary(rows: list[dict], n: int) -> dict:
    """Per-sample medians of timed rows over a batch of ``n`` samples."""
    out = {k: _median(rows, k) / n for k in rows[0] if k != "events"}
    out["events_per_sample"] = _median(rows, "events") / n
    out["events_per_second"] = out["events_per_sample"] / out["total"] if out["total"] else 0.0
    out["repeats"] = len(rows)
    return out


# ------------------------------------------------------ 1. core vs PyTorch
def bench_core_vs_torch(net0, x, y, args) -> dict:
    import numba
    from neurochip.trainer import make_backend

    out: dict = {}
    net_c = net0.copy()
    core = Timed(make_backend(net_c, "numba"))
    numba.set_num_threads(args.threads)
    # warm-up: JIT / cache load (a throw-away copy of the network)
    warm = make_backend(net0.copy(), "numba")
    warm.run(x[:2], y[:2], train=True)
    warm.run(x[:2], y[:2], train=False)

    torch_be = None
    if args.torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
            net_t = net0.copy()
            torch_be = Timed(make_backend(net_t, "torch"))
            make_backend(net0.copy(), "torch").run(x[:1], y[:1], train=True)   # warm-up
        except ImportError as exc:
            out["torch_skipped"] = f"PyTorch reference unavailable: {exc}"
            print(f"  [torch] skipped: {out['torch_skipped']}")
            torch_be = None

    core_train, core_inf, torch_train, torch_inf = [], [], [], []
    same = True
    for r in range(args.rounds):
        order = ("core", "torch") if r % 2 == 0 else ("torch", "core")
        for who in order:
            if who == "core":
                core_train.append(timed_train_step(core, net_c, x, y))
                core_inf.append(timed_inference(core.backend, x, y))
            elif torch_be is not None and r < args.torch_rounds:
                torch_train.append(timed_train_step(torch_be, net_t, x, y))
                torch_inf.append(timed_inference(torch_be.backend, x, y))
        if torch_be is not None and r < args.torch_rounds:
            same = same and (net_c.weights_sha256() == net_t.weights_sha256())
        print(f"  round {r + 1}/{args.rounds}: core train {_fmt_ms(core_train[-1]['total'] / len(y))}"
              f"/sample" + (f", torch train {_fmt_ms(torch_train[-1]['total'] / len(y))}/sample"
                            if torch_be is not None and r < args.torch_rounds else ""),
              flush=True)
    n = len(y)
    out["core_train"] = _summary(core_train, n)
    out["core_inference"] = _summary(core_inf, n)
    if torch_be is not None:
        k = len(torch_train)              # the rounds in which both ran (same weights)
        out["torch_train"] = _summary(torch_train, n)
        out["torch_inference"] = _summary(torch_inf, n)
        out["torch_same_weights"] = bool(same)
        out["paired_rounds"] = k
        out["core_vs_torch_train_ratio"] = (_median(torch_train, "total")
                                            / _median(core_train[:k], "total"))
        out["core_vs_torch_inference_ratio"] = (_median(torch_inf, "total")
                                                / _median(core_inf[:k], "total"))
        pairs = [t["total"] / c["total"] for t, c in zip(torch_train, core_train)]
        out["core_vs_torch_train_ratio_per_round"] = {"min": float(min(pairs)),
                                                      "max": float(max(pairs))}
    return out


# ------------------------------------------------------------ 2. Lava
def bench_lava(args) -> dict:
    import numba
    from neurochip.network import Network, get_preset
    from neurochip.trainer import make_backend, train_step

    try:
        from mapping import LavaBackend
        import mapping.builder as mb
        mb._lava()
    except Exception as exc:    # ImportError, or Lava failing to start
        return {"skipped": f"Lava mapping unavailable: {type(exc).__name__}: {exc}"}
    pre = get_preset(args.lava_preset)
    net0 = Network.create(pre.arch, pre.hyper,
                          dataclasses.replace(pre.widths, weight_bits=args.bits), seed=args.seed)
    ds = _load(pre.dataset, args.data_dir if pre.dataset != "digits" else None)
    n = args.lava_samples
    x = ds.quantised(ds.train_x[:n + 1], net0.widths.state_bits)
    y = ds.train_y[:n + 1]
    threads = numba.get_num_threads()
    numba.set_num_threads(1)          # one sample at a time, one thread, like one Lava run
    out = {"preset": args.lava_preset, "arch": str(net0.arch), "samples": n,
           "lava_options": {"conv_feedback": args.lava_conv_feedback}}
    try:
        net_c, net_l = net0.copy(), net0.copy()
        core = Timed(make_backend(net_c, "numba"))
        lava = Timed(LavaBackend(net_l, conv_feedback=args.lava_conv_feedback))
        t0 = time.perf_counter()
        train_step(lava, net_l, x[:1], y[:1])      # builds, compiles and starts the processes
        out["lava_first_train_sample_s"] = time.perf_counter() - t0
        train_step(core, net_c, x[:1], y[:1])
        c_tr, l_tr = [], []
        for b in range(1, n + 1):
            for who in (("core", "lava") if b % 2 else ("lava", "core")):
                if who == "core":
                    c_tr.append(timed_train_step(core, net_c, x[b:b + 1], y[b:b + 1]))
                else:
                    l_tr.append(timed_train_step(lava, net_l, x[b:b + 1], y[b:b + 1]))
        out["same_weights"] = net_c.weights_sha256() == net_l.weights_sha256()
        lava.backend.close()
        lava_inf_be = LavaBackend(net_l, conv_feedback=args.lava_conv_feedback)
        t0 = time.perf_counter()
        lava_inf_be.run(x[:1], y[:1], train=False)
        out["lava_first_inference_s"] = time.perf_counter() - t0
        c_in, l_in = [], []
        for b in range(1, n + 1):
            c_in.append(timed_inference(core.backend, x[b:b + 1], y[b:b + 1]))
            l_in.append(timed_inference(lava_inf_be, x[b:b + 1], y[b:b + 1]))
        lava_inf_be.close()
    finally:
        numba.set_num_threads(threads)
    out["core_train"] = _summary(c_tr, 1)
    out["lava_train"] = _summary(l_tr, 1)
    out["core_inference"] = _summary(c_in, 1)
    out["lava_inference"] = _summary(l_in, 1)
    out["lava_vs_core_train_ratio"] = out["lava_train"]["total"] / out["core_train"]["total"]
    out["lava_vs_core_inference_ratio"] = (out["lava_inference"]["total"]
                                           / out["core_inference"]["total"])
    return out


# ------------------------------------------------- 3. time vs spikes
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
            events[name] = _events(res.counts)
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
            per_ev[b] = _events(res.counts)
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


# ------------------------------------------------------- 4. threads
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


# ------------------------------------------------------- 5. start-up
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


# ------------------------------------------------- 6. peer architectures
PEERS = (
    # (name, architecture, hyper-parameter overrides, per-sample time quoted in the spec notes)
    ("conv 32/64 (peer EP code)", "1x28x28:c32k3-c64k3-f10",
     dict(t1=100, t2=20, beta=0.5, lrs=(0.25, 0.15, 0.1)), 22.0),
    ("paper 2C2FC (paper-mnist)", "1x28x28:c128k3-c256k3-f512-f10", None, 454.0),
)


def bench_peers(ds, args) -> list[dict]:
    """The core's training sample on the architectures of the spec's calibration points."""
    import numba
    from neurochip.network import Architecture, Network, get_preset
    from neurochip.trainer import make_backend
    numba.set_num_threads(args.threads)
    out = []
    n = args.peer_batch
    x = ds.quantised(ds.train_x[:n], 12)
    y = ds.train_y[:n]
    for name, arch, over, quoted in PEERS:
        if over is None:
            pre = get_preset("paper-mnist")
            hyper = dataclasses.replace(pre.hyper, batch_size=n)
        else:
            hyper = dataclasses.replace(get_preset("mnist-small").hyper, batch_size=n, **over)
        net = Network.create(Architecture.parse(arch), hyper, seed=args.seed)
        tb = Timed(make_backend(net, "numba"))
        tb.backend.run(x[:1], y[:1], train=True)
        rows = [timed_train_step(tb, net, x, y) for _ in range(args.peer_rounds)]
        s = _summary(rows, n)
        s.update({"name": name, "arch": arch, "t1": hyper.t1, "t2": hyper.t2, "batch": n,
                  "quoted_peer_ms_per_sample": quoted})
        out.append(s)
    return out


# ------------------------------------------- 7. before / after (a git revision)
def _baseline_package(rev: str, tmp: str) -> str:
    """A copy of today's ``neurochip`` package whose core and learning rule come from ``rev``.

    Read-only use of git (``git show``).  Returns the package name to import.
    """
    import shutil
    name = "neurochip_base"
    dst = os.path.join(tmp, name)
    shutil.copytree(os.path.join(ROOT, "neurochip"), dst,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for mod in ("core.py", "learning.py"):
        src = subprocess.run(["git", "show", f"{rev}:neurochip/{mod}"], cwd=ROOT, check=True,
                             capture_output=True).stdout
        with open(os.path.join(dst, mod), "wb") as fh:
            fh.write(src)
    return name


def bench_baseline(args) -> list[dict]:
    """Old (``--baseline REV``) vs current core + learning rule, same process, alternating.

    One Numba thread, the thread's CPU time (robust on a shared machine); the
    weights of both must stay identical after every update.
    """
    import importlib
    import tempfile
    import numba
    numba.set_num_threads(1)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        base = _baseline_package(args.baseline, tmp)
        sys.path.insert(0, tmp)
        try:
            for preset, pool in (("mnist-small", "avg"), ("mnist-small", "max"), ("digits", "avg")):
                rows = {}
                sides = {}
                for pkg in (base, "neurochip"):
                    net_mod = importlib.import_module(pkg + ".network")
                    tr_mod = importlib.import_module(pkg + ".trainer")
                    pre = net_mod.get_preset(preset)
                    net = net_mod.Network.create(pre.arch, dataclasses.replace(pre.hyper, pool=pool),
                                                 pre.widths, seed=args.seed)
                    sides[pkg] = (net, Timed(tr_mod.make_backend(net, "numba")), tr_mod)
                    rows[pkg] = []
                ds = _load(pre.dataset, args.data_dir if pre.dataset != "digits" else None)
                n = pre.hyper.batch_size
                x = ds.quantised(ds.train_x[:n], 12)
                y = ds.train_y[:n]
                for pkg, (net, tb, _) in sides.items():
                    tb.backend.run(x[:2], y[:2], train=True)
                    tb.backend.run(x[:2], y[:2], train=False)
                same = True
                for r in range(args.baseline_rounds):
                    for pkg in ((base, "neurochip") if r % 2 == 0 else ("neurochip", base)):
                        net, tb, tr_mod = sides[pkg]
                        tb.reset()
                        c0 = time.thread_time()
                        tr_mod.train_step(tb, net, x, y)
                        c1 = time.thread_time()
                        tb.backend.run(x, y, train=False)
                        c2 = time.thread_time()
                        rows[pkg].append({"train": c1 - c0, "inference": c2 - c1})
                    same = same and (sides[base][0].weights_sha256()
                                     == sides["neurochip"][0].weights_sha256())
                med = {pkg: {k: 1e3 * _median(v, k) / n for k in ("train", "inference")}
                       for pkg, v in rows.items()}
                out.append({"preset": preset, "pool": pool, "batch": n, "rounds": args.baseline_rounds,
                            "before_ms": med[base], "after_ms": med["neurochip"],
                            "speedup_train": med[base]["train"] / med["neurochip"]["train"],
                            "speedup_inference": (med[base]["inference"]
                                                  / med["neurochip"]["inference"]),
                            "same_weights": bool(same)})
        finally:
            sys.path.remove(tmp)
            for m in [m for m in sys.modules if m == base or m.startswith(base + ".")]:
                del sys.modules[m]
    numba.set_num_threads(args.threads)
    return out


def report_baseline(args, result) -> None:
    print(f"\n[7] before / after: core + learning rule of {args.baseline} vs now "
          f"(1 thread, thread CPU time, ms per sample)")
    rows = bench_baseline(args)
    result["baseline"] = {"revision": args.baseline, "rows": rows}
    for r in rows:
        b, a = r["before_ms"], r["after_ms"]
        print(f"  {r['preset']:12s} {r['pool']}: training sample {b['train']:7.3f} -> "
              f"{a['train']:7.3f} ({r['speedup_train']:.2f}x), inference {b['inference']:7.3f} -> "
              f"{a['inference']:7.3f} ({r['speedup_inference']:.2f}x); identical weights: "
              f"{'yes' if r['same_weights'] else 'NO'}")


# ------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python benchmarks/speed.py",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--preset", default="mnist-small", help="network of the core/PyTorch comparison")
    p.add_argument("--dataset", default=None, help="dataset (default: the preset's)")
    p.add_argument("--data-dir", default=DEFAULT_DATA, help="folder with the MNIST IDX files")
    p.add_argument("--bits", type=int, default=8, help="weight bits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=None, help="minibatch (default: the preset's)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the core")
    p.add_argument("--torch-rounds", type=int, default=3,
                   help="of those, rounds that also time the PyTorch reference")
    p.add_argument("--no-torch", dest="torch", action="store_false")
    p.add_argument("--threads", type=int, default=None, help="threads (Numba and torch; default all)")
    p.add_argument("--lava-preset", default="digits")
    p.add_argument("--lava-samples", type=int, default=4)
    p.add_argument("--lava-conv-feedback", default="sparse", choices=("sparse", "dense"))
    p.add_argument("--no-lava", dest="lava", action="store_false")
    p.add_argument("--thetas", type=float, nargs="+", default=[0.25, 1.0])
    p.add_argument("--intensities", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--t1s", type=int, nargs="+", default=[10, 20, 40, 80])
    p.add_argument("--scaling-rounds", type=int, default=7)
    p.add_argument("--thread-rounds", type=int, default=9)
    p.add_argument("--no-startup", dest="startup", action="store_false")
    p.add_argument("--peer-batch", type=int, default=10, help="minibatch of the peer architectures")
    p.add_argument("--peer-rounds", type=int, default=2)
    p.add_argument("--cold-start", action="store_true",
                   help="also time the first run with an empty Numba cache (compiles everything)")
    p.add_argument("--sections", default="123456",
                   help="which parts to run: 1 core vs torch, 2 Lava, 3 time vs events, "
                        "4 threads, 5 start-up, 6 the core on the spec's peer architectures")
    p.add_argument("--baseline", metavar="REV", default=None,
                   help="also time the core and learning rule of this git revision against "
                        "today's (section 7), e.g. 9f67f5c")
    p.add_argument("--baseline-rounds", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    p.add_argument("--json", metavar="PATH", default=None, help="write every figure as JSON")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import numba
    from neurochip.network import Network, get_preset

    if args.threads is None:
        args.threads = numba.config.NUMBA_NUM_THREADS
    if args.quick:
        args.rounds, args.torch_rounds = 2, 1
        args.scaling_rounds, args.thread_rounds, args.lava_samples = 3, 3, 2
        args.peer_rounds, args.peer_batch = 1, 2
    args.torch_rounds = min(args.torch_rounds, args.rounds)
    numba.set_num_threads(args.threads)
    load_before = _load_avg()
    t_start = time.perf_counter()
    pre = get_preset(args.preset)
    hyper = pre.hyper if args.batch is None else dataclasses.replace(pre.hyper, batch_size=args.batch)
    net0 = Network.create(pre.arch, hyper, dataclasses.replace(pre.widths, weight_bits=args.bits),
                          seed=args.seed, preset=args.preset)
    dataset = args.dataset or pre.dataset
    ds = _load(dataset, args.data_dir if dataset != "digits" else None)
    bsz = hyper.batch_size
    x = ds.quantised(ds.train_x[:bsz], net0.widths.state_bits)
    y = ds.train_y[:bsz]
    h = net0.hyper
    result = {
        "network": {"preset": args.preset, "arch": str(net0.arch), "dataset": dataset,
                    "bits": args.bits, "seed": args.seed, "t1": h.t1, "t2": h.t2,
                    "pool": h.pool, "theta": h.theta},
        "samples": {"batch": bsz, "rounds": args.rounds, "torch_rounds": args.torch_rounds,
                    "train_samples_core": bsz * args.rounds,
                    "train_samples_torch": bsz * args.torch_rounds if args.torch else 0,
                    "lava_samples": args.lava_samples if args.lava else 0},
        "machine": {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count(),
                    "numba_threads": args.threads, "python": platform.python_version(),
                    "numba": numba.__version__, "numpy": np.__version__,
                    "load_average_before": load_before},
        "command": "python benchmarks/speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    result["network"]["dense_ops_per_train_sample"] = dense_ops_per_sample(net0, True)
    print(f"neurochip speed: {args.preset} {net0.arch} on {dataset}, {args.bits}-bit weights, "
          f"T1={h.t1} T2={h.t2}, minibatch {bsz}, {args.threads} threads, "
          f"{os.cpu_count()} CPUs, load average {load_before}")

    if "1" in args.sections:
        report_core_vs_torch(net0, x, y, args, result)
    if "2" in args.sections and args.lava:
        report_lava(args, result)
    if "3" in args.sections:
        report_scaling(net0, x, y, args, result)
    if "4" in args.sections:
        report_threads(net0, x, y, args, result)
    if "5" in args.sections and args.startup:
        report_startup(args, result)
    if "6" in args.sections:
        report_peers(ds if dataset != "digits" else _load("mnist", args.data_dir), args, result)
    if args.baseline:
        report_baseline(args, result)
    result["machine"]["load_average_after"] = _load_avg()
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    print(f"\nload average after: {result['machine']['load_average_after']}; "
          f"benchmark took {result['seconds']:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2, default=float)
            fh.write("\n")
    return 0


def report_core_vs_torch(net0, x, y, args, result) -> None:
    print("\n[1] one training sample / one inference: Numba core vs PyTorch reference (CPU)")
    r1 = bench_core_vs_torch(net0, x, y, args)
    result["core_vs_torch"] = r1
    try:
        import torch
        result["machine"]["torch"] = torch.__version__
        result["machine"]["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    rows = [("core", "train", r1["core_train"]), ("core", "inference", r1["core_inference"])]
    if "torch_train" in r1:
        rows += [("torch", "train", r1["torch_train"]), ("torch", "inference", r1["torch_inference"])]
    print(f"  {'backend':8s}{'mode':11s}{'per sample':>14s}{'simulate':>13s}{'learning':>13s}"
          f"{'refresh':>13s}{'events/sample':>15s}{'events/s':>12s}")
    for who, mode, s in rows:
        extra = (f"{_fmt_ms(s['simulate'])} {_fmt_ms(s['learning'])} {_fmt_ms(s['refresh'])}"
                 if mode == "train" else f"{'':13s}{'':13s}{'':13s}")
        print(f"  {who:8s}{mode:11s}{_fmt_ms(s['total']):>14s} {extra}"
              f"{s['events_per_sample']:15,.0f}{_fmt_rate(s['events_per_second']):>12s}")
    if "core_vs_torch_train_ratio" in r1:
        result["core_vs_torch_train_ratio"] = r1["core_vs_torch_train_ratio"]
        result["core_vs_torch_inference_ratio"] = r1["core_vs_torch_inference_ratio"]
        p = r1["core_vs_torch_train_ratio_per_round"]
        ev = r1["core_train"]["events_per_sample"]
        dense = result["network"]["dense_ops_per_train_sample"]
        print(f"  a training sample: {ev:,.0f} synaptic events (event-driven) vs {dense:,} "
              f"multiply-adds for a dense execution ({ev / dense:.1%})")
        print(f"  ratio torch / core: training sample {r1['core_vs_torch_train_ratio']:.1f}x "
              f"(per round {p['min']:.1f}-{p['max']:.1f}x), inference "
              f"{r1['core_vs_torch_inference_ratio']:.1f}x; identical weights after every "
              f"update: {'yes' if r1['torch_same_weights'] else 'NO'}")


def report_lava(args, result) -> None:
    print(f"\n[2] small network in Lava ({args.lava_preset}, one sample at a time, core on 1 thread)")
    r2 = bench_lava(args)
    result["lava"] = r2
    if "skipped" in r2:
        print(f"  skipped: {r2['skipped']}")
    else:
        for who in ("core", "lava"):
            print(f"  {who:6s} train {_fmt_ms(r2[who + '_train']['total'])}/sample "
                  f"(simulate {_fmt_ms(r2[who + '_train']['simulate'])}, refresh "
                  f"{_fmt_ms(r2[who + '_train']['refresh'])}), inference "
                  f"{_fmt_ms(r2[who + '_inference']['total'])}/sample, "
                  f"{_fmt_rate(r2[who + '_train']['events_per_second'])}events/s")
        result["lava_vs_core_train_ratio"] = r2["lava_vs_core_train_ratio"]
        result["lava_vs_core_inference_ratio"] = r2["lava_vs_core_inference_ratio"]
        print(f"  ratio lava / core: training sample {r2['lava_vs_core_train_ratio']:.0f}x, "
              f"inference {r2['lava_vs_core_inference_ratio']:.0f}x; Lava start-up "
              f"{r2['lava_first_train_sample_s']:.1f} s (train) / "
              f"{r2['lava_first_inference_s']:.1f} s (inference); identical weights: "
              f"{'yes' if r2['same_weights'] else 'NO'}")


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
        print(f"  simulate: 1 thread {_fmt_ms(r4['simulate_s']['1'])}, 2 threads "
              f"{_fmt_ms(r4['simulate_s']['2'])} -> speed-up {r4['threads_speedup']:.2f}x")
        if "cpu_s" in r4:
            c1, c2 = r4["cpu_s"]["1"], r4["cpu_s"]["2"]
            result["threads_speedup_projected"] = r4["threads_speedup_projected"]
            print(f"  per-thread CPU clocks: 1 thread {_fmt_ms(c1['busiest_thread'])} of work "
                  f"({_fmt_ms(c1['run_queue_wait'])} waiting for a CPU); 2 threads "
                  f"{_fmt_ms(c2['total'])} of work in all, the busiest {_fmt_ms(c2['busiest_thread'])}"
                  f" ({_fmt_ms(c2['run_queue_wait'])} waiting for a CPU) -> "
                  f"{r4['threads_speedup_projected']:.2f}x with the CPUs to itself")
        print(f"  whole train step (with the serial update): 1 thread "
              f"{_fmt_ms(r4['train_step_s']['1'])}, 2 threads {_fmt_ms(r4['train_step_s']['2'])}"
              f" -> {r4['threads_speedup_train_step']:.2f}x")


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


def report_peers(ds, args, result) -> None:
    print(f"\n[6] the core on the architectures of the spec's calibration points (MNIST, "
          f"minibatch {args.peer_batch}, {args.threads} threads)")
    rows = bench_peers(ds, args)
    result["peers"] = rows
    for r in rows:
        print(f"  {r['name']:28s} T1={r['t1']:3d} T2={r['t2']:2d}: {_fmt_ms(r['total'])}/training "
              f"sample (simulate {_fmt_ms(r['simulate'])}), {r['events_per_sample']:,.0f} "
              f"events, {_fmt_rate(r['events_per_second'])}events/s; spec notes quote "
              f"{r['quoted_peer_ms_per_sample']:.0f} ms for the dense real-valued peer")


if __name__ == "__main__":
    sys.exit(main())

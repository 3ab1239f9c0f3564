"""Section 0, the headline: the core against a dense float32 spiking EP in PyTorch.

The comparison a user choosing a tool would make: the same spiking EP network (the
real-valued model of ``reference/real.py``: float32, batched, PyTorch's own threads,
avg-pool conv edges as one stride-2 convolution) against the integer core, with the same
architecture, T1/T2, minibatch, inputs and thread count, per *training* sample (free and
both nudged phases plus the update).  Runs are interleaved, alternating which goes
first, and each figure is a median.  PyTorch gets its best OpenMP wait policy: the
section runs once in a child process per policy (``WAIT_POLICIES``; on a quiet 2-core VM
PASSIVE made PyTorch's float32 step 6x slower than libgomp's default, docs/speed.md), and
per network the child with the faster float32 step gives the headline row; every child's
rows are kept.  The exact PyTorch mirror (section 1) is a correctness tool, not a
competitor; the published peer code's figures are quoted beside the headline with their
source, not re-run.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .common import ROOT, Timed, fmt_ms, load, timed_train_step

#: OpenMP wait policies the float32 arm is measured under ("default": the variable unset)
WAIT_POLICIES = ("default", "PASSIVE")

# Quoted, not measured here: ../shared/spec/peers.md (public EP code of Laborieux et al.,
# github.com/Laborieux-Axel/Equilibrium-Propagation @ 93660ed; dense float32 PyTorch,
# 2 threads, batch 125, measured 2026-12-02 on a 2-vCPU x86-64 VM beside revision c0fb9bb)
PEER_SOURCE = ("../shared/spec/peers.md: Laborieux et al. EP code (Front. Neurosci. 2021), "
               "commit 93660ed, float32 PyTorch, 2 threads, batch 125, quiet 2-vCPU VM, 2026-12-02")
PEER_QUOTES = (
    {"network": "conv 32/64 k3 + fc 10, T1 100 / T2 20", "peer_ms_per_train_sample": 26.6,
     "neurochip_c0fb9bb_ms": 4.39, "ratio_quoted": 6.1},
    {"network": "paper 2C2FC (128/256/512/10), T1 250 / T2 50", "peer_ms_per_train_sample": 587.0,
     "neurochip_c0fb9bb_ms": 84.0, "ratio_quoted": 7.0},
)

NETWORKS = (("mnist-small", None), ("paper-mnist", "paper"))


def _float_step(model, xr, labels) -> float:
    t0 = time.perf_counter()
    model.train_step(xr, labels)
    return time.perf_counter() - t0


def _policy_child(args, policy: str) -> dict:
    """Section 0 in a child process under ``OMP_WAIT_POLICY=policy``; its ``headline`` dict."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "headline.json")
        cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "speed.py"), "--sections", "0",
               "--headline-in-process", "--threads", str(args.threads), "--seed", str(args.seed),
               "--data-dir", args.data_dir, "--paper-batch", str(args.paper_batch),
               "--paper-rounds", str(args.paper_rounds), "--headline-rounds", str(args.headline_rounds),
               "--json", out] + (["--quick"] if args.quick else [])
        env = dict(os.environ, OMP_WAIT_POLICY=policy)
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            return json.load(f)["headline"]


def bench_headline(args) -> dict:
    """The headline rows: PyTorch's faster wait policy per network (one child per policy)."""
    if args.headline_in_process:
        return bench_headline_here(args)
    children = {p: _policy_child(args, p) for p in WAIT_POLICIES}
    skipped = [c["skipped"] for c in children.values() if "skipped" in c]
    if skipped:
        return {"skipped": skipped[0]}
    rows = []
    for i, _ in enumerate(children[WAIT_POLICIES[0]]["rows"]):
        best = min(WAIT_POLICIES, key=lambda p: children[p]["rows"][i]["float32_ms_per_train_sample"])
        rows.append(children[best]["rows"][i])
    return {"torch_threads": children[WAIT_POLICIES[0]]["torch_threads"], "rows": rows,
            "by_wait_policy": {p: c["rows"] for p, c in children.items()}}


def bench_headline_here(args) -> dict:
    """Section 0 in this process (its OpenMP wait policy as set at start-up)."""
    import numba
    try:
        import torch
        from reference.real import RealModel
    except ImportError as exc:
        return {"skipped": f"PyTorch unavailable: {exc}"}
    from neurochip.network import Network, get_preset
    from neurochip.trainer import make_backend
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    out = {"torch_threads": torch.get_num_threads(), "rows": []}
    policy = os.environ.get("OMP_WAIT_POLICY", "default")
    for preset, batch in NETWORKS:
        if args.quick and preset == "paper-mnist":
            continue
        pre = get_preset(preset)
        hyper = pre.hyper if batch is None else dataclasses.replace(pre.hyper,
                                                                   batch_size=args.paper_batch)
        net = Network.create(pre.arch, hyper, pre.widths, seed=args.seed)
        ds = load(pre.dataset, args.data_dir)
        n = hyper.batch_size
        x = ds.quantised(ds.train_x[:n], net.widths.state_bits)
        y = ds.train_y[:n]
        core = Timed(make_backend(net, "numba"))
        model = RealModel.from_network(net, spiking=True, weights="network", dtype=torch.float32)
        xr = model.inputs(x, scale=1 << net.widths.state_bits)
        core.backend.run(x[:2], y[:2], train=True)          # warm-up (kernel cache)
        model.ep(xr[:2], y[:2])
        rounds = args.headline_rounds if batch is None else args.paper_rounds
        t_core, t_float = [], []
        for r in range(rounds):
            for who in (("core", "float32") if r % 2 == 0 else ("float32", "core")):
                if who == "core":
                    t_core.append(timed_train_step(core, net, x, y)["total"])
                else:
                    t_float.append(_float_step(model, xr, y))
        c, f = float(np.median(t_core)) / n, float(np.median(t_float)) / n
        out["rows"].append({"preset": preset, "arch": str(net.arch), "t1": hyper.t1, "t2": hyper.t2,
                            "batch": n, "rounds": rounds, "core_ms_per_train_sample": 1e3 * c,
                            "float32_ms_per_train_sample": 1e3 * f, "ratio": f / c,
                            "ratio_per_round": [float(b / a) for a, b in zip(t_core, t_float)],
                            "wait_policy": policy})
    return out


def report_headline(args, result) -> None:
    print(f"\n[0] headline: integer core vs dense float32 spiking EP in PyTorch "
          f"(reference/real.py), per training sample, {args.threads} threads, PyTorch's faster "
          f"OpenMP wait policy of {'/'.join(WAIT_POLICIES)}")
    r = bench_headline(args)
    result["headline"] = r
    if "skipped" in r:
        print(f"  skipped: {r['skipped']}")
        return
    for row in r["rows"]:
        pr = row["ratio_per_round"]
        print(f"  {row['preset']:12s} {row['arch']:34s} T1 {row['t1']:3d} / T2 {row['t2']:2d}, batch "
              f"{row['batch']:3d}: float32 {fmt_ms(row['float32_ms_per_train_sample'] / 1e3)}, core "
              f"{fmt_ms(row['core_ms_per_train_sample'] / 1e3)} -> {row['ratio']:.1f}x "
              f"(per round {min(pr):.1f}-{max(pr):.1f}x; wait policy {row['wait_policy']})")
        key = "core_vs_float32_train_ratio" + ("" if row["preset"] == "mnist-small" else "_paper")
        result[key] = row["ratio"]
    for policy, rows in r.get("by_wait_policy", {}).items():
        print(f"    under {policy:8s}: " + ", ".join(
            f"{w['preset']} float32 {fmt_ms(w['float32_ms_per_train_sample'] / 1e3)} / core "
            f"{fmt_ms(w['core_ms_per_train_sample'] / 1e3)} = {w['ratio']:.1f}x" for w in rows))
    print(f"  quoted peer ({PEER_SOURCE}):")
    for q in PEER_QUOTES:
        print(f"    {q['network']:44s} peer {q['peer_ms_per_train_sample']:6.1f} ms/sample vs "
              f"neurochip c0fb9bb {q['neurochip_c0fb9bb_ms']:5.2f} ms -> {q['ratio_quoted']:.1f}x")
    result["peer_quotes"] = {"source": PEER_SOURCE, "rows": list(PEER_QUOTES)}

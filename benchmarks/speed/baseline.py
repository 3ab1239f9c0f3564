"""Section 7: before / after against a git revision (``--baseline REV``).

The revision's whole ``neurochip`` package is unpacked (``git archive``, read-only use
of git) into a folder of the temp directory named after the commit, as the package
``neurochip_base``, so that it keeps working whatever today's layout is; its Numba
cache lives there too, so a second run does not compile it again.  Both packages
train the same network on the same minibatch in one process, alternating which goes
first; the weights must stay identical after every update.
"""
from __future__ import annotations

import dataclasses
import importlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

from .common import ROOT, Timed, load, median

BASE_PACKAGE = "neurochip_base"


def build_revision(rev: str) -> str:
    """Unpack ``rev``'s ``neurochip`` as :data:`BASE_PACKAGE`; returns the folder to put on sys.path."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    folder = os.path.join(tempfile.gettempdir(), f"neurochip-baseline-{sha}")
    if not os.path.isdir(os.path.join(folder, BASE_PACKAGE)):
        tar = subprocess.run(["git", "archive", "--format=tar", sha, "neurochip"], cwd=ROOT,
                             check=True, capture_output=True).stdout
        staging = tempfile.mkdtemp(dir=tempfile.gettempdir(), prefix=".neurochip-baseline-")
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.extractall(staging)
        os.rename(os.path.join(staging, "neurochip"), os.path.join(staging, BASE_PACKAGE))
        try:
            os.rename(staging, folder)          # atomic: a half-unpacked folder is never used
        except OSError:                         # another run won the race
            import shutil
            shutil.rmtree(staging, ignore_errors=True)
    return folder


# (preset, pool, minibatch override or None = the preset's)
ROWS = (("paper-mnist", "avg", "paper"), ("mnist-small", "avg", None), ("mnist-small", "max", None),
        ("digits", "avg", None))


def bench_baseline(args) -> list[dict]:
    """Old (``--baseline REV``) vs current core + learning rule, same process, alternating.

    Per row and round, each side runs ``train_step`` then an inference on the minibatch:
    on 1 Numba thread with the thread's CPU time (robust on a shared machine) and on
    ``args.threads`` threads with the wall clock.
    """
    import numba
    folder = build_revision(args.baseline)
    sys.path.insert(0, folder)
    out = []
    try:
        for preset, pool, batch in ROWS:
            if args.quick and preset == "paper-mnist":
                continue
            sides = {}
            for pkg in (BASE_PACKAGE, "neurochip"):
                net_mod = importlib.import_module(pkg + ".network")
                tr_mod = importlib.import_module(pkg + ".trainer")
                pre = net_mod.get_preset(preset)
                hyper = dataclasses.replace(pre.hyper, pool=pool)
                if batch == "paper":
                    hyper = dataclasses.replace(hyper, batch_size=args.paper_batch)
                net = net_mod.Network.create(pre.arch, hyper, pre.widths, seed=args.seed)
                sides[pkg] = (net, Timed(tr_mod.make_backend(net, "numba")), tr_mod)
            ds = load(pre.dataset, args.data_dir if pre.dataset != "digits" else None)
            n = hyper.batch_size
            x = ds.quantised(ds.train_x[:n], 12)
            y = ds.train_y[:n]
            for net, tb, _ in sides.values():
                tb.backend.run(x[:2], y[:2], train=True)
                tb.backend.run(x[:2], y[:2], train=False)
            rows = {pkg: [] for pkg in sides}
            same = True
            rounds = args.baseline_rounds if preset != "paper-mnist" else args.paper_rounds
            for r in range(rounds):
                for pkg in ((BASE_PACKAGE, "neurochip") if r % 2 == 0 else ("neurochip", BASE_PACKAGE)):
                    net, tb, tr_mod = sides[pkg]
                    numba.set_num_threads(1)
                    c0 = time.thread_time()
                    tr_mod.train_step(tb, net, x, y)
                    c1 = time.thread_time()
                    tb.backend.run(x, y, train=False)
                    c2 = time.thread_time()
                    numba.set_num_threads(args.threads)
                    t0 = time.perf_counter()
                    tr_mod.train_step(tb, net, x, y)
                    t1 = time.perf_counter()
                    rows[pkg].append({"train": c1 - c0, "inference": c2 - c1, "train_wall": t1 - t0})
                same = same and (sides[BASE_PACKAGE][0].weights_sha256()
                                 == sides["neurochip"][0].weights_sha256())
            med = {pkg: {k: 1e3 * median(v, k) / n for k in ("train", "inference", "train_wall")}
                   for pkg, v in rows.items()}
            b, a = med[BASE_PACKAGE], med["neurochip"]
            pairs = [rb["train"] / ra["train"] for rb, ra in zip(rows[BASE_PACKAGE], rows["neurochip"])]
            out.append({"preset": preset, "pool": pool, "batch": n, "rounds": rounds,
                        "before_ms": b, "after_ms": a,
                        "speedup_train": b["train"] / a["train"],
                        "speedup_train_per_round": [float(p) for p in pairs],
                        "speedup_inference": b["inference"] / a["inference"],
                        "speedup_train_wall_threads": b["train_wall"] / a["train_wall"],
                        "threads": args.threads, "same_weights": bool(same)})
    finally:
        sys.path.remove(folder)
        for m in [m for m in sys.modules if m == BASE_PACKAGE or m.startswith(BASE_PACKAGE + ".")]:
            del sys.modules[m]
        numba.set_num_threads(args.threads)
    return out


def report_baseline(args, result) -> None:
    print(f"\n[7] before / after: the neurochip package of {args.baseline} vs now (ms per sample; "
          f"1 thread = thread CPU time, {args.threads} threads = wall clock)")
    rows = bench_baseline(args)
    result["baseline"] = {"revision": args.baseline, "rows": rows}
    for r in rows:
        b, a = r["before_ms"], r["after_ms"]
        print(f"  {r['preset']:12s} {r['pool']} (batch {r['batch']}): training sample "
              f"{b['train']:8.3f} -> {a['train']:8.3f} ({r['speedup_train']:.2f}x; per round "
              f"{min(r['speedup_train_per_round']):.2f}-{max(r['speedup_train_per_round']):.2f}x), "
              f"{args.threads} threads {b['train_wall']:8.3f} -> {a['train_wall']:8.3f} "
              f"({r['speedup_train_wall_threads']:.2f}x), inference {r['speedup_inference']:.2f}x; "
              f"identical weights: {'yes' if r['same_weights'] else 'NO'}")
        if r["preset"] == "paper-mnist":
            result["paper_speedup_vs_baseline"] = r["speedup_train"]
            result["paper_speedup_vs_baseline_threads"] = r["speedup_train_wall_threads"]
        if r["preset"] == "mnist-small" and r["pool"] == "avg":
            result["small_speedup_vs_baseline"] = r["speedup_train"]

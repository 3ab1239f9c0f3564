"""Command line of the speed benchmark: flags, the sections in order, the JSON file.

``python benchmarks/speed.py --json out.json`` writes every figure; among them
``core_vs_float32_train_ratio`` (section 0, mnist-small, per training sample),
``core_vs_torch_train_ratio`` (section 1, the exact mirror), ``paper_speedup_vs_baseline``
(section 7, with ``--baseline REV``), ``paper_events_per_s`` and
``scatter_ceiling_events_per_s`` (section 8, same run).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

from neurochip.atomic import atomic_write_text

from .baseline import report_baseline
from .ceiling import report_ceiling
from .common import DEFAULT_DATA, dense_ops_per_sample, load, load_avg
from .headline import report_headline
from .lava import report_lava
from .mirror import report_core_vs_torch
from .peers import report_peers
from .scaling import report_scaling
from .startup import report_startup
from .threads import report_threads

DESCRIPTION = "How fast the Numba core trains and infers, in one run (every ratio from interleaved runs)."


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python benchmarks/speed.py",
                                description=DESCRIPTION,
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
    p.add_argument("--sections", default="01234568",
                   help="which parts to run: 0 headline (core vs dense float32 spiking EP), "
                        "1 core vs the exact PyTorch mirror, 2 Lava, 3 time vs events, "
                        "4 threads, 5 start-up, 6 the core on the spec's peer architectures, "
                        "8 paper-mnist event rate vs the scatter kernel's ceiling "
                        "(7, before/after, runs with --baseline)")
    p.add_argument("--baseline", metavar="REV", default=None,
                   help="also time the core and learning rule of this git revision against "
                        "today's (section 7), e.g. 9f67f5c")
    p.add_argument("--baseline-rounds", type=int, default=7)
    p.add_argument("--paper-batch", type=int, default=25,
                   help="minibatch of the paper-mnist rows (headline, before/after, ceiling)")
    p.add_argument("--paper-rounds", type=int, default=3,
                   help="interleaved rounds of the paper-mnist rows")
    p.add_argument("--headline-rounds", type=int, default=5,
                   help="interleaved rounds of the mnist-small headline row")
    p.add_argument("--ceiling-rounds", type=int, default=3)
    p.add_argument("--headline-in-process", action="store_true",
                   help="section 0 in this process, under the OpenMP wait policy it was started "
                        "with (default: one child process per policy, PyTorch's faster one gives "
                        "the headline)")
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
        args.headline_rounds, args.paper_rounds, args.paper_batch, args.ceiling_rounds = 2, 1, 2, 1
    args.torch_rounds = min(args.torch_rounds, args.rounds)
    numba.set_num_threads(args.threads)
    load_before = load_avg()
    t_start = time.perf_counter()
    pre = get_preset(args.preset)
    hyper = pre.hyper if args.batch is None else dataclasses.replace(pre.hyper, batch_size=args.batch)
    net0 = Network.create(pre.arch, hyper, dataclasses.replace(pre.widths, weight_bits=args.bits),
                          seed=args.seed, preset=args.preset)
    dataset = args.dataset or pre.dataset
    ds = load(dataset, args.data_dir if dataset != "digits" else None)
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
                    "load_average_before": load_before,
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")},
        "command": "python benchmarks/speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    result["network"]["dense_ops_per_train_sample"] = dense_ops_per_sample(net0, True)
    print(f"neurochip speed: {args.preset} {net0.arch} on {dataset}, {args.bits}-bit weights, "
          f"T1={h.t1} T2={h.t2}, minibatch {bsz}, {args.threads} threads, "
          f"{os.cpu_count()} CPUs, load average {load_before}")

    if "0" in args.sections:
        report_headline(args, result)
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
        report_peers(ds if dataset != "digits" else load("mnist", args.data_dir), args, result)
    if args.baseline:
        report_baseline(args, result)
    if "8" in args.sections:
        report_ceiling(args, result)
    summarise(result)
    result["machine"]["load_average_after"] = load_avg()
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    print(f"\nload average after: {result['machine']['load_average_after']}; "
          f"benchmark took {result['seconds']:.0f} s")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2, default=float) + "\n")
    return 0


def summarise(result: dict) -> None:
    """The headline figures, together, at the end of the run."""
    keys = ("core_vs_float32_train_ratio", "core_vs_float32_train_ratio_paper",
            "core_vs_torch_train_ratio", "paper_speedup_vs_baseline",
            "paper_speedup_vs_baseline_threads", "small_speedup_vs_baseline",
            "paper_events_per_s", "scatter_ceiling_events_per_s")
    found = [(k, result[k]) for k in keys if k in result]
    if found:
        print("\nsummary: " + ", ".join(f"{k} = {v:.4g}" for k, v in found))

"""``python -m neurochip.budget``: the hardware-budget report of a network.

Examples::

    python -m neurochip.budget --preset paper-mnist --bits 8 --json out.json --png out.png
    python -m neurochip.budget run/checkpoint.npz --md budget.md

The counts come from simulating ``--samples N`` test images (default 1,
starting at ``--sample``) through the integer core, one at a time, with the
full three phases (``--inference``: free phase only), recording the spike
rasters; the figures are averages over those N images (the report says how
many).  Each sample's EP update is applied to a copy, so a checkpoint is
reported on without being trained.  ``--t1/--t2`` shorten
the phases; the counts then scale with the steps (say so when quoting them).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np

from ..data import default_dataset
from ..errors import ArgumentParser, UserError
from ..network import Architecture, Network, get_preset
from . import chips as chp
from . import fit as bfit
from .report import build_report, format_table, plot_report, simulate_samples, write_report


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m neurochip.budget",
                                description="Hardware-budget report: core counts, NeuroBench metrics, "
                                            "Loihi/Loihi 2 fit and energy, EP vs BPTT memory.")
    p.add_argument("checkpoint", nargs="?", help="a saved network (neurochip.checkpoint)")
    p.add_argument("--preset", default=None, help="network preset (default: digits)")
    p.add_argument("--arch", help="architecture string, overrides the preset's")
    p.add_argument("--bits", type=int, help="weight bits (Bw)")
    p.add_argument("--state-bits", type=int)
    p.add_argument("--trace-bits", type=int)
    p.add_argument("--bias-bits", type=int)
    p.add_argument("--t1", type=int, help="free-phase steps (counts scale with it)")
    p.add_argument("--t2", type=int, help="steps per nudged phase (counts scale with it)")
    p.add_argument("--batch", type=int, help="minibatch size (learning-rate constants, memory)")
    p.add_argument("--pool", choices=("avg", "max"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", help="digits | mnist | fashion-mnist (default: the preset's)")
    p.add_argument("--data-dir", help="folder with the IDX .gz files")
    p.add_argument("--sample", type=int, default=0, help="index of the (first) test image simulated")
    p.add_argument("--samples", type=int, default=1,
                   help="test images simulated (from --sample on); figures are their averages")
    p.add_argument("--inference", action="store_true", help="simulate the free phase only")
    p.add_argument("--chips", default="loihi,loihi2", help="comma-separated chip profiles")
    p.add_argument("--synapses", default="fused", choices=bfit.storage_names(),
                   help="core fit's synapse storage: 'fused' (default) at the width the core's "
                        "arithmetic needs; 'mapped' as the Lava mapping splits them into 8-bit "
                        "digit synapses (needs the mapping package)")
    p.add_argument("--mem-batch", type=int, help="batch for the memory comparison (default: --batch)")
    p.add_argument("--t-bptt", type=int, help="BPTT unrolled steps (default T1)")
    p.add_argument("--bptt-k", type=float, default=None,
                   help="values BPTT saves per neuron per step (default 3, assumed)")
    p.add_argument("--measure-bptt-k", action="store_true",
                   help="measure k on reference.bptt (needs torch) and use it")
    p.add_argument("--json", help="write the report as JSON")
    p.add_argument("--md", help="write the report as Markdown")
    p.add_argument("--png", help="write the figure")
    p.add_argument("--long", action="store_true", help="print the full table")
    return p


def _network(args) -> tuple[Network, str]:
    if args.checkpoint:
        try:
            from ..checkpoint import load_checkpoint
        except ImportError:
            raise UserError("checkpoints need neurochip/checkpoint.py (load_checkpoint), "
                            "which is not present in this checkout; use --preset") from None
        net, training = load_checkpoint(args.checkpoint)
        fixed = [f for f in ("arch", "bits", "state_bits", "trace_bits", "bias_bits", "pool")
                 if getattr(args, f) is not None]
        if fixed:
            raise UserError(f"--{fixed[0].replace('_', '-')} cannot change a checkpoint's network")
        h = net.hyper
        changes = {k: v for k, v in (("t1", args.t1), ("t2", args.t2), ("batch_size", args.batch))
                   if v is not None}
        if changes:
            net = dataclasses.replace(net, hyper=dataclasses.replace(h, **changes))
        dataset = (args.dataset or (training or {}).get("dataset")
                   or default_dataset(net.arch.input_shape))
        return net, dataset
    name = args.preset or "digits"
    pre = get_preset(name)
    arch = Architecture.parse(args.arch or pre.arch)
    h = pre.hyper
    changes = {k: v for k, v in (("t1", args.t1), ("t2", args.t2), ("batch_size", args.batch),
                                 ("pool", args.pool)) if v is not None}
    if len(h.lrs) != arch.n_layers:
        changes["lrs"] = tuple([h.lrs[0]] * arch.n_layers)
    h = dataclasses.replace(h, **changes)
    w = pre.widths
    wch = {k: v for k, v in (("weight_bits", args.bits), ("state_bits", args.state_bits),
                             ("trace_bits", args.trace_bits), ("bias_bits", args.bias_bits))
           if v is not None}
    w = dataclasses.replace(w, **wch)
    net = Network.create(arch, h, w, seed=args.seed, preset=name)
    return net, args.dataset or pre.dataset


def _samples(net: Network, dataset: str, index: int, count: int,
             data_dir: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """``count`` test images from ``index`` on as quantised pixels ``(N, N0)`` and labels.

    MNIST-type data comes from ``--data-dir``, else ``NEUROCHIP_DATA``, else the
    ``shared/data`` folder beside the checkout (the loader checks every file)."""
    from ..data import load_dataset
    if count < 1:
        raise UserError(f"--samples must be a positive integer, got {count}")
    if dataset != "digits" and data_dir is None and not os.environ.get("NEUROCHIP_DATA"):
        here = os.path.dirname(os.path.abspath(__file__))
        shared = os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "data"))
        data_dir = shared if os.path.isdir(shared) else None
    d = load_dataset(dataset, data_dir)
    n = len(d.test_y)
    if not 0 <= index < n:
        raise UserError(f"--sample {index} is outside the {n} test images of {dataset}")
    if index + count > n:
        raise UserError(f"--sample {index} --samples {count} runs past the {n} test images "
                        f"of {dataset}")
    x = d.quantised(d.test_x[index:index + count], net.widths.state_bits)
    what = (f"{dataset} test[{index}]" if count == 1 else
            f"{dataset} test[{index}:{index + count}]")
    return x, np.asarray(d.test_y[index:index + count], np.int64), what


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
        net, dataset = _network(args)
        if tuple(net.arch.input_shape) != ((1, 8, 8) if dataset == "digits" else (1, 28, 28)):
            raise UserError(f"dataset {dataset} does not fit the input shape {net.arch.input_shape}")
        x, labels, what = _samples(net, dataset, args.sample, args.samples, args.data_dir)
        t0 = time.perf_counter()
        counts, raster, tally, preds = simulate_samples(net, x, labels, train=not args.inference)
        t_sim = time.perf_counter() - t0
        chips = tuple(c.strip() for c in args.chips.split(",") if c.strip())
        CHIPS = chp.CHIPS
        bad = [c for c in chips if c not in CHIPS]
        if bad:
            raise UserError(f"unknown chip {bad[0]!r}; choose from {', '.join(CHIPS)}")
        pre = None if args.checkpoint else get_preset(net.preset)
        shortened = pre is not None and (net.hyper.t1, net.hyper.t2) != (pre.hyper.t1, pre.hyper.t2)
        n = len(labels)
        head = (f"counts from one simulated {what} (label {labels[0]}), " if n == 1 else
                f"counts averaged over {n} simulated images {what}, ")
        note = (head + f"{'inference' if args.inference else 'training sample'}, "
                f"{t_sim:.2f} s in the core" + ("; T1/T2 shortened from the preset, counts scale "
                                                "with the steps" if shortened else ""))
        k, k_src = 3.0, "assumed, not measured; budget.md: k = 2-4"
        if args.bptt_k is not None:
            k, k_src = args.bptt_k, "given with --bptt-k"
        if args.measure_bptt_k:
            from .. import registry
            try:
                meas = registry.get("neurochip.measurements", "bptt_k")(net)
            except registry.PluginUnavailable:
                raise UserError("--measure-bptt-k needs torch and the reference package") from None
            k, k_src = meas["k"], "measured: " + meas["method"]
        rep = build_report(net, tally, counts, raster, chips=chips, mem_batch=args.mem_batch,
                           t_bptt=args.t_bptt, k_bptt=k, k_source=k_src, note=note,
                           storage=args.synapses, predictions=preds, labels=labels)
        rep["source"]["sample"] = what
        rep["source"]["simulate_seconds"] = round(t_sim, 3)
        print(format_table(rep, short=not args.long))
        print(f"  ({note})")
        for path in (args.json, args.md):
            if path:
                write_report(rep, path)
                print(f"  wrote {path}")
        if args.png:
            plot_report(rep, args.png)
            print(f"  wrote {args.png}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m mapping.check``: run a small trained network in the core and in Lava.

Trains a digits preset for a few updates with the Numba core (or loads a
checkpoint), then runs ``--images`` test images through both executions and
compares every integer: every layer's spikes at every step, the state at the
end of the phase (s, dec, psi, enc_prev), the counters and the output.  With
``--train`` it also runs training samples through the three phases, applies
the update on the host with the core's own ``neurochip.learning`` to both
sides, compares the weights (the host copies and what the Lava processes hold,
read back with ``Var.get``) and then the next sample.  The last line is
``differing integers: N``; the exit code is 0 iff N == 0.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np

from neurochip.atomic import atomic_write_text
from neurochip.errors import ArgumentParser, command


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m mapping.check", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bits", type=int, default=8, help="weight bits B")
    p.add_argument("--images", type=int, default=5, help="test images run for inference")
    p.add_argument("--train", action="store_true",
                   help="also: training sample(s) through three phases, host update, next sample")
    p.add_argument("--train-samples", type=int, default=1, help="samples in the checked minibatch")
    p.add_argument("--preset", default="digits", help="network preset (digits, digits-fc, digits-2c)")
    p.add_argument("--updates", type=int, default=72,
                   help="core training updates before the check (72 = one epoch of the digits)")
    p.add_argument("--load", metavar="CKPT", default=None, help="use this checkpoint instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--t1", type=int, default=None, help="override the free-phase steps")
    p.add_argument("--t2", type=int, default=None, help="override the nudged-phase steps")
    p.add_argument("--conv-forward", default="conv", choices=("conv", "sparse", "dense"))
    p.add_argument("--conv-feedback", default="sparse", choices=("sparse", "dense"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--export", metavar="PATH", default=None,
                   help="also export the network to PATH (HDF5), load it back into new processes "
                        "and check the inference images again")
    p.add_argument("--json", metavar="PATH", default=None, help="write the figures as JSON")
    return p


def make_network(args):
    """The (trained) network and its dataset."""
    from neurochip.data import load_dataset
    from neurochip.network import Network, get_preset
    from neurochip.trainer import make_backend, train_step
    if args.load:
        from neurochip.checkpoint import load_checkpoint
        net, _ = load_checkpoint(args.load)
        ds = load_dataset("digits" if net.arch.input_shape == (1, 8, 8) else "mnist", args.data_dir)
    else:
        pre = get_preset(args.preset)
        widths = dataclasses.replace(pre.widths, weight_bits=args.bits)
        net = Network.create(pre.arch, pre.hyper, widths, seed=args.seed, preset=args.preset)
        ds = load_dataset(pre.dataset, args.data_dir)
    hyper = net.hyper
    if args.t1 is not None:
        hyper = dataclasses.replace(hyper, t1=args.t1)
    if args.t2 is not None:
        hyper = dataclasses.replace(hyper, t2=args.t2)
    net.hyper = hyper
    if not args.load and args.updates > 0:
        be = make_backend(net)
        x = ds.quantised(ds.train_x, net.widths.state_bits)
        bs = hyper.batch_size
        for i in range(args.updates):
            sl = slice((i * bs) % (len(x) - bs), (i * bs) % (len(x) - bs) + bs)
            train_step(be, net, x[sl], ds.train_y[sl])
    return net, ds


def core_ms_per_step(core, x, labels, train: bool, repeats: int = 3) -> float:
    """Core wall time per step for one sample at a time (after a warm-up run)."""
    import numba
    h = core.net.hyper
    steps = h.t1 + (2 * h.t2 if train else 0)
    core.run(x[:1], labels[:1], train=train)
    best = float("inf")
    threads = numba.get_num_threads()
    numba.set_num_threads(1)      # one sample: one thread (the machine may be shared)
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for b in range(len(x)):
                core.run(x[b:b + 1], labels[b:b + 1], train=train)
            best = min(best, (time.perf_counter() - t0) / (len(x) * steps))
    finally:
        numba.set_num_threads(threads)
    return 1e3 * best


@command
def main(argv=None) -> int:
    return _main(build_parser().parse_args(argv))


def _main(args) -> int:
    from neurochip import learning
    from neurochip.core import CoreNet

    from .backend import LavaBackend
    from .compare import compare_batches, n_differ

    if args.images < 1 and not args.train:
        print("error: nothing to check (--images 0 and no --train)", file=sys.stderr)
        return 2
    net, ds = make_network(args)
    sbits = net.widths.state_bits
    print(f"network {net.arch}  bits={net.widths.weight_bits}  updates={net.updates}  "
          f"T1={net.hyper.t1} T2={net.hyper.t2}  weights sha256 {net.weights_sha256()[:16]}")
    total = 0
    figures: dict = {"arch": str(net.arch), "bits": net.widths.weight_bits, "checks": {}}
    net_c, net_l = net.copy(), net.copy()
    core = CoreNet(net_c)
    lava = LavaBackend(net_l, conv_forward=args.conv_forward, conv_feedback=args.conv_feedback)
    try:
        timing = {}
        if args.images > 0:
            x = ds.quantised(ds.test_x[:args.images], sbits)
            y = ds.test_y[:args.images]
            rc = core.run(x, y, train=False, record=True)
            rl = lava.run(x, y, train=False, record=True)
            cmp = compare_batches(rc, rl, core.layout, train=False, net=net)
            print("\n".join(cmp.lines(f"inference, {len(y)} test images, {net.hyper.t1} steps "
                                      f"(spikes of every step, final s/dec/psi/enc_prev, counters)")))
            print(f"  predictions core {rc.predictions.tolist()}  lava {rl.predictions.tolist()}  "
                  f"labels {y.tolist()}")
            total += cmp.total
            figures["checks"]["inference"] = cmp.total
            figures["compared"] = {"inference": cmp.compared}
            timing["inference"] = (lava.lava.timing.ms_per_step if lava.lava.timing.steps else 0.0,
                                   core_ms_per_step(core, x, y, train=False))
            if args.export:
                from .export import export_lava, load_lava
                export_lava(net_l, args.export)
                ln2 = load_lava(args.export, train=False, probes=True,
                                conv_forward=args.conv_forward, conv_feedback=args.conv_feedback)
                try:
                    r2 = ln2.run(x, y)
                finally:
                    ln2.stop()
                cmp2 = compare_batches(rc, r2, core.layout, train=False, net=net)
                print(f"export {args.export} -> load_lava -> same {len(y)} images: "
                      f"differing integers {cmp2.total}")
                total += cmp2.total
                figures["checks"]["export_reload"] = cmp2.total
        if args.train:
            k = args.train_samples
            x = ds.quantised(ds.train_x[:2 * k], sbits)
            y = ds.train_y[:2 * k]
            rc = core.run(x[:k], y[:k], train=True, record=True)
            rl = lava.run(x[:k], y[:k], train=True, record=True)
            cmp = compare_batches(rc, rl, core.layout, train=True, net=net)
            print("\n".join(cmp.lines(f"training, {k} sample(s), free + beta + -beta "
                                      f"({net.hyper.t1}+2x{net.hyper.t2} steps)")))
            total += cmp.total
            figures["checks"]["train_sample"] = cmp.total
            figures.setdefault("compared", {})["train_sample"] = cmp.compared
            # the update on the host, with the core's own function, on each side's traces
            from neurochip.trainer import make_backend
            core_be = make_backend(net_c)
            grads_c = learning.contrastive(net_c, core_be.layer_traces(rc))
            grads_l = learning.contrastive(net_l, lava.layer_traces(rl))
            learning.update_network(net_c, grads_c)
            learning.update_network(net_l, grads_l)
            core.refresh()
            how = lava.lava.set_weights(net_l)
            d_host = sum(n_differ(a, b) for a, b in zip(net_c.weights_q, net_l.weights_q))
            d_host += sum(n_differ(a, b) for a, b in zip(net_c.biases_q, net_l.biases_q))
            changed = sum(n_differ(a, b) for a, b in zip(net.weights_q, net_c.weights_q))
            changed_b = sum(n_differ(a, b) for a, b in zip(net.biases_q, net_c.biases_q))
            ln = lava.lava
            d_proc = 0
            n_read = 0
            for got, want in zip(ln.read_weights(), ln.expected_weights(net_c)):
                d_proc += n_differ(got["values"], want["values"])
                n_read += int(np.size(want["values"]))
            for l, proc in enumerate(ln.neurons, start=1):
                d_proc += n_differ(proc.bias.get().astype(np.int64), net_c.biases_q[l - 1])
            print(f"update (neurochip.learning on the host): {changed} weights and {changed_b} "
                  f"biases changed; "
                  f"host weights+biases differing {d_host}; Lava processes ({how}, "
                  f"{n_read} synaptic values read back) differing {d_proc}")
            total += d_host + d_proc
            figures["checks"]["update"] = d_host + d_proc
            figures["changed"] = {"weights": changed, "biases": changed_b}
            rc2 = core.run(x[k:], y[k:], train=True, record=True)
            rl2 = lava.run(x[k:], y[k:], train=True, record=True)
            cmp2 = compare_batches(rc2, rl2, core.layout, train=True, net=net)
            print("\n".join(cmp2.lines(f"next sample(s) after the update, {k}, three phases")))
            total += cmp2.total
            figures["checks"]["next_sample"] = cmp2.total
            figures["compared"]["next_sample"] = cmp2.compared
            figures["compared"]["weights_read_back"] = n_read
            timing["train"] = (lava.lava.timing.ms_per_step if lava.lava.timing.steps else 0.0,
                               core_ms_per_step(core, x[k:], y[k:], train=True))
        for mode, (ms_l, ms_c) in timing.items():
            if ms_l <= 0:     # every run of this mode was a (re)start, none timed
                continue
            print(f"time per step ({mode}, one sample at a time): Lava {ms_l:.2f} ms, "
                  f"core {ms_c:.4f} ms ({ms_l / max(ms_c, 1e-9):.0f}x)")
            figures[f"ms_per_step_{mode}"] = {"lava": ms_l, "core": ms_c}
        if lava.lava is not None:
            figures["lava_processes"] = lava.lava.n_processes
            figures["lava_startup_s"] = lava.lava.startup_s
    finally:
        lava.close()
    figures["differing_integers"] = total
    if args.json:
        atomic_write_text(args.json, json.dumps(figures, indent=2))
    print(f"differing integers: {total}")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""The paper's pooling ablation and its Fig. 2-3 diagnostic: ``python -m experiments.pooling``.

Trains the same preset, data and seed twice in the spiking integer network,
with index-free average pooling (alpha-scaled nearest-neighbour upsampling on
the way back) and with max-pool/unpool, and reports test/train error.  Then,
for each trained network, it records the nudged phases of a few test samples
and measures, per conv layer after the first, the magnitude of the
forward-route input (the pooled drive into the layer from below,
``2**-(e+p) * u_fwd``) and of the backward-route input that the layer sends
down (``fb_mult/4096 * 2**-e * u_fb``: upsampled or unpooled spikes through the
transposed conv), each in units of the state's ONE.  A PNG shows mean and
spread per step for both poolings.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

from .common import base_args, data_dir, flag_value, machine, run_cli, write_json


def route_magnitudes(net, x_fp: np.ndarray, labels: np.ndarray) -> dict:
    """Per conv layer l >= 2: |forward route| and |backward route| per nudged step.

    Returns ``{layer: {"fwd": (steps, B) mean |.|, "bwd": (steps, B) mean |.|}}``
    in real units (fractions of ONE), from the core's recorded spike rasters and
    the reference mirror's synaptic sums (the same integers as the core).
    """
    import torch
    from neurochip.core import CoreNet
    from reference.mirror import Mirror, build_layers

    core = CoreNet(net)
    res = core.run(x_fp, labels, train=True, record=True)
    lay = core.layout
    shapes = [net.arch.input_shape] + net.arch.state_shapes()
    t1, t2 = net.hyper.t1, net.hyper.t2
    mirror = Mirror(net)
    layers = build_layers(net)
    consts = net.constants()
    out = {}
    bsz = x_fp.shape[0]
    for l in range(2, net.arch.n_layers + 1):
        if net.arch.layers[l - 1].kind != "conv":
            continue
        lc = consts.layers[l - 1]
        e = net.weight_exp[l - 1]
        fwd, bwd = [], []
        for k in range(t1, t1 + 2 * t2):          # steps of both nudged phases
            if k == t1 + t2:                      # the -beta phase restarts from the free state
                prev_step = t1 - 1
            else:
                prev_step = k - 1
            spikes = res.rec_spikes[:, prev_step]
            q_prev = lay.to_canonical(l - 1, spikes[:, lay.offsets[l - 1]:lay.offsets[l - 1] + lay.sizes[l - 1]])
            q_this = lay.to_canonical(l, spikes[:, lay.offsets[l]:lay.offsets[l] + lay.sizes[l]])
            qp = torch.tensor(q_prev.reshape((bsz,) + tuple(shapes[l - 1])), dtype=torch.float64)
            qt = torch.tensor(q_this.reshape((bsz,) + tuple(shapes[l])), dtype=torch.float64)
            u_fwd, idx = mirror._forward(layers[l - 1], qp)
            u_fb = mirror._feedback(layers[l - 1], qt, idx)
            f = u_fwd.double().abs() * 2.0 ** -(e + lc.pool_shift)
            fb_mult = consts.layers[l - 2].fb_mult / 4096.0
            b = u_fb.double().abs() * fb_mult * 2.0 ** -e
            fwd.append(f.reshape(bsz, -1).mean(1).numpy())
            bwd.append(b.reshape(bsz, -1).mean(1).numpy())
        out[l] = {"fwd": np.array(fwd), "bwd": np.array(bwd)}
    return out


def plot(diag: dict, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = sorted({l for d in diag.values() for l in d})
    fig, axes = plt.subplots(1, max(len(layers), 1), figsize=(6.5 * max(len(layers), 1), 4.2),
                             squeeze=False)
    colors = {"avg": "tab:blue", "max": "tab:red"}
    for ax, l in zip(axes[0], layers):
        for k, (pool, d) in enumerate(diag.items()):
            if l not in d:
                continue
            color = next((c for key, c in colors.items() if pool.startswith(key)), f"C{k}")
            name = f"{pool}-pool" if pool in colors else pool
            for route, style in (("fwd", "-"), ("bwd", "--")):
                m = d[l][route].mean(1)
                s = d[l][route].std(1)
                steps = np.arange(len(m))
                ax.plot(steps, m, style, color=color, label=f"{name}, {route} route")
                ax.fill_between(steps, m - s, m + s, color=color, alpha=0.12)
        half = len(next(iter(diag.values()))[l]["fwd"]) // 2
        ax.axvline(half - 0.5, color="grey", lw=0.8)
        ax.text(half * 0.5, ax.get_ylim()[1] * 0.95, "+beta", ha="center", va="top")
        ax.text(half * 1.5, ax.get_ylim()[1] * 0.95, "-beta", ha="center", va="top")
        ax.set_xlabel("step of the nudged phases")
        ax.set_ylabel("mean |input| per neuron (fractions of ONE)")
        ax.set_title(f"conv layer {l}: forward vs backward route")
        ax.legend(fontsize=8)
    import textwrap
    fig.suptitle("\n".join(textwrap.wrap(title, 80)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def protocol_routes(a) -> int:
    """The route diagnostic of the networks a protocol comparison trained
    (``--from-protocol``): each arm's full run with ``--diag-seed`` at its chosen
    rate, its best-on-validation weights, on the first test images."""
    import json
    from neurochip.checkpoint import load_checkpoint
    from neurochip.data import load_dataset
    from .protocol import run_key
    with open(a.from_protocol) as fh:
        res = json.load(fh)
    cache = a.cache or os.path.join(os.path.dirname(os.path.abspath(a.from_protocol)), "..", "runs")
    diag, summary, ds = {}, [], None
    for arm, rec in res["arms"].items():
        run = rec["full"][str(a.diag_seed)]
        net, _ = load_checkpoint(os.path.join(cache, run_key(run["argv"]) + ".npz"), which="best")
        if ds is None:
            argv = run["argv"]
            ds = load_dataset(flag_value(argv, "--dataset"), flag_value(argv, "--data-dir"))
        n = a.diag_samples
        x = ds.quantised(ds.test_x[:n], net.widths.state_bits)
        diag[arm] = route_magnitudes(net, x, ds.test_y[:n])
    print("| pooling | conv layer | forward route mean | backward route mean | backward / forward |")
    print("|---|---|---|---|---|")
    for pool, d in diag.items():
        for l, v in d.items():
            f, b = float(v["fwd"].mean()), float(v["bwd"].mean())
            summary.append({"pool": pool, "layer": l, "fwd": f, "bwd": b})
            print(f"| {pool} | {l} | {f:.4f} | {b:.4f} | {b / f if f else float('nan'):.3f} |")
    if a.figure:
        os.makedirs(os.path.dirname(os.path.abspath(a.figure)), exist_ok=True)
        plot(diag, a.figure, f"{res['title']}: seed {a.diag_seed} at each arm's chosen rate, "
                             f"{a.diag_samples} test images")
        print(f"\nfigure: {a.figure}")
    write_json(a.out, {"routes": summary, "args": vars(a), "machine": machine()})
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.pooling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from-protocol", default=None, metavar="RESULTS.json",
                   help="skip training: diagnose the networks of a protocol comparison "
                        "(experiments.protocol's NAME.json)")
    p.add_argument("--cache", default=None, help="with --from-protocol: its run cache folder")
    p.add_argument("--diag-seed", type=int, default=0, help="with --from-protocol: whose seed's run")
    p.add_argument("--preset", default="mnist-small")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-root", default=None)
    p.add_argument("--bits", type=int, default=8)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--test-samples", type=int, default=None)
    p.add_argument("--diag-samples", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", default="docs/figures/pooling-diagnostic.png")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    if a.from_protocol:
        return protocol_routes(a)
    from neurochip.checkpoint import load_checkpoint
    from neurochip.data import load_dataset

    base = base_args(a) + ["--bits", str(a.bits)]
    ds = load_dataset(a.dataset, data_dir(a.dataset, a.data_root))
    rows, diag = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for pool in ("avg", "max"):
            ck = os.path.join(tmp, f"{pool}.npz")
            r = run_cli(base + ["--pool", pool, "--save", ck])
            rows.append({"pool": pool, **{k: r[k] for k in ("test_error", "train_error", "seconds",
                                                             "spikes_per_sample", "saturations")}})
            print(f"{pool}: test {r['test_error']:.2%} train {r['train_error']:.2%} "
                  f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)
            net, _ = load_checkpoint(ck)
            n = a.diag_samples
            x = ds.quantised(ds.test_x[:n], net.widths.state_bits)
            diag[pool] = route_magnitudes(net, x, ds.test_y[:n])
    print("| pooling | test error | train error | spikes / sample | saturations | seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pool']} | {r['test_error']:.2%} | {r['train_error']:.2%} | "
              f"{r['spikes_per_sample']:,.0f} | {r['saturations']} | {r['seconds']:.0f} |")
    print("\n| pooling | conv layer | forward route mean | backward route mean | backward / forward |")
    print("|---|---|---|---|---|")
    summary = []
    for pool, d in diag.items():
        for l, v in d.items():
            f, b = float(v["fwd"].mean()), float(v["bwd"].mean())
            summary.append({"pool": pool, "layer": l, "fwd": f, "bwd": b})
            print(f"| {pool} | {l} | {f:.4f} | {b:.4f} | {b / f if f else float('nan'):.3f} |")
    if a.figure and diag and any(diag.values()):
        os.makedirs(os.path.dirname(os.path.abspath(a.figure)), exist_ok=True)
        plot(diag, a.figure, f"{a.preset} on {a.dataset}, {a.bits}-bit, {a.diag_samples} test images")
        print(f"\nfigure: {a.figure}")
    print(f"machine: {machine()}; command: python -m experiments.pooling "
          + " ".join(argv if argv is not None else sys.argv[1:]))
    write_json(a.out, {"rows": rows, "routes": summary, "args": vars(a), "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

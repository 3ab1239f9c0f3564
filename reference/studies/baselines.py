"""Training baselines on one preset: integer core vs real-valued EP vs BPTT.

Trains, from the same initial weights and with the same batches (the core's
:func:`neurochip.trainer.epoch_order`), for ``--epochs`` epochs:

* ``int-ep``:   the integer core (``make_backend(net, 'numba')``), spiking EP;
* ``snn-ep``:   the real-valued spiking model, three-phase EP;
* ``crnn-ep``:  the real-valued CRNN, three-phase EP;
* ``snn-bptt``: the real-valued spiking model, BPTT through ``t1`` steps
  (straight-through spike derivative), MSE on ``s_L`` after the last step;
* ``crnn-bptt``: the real-valued CRNN, BPTT through ``t1`` steps.

The BPTT models differentiate the output clamp straight-through by default
(``--bptt-clamp-grad st-output``): with the exact clamp derivative an output unit
clamped at 0 gets no gradient, and on the digits presets SGD drives every output
there within the first epoch (loss stuck at 0.5); ``--bptt-clamp-grad exact``
reproduces that.

All real models start from the un-quantised initial draw of the network's seed;
all use the preset's per-layer learning rates with plain SGD.  Prints a table of
train/test error per epoch and writes a JSON.
"""
from __future__ import annotations

import sys
import time

import torch

from neurochip import trainer
from neurochip.data import load_dataset
from neurochip.network import Network, get_preset

from ..bptt import train_epoch_bptt
from ..real import RealModel, evaluate, train_epoch
from . import _common as C

METHODS = ("int-ep", "snn-ep", "crnn-ep", "snn-bptt", "crnn-bptt")


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)
    ds = load_dataset(preset.dataset, args.data_dir)
    if args.train_samples:
        ds = ds.subset(args.train_samples, args.test_samples or None)
    out = {"machine": C.machine(), "args": vars(args), "arch": preset.arch, "runs": {}}
    for method in args.methods:
        net = Network.create(preset.arch, preset.hyper, seed=args.seed)
        hist = []
        t0 = time.perf_counter()
        if method == "int-ep":
            be = trainer.make_backend(net, "numba")
            tally = trainer.Tally.zeros(net.arch.n_layers)
            xtr = ds.quantised(ds.train_x, net.widths.state_bits)
            xte = ds.quantised(ds.test_x, net.widths.state_bits)
            for ep in range(args.epochs):
                err, loss = trainer.train_epoch(be, net, xtr, ds.train_y, ep, tally)
                te, _ = trainer.evaluate(be, net, xte, ds.test_y)
                hist.append({"epoch": ep, "train_error": err, "train_loss": loss,
                             "test_error": te, "seconds": time.perf_counter() - t0})
        else:
            model = RealModel.from_network(
                net, spiking=method.startswith("snn"), weights="float",
                dtype=getattr(torch, args.dtype),
                clamp_grad=args.bptt_clamp_grad if method.endswith("bptt") else "exact")
            xtr = model.inputs(ds.train_x, ds.pixel_max)
            xte = model.inputs(ds.test_x, ds.pixel_max)
            for ep in range(args.epochs):
                if method.endswith("bptt"):
                    err, loss = train_epoch_bptt(model, xtr, ds.train_y, ep, net.seed)
                else:
                    err, loss = train_epoch(model, xtr, ds.train_y, ep, net.seed)
                te, _ = evaluate(model, xte, ds.test_y)
                hist.append({"epoch": ep, "train_error": err, "train_loss": loss,
                             "test_error": te, "seconds": time.perf_counter() - t0})
        out["runs"][method] = hist
        print(f"# {method}: {hist[-1]}", file=sys.stderr, flush=True)
    return out


def tables(res: dict) -> str:
    methods = list(res["runs"])
    n = max(len(h) for h in res["runs"].values())
    lines = ["| epoch | " + " | ".join(f"{m} train / test error" for m in methods) + " |",
             "|---|" + "---|" * len(methods)]
    for ep in range(n):
        cells = []
        for m in methods:
            h = res["runs"][m]
            cells.append(f"{h[ep]['train_error']:.3f} / {h[ep]['test_error']:.3f}" if ep < len(h)
                         else "")
        lines.append(f"| {ep + 1} | " + " | ".join(cells) + " |")
    lines.append("| seconds | " + " | ".join(f"{res['runs'][m][-1]['seconds']:.0f}"
                                           for m in methods) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = C.study_parser("baselines", __doc__, "digits", png=False)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--bptt-clamp-grad", default="st-output", choices=["exact", "st", "st-output"],
                    help="derivative of the clamp in BPTT (see reference.real.RealModel._clamp)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--train-samples", type=int, default=0, help="0 = all")
    ap.add_argument("--test-samples", type=int, default=0, help="0 = all")
    args = ap.parse_args(argv)
    res = run(args)
    C.write_json(args.json, res)
    print(tables(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

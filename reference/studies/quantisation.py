"""Quantisation error: the integer core against the real-valued spiking model.

For each bit width the same network (architecture, hyper-parameters, seed) is
created with ``Widths(weight_bits=B, ...)`` and one three-phase EP pass of the
integer core (``neurochip.trainer.make_backend(net, 'numba')``, recording the
states, then :func:`neurochip.learning.contrastive` and
:func:`neurochip.learning.update_network`) is compared on the same batch of
digits with the real-valued spiking model (:mod:`reference.real`):

* ``ideal`` reference: the un-quantised initial weights of the same seed
  (:func:`reference.real.float_init`), exact pixels ``p / pixel_max`` and the
  exact constants -- the error of the whole fixed-point design;
* ``matched`` reference: the integer network's own weights and biases read as
  reals (``net.real_weights()``), the quantised pixels and the Q12-rounded
  constants -- what is left is the error of the integer *dynamics and learning
  rule* (rounding of states, decoders, residues, traces).

Measured per width: the RMS difference of the states ``s`` of all layers at the
end of the free, +beta and -beta phases (units of ``s``, i.e. fractions of
one); the argmax agreement of the free output; and per layer the relative
error ``||dW_int - dW_real|| / ||dW_real||`` of the update, both the exact
contrastive update before rounding (``lr c G / (2 beta B trace_max^2)``) and
the update actually applied to the ``B``-bit weights (stochastic rounding,
saturation).  Two floors independent of the widths are printed with it: the
real spiking model in float32 vs float64 (spike-timing chaos: any
perturbation flips spikes) and the real spiking model vs the real CRNN (the
size of the spike noise itself).
"""
from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
import torch

from neurochip import learning
from neurochip import numerics as nx
from neurochip.kinds import REC_S
from neurochip.data import load_dataset
from neurochip.network import Network, Widths, get_preset
from neurochip.trainer import make_backend

from ..real import RealModel
from . import _common as C

PHASES = ("free", "plus", "minus")


# ---------------------------------------------------------- integer side
def integer_pass(net: Network, x_fp: np.ndarray, labels: np.ndarray) -> dict:
    """States (reals) after each phase, exact and applied updates (reals)."""
    be = make_backend(net, "numba")
    res = be.run(x_fp, labels, train=True, record=True)
    lay = be.core.layout
    one = 1 << net.widths.state_bits
    states = {}
    for p, name in enumerate(PHASES):
        parts = lay.split(res.rec_state[:, p, REC_S])
        states[name] = [np.asarray(v, np.float64) / one for v in parts]
    grads = learning.contrastive(net, be.layer_traces(res))
    h = net.hyper
    beta = net.constants().beta_q / nx.Q12_ONE
    tmax = (1 << net.widths.trace_bits) - 1
    bsz = len(labels)
    exact = []
    for l, (g, gb) in enumerate(grads):
        spec = net.arch.layers[l]
        c = 1.0
        if spec.kind == "conv" and h.pool == "avg":
            c = 0.25 if h.update_scale == "quarter" else h.alpha
        dw = h.lrs[l] * c * g.astype(np.float64) / (2.0 * beta * bsz * tmax * tmax)
        db = h.lrs[l] * gb.astype(np.float64) / (2.0 * beta * bsz * tmax)
        exact.append((dw, db))
    after = net.copy()
    learning.update_network(after, grads)
    applied = []
    for l in range(net.arch.n_layers):
        dw = (after.weights_q[l].astype(np.float64) - net.weights_q[l]) * 2.0 ** -net.weight_exp[l]
        db = (after.biases_q[l].astype(np.float64) - net.biases_q[l]) / one
        applied.append((dw, db))
    spikes = np.concatenate(lay.split(res.rec_spikes.astype(np.int8))[1:], axis=-1)
    return {"states": states, "exact": exact, "applied": applied,
            "pred": np.asarray(res.predictions), "spikes": spikes}


# ------------------------------------------------------------- real side
def real_pass(model: RealModel, x: torch.Tensor, labels) -> dict:
    bsz = x.shape[0]
    spk = []

    def record(k, st):
        if model.spiking:
            spk.append(torch.cat([q.reshape(bsz, -1) for q in st.spk[1:]], dim=1)
                       .to(torch.int8).cpu().numpy())
    r = model.ep(x, labels, callback=record)
    states = {}
    for name, st in (("free", r.free), ("plus", r.plus), ("minus", r.minus)):
        states[name] = [t.detach().reshape(bsz, -1).cpu().double().numpy() for t in st.s]
    upd = [(-model.hyper.lrs[l] * gw.cpu().double().numpy(),
            -model.hyper.lrs[l] * gb.cpu().double().numpy()) for l, (gw, gb) in enumerate(r.grads)]
    out = {"states": states, "exact": upd, "pred": r.predictions}
    if spk:
        out["spikes"] = np.stack(spk, axis=1)          # (B, steps, neurons of layers 1..L)
    return out


def matched_hyper(net: Network) -> dict:
    """The real constants the integer network actually uses (Q12, theta_fp)."""
    k = net.constants()
    return {"beta": k.beta_q / nx.Q12_ONE, "epsilon": k.eps_q / nx.Q12_ONE,
            "lam": k.lam_q / nx.Q12_ONE, "alpha": k.alpha_q / nx.Q12_ONE,
            "theta": k.theta_fp / k.one}


# --------------------------------------------------------------- metrics
def state_rms(a: dict, b: dict, layers=None) -> dict:
    out = {}
    for name in PHASES:
        la, lb = a["states"][name], b["states"][name]
        idx = range(1, len(la)) if layers is None else layers
        diff = np.concatenate([(la[l] - lb[l]).reshape(-1) for l in idx])
        out[name] = float(np.sqrt(np.mean(diff ** 2)))
    out["per_layer_free"] = [float(np.sqrt(np.mean((a["states"]["free"][l]
                                                    - b["states"]["free"][l]) ** 2)))
                             for l in range(1, len(a["states"]["free"]))]
    return out


def update_err(est, ref) -> list:
    return [{"rel": C.rel_err(C.layer_vec(e), C.layer_vec(r)),
             "cos": C.cosine(C.layer_vec(e), C.layer_vec(r))} for e, r in zip(est, ref)]


def compare_all(intg: dict, ref: dict) -> dict:
    out = {"state_rms": state_rms(intg, ref),
           "pred_agree": float(np.mean(np.asarray(intg["pred"]) == np.asarray(ref["pred"]))),
           "update_exact": update_err(intg["exact"], ref["exact"])}
    if "applied" in intg:
        out["update_applied"] = update_err(intg["applied"], ref["exact"])
    if "spikes" in intg and "spikes" in ref:
        a, b = intg["spikes"], ref["spikes"]
        out["spike_mismatch"] = float((a != b).sum()) / max(float(b.sum()), 1.0)
        differs = (a != b).any(axis=2)                   # (B, steps)
        first = np.where(differs.any(axis=0))[0]
        out["first_divergence_step"] = int(first[0]) + 1 if len(first) else float("nan")
    return out


def average(dicts: list):
    """Element-wise mean of nested dicts/lists of floats."""
    d0 = dicts[0]
    if isinstance(d0, dict):
        return {k: average([d[k] for d in dicts]) for k in d0}
    if isinstance(d0, list):
        return [average([d[i] for d in dicts]) for i in range(len(d0))]
    return float(np.nanmean([float(v) for v in dicts]))


# ------------------------------------------------------------------ main
def run(args) -> dict:
    torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)
    hyper = dataclasses.replace(preset.hyper, batch_size=args.batch_size)
    ds = load_dataset(preset.dataset, args.data_dir)
    batches = [(ds.train_x[i * args.batch_size:(i + 1) * args.batch_size],
                ds.train_y[i * args.batch_size:(i + 1) * args.batch_size])
               for i in range(args.batches)]
    configs = [("weight_bits", b, Widths(weight_bits=b, state_bits=args.fixed_state_bits,
                                         trace_bits=args.fixed_trace_bits,
                                         bias_bits=max(16, args.fixed_state_bits + 2)))
               for b in args.bits]
    configs += [("state_bits", s, Widths(weight_bits=args.fixed_weight_bits, state_bits=s,
                                         trace_bits=args.fixed_trace_bits,
                                         bias_bits=max(16, s + 2)))
                for s in args.state_bits]
    configs += [("trace_bits", t, Widths(weight_bits=args.fixed_weight_bits,
                                         state_bits=args.fixed_state_bits, trace_bits=t,
                                         bias_bits=max(16, args.fixed_state_bits + 2)))
                for t in args.trace_bits]
    # floors (independent of the widths)
    net0 = Network.create(preset.arch, hyper, Widths(), seed=args.seed)
    ideal64 = RealModel.from_network(net0, spiking=True, weights="float")
    ideal32 = RealModel.from_network(net0, spiking=True, weights="float", dtype=torch.float32)
    crnn = ideal64.copy(spiking=False)
    floors = {"float32_vs_float64": [], "crnn_vs_snn": []}
    ideal_runs = []
    for xb, yb in batches:
        x = ideal64.inputs(xb, ds.pixel_max)
        r64 = real_pass(ideal64, x, yb)
        ideal_runs.append(r64)
        floors["float32_vs_float64"].append(compare_all(real_pass(ideal32, x.float(), yb), r64))
        floors["crnn_vs_snn"].append(compare_all(real_pass(crnn, x, yb), r64))
    out = {"machine": C.machine(), "args": vars(args), "arch": str(net0.arch),
           "hyper": dataclasses.asdict(hyper),
           "floors": {k: average(v) for k, v in floors.items()}, "rows": []}
    for kind, value, widths in configs:
        t0 = time.perf_counter()
        net = Network.create(preset.arch, hyper, widths, seed=args.seed)
        matched = RealModel.from_network(net, spiking=True, weights="network",
                                         **matched_hyper(net))
        vs_ideal, vs_matched = [], []
        for (xb, yb), r_ideal in zip(batches, ideal_runs):
            x_fp = ds.quantised(xb, widths.state_bits)
            intg = integer_pass(net, x_fp, yb)
            r_m = real_pass(matched, matched.inputs(x_fp, 1 << widths.state_bits), yb)
            vs_ideal.append(compare_all(intg, r_ideal))
            vs_matched.append(compare_all(intg, r_m))
        row = {"sweep": kind, "value": value, "widths": dataclasses.asdict(widths),
               "weight_exp": list(net.weight_exp), "ideal": average(vs_ideal),
               "matched": average(vs_matched), "seconds": time.perf_counter() - t0}
        out["rows"].append(row)
        print(f"# {kind}={value} done in {row['seconds']:.1f}s", file=sys.stderr, flush=True)
    return out


def tables(res: dict) -> str:
    n_layers = len(res["rows"][0]["ideal"]["update_exact"])
    lines = []
    fl = res["floors"]
    lines.append("Floors (real models only, no quantisation):\n")
    lines.append("| comparison | RMS s free | RMS s +beta | RMS s -beta | argmax agree | "
                 "spike mismatch | "
                 + " | ".join(f"update rel L{l + 1}" for l in range(n_layers)) + " |")
    lines.append("|---|---|---|---|---|---|" + "---|" * n_layers)
    for name, label in (("float32_vs_float64", "real SNN float32 vs float64"),
                        ("crnn_vs_snn", "real CRNN vs real SNN")):
        f = fl[name]
        lines.append(f"| {label} | {C.fmt(f['state_rms']['free'], 4)} | "
                     f"{C.fmt(f['state_rms']['plus'], 4)} | {C.fmt(f['state_rms']['minus'], 4)} | "
                     f"{C.fmt(f['pred_agree'], 2)} | "
                     f"{C.fmt(f.get('spike_mismatch', float('nan')), 3)} | "
                     + " | ".join(C.fmt(u["rel"]) for u in f["update_exact"]) + " |")
    for sweep in ("weight_bits", "state_bits", "trace_bits"):
        rows = [r for r in res["rows"] if r["sweep"] == sweep]
        if not rows:
            continue
        w0 = rows[0]["widths"]
        fixed = {k: v for k, v in w0.items() if k != sweep and k != "bias_bits"}
        lines.append(f"\n#### Sweep of {sweep} (fixed: {fixed}; bias bits max(16, S+2))\n")
        lines.append(f"| {sweep} | reference | RMS s free | RMS s +beta | RMS s -beta | "
                     "argmax agree | "
                     "spike mismatch | first diverging step | "
                     + " | ".join(f"dW rel L{l + 1} exact / applied" for l in range(n_layers))
                     + " |")
        lines.append("|---|---|---|---|---|---|---|---|" + "---|" * n_layers)
        for r in rows:
            for ref in ("ideal", "matched"):
                m = r[ref]
                cells = [f"{C.fmt(u['rel'])} / {C.fmt(a['rel'])}"
                         for u, a in zip(m["update_exact"], m["update_applied"])]
                lines.append(f"| {r['value']} | {ref} | {C.fmt(m['state_rms']['free'], 4)} | "
                             f"{C.fmt(m['state_rms']['plus'], 4)} | "
                             f"{C.fmt(m['state_rms']['minus'], 4)} | {C.fmt(m['pred_agree'], 2)} | "
                             f"{C.fmt(m.get('spike_mismatch', float('nan')), 3)} | "
                             f"{m.get('first_divergence_step', float('nan')):.0f} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(res: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sweeps = [s for s in ("weight_bits", "state_bits", "trace_bits")
              if any(r["sweep"] == s for r in res["rows"])]
    n_layers = len(res["rows"][0]["ideal"]["update_exact"])
    fig, axes = plt.subplots(3, len(sweeps), figsize=(5.0 * len(sweeps), 10.5), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fl = res["floors"]
    for j, sweep in enumerate(sweeps):
        rows = [r for r in res["rows"] if r["sweep"] == sweep]
        xs = [r["value"] for r in rows]
        ax = axes[0, j]
        for ref, ls in (("ideal", "-"), ("matched", "--")):
            for k, ph in enumerate(PHASES):
                ax.semilogy(xs, [r[ref]["state_rms"][ph] for r in rows], ls, marker="o",
                            color=colors[k], label=f"{ph} vs {ref}")
        ax.axhline(fl["crnn_vs_snn"]["state_rms"]["free"], color="grey", lw=0.8, ls="-.",
                   label="scale: SNN vs CRNN")
        ax.set_title(f"states (RMS of s), sweep {sweep}")
        ax.set_xlabel(sweep)
        ax.set_ylabel("RMS state difference")
        ax.legend(fontsize=6)
        ax = axes[1, j]
        for l in range(n_layers):
            ax.semilogy(xs, [r["ideal"]["update_exact"][l]["rel"] for r in rows], "-o",
                        color=colors[l], label=f"L{l + 1} exact vs ideal")
            ax.semilogy(xs, [r["ideal"]["update_applied"][l]["rel"] for r in rows], ":x",
                        color=colors[l], label=f"L{l + 1} applied vs ideal")
            ax.semilogy(xs, [r["matched"]["update_exact"][l]["rel"] for r in rows], "--s",
                        color=colors[l], alpha=0.6, label=f"L{l + 1} exact vs matched")
        ax.set_title(f"updates (relative error), sweep {sweep}")
        ax.set_xlabel(sweep)
        ax.set_ylabel("||dW_int - dW_real|| / ||dW_real||")
        ax.legend(fontsize=6, ncol=2)
        ax = axes[2, j]
        for ref, ls in (("ideal", "-o"), ("matched", "--s")):
            ax.semilogy(xs, [r[ref].get("spike_mismatch", np.nan) for r in rows], ls, color="C3",
                        label=f"spike mismatch vs {ref}")
        ax.set_xlabel(sweep)
        ax.set_ylabel("differing spikes / spikes (all steps)")
        ax2 = ax.twinx()
        for ref, ls in (("ideal", "-o"), ("matched", "--s")):
            ax2.plot(xs, [r[ref].get("first_divergence_step", np.nan) for r in rows], ls,
                     color="C4", label=f"first differing step vs {ref}")
        ax2.set_ylabel("first step with a differing spike (mean)")
        ax.set_title(f"spike trains, sweep {sweep}")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=6)
    fig.suptitle(f"integer core vs real-valued spiking model, {res['arch']}, one EP pass, "
                 f"{res['args']['batches']} x {res['args']['batch_size']} digits", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = C.study_parser("quantisation", __doc__, "digits-2c")
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--bits", nargs="*", type=int, default=[4, 6, 8, 10, 12, 16],
                    help="weight bits sweep (Widths(weight_bits=B))")
    ap.add_argument("--state-bits", nargs="*", type=int, default=[8, 10, 12, 14, 16],
                    help="state fraction bits sweep (at --fixed-weight-bits)")
    ap.add_argument("--trace-bits", nargs="*", type=int, default=[4, 6, 8, 10, 12, 16],
                    help="trace bits sweep")
    ap.add_argument("--fixed-weight-bits", type=int, default=8)
    ap.add_argument("--fixed-state-bits", type=int, default=12)
    ap.add_argument("--fixed-trace-bits", type=int, default=8)
    args = ap.parse_args(argv)
    return C.finish(args, run(args), plot, tables)


if __name__ == "__main__":
    sys.exit(main())

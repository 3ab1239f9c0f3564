"""EP vs BPTT gradient agreement (algorithm.md §8), CRNN and spiking, avg- and max-pool.

For fixed weights and a few fixed batches this compares, per layer (weights and
bias of a layer as one vector), the symmetric three-phase EP estimate
``g_EP = -(1/(2 beta)) [dPhi(s+) - dPhi(s-)]`` with the BPTT gradient of the
MSE on ``s_L`` after ``t1`` steps through the same unrolled dynamics:

* ``crnn``: CRNN EP vs CRNN BPTT, for small betas (the control: the CRNN is an
  exact gradient system when ``alpha = 1/4`` or with max-pool, so cosine -> 1
  as beta -> 0);
* ``snn``: spiking EP vs spiking BPTT (straight-through spike derivative) and vs
  CRNN BPTT (the gradient of the un-spiked network the spiking one
  approximates), plus two diagnostics at the same beta: spiking EP vs CRNN EP
  (spike noise only) and CRNN EP vs CRNN BPTT (finite-beta bias only);
* ``gdu`` (optional control): the step-wise GDU check on the CRNN, cumulative
  one-sided/symmetric EP estimates after ``K`` nudged steps vs BPTT truncated to
  the last ``K`` steps, ``K = 1..gdu_steps``, with §8.3's normalised RMSE of the
  per-step increments and the sign-error fraction.

Writes a JSON (all numbers) and a PNG (cosine vs beta per layer); prints tables.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch

from neurochip.network import Network, get_preset

from ..bptt import bptt_gradients, truncated_bptt
from ..real import RealModel, evaluate, train_epoch
from . import _common as C


def load_data(preset, data_dir):
    from neurochip.data import load_dataset
    return load_dataset(preset.dataset, data_dir)


def build(args):
    preset = get_preset(args.preset)
    net = Network.create(preset.arch, preset.hyper, seed=args.seed)
    over = dict(alpha=args.alpha, t1=args.t1, t2=args.t2)
    for k in ("epsilon", "lam"):
        if getattr(args, k) is not None:
            over[k] = getattr(args, k)
    return preset, net, over


def pretrain(model: RealModel, ds, epochs: int, seed: int, t1: int, t2: int,
             lr_scale: float = 1.0) -> list:
    """A few epochs of EP with ``model``'s dynamics, the preset's ``t1``/``t2`` and
    its learning rates times ``lr_scale`` (so that the check is not only at the
    initial weights, where most output units sit clamped at 0)."""
    hist = []
    if epochs <= 0:
        return hist
    short = model.copy(t1=t1, t2=t2, lrs=tuple(v * lr_scale for v in model.hyper.lrs))
    xtr = short.inputs(ds.train_x, ds.pixel_max)
    xte = short.inputs(ds.test_x, ds.pixel_max)
    for ep in range(epochs):
        err, loss = train_epoch(short, xtr, ds.train_y, ep, seed)
        hist.append({"epoch": ep, "train_error": err, "train_loss": loss,
                     "test_error": evaluate(short, xte, ds.test_y)[0]})
    for l in range(model.L):
        model.W[l] = short.W[l].clone()
        model.b[l] = short.b[l].clone()
    return hist


def gdu_check(crnn: RealModel, x, y, steps: int, beta: float) -> dict:
    """Step-wise GDU (algorithm.md §8.1-8.3) on the CRNN from its free fixed point."""
    free = crnn.free_phase(x)
    yoh = torch.zeros(len(y), crnn.arch.num_classes, dtype=crnn.dtype)
    yoh[torch.arange(len(y)), torch.as_tensor(y)] = 1.0
    d0 = crnn.dphi(free)
    cum = {}
    with torch.no_grad():
        for sign in (+1, -1):
            st, seq = free, []
            for _ in range(steps):
                st = crnn.step(st, yoh, sign * beta)
                seq.append([(-(gp - g0) / (sign * beta), -(bp - b0) / (sign * beta))
                            for (gp, bp), (g0, b0) in zip(crnn.dphi(st), d0)])
            cum[sign] = seq
    bptt = truncated_bptt(crnn, free, y, steps)
    out = {"beta": beta, "steps": steps, "layers": []}
    for l in range(crnn.L):
        def series(seq):
            return torch.stack([C.layer_vec(g[l]) for g in seq])      # (K, n)
        ep_p, ep_m, bp = series(cum[+1]), series(cum[-1]), series(bptt)
        ep_s = 0.5 * (ep_p + ep_m)
        row = {}
        for name, est in (("plus", ep_p), ("sym", ep_s)):
            d_est = torch.diff(est, dim=0, prepend=torch.zeros_like(est[:1]))
            d_bp = torch.diff(bp, dim=0, prepend=torch.zeros_like(bp[:1]))
            k = d_est.shape[0]
            num = torch.sqrt(((d_est - d_bp) ** 2).sum(0) / k)
            den = torch.maximum(torch.sqrt((d_est ** 2).sum(0) / k),
                                torch.sqrt((d_bp ** 2).sum(0) / k))
            rmse = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)),
                               torch.zeros_like(den))
            sign_err = float(((d_est * d_bp) < 0).double().mean())
            row[name] = {"rmse_rel": float(rmse.mean()), "sign_error": sign_err,
                         "final_cos": C.cosine(est[-1], bp[-1]),
                         "final_rel": C.rel_err(est[-1], bp[-1])}
        out["layers"].append(row)
    return out


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    preset, net, over = build(args)
    ds = load_data(preset, args.data_dir)
    bsz = args.batch_size
    batches = [(ds.test_x[i * bsz:(i + 1) * bsz], ds.test_y[i * bsz:(i + 1) * bsz])
               for i in range(args.batches)]
    res = {"machine": C.machine(), "args": vars(args), "arch": str(net.arch),
           "hyper": {k: getattr(net.hyper, k) for k in ("beta", "epsilon", "lam", "alpha",
                                                         "theta", "t1", "t2")},
           "overrides": over, "pools": {}}
    # the same weights for every pool: the initial draw, or after pretraining
    base = RealModel.from_network(net, spiking=True, weights="float", pool=args.pretrain_pool,
                                  surrogate=args.surrogate, **over)
    hist = pretrain(base, ds, args.pretrain_epochs, args.seed, net.hyper.t1, net.hyper.t2,
                    args.pretrain_lr_scale)
    res["pretrain"] = {"pool": args.pretrain_pool, "history": hist}
    for pool in args.pools:
        t0 = time.perf_counter()
        snn = base.copy(pool=pool)
        crnn = snn.copy(spiking=False)
        pr = {"crnn": {}, "snn": {}, "snn_bptt_vs_crnn_bptt": []}
        for bi, (xb, yb) in enumerate(batches):
            x = snn.inputs(xb, ds.pixel_max)
            g_crnn = bptt_gradients(crnn, x, yb).grads
            g_snn = bptt_gradients(snn, x, yb).grads
            pr["snn_bptt_vs_crnn_bptt"].append(C.compare(g_snn, g_crnn))
            free_c = crnn.free_phase(x)
            free_s = snn.free_phase(x)
            for beta in args.betas_crnn:
                e = crnn.ep(x, yb, beta=beta, free=free_c)
                pr["crnn"].setdefault(str(beta), []).append(
                    {"ep_vs_bptt": C.compare(e.grads, g_crnn)})
            for beta in args.betas_snn:
                e_s = snn.ep(x, yb, beta=beta, free=free_s)
                e_c = crnn.ep(x, yb, beta=beta, free=free_c)
                pr["snn"].setdefault(str(beta), []).append({
                    "ep_vs_snn_bptt": C.compare(e_s.grads, g_snn),
                    "ep_vs_crnn_bptt": C.compare(e_s.grads, g_crnn),
                    "ep_vs_crnn_ep": C.compare(e_s.grads, e_c.grads),
                    "crnn_ep_vs_crnn_bptt": C.compare(e_c.grads, g_crnn)})
        if args.gdu_steps > 0 and pool in args.gdu_pools:
            xb, yb = batches[0]
            pr["gdu"] = gdu_check(crnn, snn.inputs(xb, ds.pixel_max), yb, args.gdu_steps,
                                  args.gdu_beta)
        pr["seconds"] = time.perf_counter() - t0
        res["pools"][pool] = pr
        print(f"# pool={pool} done in {pr['seconds']:.1f}s", file=sys.stderr, flush=True)
    return res


# ------------------------------------------------------------------ output
def summarise(entries: list, key: str, layer: int, metric: str) -> tuple[float, float]:
    return C.mean_std([e[key][layer][metric] if key else e[layer][metric] for e in entries])


def med_min(entries: list, key: str, layer: int, metric: str) -> tuple[float, float, float]:
    v = np.asarray([e[key][layer][metric] for e in entries], float)
    return float(np.nanmedian(v)), float(np.nanmin(v)), float(np.nanmax(v))


def tables(res: dict) -> str:
    lines = []
    n_layers = len(next(iter(res["pools"].values()))["snn_bptt_vs_crnn_bptt"][0])
    lay = " | ".join(f"layer {l + 1}" for l in range(n_layers))
    lines.append("### CRNN: symmetric EP vs BPTT (cosine median [min over batches] / "
                 "relative error median)\n")
    lines.append(f"| pool | beta | {lay} |")
    lines.append("|---|---|" + "---|" * n_layers)
    for pool, pr in res["pools"].items():
        for beta, ents in pr["crnn"].items():
            cells = []
            for l in range(n_layers):
                c, cmin, _ = med_min(ents, "ep_vs_bptt", l, "cos")
                r, _, _ = med_min(ents, "ep_vs_bptt", l, "rel")
                cells.append(f"{C.fmt(c, 4)} [{C.fmt(cmin, 3)}] / {C.fmt(r)}")
            lines.append(f"| {pool} | {beta} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("### Spiking: symmetric EP (spiking dynamics) vs references "
                 "(cosine mean +- std over batches / relative error)\n")
    lines.append(f"| pool | beta | reference | {lay} |")
    lines.append("|---|---|---|" + "---|" * n_layers)
    names = (("ep_vs_snn_bptt", "SNN BPTT (straight-through)"),
             ("ep_vs_crnn_bptt", "CRNN BPTT"),
             ("ep_vs_crnn_ep", "CRNN EP, same beta (spike noise only)"),
             ("crnn_ep_vs_crnn_bptt", "[CRNN EP vs CRNN BPTT: finite-beta bias only]"))
    for pool, pr in res["pools"].items():
        for beta, ents in pr["snn"].items():
            for key, label in names:
                cells = []
                for l in range(n_layers):
                    c, sd = summarise(ents, key, l, "cos")
                    r, _ = summarise(ents, key, l, "rel")
                    cells.append(f"{C.fmt(c)} +- {C.fmt(sd, 2)} / {C.fmt(r, 2)}")
                lines.append(f"| {pool} | {beta} | {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("### SNN BPTT (straight-through) vs CRNN BPTT, same weights (cosine)\n")
    lines.append(f"| pool | {lay} |")
    lines.append("|---|" + "---|" * n_layers)
    for pool, pr in res["pools"].items():
        cells = [C.fmt(summarise(pr["snn_bptt_vs_crnn_bptt"], None, l, "cos")[0])
                 for l in range(n_layers)]
        lines.append(f"| {pool} | " + " | ".join(cells) + " |")
    gdu = [(pool, pr["gdu"]) for pool, pr in res["pools"].items() if "gdu" in pr]
    if gdu:
        lines.append("")
        lines.append("### Step-wise GDU control on the CRNN (per-step increments, §8.3)\n")
        lines.append("| pool | beta | K | estimate | layer | RMSE_rel | sign error | "
                     "cos(cumulative, K) | rel err (cumulative, K) |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for pool, g in gdu:
            for l, row in enumerate(g["layers"]):
                for name in ("plus", "sym"):
                    m = row[name]
                    lines.append(f"| {pool} | {g['beta']} | {g['steps']} | {name} | {l + 1} | "
                                 f"{C.fmt(m['rmse_rel'], 4)} | {C.fmt(m['sign_error'], 4)} | "
                                 f"{C.fmt(m['final_cos'], 5)} | {C.fmt(m['final_rel'], 4)} |")
    pre = res.get("pretrain", {})
    if pre.get("history"):
        h = pre["history"][-1]
        lines.append(f"\nweights: {len(pre['history'])} epoch(s) of spiking EP with "
                     f"{pre['pool']}-pool (train error {h['train_error']:.3f}, test error "
                     f"{h['test_error']:.3f}), the same weights for every pool")
    else:
        lines.append("\nweights: the initial draw (the same for every pool)")
    return "\n".join(lines)


def plot(res: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pools = list(res["pools"])
    n_layers = len(res["pools"][pools[0]]["snn_bptt_vs_crnn_bptt"][0])
    fig, axes = plt.subplots(2, len(pools), figsize=(5.2 * len(pools), 7.5), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, pool in enumerate(pools):
        pr = res["pools"][pool]
        ax = axes[0, j]
        betas = [float(b) for b in pr["crnn"]]
        for l in range(n_layers):
            ys = [med_min(pr["crnn"][b], "ep_vs_bptt", l, "cos")[0] for b in pr["crnn"]]
            ax.semilogx(betas, ys, "o-", color=colors[l], label=f"layer {l + 1}")
        ax.set_title(f"CRNN EP vs BPTT ({pool}-pool), median of batches", fontsize=10)
        ax.set_ylabel("cosine similarity")
        ax.axhline(0.99, color="grey", lw=0.8, ls=":")
        ax.set_ylim(min(0.5, ax.get_ylim()[0]), 1.01)
        ax.legend(fontsize=8)
        ax = axes[1, j]
        betas = [float(b) for b in pr["snn"]]
        for l in range(n_layers):
            for key, ls, lab in (("ep_vs_snn_bptt", "o-", "vs SNN BPTT"),
                                 ("ep_vs_crnn_bptt", "s--", "vs CRNN BPTT"),
                                 ("ep_vs_crnn_ep", "^:", "vs CRNN EP")):
                ys = [summarise(pr["snn"][b], key, l, "cos")[0] for b in pr["snn"]]
                ax.semilogx(betas, ys, ls, color=colors[l], label=f"L{l + 1} {lab}")
        ax.set_title(f"spiking EP ({pool}-pool), mean of batches", fontsize=10)
        ax.set_xlabel("beta")
        ax.set_ylabel("cosine similarity")
        ax.set_ylim(-1.02, 1.02)
        ax.axhline(0, color="grey", lw=0.8)
        ax.legend(fontsize=6, ncol=2)
    pre = res["args"].get("pretrain_epochs", 0)
    what = (f"weights after {pre} epochs of {res['args']['pretrain_pool']}-pool spiking EP"
            if pre else "initial weights")
    fig.suptitle(f"EP vs BPTT gradients, {res['arch']} (alpha={res['overrides']['alpha']}, "
                 f"t1={res['overrides']['t1']}, t2={res['overrides']['t2']}, {what})",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = C.study_parser("gradients", __doc__, "digits-2c")
    ap.add_argument("--batches", type=int, default=5, help="test batches to average over")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--t1", type=int, default=300, help="free steps (= BPTT unroll length)")
    ap.add_argument("--t2", type=int, default=150, help="steps per nudged phase")
    ap.add_argument("--alpha", type=float, default=0.25,
                    help="feedback upsampling scale (1/4 = exact energy gradient)")
    ap.add_argument("--epsilon", type=float, default=None, help="override the preset's epsilon")
    ap.add_argument("--lam", type=float, default=None, help="override the preset's lambda")
    ap.add_argument("--pools", nargs="+", default=["avg", "max"], choices=["avg", "max"])
    ap.add_argument("--betas-crnn", nargs="+", type=float, default=[1e-4, 1e-3, 1e-2, 1e-1])
    ap.add_argument("--betas-snn", nargs="+", type=float, default=[0.01, 0.1, 0.5, 1.0])
    ap.add_argument("--surrogate", default="st", choices=["st", "triangle"],
                    help="spike derivative of SNN BPTT")
    ap.add_argument("--pretrain-epochs", type=int, default=0,
                    help="epochs of spiking EP (preset t1/t2, --pretrain-pool) before the check")
    ap.add_argument("--pretrain-pool", default="avg", choices=["avg", "max"],
                    help="pooling of the pretraining; the pretrained weights are then "
                         "used for every pool")
    ap.add_argument("--pretrain-lr-scale", type=float, default=1.0,
                    help="multiplier of the preset's learning rates while pretraining")
    ap.add_argument("--gdu-steps", type=int, default=20, help="0 disables the step-wise check")
    ap.add_argument("--gdu-beta", type=float, default=1e-3)
    ap.add_argument("--gdu-pools", nargs="+", default=["avg", "max"])
    args = ap.parse_args(argv)
    return C.finish(args, run(args), plot, tables)


if __name__ == "__main__":
    sys.exit(main())

"""Section 1: one training sample and one inference, Numba core vs the exact PyTorch mirror.

The mirror (``make_backend(net, 'torch')``) computes the same integers densely; it is an
exactness tool, not what a user would run instead (see :mod:`.headline`).  The weights of
both are compared after every update.
"""
from __future__ import annotations

from .common import Timed, fmt_ms, fmt_rate, median, summary, timed_inference, timed_train_step

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
        print(f"  round {r + 1}/{args.rounds}: core train {fmt_ms(core_train[-1]['total'] / len(y))}"
              f"/sample" + (f", torch train {fmt_ms(torch_train[-1]['total'] / len(y))}/sample"
                            if torch_be is not None and r < args.torch_rounds else ""),
              flush=True)
    n = len(y)
    out["core_train"] = summary(core_train, n)
    out["core_inference"] = summary(core_inf, n)
    if torch_be is not None:
        k = len(torch_train)              # the rounds in which both ran (same weights)
        out["torch_train"] = summary(torch_train, n)
        out["torch_inference"] = summary(torch_inf, n)
        out["torch_same_weights"] = bool(same)
        out["paired_rounds"] = k
        out["core_vs_torch_train_ratio"] = (median(torch_train, "total")
                                            / median(core_train[:k], "total"))
        out["core_vs_torch_inference_ratio"] = (median(torch_inf, "total")
                                                / median(core_inf[:k], "total"))
        pairs = [t["total"] / c["total"] for t, c in zip(torch_train, core_train)]
        out["core_vs_torch_train_ratio_per_round"] = {"min": float(min(pairs)),
                                                      "max": float(max(pairs))}
    return out


def report_core_vs_torch(net0, x, y, args, result) -> None:
    print("\n[1] exactness tool: Numba core vs the exact PyTorch mirror (dense, the same integers; "
          "not what a user would run instead, see [0])")
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
        extra = (f"{fmt_ms(s['simulate'])} {fmt_ms(s['learning'])} {fmt_ms(s['refresh'])}"
                 if mode == "train" else f"{'':13s}{'':13s}{'':13s}")
        print(f"  {who:8s}{mode:11s}{fmt_ms(s['total']):>14s} {extra}"
              f"{s['events_per_sample']:15,.0f}{fmt_rate(s['events_per_second']):>12s}")
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

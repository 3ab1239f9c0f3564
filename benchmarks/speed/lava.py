"""Section 2: a small network in the Lava mapping, one sample at a time, against the core."""
from __future__ import annotations

import dataclasses
import time

from .common import Timed, fmt_ms, fmt_rate, load, summary, timed_inference, timed_train_step

def bench_lava(args) -> dict:
    import numba
    from neurochip.network import Network, get_preset
    from neurochip.trainer import make_backend, train_step

    try:
        from mapping import LavaBackend
        import mapping.builder as mb
        mb._lava()
    except Exception as exc:    # ImportError, or Lava failing to start
        return {"skipped": f"Lava mapping unavailable: {type(exc).__name__}: {exc}"}
    pre = get_preset(args.lava_preset)
    net0 = Network.create(pre.arch, pre.hyper,
                          dataclasses.replace(pre.widths, weight_bits=args.bits), seed=args.seed)
    ds = load(pre.dataset, args.data_dir if pre.dataset != "digits" else None)
    n = args.lava_samples
    x = ds.quantised(ds.train_x[:n + 1], net0.widths.state_bits)
    y = ds.train_y[:n + 1]
    threads = numba.get_num_threads()
    numba.set_num_threads(1)          # one sample at a time, one thread, like one Lava run
    out = {"preset": args.lava_preset, "arch": str(net0.arch), "samples": n,
           "lava_options": {"conv_feedback": args.lava_conv_feedback}}
    try:
        net_c, net_l = net0.copy(), net0.copy()
        core = Timed(make_backend(net_c, "numba"))
        lava = Timed(LavaBackend(net_l, conv_feedback=args.lava_conv_feedback))
        t0 = time.perf_counter()
        train_step(lava, net_l, x[:1], y[:1])      # builds, compiles and starts the processes
        out["lava_first_train_sample_s"] = time.perf_counter() - t0
        train_step(core, net_c, x[:1], y[:1])
        c_tr, l_tr = [], []
        for b in range(1, n + 1):
            for who in (("core", "lava") if b % 2 else ("lava", "core")):
                if who == "core":
                    c_tr.append(timed_train_step(core, net_c, x[b:b + 1], y[b:b + 1]))
                else:
                    l_tr.append(timed_train_step(lava, net_l, x[b:b + 1], y[b:b + 1]))
        out["same_weights"] = net_c.weights_sha256() == net_l.weights_sha256()
        lava.backend.close()
        lava_inf_be = LavaBackend(net_l, conv_feedback=args.lava_conv_feedback)
        t0 = time.perf_counter()
        lava_inf_be.run(x[:1], y[:1], train=False)
        out["lava_first_inference_s"] = time.perf_counter() - t0
        c_in, l_in = [], []
        for b in range(1, n + 1):
            c_in.append(timed_inference(core.backend, x[b:b + 1], y[b:b + 1]))
            l_in.append(timed_inference(lava_inf_be, x[b:b + 1], y[b:b + 1]))
        lava_inf_be.close()
    finally:
        numba.set_num_threads(threads)
    out["core_train"] = summary(c_tr, 1)
    out["lava_train"] = summary(l_tr, 1)
    out["core_inference"] = summary(c_in, 1)
    out["lava_inference"] = summary(l_in, 1)
    out["lava_vs_core_train_ratio"] = out["lava_train"]["total"] / out["core_train"]["total"]
    out["lava_vs_core_inference_ratio"] = (out["lava_inference"]["total"]
                                           / out["core_inference"]["total"])
    return out


def report_lava(args, result) -> None:
    print(f"\n[2] small network in Lava ({args.lava_preset}, one sample at a time, core on 1 thread)")
    r2 = bench_lava(args)
    result["lava"] = r2
    if "skipped" in r2:
        print(f"  skipped: {r2['skipped']}")
    else:
        for who in ("core", "lava"):
            print(f"  {who:6s} train {fmt_ms(r2[who + '_train']['total'])}/sample "
                  f"(simulate {fmt_ms(r2[who + '_train']['simulate'])}, refresh "
                  f"{fmt_ms(r2[who + '_train']['refresh'])}), inference "
                  f"{fmt_ms(r2[who + '_inference']['total'])}/sample, "
                  f"{fmt_rate(r2[who + '_train']['events_per_second'])}events/s")
        result["lava_vs_core_train_ratio"] = r2["lava_vs_core_train_ratio"]
        result["lava_vs_core_inference_ratio"] = r2["lava_vs_core_inference_ratio"]
        print(f"  ratio lava / core: training sample {r2['lava_vs_core_train_ratio']:.0f}x, "
              f"inference {r2['lava_vs_core_inference_ratio']:.0f}x; Lava start-up "
              f"{r2['lava_first_train_sample_s']:.1f} s (train) / "
              f"{r2['lava_first_inference_s']:.1f} s (inference); identical weights: "
              f"{'yes' if r2['same_weights'] else 'NO'}")

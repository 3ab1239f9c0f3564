"""Section 6: the core on the architectures of the spec's calibration points."""
from __future__ import annotations

import dataclasses

from .common import Timed, fmt_ms, fmt_rate, summary, timed_train_step

PEERS = (
    # (name, architecture, hyper-parameter overrides, peer ms per training sample quoted
    # from ../shared/spec/peers.md: Laborieux et al. EP code, float32, 2 threads, batch 125)
    ("conv 32/64 (peer EP code)", "1x28x28:c32k3-c64k3-f10",
     dict(t1=100, t2=20, beta=0.5, lrs=(0.25, 0.15, 0.1)), 26.6),
    ("paper 2C2FC (paper-mnist)", "1x28x28:c128k3-c256k3-f512-f10", None, 587.0),
)


def bench_peers(ds, args) -> list[dict]:
    """The core's training sample on the architectures of the spec's calibration points."""
    import numba
    from neurochip.network import Architecture, Network, get_preset
    from neurochip.trainer import make_backend
    numba.set_num_threads(args.threads)
    out = []
    n = args.peer_batch
    x = ds.quantised(ds.train_x[:n], 12)
    y = ds.train_y[:n]
    for name, arch, over, quoted in PEERS:
        if over is None:
            pre = get_preset("paper-mnist")
            hyper = dataclasses.replace(pre.hyper, batch_size=n)
        else:
            hyper = dataclasses.replace(get_preset("mnist-small").hyper, batch_size=n, **over)
        net = Network.create(Architecture.parse(arch), hyper, seed=args.seed)
        tb = Timed(make_backend(net, "numba"))
        tb.backend.run(x[:1], y[:1], train=True)
        rows = [timed_train_step(tb, net, x, y) for _ in range(args.peer_rounds)]
        s = summary(rows, n)
        s.update({"name": name, "arch": arch, "t1": hyper.t1, "t2": hyper.t2, "batch": n,
                  "quoted_peer_ms_per_sample": quoted})
        out.append(s)
    return out


def report_peers(ds, args, result) -> None:
    print(f"\n[6] the core on the architectures of the spec's calibration points (MNIST, "
          f"minibatch {args.peer_batch}, {args.threads} threads)")
    rows = bench_peers(ds, args)
    result["peers"] = rows
    for r in rows:
        print(f"  {r['name']:28s} T1={r['t1']:3d} T2={r['t2']:2d}: {fmt_ms(r['total'])}/training "
              f"sample (simulate {fmt_ms(r['simulate'])}), {r['events_per_sample']:,.0f} "
              f"events, {fmt_rate(r['events_per_second'])}events/s; peers.md quotes "
              f"{r['quoted_peer_ms_per_sample']:.0f} ms for the dense real-valued peer")

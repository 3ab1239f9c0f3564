"""``python -m mapping.bench``: Lava's wall time per step vs the Numba core's.

Same network, same samples.  Lava: ``RunSteps(T1 + 2*T2)`` per training
sample (or ``T1`` for inference), timed around ``run`` only (no ``get``/``set``,
no probes unless ``--probes``), after a first sample that compiles and starts
the runtime (reported separately).  Core: ``CoreNet.run`` one sample at a
time (the same granularity) and, for reference, a whole batch at once.
"""
from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time

from neurochip.atomic import atomic_write_text
from neurochip.errors import ArgumentParser, command



@command
def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m mapping.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="digits")
    p.add_argument("--bits", type=int, default=8)
    p.add_argument("--samples", type=int, default=10, help="timed samples (after the first)")
    p.add_argument("--mode", choices=("train", "inference"), default="train")
    p.add_argument("--probes", action="store_true", help="attach the spike probes (sinks)")
    p.add_argument("--conv-feedback", default="sparse", choices=("sparse", "dense"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5, help="core timings: best of this many")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from neurochip.core import CoreNet
    from neurochip.data import load_dataset
    from neurochip.network import Network, get_preset

    from .builder import to_lava

    pre = get_preset(args.preset)
    net = Network.create(pre.arch, pre.hyper,
                         dataclasses.replace(pre.widths, weight_bits=args.bits), seed=args.seed)
    ds = load_dataset(pre.dataset)
    n = args.samples + 1
    x = ds.quantised(ds.test_x[:n], net.widths.state_bits)
    y = ds.test_y[:n]
    train = args.mode == "train"
    h = net.hyper
    steps = h.t1 + (2 * h.t2 if train else 0)

    import numba
    core = CoreNet(net)
    core.run(x[:1], y[:1], train=train)                       # JIT / cache load
    threads = numba.get_num_threads()
    core_one = core_batch = float("inf")
    for _ in range(args.repeats):      # best of: the machine is shared
        numba.set_num_threads(1)       # one sample: one thread, like one Lava sample
        t0 = time.perf_counter()
        for b in range(1, n):
            core.run(x[b:b + 1], y[b:b + 1], train=train)
        core_one = min(core_one, 1e3 * (time.perf_counter() - t0) / ((n - 1) * steps))
        numba.set_num_threads(threads)
        t0 = time.perf_counter()
        core.run(x[1:], y[1:], train=train)
        core_batch = min(core_batch, 1e3 * (time.perf_counter() - t0) / ((n - 1) * steps))

    ln = to_lava(net, train=train, probes=args.probes, conv_feedback=args.conv_feedback)
    try:
        for b in range(n):
            ln.run_sample(x[b], int(y[b]), read=False)
        lava_ms = ln.timing.ms_per_step
        n_proc = ln.n_processes
        startup = ln.startup_s
    finally:
        ln.stop()
    out = {"preset": args.preset, "arch": str(net.arch), "bits": args.bits, "mode": args.mode,
           "steps_per_sample": steps, "timed_samples": n - 1, "lava_processes": n_proc,
           "lava_ms_per_step": lava_ms, "lava_startup_s": startup,
           "core_ms_per_step_one_sample": core_one, "core_ms_per_sample_step_batched": core_batch,
           "ratio_one_sample": lava_ms / core_one, "python": platform.python_version(),
           "cpus": __import__("os").cpu_count(),
           "load_average": list(__import__("os").getloadavg())}
    print(f"{args.preset} ({net.arch}), bits {args.bits}, {args.mode}: {steps} steps/sample, "
          f"{n - 1} timed samples, {n_proc} Lava processes (startup {startup:.2f} s), "
          f"load average {__import__('os').getloadavg()[0]:.1f}")
    print(f"  Lava  {lava_ms:8.3f} ms/step")
    print(f"  core  {core_one:8.4f} ms/step one sample at a time ({lava_ms / core_one:.0f}x), "
          f"{core_batch:.4f} ms per sample-step in a batch of {n - 1}")
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training memory of EP vs BPTT as the number of time steps grows.

One full training step (forward dynamics, gradient, SGD update) of the
real-valued reference on one batch (default: the paper's 2C2FC,
``paper-mnist`` preset architecture, batch 10, float32, MNIST digits) for each
method, model and number of steps ``T``:

* EP: ``t1 = T - 2 t2`` free steps and two nudged phases of ``t2 = T // 6``
  steps (the paper's 100/25/25 split at ``T = 150``), no autograd graph;
* BPTT: ``T`` steps unrolled with autograd, MSE on ``s_L`` after the last step.

Every run is a fresh child process (``--child``), so its peak is its own.
Measured, after a warm-up step (so that lazily initialised kernels and the
allocator's first pages are in the baseline for both methods):

* CPU: peak resident set size minus the baseline (``VmHWM`` after resetting it
  through ``/proc/self/clear_refs``, minus ``VmRSS`` before the run), with
  glibc told to serve every block of 16 KiB or more by ``mmap`` and to trim
  freed memory at once (``MALLOC_MMAP_THRESHOLD_=16384 MALLOC_TRIM_THRESHOLD_=0``;
  ``--plain-malloc`` turns it off), so that the resident set follows the live
  tensors instead of the allocator's free lists; the absolute peak RSS too
  (the process with torch, numba and the data loaded: the CPU analogue of the
  paper's CUDA context); the bytes
  autograd saved for backward (``torch.autograd.graph.saved_tensors_hooks``,
  counted once per storage, cumulative per step: the BPTT graph) and the bytes
  of the dynamical state held by EP (live state + the free-phase snapshot);
* CUDA (``--device cuda``): ``torch.cuda.max_memory_allocated`` minus the
  baseline allocation, the mean of ``memory_allocated`` over the steps (the
  paper's "averaged over the time steps") and ``max_memory_reserved``.

MB below are MiB (2**20 bytes).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np

MIB = float(1 << 20)
PAPER = {"snn": {"ep": 321, "bptt": 2171}, "crnn": {"ep": 309, "bptt": 3018}}


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def split_steps(total: int) -> tuple[int, int]:
    t2 = max(1, total // 6)
    return total - 2 * t2, t2


# ------------------------------------------------------------------ child
def child(args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    from neurochip.network import Network, get_preset
    from reference.real import RealModel
    from reference.bptt import bptt_train_step

    preset = get_preset(args.preset)
    t1, t2 = split_steps(args.T)
    hyper = dataclasses.replace(preset.hyper, batch_size=args.batch_size, t1=t1, t2=t2)
    net = Network.create(preset.arch, hyper, seed=args.seed)
    dev = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    model = RealModel.from_network(net, spiking=(args.model == "snn"), dtype=dtype, device=dev)
    try:
        from neurochip.data import load_dataset
        ds = load_dataset(preset.dataset, args.data_dir)
        xb, yb, pmax = ds.train_x[:args.batch_size], ds.train_y[:args.batch_size], ds.pixel_max
        data = preset.dataset
    except Exception as exc:  # noqa: BLE001 -- the memory does not depend on the pixels
        rng = np.random.default_rng(0)
        xb = rng.integers(0, 256, (args.batch_size,) + tuple(net.arch.input_shape))
        yb, pmax, data = rng.integers(0, 10, args.batch_size), 255, f"random ({exc})"
    x = model.inputs(xb, pmax)
    ds = None
    import gc
    gc.collect()
    cuda = dev.type == "cuda"

    # warm-up: one short step of the same method (kernels, allocator pages)
    warm = model.copy(t1=2, t2=1)
    if args.method == "ep":
        warm.train_step(x, yb)
    else:
        bptt_train_step(warm, x, yb, steps=2)
    del warm
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_alloc = torch.cuda.memory_allocated()
    base_rss = _status_kb("VmRSS")
    hwm_reset = _reset_hwm()

    per_step = []          # bytes in use after each step (method-specific measure)
    saved = {"bytes": 0, "seen": set()}
    state_bytes = {"max": 0}

    def probe(k, st):
        if cuda:
            per_step.append(torch.cuda.memory_allocated() - base_alloc)
        elif args.method == "bptt":
            per_step.append(saved["bytes"])
        else:
            state_bytes["max"] = max(state_bytes["max"], st.nbytes())
            per_step.append(st.nbytes())

    t0 = time.perf_counter()
    if args.method == "ep":
        res = model.train_step(x, yb, callback=probe)
        # the free-phase snapshot lives through both nudged phases
        held = res.free.nbytes() + state_bytes["max"]
        loss = res.loss
        graph = 0
    else:
        def pack(t):
            st = t.untyped_storage()
            key = (st.data_ptr(), str(t.device))
            if key not in saved["seen"]:
                saved["seen"].add(key)
                saved["bytes"] += st.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            from reference.bptt import bptt_gradients
            r = bptt_gradients(model, x, yb, steps=args.T, step_callback=probe)
        model.apply(r.grads)
        loss = r.loss
        graph = saved["bytes"]
        held = graph
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    out = {"method": args.method, "model": args.model, "T": args.T, "t1": t1, "t2": t2,
           "batch": args.batch_size, "dtype": args.dtype, "device": str(dev), "data": data,
           "arch": str(net.arch), "seconds": seconds, "loss": loss,
           "params_bytes": sum(w.numel() * w.element_size() for w in model.W + model.b),
           "graph_bytes": graph, "held_bytes": held,
           "mean_step_bytes": float(np.mean(per_step)) if per_step else 0.0,
           "base_rss_bytes": base_rss * 1024, "hwm_reset": hwm_reset}
    if hwm_reset:
        out["peak_rss_bytes"] = _status_kb("VmHWM") * 1024
        out["peak_rss_delta_bytes"] = out["peak_rss_bytes"] - base_rss * 1024
    out["tensor_bytes"] = out["params_bytes"] + held
    if cuda:
        out["cuda_peak_alloc_bytes"] = torch.cuda.max_memory_allocated() - base_alloc
        out["cuda_mean_alloc_bytes"] = out["mean_step_bytes"]
        out["cuda_peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        out["cuda_base_alloc_bytes"] = base_alloc
    return out


# ----------------------------------------------------------------- parent
def run(args) -> dict:
    from . import _common as C
    rows = []
    for model in args.models:
        for method in args.methods:
            for T in args.steps:
                cmd = [sys.executable, "-m", "reference.studies.memory", "--child",
                       "--method", method, "--model", model, "--T", str(T),
                       "--preset", args.preset, "--batch-size", str(args.batch_size),
                       "--device", args.device, "--dtype", args.dtype, "--seed", str(args.seed),
                       "--threads", str(args.threads), "--data-dir", args.data_dir]
                root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
                env = dict(os.environ)
                if not args.plain_malloc:
                    env.update(MALLOC_MMAP_THRESHOLD_="16384", MALLOC_TRIM_THRESHOLD_="0")
                p = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env)
                if p.returncode != 0:
                    print(p.stderr, file=sys.stderr)
                    raise SystemExit(f"child failed: {' '.join(cmd)}")
                row = json.loads(p.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"# {model} {method} T={T}: {row['seconds']:.1f}s", file=sys.stderr,
                      flush=True)
    return {"machine": C.machine(), "args": vars(args), "rows": rows, "paper_mb": PAPER}


def _measure(row) -> float:
    if "cuda_peak_alloc_bytes" in row:
        return row["cuda_peak_alloc_bytes"]
    return row.get("peak_rss_delta_bytes", float("nan"))


def tables(res: dict) -> str:
    rows = res["rows"]
    cuda = any("cuda_peak_alloc_bytes" in r for r in rows)
    lines = []
    if cuda:
        lines.append("| model | method | T (t1/t2) | peak allocated MB | "
                     "mean allocated over steps MB "
                     "| peak reserved MB | autograd graph MB | seconds |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for r in rows:
            lines.append(f"| {r['model']} | {r['method']} | {r['T']} ({r['t1']}/{r['t2']}) | "
                         f"{r['cuda_peak_alloc_bytes'] / MIB:.1f} | "
                         f"{r['cuda_mean_alloc_bytes'] / MIB:.1f} | "
                         f"{r['cuda_peak_reserved_bytes'] / MIB:.1f} | "
                         f"{r['graph_bytes'] / MIB:.1f} | {r['seconds']:.1f} |")
    else:
        lines.append("| model | method | T (t1/t2) | peak RSS increase MB | peak RSS absolute MB | "
                     "autograd graph (saved tensors) MB | EP state held MB | "
                     "tensors (params + graph or state) MB | seconds |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            ep_held = r["held_bytes"] / MIB if r["method"] == "ep" else float("nan")
            lines.append(f"| {r['model']} | {r['method']} | {r['T']} ({r['t1']}/{r['t2']}) | "
                         f"{r.get('peak_rss_delta_bytes', float('nan')) / MIB:.1f} | "
                         f"{r.get('peak_rss_bytes', float('nan')) / MIB:.0f} | "
                         f"{r['graph_bytes'] / MIB:.1f} | "
                         f"{'-' if ep_held != ep_held else f'{ep_held:.2f}'} | "
                         f"{r['tensor_bytes'] / MIB:.1f} | {r['seconds']:.1f} |")
    lines.append("")
    lines.append("BPTT / EP ratios and the BPTT slope:\n")
    peak_name = "peak allocated" if cuda else "peak RSS increase"
    lines.append(f"| model | T | EP {peak_name} MB | BPTT {peak_name} MB | ratio | "
                 + ("" if cuda else "ratio of absolute peak RSS | ")
                 + "ratio of tensor bytes | paper (T=150, GPU) | BPTT slope MB/step |")
    lines.append("|---|---|---|---|---|---|---|---|" + ("" if cuda else "---|"))
    for model in sorted({r["model"] for r in rows}):
        sel = {(r["method"], r["T"]): r for r in rows if r["model"] == model}
        ts = sorted({t for (m, t) in sel if m == "ep"} & {t for (m, t) in sel if m == "bptt"})
        bts = sorted(t for (m, t) in sel if m == "bptt")
        slope = float("nan")
        if len(bts) >= 2:
            slope = float(np.polyfit(np.array(bts, float),
                                     [_measure(sel[("bptt", t)]) / MIB for t in bts], 1)[0])
        for t in ts:
            e, b = sel[("ep", t)], sel[("bptt", t)]
            pap = PAPER[model]
            ptxt = f"{pap['bptt']}/{pap['ep']} = {pap['bptt'] / pap['ep']:.1f}" if t == 150 else ""
            absr = "" if cuda else (
                f"{b.get('peak_rss_bytes', np.nan) / e.get('peak_rss_bytes', np.nan):.2f} | ")
            lines.append(f"| {model} | {t} | {_measure(e) / MIB:.1f} | {_measure(b) / MIB:.1f} | "
                         f"{_measure(b) / max(_measure(e), 1):.1f} | {absr}"
                         f"{b['tensor_bytes'] / e['tensor_bytes']:.1f} | {ptxt} | {slope:.2f} |")
    return "\n".join(lines)


def plot(res: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = res["rows"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = {"snn": "C0", "crnn": "C1"}
    for model in sorted({r["model"] for r in rows}):
        for method, mk in (("ep", "o"), ("bptt", "s")):
            sel = sorted((r for r in rows if r["model"] == model and r["method"] == method),
                         key=lambda r: r["T"])
            if not sel:
                continue
            ts = [r["T"] for r in sel]
            what = "peak allocated" if "cuda_peak_alloc_bytes" in sel[0] else "peak RSS increase"
            ax.plot(ts, [_measure(r) / MIB for r in sel], "-" + mk, color=colors.get(model),
                    label=f"{model.upper()} {method.upper()} ({what})")
            if method == "bptt":
                ax.plot(ts, [r["graph_bytes"] / MIB for r in sel], ":" + mk,
                        color=colors.get(model), alpha=0.6,
                        label=f"{model.upper()} BPTT autograd graph")
    ax.set_xlabel("time steps T per training step")
    ax.set_ylabel("MB (MiB)")
    dev = rows[0]["device"]
    ax.set_title(f"training memory, {rows[0]['arch']}\nbatch {rows[0]['batch']}, "
                 f"{rows[0]['dtype']}, {dev}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    from . import _common as C
    ap = C.study_parser("memory", __doc__, "paper-mnist")
    ap.add_argument("--steps", nargs="+", type=int, default=[50, 100, 150, 300])
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--models", nargs="+", default=["snn", "crnn"], choices=["snn", "crnn"])
    ap.add_argument("--methods", nargs="+", default=["ep", "bptt"], choices=["ep", "bptt"])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--plain-malloc", action="store_true",
                    help="do not make glibc mmap/trim eagerly in the children (CPU RSS is then "
                         "the allocator's high-water mark, noisier)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", default="ep", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="snn", help=argparse.SUPPRESS)
    ap.add_argument("--T", type=int, default=150, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    return C.finish(args, run(args), plot, tables)


if __name__ == "__main__":
    sys.exit(main())

"""Helpers shared by the sections of the speed benchmark: data, timers, summaries, formats."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

DEFAULT_DATA = os.environ.get("NEUROCHIP_DATA", os.path.join(ROOT, "..", "shared", "data", "mnist"))


def load(dataset: str, data_dir: str | None):
    """The dataset (neurochip's loader; plain gzip + NumPy IDX reading as a fallback)."""
    try:
        from neurochip.data import load_dataset
        return load_dataset(dataset, data_dir)
    except ImportError:     # pragma: no cover - only before neurochip.idx existed
        return _load_idx_fallback(dataset, data_dir)


def _load_idx_fallback(dataset: str, data_dir: str):  # pragma: no cover
    import gzip
    from neurochip.data import Dataset

    def read(name):
        for base in (name, name + ".gz"):
            path = os.path.join(data_dir, base)
            if os.path.exists(path):
                opener = gzip.open if path.endswith(".gz") else open
                with opener(path, "rb") as fh:
                    raw = fh.read()
                ndim = raw[3]
                shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
                return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)
        raise FileNotFoundError(os.path.join(data_dir, name))

    tx, ty = read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte")
    vx, vy = read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte")
    return Dataset(dataset, tx[:, None], ty.astype(np.int64), vx[:, None], vy.astype(np.int64), 255)


def dense_ops_per_sample(net, train: bool = True) -> int:
    """Synaptic multiply-adds a dense execution forms per sample (every synapse, every step).

    Forward into every layer plus feedback into every layer below the output,
    with the avg-pool conv as its fused stride-2 kernel (what the core and the
    reference compute), max-pool conv at full resolution.
    """
    arch, h = net.arch, net.hyper
    shapes = [arch.input_shape] + arch.state_shapes()
    per_step = 0
    for l, spec in enumerate(arch.layers):
        if spec.kind == "conv":
            cin = shapes[l][0]
            if h.pool == "max":
                _, hc, wc = arch.conv_shape(l)
                fwd = spec.channels * hc * wc * cin * spec.kernel ** 2
            else:
                _, hp, wp = shapes[l + 1]
                fwd = spec.channels * hp * wp * cin * (spec.kernel + 1) ** 2
        else:
            fwd = spec.channels * int(np.prod(shapes[l]))
        per_step += fwd * (2 if l >= 1 else 1)      # feedback mirrors the forward edge
    steps = h.t1 + (2 * h.t2 if train else 0)
    return int(per_step * steps)


def load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def count_events(counts: np.ndarray) -> int:
    """Synaptic events (forward + feedback, all phases and layers) in a counts array."""
    from neurochip.core import K_EVENTS_FB, K_EVENTS_FWD
    return int(counts[..., K_EVENTS_FWD].sum() + counts[..., K_EVENTS_FB].sum())


class Timed:
    """A backend proxy that times ``run`` and ``refresh`` (what ``train_step`` calls)."""

    def __init__(self, backend):
        self.backend = backend
        self.t_run = self.t_refresh = 0.0
        self.events = 0

    def run(self, *args, **kwargs):
        t0 = time.perf_counter()
        res = self.backend.run(*args, **kwargs)
        self.t_run += time.perf_counter() - t0
        self.events += count_events(res.counts)
        return res

    def refresh(self):
        t0 = time.perf_counter()
        self.backend.refresh()
        self.t_refresh += time.perf_counter() - t0

    def layer_traces(self, res):
        return self.backend.layer_traces(res)

    def reset(self):
        self.t_run = self.t_refresh = 0.0
        self.events = 0


def timed_train_step(tb: Timed, net, x, y) -> dict:
    """``neurochip.trainer.train_step`` on the minibatch, with its parts timed."""
    from neurochip.trainer import train_step
    tb.reset()
    t0 = time.perf_counter()
    train_step(tb, net, x, y)
    total = time.perf_counter() - t0
    return {"total": total, "simulate": tb.t_run, "refresh": tb.t_refresh,
            "learning": total - tb.t_run - tb.t_refresh, "events": tb.events}


def timed_inference(backend, x, y) -> dict:
    t0 = time.perf_counter()
    res = backend.run(x, y, train=False)
    return {"total": time.perf_counter() - t0, "events": count_events(res.counts)}


def median(rows: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in rows]))


def fmt_ms(seconds: float) -> str:
    return f"{1e3 * seconds:9.3f} ms"


def fmt_rate(per_s: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_s >= scale:
            return f"{per_s / scale:.2f} {unit}"
    return f"{per_s:.0f} "


def summary(rows: list[dict], n: int) -> dict:
    """Per-sample medians of timed rows over a batch of ``n`` samples."""
    out = {k: median(rows, k) / n for k in rows[0] if k != "events"}
    out["events_per_sample"] = median(rows, "events") / n
    out["events_per_second"] = out["events_per_sample"] / out["total"] if out["total"] else 0.0
    out["repeats"] = len(rows)
    return out

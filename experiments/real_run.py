"""The real-valued twin of a ``neurochip.run`` training run: ``python -m experiments.real_run ...``.

Trains :class:`reference.real.RealModel` (binary spikes, real-valued weights,
states and traces, no rounding; float32 by default) on exactly the data of
the integer run with the same flags: the same training images minus the same
validation split (:func:`neurochip.validation_split.split_indices` of the
seed), the same sample order per epoch (:func:`neurochip.trainer.epoch_order`),
the same batch size, network, hyper-parameters and per-layer rates, from the
un-quantised initial draw of the seed.  After every epoch it records the
validation and test error and keeps the best-on-validation weights (the
earliest epoch wins a tie, as the CLI's); the reported test error is theirs.
``--lr-schedule`` and its flags are the CLI's: every layer's rate times
:meth:`neurochip.schedule.LRSchedule.factor` in each epoch (exactly, with no
mantissa and shift).

It resumes per epoch: ``--state PATH.npz`` holds the weights, the best weights
and the history after every finished epoch (the real model draws no random
numbers, so a resumed run equals an uninterrupted one).  A resumed run must
have the state's network, rates, data, split, seed, dtype and torch thread
count (a flag that disagrees is an error, as the CLI's ``--resume``); it may
change the schedule and ``--epochs`` only where no finished epoch's rate
factor changes.
``--until-epoch K`` stops after epoch K of the plan (the headline driver
advances a run one epoch at a time with it).  ``--json`` writes the
figures with the keys of ``neurochip.run --json`` that the tables read
(``test_error``, ``best``, ``history``, ``seconds``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from .common import fail


#: the flags a resumed run must share with its state (the rest: outputs and the schedule).  The
#: torch thread count is one of them: float32 sums split over threads round differently (fmnist-medium,
#: ten minibatches: other weights at 2 threads than at 1), so a run resumed at another count would not
#: be the uninterrupted run.
RUN_FLAGS = ("preset", "arch", "lrs", "dataset", "val_split", "train_samples", "test_samples",
             "seed", "dtype", "threads")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.real_run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="mnist-small")
    p.add_argument("--arch", default=None)
    p.add_argument("--lrs", required=True, help="per-layer rates, e.g. 0.1,0.04")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (not for digits)")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--val-split", type=int, required=True)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--test-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr-schedule", choices=("constant", "step", "cosine"), default=None)
    p.add_argument("--lr-step-epochs", type=int, default=None)
    p.add_argument("--lr-gamma", type=float, default=None)
    p.add_argument("--lr-min-factor", type=float, default=None)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1; a resumed run keeps its state's count)")
    p.add_argument("--state", required=True, help="per-epoch resumable state (.npz)")
    p.add_argument("--json", default=None)
    p.add_argument("--until-epoch", type=int, default=None, metavar="K",
                   help="stop after epoch K of the planned --epochs (resumable)")
    return p


def check_resume(a, meta: dict, schedule, path: str) -> None:
    """One line (exit 2) if the state at ``path`` was trained with other network, rates, data,
    split, seed, dtype or thread-count flags, or if ``schedule`` over ``a.epochs`` epochs changes
    the rate factor of an epoch it has finished (its history records each epoch's factor)."""
    stored = parser().parse_args(meta["argv"])
    same = {"lrs": lambda v: tuple(float(x) for x in v.split(","))}
    for name in RUN_FLAGS:
        mine, theirs = getattr(a, name), getattr(stored, name)
        if same.get(name, lambda v: v)(mine) != same.get(name, lambda v: v)(theirs):
            fail(f"--{name.replace('_', '-')} {mine} conflicts with state {path}, which was trained "
                 f"with {theirs}")
    if len(meta["history"]) > a.epochs:
        fail(f"--epochs {a.epochs}: state {path} has already finished {len(meta['history'])} epochs")
    for h in meta["history"]:
        if schedule.factor(h["epoch"] - 1, a.epochs) != h["lr_factor"]:
            fail(f"--lr-schedule/--epochs conflict with state {path}: epoch {h['epoch']}, already "
                 f"trained at rate factor {h['lr_factor']}, would get "
                 f"{schedule.factor(h['epoch'] - 1, a.epochs)}")


def read_meta(path: str) -> dict:
    """The state's record: ``history`` (one entry per finished epoch), ``best``, ``seconds``,
    ``updates`` and the ``argv`` that last wrote it."""
    with np.load(path) as z:
        return json.loads(z["meta"].tobytes().decode())


def training_record(path: str) -> dict:
    """The state at ``path`` in the shape of a core checkpoint's training record (what the
    headline driver reads): ``epoch`` (finished), ``epochs`` (planned), ``history``, ``best``,
    ``train_seconds``."""
    meta = read_meta(path)
    return {"epoch": len(meta["history"]), "epochs": parser().parse_args(meta["argv"]).epochs,
            "history": meta["history"], "best": meta["best"] or {},
            "train_seconds": meta["seconds"]}


def main(argv=None) -> int:
    p = parser()
    a = p.parse_args(argv)
    if a.until_epoch is not None and a.until_epoch < 1:
        fail(f"--until-epoch must be at least 1, got {a.until_epoch}")

    import torch
    from neurochip.atomic import atomic_write_bytes
    from neurochip.data import load_dataset
    from neurochip.network import Network
    from neurochip.validation_split import split_indices
    from reference.real import RealModel, evaluate, train_epoch
    import dataclasses
    from neurochip.errors import UserError
    from neurochip.schedule import LRSchedule, given_fields
    torch.set_num_threads(a.threads)
    try:
        schedule = dataclasses.replace(LRSchedule(), **given_fields(a)).validate()
    except UserError as exc:
        fail(str(exc))
    dtype = {"float32": torch.float32, "float64": torch.float64}[a.dtype]
    try:
        lrs = tuple(float(v) for v in a.lrs.split(","))
    except ValueError:
        fail(f"--lrs must be comma-separated numbers, e.g. 0.1,0.04; got {a.lrs!r}")
    if os.path.exists(a.state):                 # before the data: a conflict fails at once
        meta = read_meta(a.state)
        check_resume(a, meta, schedule, a.state)
    net = Network.from_preset(a.preset, arch=a.arch, seed=a.seed, lrs=lrs)
    model = RealModel.from_network(net, spiking=True, weights="float", dtype=dtype)
    ds = load_dataset(a.dataset, a.data_dir).subset(a.train_samples, a.test_samples)
    tr, va = split_indices(len(ds.train_y), a.val_split, a.seed)
    x_tr = model.inputs(ds.train_x[tr], scale=ds.pixel_max)
    x_va = model.inputs(ds.train_x[va], scale=ds.pixel_max)
    x_te = model.inputs(ds.test_x, scale=ds.pixel_max)
    y_tr, y_va, y_te = ds.train_y[tr], ds.train_y[va], ds.test_y

    history, best, best_wb, seconds = [], None, None, 0.0
    if os.path.exists(a.state):
        z = np.load(a.state)
        history, best, seconds = meta["history"], meta["best"], meta["seconds"]
        L = model.L
        for l in range(L):
            model.W[l] = torch.as_tensor(z[f"w{l}"], dtype=dtype).clone()
            model.b[l] = torch.as_tensor(z[f"b{l}"], dtype=dtype).clone()
        best_wb = ([z[f"best_w{l}"] for l in range(L)], [z[f"best_b{l}"] for l in range(L)])
        model.updates = meta["updates"]
        print(f"resuming {a.state} after epoch {len(history)}", file=sys.stderr)

    def save():
        meta = {"history": history, "best": best, "seconds": seconds, "updates": model.updates,
                "argv": argv if argv is not None else sys.argv[1:]}
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
        for l in range(model.L):
            arrays[f"w{l}"] = model.W[l].cpu().numpy()
            arrays[f"b{l}"] = model.b[l].cpu().numpy()
            arrays[f"best_w{l}"], arrays[f"best_b{l}"] = best_wb[0][l], best_wb[1][l]
        import io
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(a.state, buf.getvalue())

    with torch.no_grad():
        last = a.epochs if a.until_epoch is None else min(a.epochs, a.until_epoch)
        for epoch in range(len(history), last):
            t0 = time.perf_counter()
            factor = schedule.factor(epoch, a.epochs)
            rates = [lr * factor for lr in model.hyper.lrs]

            def step_fn(xb, yb):
                r = model.ep(xb, yb)
                model.apply(r.grads, rates)
                return r.predictions, r.loss
            train_err, train_loss = train_epoch(model, x_tr, y_tr, epoch, seed=a.seed, step_fn=step_fn)
            val_err, _ = evaluate(model, x_va, y_va)
            test_err, _ = evaluate(model, x_te, y_te)
            seconds += time.perf_counter() - t0
            history.append({"epoch": epoch + 1, "train_error_on_the_fly": train_err,
                            "train_loss": train_loss, "lr_factor": factor, "val_error": val_err,
                            "test_error": test_err})
            if best is None or val_err < best["val_error"]:
                best = {"epoch": epoch + 1, "val_error": val_err, "updates": model.updates}
                best_wb = ([w.cpu().numpy().copy() for w in model.W],
                           [b.cpu().numpy().copy() for b in model.b])
            save()
            print(f"epoch {epoch + 1}/{a.epochs}: train {train_err:.2%} val {val_err:.2%} "
                  f"test {test_err:.2%} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    result = {"test_error": history[best["epoch"] - 1]["test_error"],
              "train_error": history[best["epoch"] - 1]["train_error_on_the_fly"],
              "best": best, "history": history, "seconds": round(seconds, 2),
              "updates": model.updates, "dtype": a.dtype, "model": "reference.real (spiking, real-valued)"}
    if a.json:
        atomic_write_bytes(a.json, (json.dumps(result, indent=1) + "\n").encode())
    print(f"test error {result['test_error']:.2%} (best on validation: epoch {best['epoch']}, "
          f"val {best['val_error']:.2%}); {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What :mod:`reference.check` and :mod:`reference.distributed` share: the network
built from a preset, the quantised training data, and the minibatch order.

The minibatches are exactly those of :func:`neurochip.trainer.train_epoch`:
epoch ``e`` visits ``epoch_order(seed, e, n)`` in consecutive chunks of the
batch size (the remainder dropped), so update ``u`` of a check is update ``u``
of ``python -m neurochip.run`` with the same preset, seed and batch size.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from neurochip.errors import ArgumentParser as Parser, UserError
from neurochip.network import Architecture, Network, Widths, get_preset
from neurochip.trainer import epoch_order


def add_network_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="digits", help="named preset (neurochip.network.PRESETS)")
    p.add_argument("--arch", default=None, help="override the preset's architecture string")
    p.add_argument("--bits", type=int, default=8, help="weight bits B (2..16)")
    p.add_argument("--pool", default="avg", help="avg or max")
    p.add_argument("--samples", type=int, default=20, help="samples per minibatch (the batch size)")
    p.add_argument("--updates", type=int, default=3, help="number of minibatch updates")
    p.add_argument("--seed", type=int, default=0, help="network seed (weights, data order, rounding)")
    p.add_argument("--t1", type=int, default=None, help="override the preset's free-phase steps")
    p.add_argument("--t2", type=int, default=None, help="override the preset's nudged-phase steps")
    p.add_argument("--data-dir", default=None, help="IDX folder for MNIST presets (or NEUROCHIP_DATA)")
    p.add_argument("--device", default="cpu", help="torch device: cpu or cuda")


def build_network(args) -> Network:
    """The network of ``--preset`` (+ ``--arch``, ``--bits``, ``--pool``, batch = ``--samples``)."""
    if args.pool not in ("avg", "max"):
        raise UserError(f"--pool must be 'avg' or 'max', got {args.pool!r}")
    if args.samples < 1:
        raise UserError(f"--samples must be a positive integer, got {args.samples}")
    if args.updates < 1:
        raise UserError(f"--updates must be a positive integer, got {args.updates}")
    preset = get_preset(args.preset)
    arch = Architecture.parse(args.arch or preset.arch)
    over = {"pool": args.pool, "batch_size": args.samples}
    if args.t1 is not None:
        over["t1"] = args.t1
    if args.t2 is not None:
        over["t2"] = args.t2
    if len(preset.hyper.lrs) != arch.n_layers:
        lrs = preset.hyper.lrs
        over["lrs"] = tuple([lrs[0]] * (arch.n_layers - 1) + [lrs[-1]])
    hyper = dataclasses.replace(preset.hyper, **over)
    widths = dataclasses.replace(preset.widths or Widths(), weight_bits=args.bits)
    return Network.create(arch, hyper, widths, seed=args.seed, preset=args.preset)


def load_train(args, net: Network) -> tuple[np.ndarray, np.ndarray]:
    """Quantised training images ``(N, N0)`` int64 and labels of the preset's dataset."""
    from neurochip.data import load_dataset
    name = get_preset(args.preset).dataset
    try:
        ds = load_dataset(name, args.data_dir)
    except ImportError as exc:
        raise UserError(f"dataset {name!r} needs {exc.name} (not available)") from None
    if tuple(ds.input_shape) != tuple(net.arch.input_shape):
        raise UserError(f"architecture input {net.arch.input_shape} does not match dataset "
                        f"{name!r} ({ds.input_shape})")
    return ds.quantised(ds.train_x, net.widths.state_bits), ds.train_y.astype(np.int64)


def minibatches(seed: int, n: int, batch: int, updates: int) -> list[np.ndarray]:
    """Sample indices of the first ``updates`` minibatches of training (train_epoch's order)."""
    per_epoch = n // batch
    if per_epoch < 1:
        raise UserError(f"--samples {batch} exceeds the {n} training samples")
    out = []
    epoch = 0
    while len(out) < updates:
        order = epoch_order(seed, epoch, n)
        for i in range(per_epoch):
            if len(out) == updates:
                break
            out.append(order[i * batch:(i + 1) * batch])
        epoch += 1
    return out

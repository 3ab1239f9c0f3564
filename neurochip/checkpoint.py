"""Checkpoints: the network description as ``.npz`` arrays plus JSON metadata.

One file holds the integer parameters (``w{l}``, ``b{l}``, int32, PyTorch
layout) and a JSON document (``__meta__``) with the format name and version,
architecture string, hyper-parameters, widths, seed, weight exponents, update
counter and, for ``--resume``, the training position.  Files are written
atomically (temporary file in the same folder, fsync, rename), so a crash
never leaves a half-written checkpoint, and loading validates everything.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import CheckpointError, UserError
from .network import Architecture, Hyper, Network, Widths

FORMAT = "neurochip-checkpoint"
VERSION = 1


def network_meta(net: Network) -> dict:
    return {
        "format": FORMAT, "version": VERSION,
        "arch": str(net.arch), "preset": net.preset,
        "hyper": {k: (list(v) if isinstance(v, tuple) else v)
                  for k, v in dataclasses.asdict(net.hyper).items()},
        "widths": dataclasses.asdict(net.widths),
        "seed": int(net.seed), "weight_exp": [int(e) for e in net.weight_exp],
        "updates": int(net.updates),
    }


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str, net: Network, training: dict | None = None) -> None:
    """Atomically write ``net`` (and an optional training position) to ``path``."""
    meta = network_meta(net)
    if training is not None:
        meta["training"] = training
    arrays = {}
    for l, (w, b) in enumerate(zip(net.weights_q, net.biases_q), start=1):
        arrays[f"w{l}"] = np.ascontiguousarray(w, np.int32)
        arrays[f"b{l}"] = np.ascontiguousarray(b, np.int32)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str, expect_arch: str | None = None) -> tuple[Network, dict | None]:
    """Load and validate a checkpoint; returns ``(network, training or None)``.

    Raises :class:`CheckpointError` (one line) for a missing, truncated or
    corrupted file, another format or version, or another architecture.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path}: truncated or corrupted ({exc.__class__.__name__})")
    if "__meta__" not in files:
        raise CheckpointError(f"checkpoint {path}: not a neurochip checkpoint (no metadata)")
    try:
        meta = json.loads(files["__meta__"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {path}: corrupted metadata")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not a neurochip checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {meta.get('version')} "
                              f"is not supported (this neurochip reads version {VERSION})")
    try:
        arch = Architecture.parse(meta["arch"])
        hyper_d = dict(meta["hyper"])
        hyper_d["lrs"] = tuple(hyper_d["lrs"])
        hyper = Hyper(**hyper_d)
        widths = Widths(**meta["widths"])
        hyper.validate(arch.n_layers)
        widths.validate()
        exps = [int(e) for e in meta["weight_exp"]]
    except UserError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: incomplete metadata ({exc})")
    if expect_arch is not None and str(Architecture.parse(expect_arch)) != str(arch):
        raise CheckpointError(f"checkpoint {path} holds architecture {arch}, "
                              f"not the requested {Architecture.parse(expect_arch)}")
    weights, biases = [], []
    w_lo, w_hi = -(1 << (widths.weight_bits - 1)), (1 << (widths.weight_bits - 1)) - 1
    b_lo, b_hi = -(1 << (widths.bias_bits - 1)), (1 << (widths.bias_bits - 1)) - 1
    for l, (ws, bs) in enumerate(zip(arch.weight_shapes(), arch.bias_shapes()), start=1):
        w, b = files.get(f"w{l}"), files.get(f"b{l}")
        if w is None or b is None or tuple(w.shape) != tuple(ws) or tuple(b.shape) != tuple(bs):
            raise CheckpointError(f"checkpoint {path}: parameters of layer {l} are missing or "
                                  f"have the wrong shape for {arch}")
        if w.dtype != np.int32 or b.dtype != np.int32:
            raise CheckpointError(f"checkpoint {path}: layer {l} parameters are not int32")
        if w.size and (w.min() < w_lo or w.max() > w_hi):
            raise CheckpointError(f"checkpoint {path}: layer {l} weights exceed {widths.weight_bits} bits")
        if b.size and (b.min() < b_lo or b.max() > b_hi):
            raise CheckpointError(f"checkpoint {path}: layer {l} biases exceed {widths.bias_bits} bits")
        weights.append(w.copy())
        biases.append(b.copy())
    if len(exps) != arch.n_layers:
        raise CheckpointError(f"checkpoint {path}: weight exponents do not match {arch}")
    net = Network(arch, hyper, widths, int(meta["seed"]), weights, biases, exps,
                  int(meta.get("updates", 0)), meta.get("preset", ""))
    return net, meta.get("training")

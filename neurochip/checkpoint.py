"""Checkpoints: the network description as ``.npz`` arrays plus JSON metadata.

One file holds the integer parameters (``w{l}``, ``b{l}``, int32, PyTorch
layout) and a JSON document (``__meta__``) with the format name and version,
architecture string, hyper-parameters, widths, seed, weight exponents, update
counter and, for ``--resume``, the training position (``training``: epoch,
batch, epochs, dataset, sample counts, history, the partial sums of the
current epoch and the tally of counts).  Files are written atomically
(temporary file in the same folder, fsync, rename, fsync of the folder), so a
crash or a SIGKILL at any moment leaves either the old or the new file under
the final name, never a half-written one; loading validates everything and
turns every problem into one :class:`~neurochip.errors.CheckpointError` line.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile

import numpy as np

from . import numerics as nx
from .atomic import atomic_write_bytes, remove_stale_temporaries  # noqa: F401  (re-exported)
from .errors import CheckpointError, UserError
from .network import Architecture, Hyper, Network, Widths, check_seed

FORMAT = "neurochip-checkpoint"
VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
BEST_PREFIX = "best_"   # arrays of the best-on-validation parameters


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


def network_spec(meta: dict) -> tuple[Architecture, Hyper, Widths]:
    """Architecture, hyper-parameters and widths of a :func:`network_meta` record, validated.

    A malformed record raises ``KeyError``/``TypeError``/``ValueError``
    (``AttributeError`` for a wrong container); invalid values a
    :class:`~neurochip.errors.UserError`.  Callers turn these into their own
    file error (checkpoint, Lava export).
    """
    arch = Architecture.parse(meta["arch"])
    hyper_d = dict(meta["hyper"])
    hyper_d["lrs"] = tuple(hyper_d["lrs"])
    hyper = Hyper(**hyper_d)
    widths = Widths(**meta["widths"])
    hyper.validate(arch.n_layers)
    widths.validate()
    return arch, hyper, widths


def checkpoint_bytes(net: Network, training: dict | None = None,
                     best: Network | None = None) -> bytes:
    """The complete ``.npz`` file content of a checkpoint.

    ``best``: the best-on-validation parameters of a run with a validation
    split (same architecture), stored beside the latest ones as ``best_w{l}``,
    ``best_b{l}``: ``--resume`` continues from the latest, ``--load`` evaluates
    the best (:func:`load_checkpoint` ``which``).
    """
    meta = network_meta(net)
    if training is not None:
        meta["training"] = training
    arrays = {}
    for l, (w, b) in enumerate(zip(net.weights_q, net.biases_q), start=1):
        arrays[f"w{l}"] = np.ascontiguousarray(w, np.int32)
        arrays[f"b{l}"] = np.ascontiguousarray(b, np.int32)
    if best is not None:
        for l, (w, b) in enumerate(zip(best.weights_q, best.biases_q), start=1):
            arrays[f"{BEST_PREFIX}w{l}"] = np.ascontiguousarray(w, np.int32)
            arrays[f"{BEST_PREFIX}b{l}"] = np.ascontiguousarray(b, np.int32)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta, sort_keys=True, allow_nan=True).encode(),
                                       np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def save_checkpoint(path: str, net: Network, training: dict | None = None,
                    best: Network | None = None) -> None:
    """Atomically write ``net`` (and an optional training position and
    best-on-validation parameters) to ``path``."""
    atomic_write_bytes(path, checkpoint_bytes(net, training, best))


def _read_members(path: str) -> dict:
    """All arrays of the npz at ``path``; one-line errors for anything else."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path}: no such file")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path}: is a directory, not a checkpoint file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot read: {exc.strerror or exc}") from None
    if not head:
        raise CheckpointError(f"checkpoint {path}: empty file (0 bytes), not a checkpoint")
    if head not in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        raise CheckpointError(f"checkpoint {path}: not a neurochip checkpoint "
                              f"(not an .npz archive; starts with {head.hex()})")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise CheckpointError(f"checkpoint {path}: not a neurochip checkpoint (not an .npz archive)")
        with z:
            return {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError,
            NotImplementedError, zipfile.LargeZipFile) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise CheckpointError(f"checkpoint {path}: truncated or corrupted ({detail})") from None


def _int(value, name: str, path: str, lo: int | None = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (lo is not None and value < lo):
        raise CheckpointError(f"checkpoint {path}: corrupted metadata: {name} = {value!r} "
                              f"is not an integer{'' if lo is None else f' >= {lo}'}")
    return value


def _check_training(training, path: str) -> dict | None:
    """Structural validation of the ``training`` record (types, signs)."""
    if training is None:
        return None
    if not isinstance(training, dict):
        raise CheckpointError(f"checkpoint {path}: corrupted metadata: training is not a record")
    for key in ("epoch", "batch"):
        if key in training:
            _int(training[key], f"training.{key}", path)
    for key in ("epochs", "train_samples", "test_samples"):
        if training.get(key) is not None:
            _int(training[key], f"training.{key}", path)
    history = training.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise CheckpointError(f"checkpoint {path}: corrupted metadata: training.history is not a "
                              "list of records")
    partial = training.get("partial", {})
    if partial is not None:
        if not isinstance(partial, dict):
            raise CheckpointError(f"checkpoint {path}: corrupted metadata: training.partial is not a record")
        for key in ("wrong", "seen"):
            if key in partial:
                _int(partial[key], f"training.partial.{key}", path)
        if not isinstance(partial.get("loss", 0.0), (int, float)) or isinstance(partial.get("loss"), bool):
            raise CheckpointError(f"checkpoint {path}: corrupted metadata: training.partial.loss is not a number")
    seconds = training.get("train_seconds", 0.0)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise CheckpointError(f"checkpoint {path}: corrupted metadata: training.train_seconds is not a number")
    if training.get("dataset") is not None and not isinstance(training["dataset"], str):
        raise CheckpointError(f"checkpoint {path}: corrupted metadata: training.dataset is not a name")
    return training


def load_checkpoint(path: str, expect_arch: str | None = None,
                    which: str = "last") -> tuple[Network, dict | None]:
    """Load and validate a checkpoint; returns ``(network, training or None)``.

    ``which``: ``"last"`` the latest parameters (what ``--resume`` continues),
    ``"best"`` the best-on-validation ones where the file holds them (a run
    with a validation split), else the latest (what ``--load`` evaluates).

    Raises :class:`CheckpointError` (one line) for a missing, empty,
    truncated or corrupted file, a file that is not a checkpoint, another
    format or version, inconsistent metadata or parameters, or (with
    ``expect_arch``) another architecture.
    """
    files = _read_members(path)
    if "__meta__" not in files:
        raise CheckpointError(f"checkpoint {path}: not a neurochip checkpoint (no metadata)")
    try:
        meta = json.loads(files["__meta__"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        raise CheckpointError(f"checkpoint {path}: corrupted metadata") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path}: corrupted metadata (not a JSON object)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not a neurochip checkpoint "
                              f"(format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {meta.get('version')!r} "
                              f"is not supported (this neurochip reads version {VERSION})")
    try:
        arch, hyper, widths = network_spec(meta)
        check_seed(meta["seed"])
        exps = [_int(e, "weight_exp", path, lo=None) for e in meta["weight_exp"]]
        updates = _int(meta.get("updates", 0), "updates", path)
    except CheckpointError:
        raise
    except UserError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path}: incomplete metadata ({exc.__class__.__name__}: "
                              f"{exc})") from None
    if expect_arch is not None and str(Architecture.parse(expect_arch)) != str(arch):
        raise CheckpointError(f"checkpoint {path} holds architecture {arch}, "
                              f"not the requested {Architecture.parse(expect_arch)}")
    if len(exps) != arch.n_layers:
        raise CheckpointError(f"checkpoint {path}: weight exponents do not match {arch}")
    if any(not -64 <= e <= 64 for e in exps):
        raise CheckpointError(f"checkpoint {path}: weight exponents {exps} out of range [-64, 64]")
    if which not in ("last", "best"):
        raise ValueError(f"which must be 'last' or 'best', got {which!r}")
    prefix = BEST_PREFIX if which == "best" and f"{BEST_PREFIX}w1" in files else ""
    weights, biases = [], []
    w_lo, w_hi = nx.signed_range.py_func(widths.weight_bits)
    b_lo, b_hi = nx.signed_range.py_func(widths.bias_bits)
    for l, (ws, bs) in enumerate(zip(arch.weight_shapes(), arch.bias_shapes()), start=1):
        w, b = files.get(f"{prefix}w{l}"), files.get(f"{prefix}b{l}")
        if w is None or b is None or tuple(w.shape) != tuple(ws) or tuple(b.shape) != tuple(bs):
            raise CheckpointError(f"checkpoint {path}: parameters of layer {l} are missing or "
                                  f"have the wrong shape for {arch}")
        if w.dtype != np.int32 or b.dtype != np.int32:
            raise CheckpointError(f"checkpoint {path}: layer {l} parameters are not int32")
        if w.size and (w.min() < w_lo or w.max() > w_hi):
            raise CheckpointError(f"checkpoint {path}: layer {l} weights exceed {widths.weight_bits} bits")
        if b.size and (b.min() < b_lo or b.max() > b_hi):
            raise CheckpointError(f"checkpoint {path}: layer {l} biases exceed {widths.bias_bits} bits")
        weights.append(np.ascontiguousarray(w, np.int32).copy())
        biases.append(np.ascontiguousarray(b, np.int32).copy())
    preset = meta.get("preset") or ""
    training = _check_training(meta.get("training"), path)
    if prefix:      # the best parameters: their own update count (what they were trained for)
        best = (training or {}).get("best") or {}
        if isinstance(best.get("updates"), int) and best["updates"] >= 0:
            updates = best["updates"]
    net = Network(arch, hyper, widths, int(meta["seed"]), weights, biases, exps, updates,
                  preset if isinstance(preset, str) else "")
    return net, training

"""Export a network for Lava as HDF5, and load it back.

``export_lava(network, path)`` writes one HDF5 file (format version 2) with

* the **netx part**, ``layer/*`` (lava-dl netx's key names and layouts; see
  :mod:`mapping.netx`): ``layer/0`` (``type`` b'input', ``shape`` C,H,W),
  then per block ``type`` (b'conv' / b'flatten' / b'dense'), ``shape``,
  ``weight`` (int32, PyTorch layout; conv: the fused ``(K+1)x(K+1)`` stride-2
  kernel = conv then 2x2 sum-pool), ``bias`` and ``neuron/`` (type b'CUBA').
  ``lava.lib.dl.netx.hdf5.Network(net_config=path)`` loads it and runs it in
  Lava; it is a **feed-forward approximation** (no feedback, integrate-and-fire
  neurons), not the trained EP dynamics; the file's ``netx_part`` attribute says so;
* the **exact network**, ``ep/``: ``ep/layer/l/`` (``weight_q`` plain
  weights, ``bias_q``, ``weight_exp``, ``fused_kernel`` for conv,
  learning-rate mantissa/shift, ``feedback/``: the exact transpose as a csr
  matrix in the Lava (W,H,C) order, and ``neuron/``: shifts, feedback
  multiplier, thresholds, decays), ``ep/phases`` (T1, T2, beta),
  ``ep/constants`` and ``ep/network`` (architecture, hyper-parameters, widths,
  seed, update counter: enough to rebuild the :class:`Network`).

``load_network(path)`` rebuilds the :class:`neurochip.network.Network` from
``ep/`` and checks that every derived array and constant in the file, the netx
part included, equals what that network derives (a file edited by hand fails
loudly); ``load_lava(path)`` also builds the exact Lava processes.

CLI: ``python -m mapping.export CHECKPOINT PATH``.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from neurochip.atomic import atomic_path
from neurochip.checkpoint import network_meta, network_spec
from neurochip.errors import ArgumentParser, UserError, command
from neurochip.network import Network

from . import layout as lay
from .netx import APPROXIMATION, netx_entries, netx_warning

FORMAT = "neurochip-lava"
VERSION = 2


class ExportError(UserError):
    """A Lava export file that is missing, malformed or inconsistent."""


def _h5py():
    try:
        import h5py
    except ImportError as exc:   # pragma: no cover
        raise UserError("the Lava export needs h5py (pip install h5py)") from exc
    return h5py


def _derived(net: Network) -> dict:
    """Everything derived from ``net`` that the file stores, keyed by HDF5 path.

    ``layer/*``: the netx part (:func:`mapping.netx.netx_entries`); ``ep/*``: the
    exact network.
    """
    arch, k = net.arch, net.constants()
    out = {"ep/constants/one": k.one, "ep/constants/eps_q": k.eps_q, "ep/constants/lam_q": k.lam_q,
           "ep/constants/alpha_q": k.alpha_q, "ep/constants/theta_fp": k.theta_fp,
           "ep/constants/thr_lam": k.thr_lam, "ep/constants/one_lam": k.one_lam,
           "ep/constants/trace_max": k.trace_max, "ep/constants/reg_bits": 24,
           "ep/phases/t1": net.hyper.t1, "ep/phases/t2": net.hyper.t2,
           "ep/phases/beta_q": k.beta_q,
           "ep/phases/schedule": np.array([0, net.hyper.t1, net.hyper.t1 + net.hyper.t2,
                                           net.hyper.t1 + 2 * net.hyper.t2], np.int64)}
    out.update(netx_entries(net))
    for e in lay.edges(net):
        l = e.layer
        lc = k.layers[l - 1]
        p = f"ep/layer/{l}/"
        if e.kind == "conv":
            out[p + "fused_kernel"] = e.kernel(net).astype(np.int32)
        out.update({p + "weight_q": np.asarray(net.weights_q[l - 1], np.int32),
                    p + "bias_q": np.asarray(net.biases_q[l - 1], np.int32),
                    p + "weight_exp": int(net.weight_exp[l - 1]),
                    p + "lr_w": np.array(lc.lr_w, np.int64),
                    p + "lr_b": np.array(lc.lr_b, np.int64)})
        if l >= 2:   # feedback into layer l-1: the exact transpose of this edge
            m = e.matrix(net)
            if not hasattr(m, "tocsr"):
                from scipy.sparse import csr_matrix
                m = csr_matrix(m)
            mt = m.T.tocsr()
            mt.sort_indices()
            q = p + "feedback/"
            out.update({q + "type": np.array([b"transpose"], "S10"), q + "target": l - 1,
                        q + "multiplier_q12": k.layers[l - 2].fb_mult,
                        q + "csr_data": mt.data.astype(np.int32),
                        q + "csr_indices": mt.indices.astype(np.int32),
                        q + "csr_indptr": mt.indptr.astype(np.int64),
                        q + "csr_shape": np.array(mt.shape, np.int64)})
        n = p + "neuron/"
        out.update({n + "type": np.array([b"EPSD"], "S10"), n + "sh_fwd": lc.sh_fwd,
                    n + "fb_mult": lc.fb_mult, n + "sh_fb": lc.sh_fb, n + "sh_out": lc.sh_out,
                    n + "pool_shift": lc.pool_shift,
                    n + "lam_q": k.lam_q, n + "eps_q": k.eps_q, n + "thr_lam": k.thr_lam,
                    n + "one_lam": k.one_lam, n + "one": k.one,
                    n + "is_output": int(l == arch.n_layers)})
    return out


def _network_meta(net: Network) -> str:
    """The checkpoint's network record (without its file format) plus the weights' SHA-256."""
    meta = {k: v for k, v in network_meta(net).items() if k not in ("format", "version")}
    meta["weights_sha256"] = net.weights_sha256()
    return json.dumps(meta, sort_keys=True)


def export_lava(network: Network, path: str, warn=None) -> str:
    """Write ``network`` to ``path`` (HDF5, atomically); returns the path.

    Where the network's widths exceed what netx keeps, one line goes to
    ``warn`` (default: stderr; see :func:`mapping.netx.netx_warning`).
    """
    h5py = _h5py()
    lay.edges(network)     # raises MappingError for what has no Lava mapping (max-pool)
    data = _derived(network)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--export-lava {path}: folder {folder} does not exist")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["version"] = VERSION
        f.attrs["num_layers"] = network.arch.n_layers + 1
        f.attrs["netx_part"] = APPROXIMATION
        f.attrs["exact_part"] = ("ep/: the trained EP network, bit-exact (weights, biases, "
                                 "feedback, neuron constants, phases); "
                                 "mapping.export.load_network rebuilds it")
        for key, val in data.items():
            f.create_dataset(key, data=val)
        f.create_dataset("ep/network", data=np.bytes_(_network_meta(network)))
    line = netx_warning(network, path)
    if line:
        print(line, file=warn or sys.stderr)
    return path


def _read_all(f) -> dict:
    out = {}

    def visit(name, obj):
        if hasattr(obj, "shape"):
            out[name] = obj[()]
    f.visititems(visit)
    return out


def _same(a, b) -> bool:
    if isinstance(a, bytes) or isinstance(b, bytes):
        return bytes(a) == bytes(b)
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def load_network(path: str) -> Network:
    """Rebuild the :class:`Network` stored by :func:`export_lava` (checked)."""
    h5py = _h5py()
    if not os.path.isfile(path):
        raise ExportError(f"Lava export {path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ExportError(f"{path}: not a neurochip Lava export")
            if int(f.attrs.get("version", -1)) != VERSION:
                raise ExportError(f"{path}: export version {f.attrs.get('version')} is not "
                                  f"supported (this reads version {VERSION})")
            stored = _read_all(f)
    except OSError as exc:
        raise ExportError(f"Lava export {path}: unreadable HDF5 ({exc})") from None
    try:
        meta = json.loads(bytes(stored.pop("ep/network")).decode())
        arch, hyper, widths = network_spec(meta)
        weights = [np.asarray(stored[f"ep/layer/{l}/weight_q"], np.int32).copy()
                   for l in range(1, arch.n_layers + 1)]
        biases = [np.asarray(stored[f"ep/layer/{l}/bias_q"], np.int32).copy()
                  for l in range(1, arch.n_layers + 1)]
        net = Network(arch, hyper, widths, int(meta["seed"]), weights, biases,
                      [int(e) for e in meta["weight_exp"]], int(meta["updates"]),
                      meta.get("preset", ""))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: incomplete or malformed export ({exc})") from None
    except UserError as exc:
        raise ExportError(f"{path}: {exc}") from None
    for l, (w, shp) in enumerate(zip(weights, arch.weight_shapes()), start=1):
        if tuple(w.shape) != tuple(shp):
            raise ExportError(f"{path}: layer {l} weight has shape {w.shape}, {arch} needs {shp}")
    if net.weights_sha256() != meta.get("weights_sha256"):
        raise ExportError(f"{path}: weights do not match their recorded SHA-256")
    for key, want in _derived(net).items():
        if key not in stored:
            raise ExportError(f"{path}: missing {key}")
        if not _same(stored[key], want):
            raise ExportError(f"{path}: {key} differs from what the stored network derives")
    return net


def load_lava(path: str, **build_kwargs):
    """Rebuild the network and its Lava processes (:class:`mapping.builder.LavaNet`).

    The rebuilt :class:`Network` is ``result.network``.  Always ``stop()`` it.
    """
    from .builder import LavaNet
    return LavaNet(load_network(path), **build_kwargs)


@command
def main(argv=None) -> int:
    """``python -m mapping.export CKPT NET.h5``: write a checkpoint's network for Lava."""
    from neurochip.checkpoint import load_checkpoint
    p = ArgumentParser(prog="python -m mapping.export",
                       description="Export a neurochip checkpoint for Lava (HDF5, netx "
                                   "key names plus the EP groups).")
    p.add_argument("checkpoint", help="checkpoint written by python -m neurochip.run --save")
    p.add_argument("path", help="HDF5 file to write")
    args = p.parse_args(argv)
    net, _ = load_checkpoint(args.checkpoint)
    export_lava(net, args.path)
    back = load_network(args.path)
    print(f"wrote {args.path}: {net.arch}, {net.arch.n_layers} layers + input, "
          f"weights sha256 {back.weights_sha256()[:16]} (verified on reading back)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

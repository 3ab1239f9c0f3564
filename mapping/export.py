"""Export a network for Lava as HDF5, and load it back.

``export_lava(network, path)`` writes one HDF5 file with

* lava-dl **netx key names** for what netx can express, the feed-forward
  synapses: ``layer/0`` (``type`` b'input', ``shape`` C,H,W), then per layer
  ``layer/l`` with ``type`` (b'conv' / b'dense'), ``shape`` (C,H,W or n),
  ``weight`` (int32, PyTorch layout), ``bias`` and for conv ``inChannels
  outChannels kernelSize stride padding dilation groups``, for dense
  ``inFeatures outFeatures``, and ``neuron/`` (``type`` b'EPSD', not a netx
  neuron: netx will refuse to build it, honestly).  A conv layer's netx
  ``weight`` is the **fused** ``(K+1)x(K+1)`` stride-2 kernel (conv followed by
  the 2x2 sum-pool): exactly what the forward synapse computes.  A dense layer
  after a conv layer reads the map flattened in C,H,W order, as netx does.
* our own groups for what netx cannot express: ``layer/l/ep/`` (the plain
  weight ``weight_q``, ``weight_exp``, the fused kernel again for conv,
  learning-rate mantissa/shift, and ``feedback/``: the exact transpose, as the
  same kernel read transposed plus its csr matrix in the Lava (W,H,C) order),
  ``layer/l/neuron/`` integer parameters (shifts, feedback multiplier,
  thresholds, decays), ``ep/phases`` (T1, T2, beta), ``ep/constants`` and
  ``ep/network`` (architecture, hyper-parameters, widths, seed, update
  counter: enough to rebuild the :class:`Network`).

``load_network(path)`` rebuilds the :class:`neurochip.network.Network` and
checks that every derived array and constant in the file equals what that
network derives (a file edited by hand fails loudly); ``load_lava(path)``
also builds the Lava processes.

CLI: ``python -m mapping.export CHECKPOINT PATH``.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

import numpy as np

from neurochip.checkpoint import network_meta, network_spec
from neurochip.errors import UserError
from neurochip.network import Network

from . import layout as lay

FORMAT = "neurochip-lava"
VERSION = 1


class ExportError(UserError):
    """A Lava export file that is missing, malformed or inconsistent."""


def _h5py():
    try:
        import h5py
    except ImportError as exc:   # pragma: no cover
        raise UserError("the Lava export needs h5py (pip install h5py)") from exc
    return h5py


def _s10(text: str) -> np.ndarray:
    """A netx/slayer string dataset: shape (1,), dtype S10."""
    return np.array([text.encode("ascii")], "S10")


def _pair(v: int) -> np.ndarray:
    return np.array([v, v], np.int64)


def _derived(net: Network) -> dict:
    """Everything derived from ``net`` that the file stores, keyed by HDF5 path."""
    arch, k = net.arch, net.constants()
    shapes = [tuple(arch.input_shape)] + [tuple(s) for s in arch.state_shapes()]
    out = {"ep/constants/one": k.one, "ep/constants/eps_q": k.eps_q, "ep/constants/lam_q": k.lam_q,
           "ep/constants/alpha_q": k.alpha_q, "ep/constants/theta_fp": k.theta_fp,
           "ep/constants/thr_lam": k.thr_lam, "ep/constants/one_lam": k.one_lam,
           "ep/constants/trace_max": k.trace_max, "ep/constants/reg_bits": 24,
           "ep/phases/t1": net.hyper.t1, "ep/phases/t2": net.hyper.t2,
           "ep/phases/beta_q": k.beta_q,
           "ep/phases/schedule": np.array([0, net.hyper.t1, net.hyper.t1 + net.hyper.t2,
                                           net.hyper.t1 + 2 * net.hyper.t2], np.int64),
           "layer/0/type": _s10("input"), "layer/0/shape": np.array(shapes[0], np.int64)}
    for e in lay.edges(net):
        l = e.layer
        lc = k.layers[l - 1]
        spec = arch.layers[l - 1]
        p = f"layer/{l}/"
        out[p + "shape"] = np.array(shapes[l], np.int64)
        out[p + "bias"] = np.asarray(net.biases_q[l - 1], np.int32)
        if e.kind == "conv":
            fused = e.kernel(net).astype(np.int32)
            out.update({p + "type": _s10("conv"), p + "weight": fused,
                        p + "inChannels": shapes[l - 1][0], p + "outChannels": spec.channels,
                        p + "kernelSize": _pair(spec.kernel + 1), p + "stride": _pair(2),
                        p + "padding": _pair(spec.padding), p + "dilation": _pair(1),
                        p + "groups": 1,
                        p + "ep/fused_kernel": fused})
        else:
            out.update({p + "type": _s10("dense"),
                        p + "weight": np.asarray(net.weights_q[l - 1], np.int32),
                        p + "inFeatures": int(np.prod(shapes[l - 1])),
                        p + "outFeatures": spec.channels})
        out.update({p + "ep/weight_q": np.asarray(net.weights_q[l - 1], np.int32),
                    p + "ep/weight_exp": int(net.weight_exp[l - 1]),
                    p + "ep/lr_w": np.array(lc.lr_w, np.int64),
                    p + "ep/lr_b": np.array(lc.lr_b, np.int64)})
        if l >= 2:   # feedback into layer l-1: the exact transpose of this edge
            m = e.matrix(net)
            if not hasattr(m, "tocsr"):
                from scipy.sparse import csr_matrix
                m = csr_matrix(m)
            mt = m.T.tocsr()
            mt.sort_indices()
            q = p + "ep/feedback/"
            out.update({q + "type": _s10("transpose"), q + "target": l - 1,
                        q + "multiplier_q12": k.layers[l - 2].fb_mult,
                        q + "csr_data": mt.data.astype(np.int32),
                        q + "csr_indices": mt.indices.astype(np.int32),
                        q + "csr_indptr": mt.indptr.astype(np.int64),
                        q + "csr_shape": np.array(mt.shape, np.int64)})
        n = p + "neuron/"
        out.update({n + "type": _s10("EPSD"), n + "sh_fwd": lc.sh_fwd, n + "fb_mult": lc.fb_mult,
                    n + "sh_fb": lc.sh_fb, n + "sh_out": lc.sh_out, n + "pool_shift": lc.pool_shift,
                    n + "lam_q": k.lam_q, n + "eps_q": k.eps_q, n + "thr_lam": k.thr_lam,
                    n + "one_lam": k.one_lam, n + "one": k.one,
                    n + "is_output": int(l == arch.n_layers)})
    return out


def _network_meta(net: Network) -> str:
    """The checkpoint's network record (without its file format) plus the weights' SHA-256."""
    meta = {k: v for k, v in network_meta(net).items() if k not in ("format", "version")}
    meta["weights_sha256"] = net.weights_sha256()
    return json.dumps(meta, sort_keys=True)


def export_lava(network: Network, path: str) -> str:
    """Write ``network`` to ``path`` (HDF5, atomically); returns the path."""
    h5py = _h5py()
    lay.edges(network)     # raises MappingError for what has no Lava mapping (max-pool)
    data = _derived(network)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--export-lava {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".h5", dir=folder)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["num_layers"] = network.arch.n_layers + 1
            for key, val in data.items():
                f.create_dataset(key, data=val)
            f.create_dataset("ep/network", data=np.bytes_(_network_meta(network)))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
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
        weights = [np.asarray(stored[f"layer/{l}/ep/weight_q"], np.int32).copy()
                   for l in range(1, arch.n_layers + 1)]
        biases = [np.asarray(stored[f"layer/{l}/bias"], np.int32).copy()
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


def main(argv=None) -> int:
    from neurochip.errors import ArgumentParser
    p = ArgumentParser(prog="python -m mapping.export",
                                description="Export a neurochip checkpoint for Lava (HDF5, netx "
                                            "key names plus the EP groups).")
    p.add_argument("checkpoint", help="checkpoint written by python -m neurochip.run --save")
    p.add_argument("path", help="HDF5 file to write")
    try:
        args = p.parse_args(argv)
        from neurochip.checkpoint import load_checkpoint
        net, _ = load_checkpoint(args.checkpoint)
        export_lava(net, args.path)
        back = load_network(args.path)
    except (UserError, lay.MappingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.path}: {net.arch}, {net.arch.n_layers} layers + input, "
          f"weights sha256 {back.weights_sha256()[:16]} (verified on reading back)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

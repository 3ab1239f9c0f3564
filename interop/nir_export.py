"""NIR export: the trained network as a NIR graph (``nir`` 1.0.8), feedback edges included.

NIR (the Neuromorphic Intermediate Representation) describes a network as a
graph of continuous-time primitives with float parameters in physical units;
snnTorch, Norse, Sinabs, Rockpool, Lava-DL, SpiNNaker2 and others read it.
``export_nir(net, path)`` writes (atomically) a graph with

* ``input``: ``Input`` of shape ``(C, H, W)``: the spikes of the EP input
  encoder (a predictive sigma-delta encoder, which NIR has no primitive for;
  its constants are in the metadata);
* per conv layer ``l``: ``conv{l}`` ``Conv2d`` (weight ``w * 2**-e_l``, the
  real weights; bias ``b / 2**S``; stride 1, padding P), ``pool{l}``
  ``AvgPool2d`` (2x2, stride 2: the exact 1/4 of our sum-pool), ``lif{l}``;
* per FC layer: ``fc{l}`` a ``Conv2d`` whose kernel covers its whole input map
  (weight ``W`` reshaped to ``(n, C, H, W)``, so the layer's neurons are a
  ``(n, 1, 1)`` map) and ``lif{l}``;
* ``flatten`` then ``output`` ``(classes,)``;
* the **feedback edges** (a cycle per layer pair): ``fb{l}`` carries layer
  ``l``'s spikes back into ``lif{l-1}`` through the exact transpose ``W_l^T``
  times the feedback multiplier, in real units: one ``Conv2d`` from a 1x1 map
  (a kernel as large as the target map, padding ``size - 1``: every output
  position reads the single input pixel through its own kernel tap), preceded
  by ``fb{l}_gather``, a ``Conv2d`` that copies a source map into channels
  (``(N, 1, 1)``), when the source is a map.  Why maps: NIR 1.0.8 has no
  Unflatten, so feedback from a flat vector into a map could not be typed;
  with every layer a map, every edge type-checks (``nir.read`` checks them);
* neurons: ``LIF`` with ``tau = 1 s`` (``dt`` = one integer step = ``1e-4``
  s by convention, in the metadata: a leak of ``1e-4`` per step), ``r = tau /
  dt`` (one step adds the input), ``v_leak = 0``, ``v_threshold = 1`` (real
  1.0, the state's ceiling), ``v_reset = 0``: an integrate-and-fire neuron
  whose rate ``1/ceil(1/drive)`` approximates the EP neuron's ``clamp(drive,
  0, 1)``, the same approximation as the netx part of the Lava export
  (:mod:`mapping.netx`), here with the feedback.  The EP neuron's clamped
  Euler state, decoder, predictive encoder and nudging are no NIR primitive,
  so a NIR reader runs an **approximation** (the graph's ``approximation``
  metadata says so; the EP constants are in the neurons' metadata).

Metadata: the graph's ``neurochip_network`` (architecture, hyper-parameters,
widths, seed, update counter, weights SHA-256, as JSON) and ``constants``;
each node's ``layer``, its integers (``weight_q``, ``weight_exp``, ``bias_q``;
the neuron's shifts and Q12 constants) so that the integer network can be
rebuilt from the file (:func:`load_network_from_nir`).
"""
from __future__ import annotations

import json
import os

import nir   # noqa: F401  (a missing nir makes the registry say so before any work)
import numpy as np

from neurochip.atomic import atomic_path
from neurochip.errors import UserError
from neurochip.network import Network
from neurochip.pooling import fused_kernel, stride2_synapses

FORMAT = "neurochip-nir"
VERSION = 1
DT_SECONDS = 1e-4              # one integer step, by convention
LIF_TAU_S = 1.0                # 10**4 steps: a leak of 1e-4 per step, negligible over T1
MAX_FEEDBACK_ENTRIES = 1 << 26  # dense feedback kernels beyond this are refused (256 MiB float32)
APPROXIMATION = (
    "NIR has no EP neuron: lif{l} (LIF, tau = 1 s = 1e4 steps, r = tau/dt, v_threshold = 1, "
    "v_reset = 0: integrate-and-fire, rate 1/ceil(1/drive)) approximates the EP neuron (clamped "
    "Euler state, EMA decoder, predictive sigma-delta encoder, rate ~ clamp(drive, 0, 1)); "
    "the input node receives the EP input encoder's spikes; fb{l} nodes are the exact feedback "
    "W^T (times the feedback multiplier) in real units. Weights and biases are exact real values "
    "of the integers (w * 2**-e, b / 2**S); the integers are in the node metadata.")


def _fused_matrix_t(net: Network, l: int) -> np.ndarray:
    """Layer ``l``'s integer forward matrix ``M`` (CHW orders), transposed: ``(N_{l-1}, N_l)``."""
    arch = net.arch
    spec = arch.layers[l - 1]
    w = np.asarray(net.weights_q[l - 1], np.int64)
    if spec.kind == "fc":
        return w.T
    src = tuple(arch.input_shape) if l == 1 else tuple(arch.state_shapes()[l - 2])
    dst = tuple(arch.state_shapes()[l - 1])
    ci, h, wd = src
    co, hp, wp = dst
    kern = fused_kernel(w)                 # (Co, Ci, K+1, K+1)
    o, r, c, i, y, x, a, b = stride2_synapses(ci, h, wd, co, hp, wp, kern.shape[-1], spec.padding)
    mt = np.zeros((ci, h, wd, co, hp, wp), np.int64)
    mt[i, y, x, o, r, c] = kern[o, i, a, b]        # one synapse per (input, output) pair
    return mt.reshape(ci * h * wd, co * hp * wp)


def _map_shape(shape: tuple) -> tuple:
    return tuple(shape) if len(shape) == 3 else (int(shape[0]), 1, 1)


def build_graph(net: Network):
    """The :class:`nir.NIRGraph` of ``net`` (see the module docstring)."""
    if net.hyper.pool != "avg":
        raise UserError("the NIR export covers avg-pool networks (conv, then 2x2 average): "
                        "NIR has no max-pool with the argmax-routed feedback of --pool max")
    arch, k = net.arch, net.constants()
    s_bits = net.widths.state_bits
    one = float(1 << s_bits)
    shapes = [tuple(arch.input_shape)] + [_map_shape(s) for s in arch.state_shapes()]
    nodes = {"input": nir.Input(input_type=np.array(shapes[0]))}
    edges = []
    prev = "input"
    for l, spec in enumerate(arch.layers, start=1):
        lc = k.layers[l - 1]
        e = int(net.weight_exp[l - 1])
        w_q = np.asarray(net.weights_q[l - 1], np.int64)
        b_q = np.asarray(net.biases_q[l - 1], np.int64)
        meta = {"layer": l, "weight_q": w_q.astype(np.int32), "weight_exp": e,
                "bias_q": b_q.astype(np.int32)}
        src = shapes[l - 1]
        if spec.kind == "conv":
            nodes[f"conv{l}"] = nir.Conv2d(
                input_shape=np.array(src[1:]), weight=w_q.astype(np.float64) * 2.0 ** -e,
                stride=np.array([1, 1]), padding=np.array([spec.padding] * 2),
                dilation=np.array([1, 1]), groups=1, bias=b_q / one, metadata=meta)
            nodes[f"pool{l}"] = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                              padding=np.array([0, 0]))
            edges += [(prev, f"conv{l}"), (f"conv{l}", f"pool{l}"), (f"pool{l}", f"lif{l}")]
        else:
            wk = w_q.reshape((w_q.shape[0],) + src)
            nodes[f"fc{l}"] = nir.Conv2d(
                input_shape=np.array(src[1:]), weight=wk.astype(np.float64) * 2.0 ** -e,
                stride=np.array([1, 1]), padding=np.array([0, 0]), dilation=np.array([1, 1]),
                groups=1, bias=b_q / one, metadata={**meta, "fc": 1})
            edges += [(prev, f"fc{l}"), (f"fc{l}", f"lif{l}")]
        shp = shapes[l]
        nodes[f"lif{l}"] = nir.LIF(
            tau=np.full(shp, LIF_TAU_S), r=np.full(shp, LIF_TAU_S / DT_SECONDS),
            v_leak=np.zeros(shp), v_threshold=np.ones(shp), v_reset=np.zeros(shp),
            metadata={"layer": l, "sh_fwd": lc.sh_fwd, "fb_mult_q12": lc.fb_mult, "sh_fb": lc.sh_fb,
                      "sh_out": lc.sh_out, "pool_shift": lc.pool_shift, "eps_q": k.eps_q,
                      "lam_q": k.lam_q, "thr_lam": k.thr_lam, "one_lam": k.one_lam, "one": k.one,
                      "is_output": int(l == arch.n_layers)})
        prev = f"lif{l}"
    for l in range(2, arch.n_layers + 1):          # feedback: layer l's spikes into layer l-1
        _feedback(net, l, shapes, nodes, edges, k.layers[l - 2].fb_mult)
    n_out = shapes[-1][0]
    nodes["flatten"] = nir.Flatten(input_type={"input": np.array(shapes[-1])}, start_dim=0,
                                   end_dim=-1)
    nodes["output"] = nir.Output(output_type=np.array([n_out]))
    edges += [(prev, "flatten"), ("flatten", "output")]
    meta = {"format": FORMAT, "version": VERSION, "dt_s": DT_SECONDS,
            "approximation": APPROXIMATION, "neurochip_network": _network_json(net),
            "eps_q": k.eps_q, "lam_q": k.lam_q, "alpha_q": k.alpha_q, "beta_q": k.beta_q,
            "theta_fp": k.theta_fp, "thr_lam": k.thr_lam, "one_lam": k.one_lam, "one": k.one,
            "t1": net.hyper.t1, "t2": net.hyper.t2, "trace_max": k.trace_max}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _feedback(net: Network, l: int, shapes: list, nodes: dict, edges: list, fb_mult: int):
    """``fb{l}``: ``W_l^T`` (real units, times the multiplier) from ``lif{l}`` into ``lif{l-1}``."""
    c1, h1, w1 = shapes[l - 1]
    src = shapes[l]
    n2 = int(np.prod(src))
    mt = _fused_matrix_t(net, l).astype(np.float64)                  # (N_{l-1}, N_l)
    scale = (fb_mult / 4096.0) * 2.0 ** -int(net.weight_exp[l - 1])
    if mt.size + (n2 * n2 if src[1:] != (1, 1) else 0) > MAX_FEEDBACK_ENTRIES:
        raise UserError(f"NIR export: the feedback into layer {l - 1} would be a dense kernel of "
                        f"{mt.size:,} entries (NIR 1.0.8 has no transposed convolution); "
                        f"this network is too large for it")
    start = f"lif{l}"
    if src[1:] != (1, 1):                                # gather the source map into channels
        gather = np.eye(n2).reshape((n2,) + src)
        nodes[f"fb{l}_gather"] = nir.Conv2d(
            input_shape=np.array(src[1:]), weight=gather, stride=np.array([1, 1]),
            padding=np.array([0, 0]), dilation=np.array([1, 1]), groups=1, bias=np.zeros(n2),
            metadata={"feedback_of": l, "role": "gather"})
        edges.append((start, f"fb{l}_gather"))
        start = f"fb{l}_gather"
    wt = (mt * scale).reshape(c1, h1, w1, n2)[:, ::-1, ::-1, :].transpose(0, 3, 1, 2)
    nodes[f"fb{l}"] = nir.Conv2d(
        input_shape=np.array([1, 1]), weight=np.ascontiguousarray(wt), stride=np.array([1, 1]),
        padding=np.array([h1 - 1, w1 - 1]), dilation=np.array([1, 1]), groups=1,
        bias=np.zeros(c1), metadata={"feedback_of": l, "target": l - 1, "fb_mult_q12": fb_mult})
    edges += [(start, f"fb{l}"), (f"fb{l}", f"lif{l - 1}")]


def _network_json(net: Network) -> str:
    from neurochip.checkpoint import network_meta
    meta = {k: v for k, v in network_meta(net).items() if k not in ("format", "version")}
    meta["weights_sha256"] = net.weights_sha256()
    return json.dumps(meta, sort_keys=True)


def export_nir(net: Network, path: str, **_kw) -> str:
    """Write ``net`` as a NIR graph to ``path`` (HDF5, atomically); returns the path."""
    graph = build_graph(net)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--export-nir {path}: folder {folder} does not exist")
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return path


def load_network_from_nir(path: str) -> Network:
    """Rebuild the integer :class:`Network` from a file of :func:`export_nir` (checked)."""
    from neurochip.checkpoint import network_spec
    if not os.path.isfile(path):
        raise UserError(f"NIR file {path}: no such file")
    try:
        graph = nir.read(path)
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"NIR file {path}: unreadable ({exc})") from None
    meta = graph.metadata
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a neurochip NIR export")
    info = json.loads(meta["neurochip_network"])
    arch, hyper, widths = network_spec(info)
    weights, biases = [], []
    for l, spec in enumerate(arch.layers, start=1):
        node = graph.nodes[f"conv{l}" if spec.kind == "conv" else f"fc{l}"]
        weights.append(np.asarray(node.metadata["weight_q"], np.int32).copy())
        biases.append(np.asarray(node.metadata["bias_q"], np.int32).copy())
    net = Network(arch, hyper, widths, int(info["seed"]), weights, biases,
                  [int(e) for e in info["weight_exp"]], int(info["updates"]), info.get("preset", ""))
    if net.weights_sha256() != info.get("weights_sha256"):
        raise UserError(f"{path}: weights do not match their recorded SHA-256")
    return net

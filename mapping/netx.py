"""The netx part of the Lava export: a feed-forward approximation lava-dl netx can load.

lava-dl's ``netx.hdf5.Network`` builds a chain of blocks (a synapse and a
neuron each) from the ``layer/*`` groups of an HDF5 file.  It knows neither the
EP neuron nor feedback, so what it can run of our network is an approximation:

* the **forward synapses only** (conv layers as the fused ``(K+1)x(K+1)``
  stride-2 kernel = conv then 2x2 sum-pool, a ``flatten`` entry before a dense
  layer that follows a map layer, dense layers), no feedback;
* a neuron netx knows, ``CUBA`` with ``iDecay = 4096`` (the current is this
  step's input) and ``vDecay = 0`` (no leak): an integrate-and-fire neuron
  with reset to zero.  Its rate approximates the EP neuron's ``clamp(drive,
  0, 1)`` by ``1/ceil(1/drive)``: the free-phase fixed point without the
  feedback, not the trained EP dynamics;
* units: netx (like Loihi) left-shifts the input, the bias (``bias_exp = 6``)
  and the threshold by 6 bits alike, so everything is in *weight units* of
  the layer: real 1.0 is ``2**(e_l + p_l)`` (``p_l = 2`` for the 1/4 of an
  avg-pool conv layer), the threshold ``vThMant = 2**(e_l + p_l - k) - 1``
  (a spike when the integrated input reaches real 1.0) and the bias mantissa
  is the bias at that scale;
* widths netx keeps (``k`` = weight LSBs dropped per layer, with rounding):
  dense weights 8 bits signed (netx's ``optimize_weight_bits`` clips anything
  beyond ``[-256, 254]`` and drops odd LSBs above 127), the current
  ``|input| < 2**17`` (the LIF's 24-bit current after the 6-bit shift), the
  threshold 17 bits unsigned and the bias mantissa 13 bits signed (Loihi's
  compartment formats; larger biases are saturated).  :func:`netx_warning`
  names every layer where the network's widths exceed these.

The exact network (weights, biases, feedback, EP neuron constants) is in the
file's ``ep/`` groups, which netx does not read (:mod:`mapping.export`).
Running the netx part in Lava: :func:`run_netx` (needs lava-dl).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurochip import numerics as nx
from neurochip.errors import ArgumentParser, UserError, command
from neurochip.network import Network
from neurochip.pooling import fused_kernel, kernel_side

NEURON_TYPE = "CUBA"        # netx: Lava LIF (LIFReset with a reset interval)
I_DECAY = 4096              # netx passes du = iDecay - 1 = 4095: no synaptic memory
V_DECAY = 0                 # no membrane leak: integrate-and-fire
REF_DELAY = 1
DENSE_WEIGHT_RANGE = (-128, 127)   # mixed-sign dense weights netx keeps exactly
CURRENT_LIMIT = 1 << 17     # |a_in| << 6 must stay inside the LIF's 24-bit current
VTH_BITS = 17               # vThMant: unsigned 17-bit
BIAS_BITS = 13              # bias mantissa: signed 13-bit
APPROXIMATION = (
    "layer/* is the netx part: a feed-forward approximation for lava-dl netx (forward synapses "
    "only, no feedback; CUBA integrate-and-fire neurons with reset to zero, iDecay=4096, "
    "vDecay=0, a spike when the integrated input reaches real 1.0; inputs are the EP input "
    "encoder's spikes). It is NOT the trained EP dynamics: the exact network is in ep/ "
    "(mapping.export.load_network).")


@dataclass(frozen=True)
class NetxLayer:
    """One netx block (a synapse + CUBA neuron) derived from layer ``layer`` (1-based).

    ``weight``: int64, PyTorch layout (conv: the fused kernel ``(Co, Ci, K+1,
    K+1)``; dense ``(out, in)``), in weight units shifted right by
    ``dropped_bits`` (rounded); ``bias_mant``: int64 per channel/neuron;
    ``vth_mant``: the threshold mantissa; ``unit_exp``: real 1.0 is
    ``2**unit_exp`` weight units before the drop.
    """

    layer: int
    kind: str
    weight: np.ndarray
    bias_mant: np.ndarray
    vth_mant: int
    dropped_bits: int
    unit_exp: int
    bias_saturated: int
    weight_bits: int


def _current_bound(w: np.ndarray) -> int:
    """Largest ``|sum of weights|`` one output can receive from binary inputs."""
    rows = w.reshape(w.shape[0], -1)
    pos = np.where(rows > 0, rows, 0).sum(axis=1)
    neg = np.where(rows < 0, -rows, 0).sum(axis=1)
    return int(max(pos.max(initial=0), neg.max(initial=0)))


def _in_range(values: np.ndarray, bounds: tuple) -> bool:
    return bool(values.size == 0 or (values.min() >= bounds[0] and values.max() <= bounds[1]))


def _shift(values: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(nx.pure.round_shift(np.asarray(values, np.int64), k), np.int64)


def netx_layers(net: Network) -> list[NetxLayer]:
    """The netx approximation of every layer (see the module docstring)."""
    arch, k = net.arch, net.constants()
    s_bits = net.widths.state_bits
    b_lo, b_hi = -(1 << (BIAS_BITS - 1)), (1 << (BIAS_BITS - 1)) - 1
    out = []
    for l, spec in enumerate(arch.layers, start=1):
        w = np.asarray(net.weights_q[l - 1], np.int64)
        if spec.kind == "conv":
            kern = fused_kernel(w)                 # conv then 2x2 sum = one stride-2 kernel
            unit = int(net.weight_exp[l - 1]) + k.layers[l - 1].pool_shift
        else:
            kern = w
            unit = int(net.weight_exp[l - 1])
        drop = 0
        if spec.kind == "fc":
            drop = max(0, net.widths.weight_bits - 8)
        while (_current_bound(_shift(kern, drop)) >= CURRENT_LIMIT
               or unit - drop > VTH_BITS
               or (spec.kind == "fc" and not _in_range(_shift(kern, drop), DENSE_WEIGHT_RANGE))):
            drop += 1
        weight = _shift(kern, drop)
        scale = unit - drop                       # real 1.0 = 2**scale netx weight units
        bias = _shift(np.asarray(net.biases_q[l - 1], np.int64), s_bits - scale)
        bias_sat = np.clip(bias, b_lo, b_hi)
        out.append(NetxLayer(l, spec.kind, weight, bias_sat, (1 << scale) - 1, drop, unit,
                             int((bias_sat != bias).sum()), net.widths.weight_bits))
    return out


def _s10(text: str) -> np.ndarray:
    """A netx/slayer string dataset: shape (1,), dtype S10."""
    return np.array([text.encode("ascii")], "S10")


def _pair(v: int) -> np.ndarray:
    return np.array([v, v], np.int64)


def netx_entries(net: Network) -> dict:
    """HDF5 path -> value of the netx part (``layer/*``), netx's key names and layouts."""
    arch = net.arch
    shapes = [tuple(arch.input_shape)] + [tuple(s) for s in arch.state_shapes()]
    out = {"layer/0/type": _s10("input"), "layer/0/shape": np.array(shapes[0], np.int64)}
    i = 1
    for nl, spec in zip(netx_layers(net), arch.layers):
        l = nl.layer
        if spec.kind == "fc" and len(shapes[l - 1]) == 3:
            # netx connects a map to a dense block only after a flatten entry (C, H, W order)
            out[f"layer/{i}/type"] = _s10("flatten")
            i += 1
        p = f"layer/{i}/"
        out.update({p + "shape": np.array(shapes[l], np.int64),
                    p + "weight": nl.weight.astype(np.int32),
                    p + "bias": nl.bias_mant.astype(np.int32),
                    p + "neuron/type": _s10(NEURON_TYPE),
                    p + "neuron/iDecay": I_DECAY, p + "neuron/vDecay": V_DECAY,
                    p + "neuron/vThMant": nl.vth_mant, p + "neuron/refDelay": REF_DELAY,
                    p + "neuron/gradedSpike": 0,
                    p + "ep_layer": l, p + "dropped_weight_bits": nl.dropped_bits})
        if spec.kind == "conv":
            out.update({p + "type": _s10("conv"), p + "inChannels": shapes[l - 1][0],
                        p + "outChannels": spec.channels,
                        p + "kernelSize": _pair(kernel_side(spec.kernel, is_max=False)),
                        p + "stride": _pair(2), p + "padding": _pair(spec.padding),
                        p + "dilation": _pair(1), p + "groups": 1})
        else:
            out.update({p + "type": _s10("dense"),
                        p + "inFeatures": int(np.prod(shapes[l - 1])),
                        p + "outFeatures": spec.channels})
        i += 1
    return out


def netx_warning(net: Network, path: str) -> str | None:
    """One line naming every layer whose widths exceed what netx keeps, or None."""
    parts = []
    for nl in netx_layers(net):
        what = []
        if nl.dropped_bits:
            what.append(f"{nl.weight_bits}-bit weights rounded by {nl.dropped_bits} bits")
        if nl.bias_saturated:
            what.append(f"{nl.bias_saturated} biases saturated to {BIAS_BITS} bits")
        if what:
            parts.append(f"layer {nl.layer}: " + ", ".join(what))
    if not parts:
        return None
    return (f"warning: {path}: the netx part (layer/*) exceeds what netx keeps ("
            + "; ".join(parts) + "); the ep/ groups keep every value exactly")


# ------------------------------------------------------------------- running
def input_spikes(net: Network, x_fp: np.ndarray, steps: int | None = None) -> np.ndarray:
    """The EP input encoder's spikes for images ``x_fp`` (quantised, ``(N, N0)``).

    Returns uint8 ``(N, steps, N0)`` in C,H,W order, taken from the core itself
    (layer 0's recorded raster of a free phase), so a netx run sees exactly the
    spikes the EP network's first layer receives.
    """
    import dataclasses
    from neurochip.core import CoreNet
    steps = steps or net.hyper.t1
    run_net = dataclasses.replace(net, hyper=dataclasses.replace(net.hyper, t1=steps))
    core = CoreNet(run_net)
    res = core.run(np.asarray(x_fp, np.int64), train=False, record=True)
    return core.layout.split(res.rec_spikes, canonical=True)[0].astype(np.uint8)


def run_netx(path: str, spikes: np.ndarray, input_shape: tuple) -> np.ndarray:
    """Run the netx part of ``path`` in Lava (lava-dl netx, CPU ``fixed_pt``).

    ``spikes``: uint8 ``(N, P, N0)`` input spikes (C,H,W order), one image per
    ``P`` steps; the network is reset between images (netx's ``reset_interval``,
    offset so that each layer resets when the image's first spikes reach it).
    Returns int64 ``(N, classes)``: output spikes per image.
    """
    from .builder import _allow_lava_fork
    _allow_lava_fork()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    n, period, _ = spikes.shape
    net = netx.hdf5.Network(net_config=path, reset_interval=period, reset_offset=1)
    depth = len(net.layers)
    total = n * period + depth
    flat = np.zeros((spikes.shape[-1], total), np.int32)
    flat[:, :n * period] = spikes.transpose(2, 0, 1).reshape(spikes.shape[-1], -1)
    shape_in = net.inp.shape
    if len(shape_in) == 3:                                    # WHC maps: C,H,W -> W,H,C
        c, h, w = input_shape
        data = flat.reshape(c, h, w, total).transpose(2, 1, 0, 3)
    else:
        data = flat
    src = Source(data=data)
    sink = Sink(shape=net.out.shape, buffer=total)
    src.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=total),
                run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        rec = np.asarray(sink.data.get(), np.int64)         # (classes, total)
    finally:
        net.stop()
    out = np.zeros((n, rec.shape[0]), np.int64)
    for i in range(n):      # image i's output spikes: steps i*P+depth+1 ... (sink index t-1)
        start = i * period + depth
        out[i] = (rec[:, start:start + period] != 0).sum(axis=1)
    return out


@command
def main(argv=None) -> int:
    """``python -m mapping.netx NET.h5``: netx accuracy next to the core's on the same images."""
    import time

    from neurochip.compare import prediction_lines
    from neurochip.core import CoreNet
    from neurochip.data import add_test_image_flags, load_test_images
    from .export import load_network
    p = ArgumentParser(prog="python -m mapping.netx",
                       description="Run the netx part of a Lava export (lava-dl netx, Lava CPU "
                                   "fixed_pt) on test images; print its accuracy next to the "
                                   "exact EP network's (the integer core) on the same images.")
    p.add_argument("path", help="HDF5 file written by --export-lava / mapping.export")
    add_test_image_flags(p)
    p.add_argument("--chunk", type=int, default=500, help="images per Lava run")
    args = p.parse_args(argv)
    if args.chunk < 1:
        raise UserError(f"--chunk must be a positive integer, got {args.chunk}")
    net = load_network(args.path)
    x, y, dataset = load_test_images(net, args.dataset, args.data_dir, args.samples)
    t0 = time.perf_counter()
    core_pred = CoreNet(net).run(x, train=False).predictions
    counts = np.concatenate([
        run_netx(args.path, input_spikes(net, x[i:i + args.chunk]), net.arch.input_shape)
        for i in range(0, len(y), args.chunk)])
    secs = time.perf_counter() - t0
    print(f"{net.arch}  {dataset} test[0:{len(y)}]  weights {net.weights_sha256()[:16]}  "
          f"T1={net.hyper.t1}  {secs:.1f} s")
    print("\n".join(prediction_lines("netx part in Lava (feed-forward IF)", counts, core_pred, y)))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())

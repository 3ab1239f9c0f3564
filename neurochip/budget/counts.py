"""Counts, kept apart from prices: what the network *is* and what the core *did*.

Two kinds of numbers live here, both exact integers:

* **static** counts, a function of the :class:`~neurochip.network.Network`
  description only: neurons per layer, synapses (shared kernel entries, fused
  avg-pool kernel entries, unrolled connections), weight memory at the
  hardware widths, neuron-state bits per neuron (live state, the EP snapshot,
  the trace registers, the input accumulators) from ``docs/numerics.md`` §2;
* **dynamic** counts, taken from what the Numba core counted while it ran
  (``BatchResult.counts`` / :class:`~neurochip.trainer.Tally`, kinds
  ``COUNT_NAMES``) and, where a quantity needs per-neuron detail (NeuroBench's
  effective synaptic operations, spike messages per destination core), from
  the spike raster the core recorded.  Nothing is re-estimated from rates.

Layer index 0 is the clamped input (its encoder), 1..L the neuron layers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import CoreLayout
from ..kinds import (K_ACTIVE, K_EVENTS_FB, K_EVENTS_FWD, K_SAT_DEC, K_SAT_INPUT, K_SAT_PSI,
                     K_SPIKES, K_UPDATES, PHASES)
from ..network import Network
from ..numerics import REG_BITS
from ..pooling import kernel_side

ACC_BITS = REG_BITS          # a 24-bit dendritic accumulator per input port (numerics §2: `in`)


# ------------------------------------------------------------------ geometry
def population_shapes(net: Network) -> list[tuple[int, int]]:
    """Per layer 0..L ``(positions, channels)`` in the core's internal order.

    The core stores conv maps channel-last ``(H, W, C)`` (``core.CoreLayout``):
    neuron ``n`` sits at position ``n // C``, channel ``n % C``.  An FC layer is
    one position with ``n`` channels.
    """
    shapes = [net.arch.input_shape] + net.arch.state_shapes()
    out = []
    for shp in shapes:
        if len(shp) == 3:
            out.append((int(shp[1] * shp[2]), int(shp[0])))
        else:
            out.append((1, int(shp[0])))
    return out


def _hw(net: Network, layer: int) -> tuple[int, int]:
    shp = ([net.arch.input_shape] + net.arch.state_shapes())[layer]
    return (int(shp[1]), int(shp[2])) if len(shp) == 3 else (1, 1)


@dataclass
class Projection:
    """One weighted edge between two populations, at position level.

    ``mpos[q, p]`` (bool, dst positions x src positions): position ``p`` of the
    source reaches position ``q`` of the destination; every source channel then
    reaches every destination channel (conv and FC are channel-dense).
    ``weight_bits``: width a stored synapse needs to reproduce the core's
    arithmetic exactly (the fused avg-pool kernel sums four ``Bw``-bit weights:
    ``Bw + 2`` bits).  ``fmt``: 'conv' or 'dense' (price tables that tell them
    apart, e.g. SANA-FE's).  ``layer``: the weight layer (1-based) it uses.
    """

    src: int
    dst: int
    direction: str          # 'fwd' (src = dst - 1) or 'fb' (src = dst + 1)
    layer: int
    mpos: np.ndarray
    c_src: int
    c_dst: int
    weight_bits: int
    fmt: str

    @property
    def synapses(self) -> int:
        return int(self.mpos.sum()) * self.c_src * self.c_dst

    def row_degree(self) -> np.ndarray:
        """Synapses onto one destination neuron at each destination position."""
        return self.mpos.sum(axis=1).astype(np.int64) * self.c_src


def _conv_window(net: Network, layer: int) -> np.ndarray:
    """``mpos`` of conv layer ``layer`` (1-based): pooled ``(r, c)`` <- input ``(y, x)``.

    Avg-pool: the fused ``(K+1)x(K+1)`` stride-2 window, ``0 <= y + P - 2r <= K``
    (numerics §4).  Max-pool: the union of the four plain-conv windows of the
    pooled position, which is the same set.
    """
    spec = net.arch.layers[layer - 1]
    hin, win = _hw(net, layer - 1)
    hp, wp = _hw(net, layer)
    k, pad = spec.kernel, spec.padding
    ay = (np.arange(hin)[None, :] + pad - 2 * np.arange(hp)[:, None])   # (hp, hin)
    ax = (np.arange(win)[None, :] + pad - 2 * np.arange(wp)[:, None])
    my = (ay >= 0) & (ay <= k)
    mx = (ax >= 0) & (ax <= k)
    return (my[:, None, :, None] & mx[None, :, None, :]).reshape(hp * wp, hin * win)


def projections(net: Network) -> list[Projection]:
    """Every weighted edge of the network: forward ``l-1 -> l`` and feedback ``l+1 -> l``."""
    pops = population_shapes(net)
    bw = net.widths.weight_bits
    avg = net.hyper.pool == "avg"
    out = []
    for l, spec in enumerate(net.arch.layers, start=1):
        if spec.kind == "conv":
            mpos = _conv_window(net, l)
            bits = bw + 2 if avg else bw
            fmt = "conv"
        else:
            mpos = np.ones((1, pops[l - 1][0]), bool)
            bits, fmt = bw, "dense"
        out.append(Projection(l - 1, l, "fwd", l, mpos, pops[l - 1][1], pops[l][1], bits, fmt))
        if l >= 2:   # feedback of layer l's spikes into layer l-1 (never into the input)
            out.append(Projection(l, l - 1, "fb", l, mpos.T.copy(), pops[l][1], pops[l - 1][1],
                                  bits, fmt))
    return out


# ------------------------------------------------------------- neuron state
def neuron_state_bits(net: Network, layer: int) -> dict[str, int]:
    """Bits one neuron of ``layer`` holds on chip, by register (numerics §2, §6).

    Layer 0 is the input encoder (it holds the pixel ``x``, no decoder/bias).
    'snapshot' is the free-phase copy restored for the -beta phase (§6.2:
    ``s, dec, psi, enc_prev`` and the spike in flight); 'traces' the two
    ``Bt``-bit trace registers latched after the nudged phases (§6.3-4);
    'acc_*' the per-step synaptic-input accumulators (24-bit, §2 ``in``).
    """
    wd = net.widths
    sb = wd.state_bits + 1
    n_layers = net.arch.n_layers
    if layer == 0:
        return {"x": sb, "psi": REG_BITS, "enc_prev": sb, "spike": 1,
                "snapshot": REG_BITS + sb + 1, "traces": 2 * wd.trace_bits}
    bits = {"s": sb, "dec": REG_BITS, "psi": REG_BITS, "enc_prev": sb, "bias": wd.bias_bits,
            "spike": 1, "snapshot": sb + REG_BITS + REG_BITS + sb + 1,
            "traces": 2 * wd.trace_bits, "acc_fwd": ACC_BITS}
    if layer < n_layers:
        bits["acc_fb"] = ACC_BITS
    return bits


def neuron_state_bytes(net: Network, layer: int) -> int:
    """Bytes per neuron, the bit total rounded up to whole bytes."""
    return -(-sum(neuron_state_bits(net, layer).values()) // 8)


# ------------------------------------------------------------ static counts
def static_counts(net: Network) -> list[dict]:
    """Per layer 0..L: neurons, synapses and memory at the hardware widths.

    * ``synapses_shared``: stored parameters (conv kernel ``Co*Ci*K*K`` or
      FC ``out*in``); ``synapses_fused``: entries of the fused
      ``(K+1)^2`` avg-pool kernel the core scatters (``Bw+2`` bits each);
    * ``synapses_unrolled_in``: connections onto this layer's neurons, forward
      and feedback (what a chip without weight sharing stores at this layer's
      cores), and ``synapse_bits_unrolled_in`` at their widths;
    * ``weight_bits_shared``: the layer's own weights at ``Bw`` bits plus
      biases at ``Bb`` bits;
    * ``state_bits_per_neuron`` (breakdown) and totals.
    """
    pops = population_shapes(net)
    projs = projections(net)
    wd = net.widths
    out = []
    for l in range(net.arch.n_layers + 1):
        n = pops[l][0] * pops[l][1]
        row = {"layer": l, "name": "input" if l == 0 else net.arch.layers[l - 1].token(),
               "kind": "input" if l == 0 else net.arch.layers[l - 1].kind,
               "neurons": n, "shape": list(([net.arch.input_shape] +
                                           net.arch.state_shapes())[l])}
        if l >= 1:
            spec = net.arch.layers[l - 1]
            shp = net.arch.weight_shapes()[l - 1]
            row["synapses_shared"] = int(np.prod(shp))
            row["biases"] = int(spec.channels)
            if spec.kind == "conv" and net.hyper.pool == "avg":
                row["synapses_fused"] = int(shp[0] * shp[1] * kernel_side(spec.kernel, False) ** 2)
            row["weight_bits_shared"] = row["synapses_shared"] * wd.weight_bits + \
                row["biases"] * wd.bias_bits
        syn_in = {p.direction: p.synapses for p in projs if p.dst == l}
        row["synapses_unrolled_in"] = {"fwd": syn_in.get("fwd", 0), "fb": syn_in.get("fb", 0)}
        row["synapse_bits_unrolled_in"] = int(sum(p.synapses * p.weight_bits
                                                  for p in projs if p.dst == l))
        bits = neuron_state_bits(net, l)
        row["state_bits_per_neuron"] = bits
        row["state_bytes_per_neuron"] = neuron_state_bytes(net, l)
        row["state_bits_total"] = n * sum(bits.values())
        row["snapshot_bits_total"] = n * bits["snapshot"]
        row["trace_bits_total"] = n * bits["traces"]
        out.append(row)
    return out


def parameter_totals(net: Network) -> dict:
    w = sum(int(np.prod(s)) for s in net.arch.weight_shapes())
    b = sum(int(np.prod(s)) for s in net.arch.bias_shapes())
    return {"weights": w, "biases": b,
            "weight_bytes_hw": -(-(w * net.widths.weight_bits) // 8),
            "bias_bytes_hw": -(-(b * net.widths.bias_bits) // 8)}


# ----------------------------------------------------------- dynamic counts
def summarise_counts(counts: np.ndarray, phases=(0, 1, 2)) -> dict:
    """Per-sample quantities from core counts ``(3, L+1, N_COUNTS)`` of one sample.

    Integer counts stay ints; averaged (float) counts stay floats.  Synaptic
    events are the weights added (numerics §4); those *into* layer ``l`` are
    its forward events plus the feedback events it received.
    """
    c = np.asarray(counts)
    cast = int if np.issubdtype(c.dtype, np.integer) else float
    ph = list(phases)

    def by_phase(arr):                        # arr (3, L+1)
        d = {PHASES[p]: cast(arr[p].sum()) for p in ph}
        d["total"] = cast(arr[ph].sum())
        return d

    def by_layer(arr):
        return [cast(v) for v in arr[ph].sum(axis=0)]

    ev = c[..., K_EVENTS_FWD] + c[..., K_EVENTS_FB]
    idle = c[..., K_UPDATES] - c[..., K_ACTIVE]
    sat = c[..., K_SAT_INPUT] + c[..., K_SAT_DEC] + c[..., K_SAT_PSI]
    return {
        "synaptic_events": by_phase(ev),
        "synaptic_events_fwd": by_phase(c[..., K_EVENTS_FWD]),
        "synaptic_events_fb": by_phase(c[..., K_EVENTS_FB]),
        "synaptic_events_by_layer": by_layer(ev),
        "spikes": by_phase(c[..., K_SPIKES]),
        "spikes_by_layer": by_layer(c[..., K_SPIKES]),
        "neuron_updates": by_phase(c[..., K_UPDATES]),
        "neuron_updates_active": by_phase(c[..., K_ACTIVE]),
        "neuron_updates_idle": by_phase(idle),
        "saturations": by_phase(sat),
    }


def phase_steps(net: Network) -> dict:
    return {"free": net.hyper.t1, "plus": net.hyper.t2, "minus": net.hyper.t2}


# ------------------------------------------------------------------ rasters
def delivered_spikes(raster: np.ndarray, t1: int, t2: int) -> np.ndarray:
    """Spikes *delivered* in each phase, per neuron: ``(3, n_all)`` int64.

    ``raster[k]`` holds the spikes emitted at step ``k+1`` (internal order).
    Every edge delays one step and the -beta phase restarts from the free
    snapshot, which includes the spikes of step ``T1`` in flight (numerics §5,
    §6), so the phases deliver:

    * free:  ``raster[0 : T1-1]`` (step 1 delivers nothing);
    * +beta: ``raster[T1-1 : T1+T2-1]``;
    * -beta: ``raster[T1-1]`` (restored) and ``raster[T1+T2 : T1+2*T2-1]``.

    A free-phase-only raster (``T1`` steps) gives zeros for the nudged phases.
    """
    r = np.asarray(raster)
    out = np.zeros((3, r.shape[1]), np.int64)
    out[0] = r[0:t1 - 1].sum(axis=0, dtype=np.int64)
    if r.shape[0] >= t1 + 2 * t2:
        out[1] = r[t1 - 1:t1 + t2 - 1].sum(axis=0, dtype=np.int64)
        out[2] = r[t1 - 1].astype(np.int64) + r[t1 + t2:t1 + 2 * t2 - 1].sum(axis=0,
                                                                              dtype=np.int64)
    return out


def spikes_per_step(net: Network, raster: np.ndarray) -> np.ndarray:
    """``(steps, L+1)`` spikes emitted per layer per step."""
    lay = CoreLayout.build(net)
    r = np.asarray(raster)
    return np.stack([r[:, o:o + n].sum(axis=1, dtype=np.int64)
                     for o, n in zip(lay.offsets, lay.sizes)], axis=1)

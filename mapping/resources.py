"""Loihi / Loihi 2 resource checks for the EP network as the Lava mapping builds it.

``check_resources(network, profile)`` places every population (the input
encoder and each layer) on its own cores in blocks of equal size ``n`` (the
neurons per core), in the core's internal order (conv maps position-major:
``(y, x, c)``), and finds per population the largest ``n`` that meets every
per-core limit of the profile (docs/lava.md, budget.md §2):

* ``compartments``: neurons per core (Loihi 1024, Loihi 2 ~8192);
* ``synaptic_memory``: bytes of the synapses stored on the core (Loihi:
  128 KB of synaptic state; Loihi 2: 192 KB shared with neuron state, so the
  neurons' state bytes count too);
* ``fan_in``: distinct presynaptic neurons (input axons) of the core's
  neurons, forward and feedback (Loihi 4096; Loihi 2 not published:
  unchecked);
* ``fan_out``: for each neuron the number of distinct destination cores,
  summed over the core (Loihi 4096; Loihi 2 unchecked).

Synapses are the Lava mapping's: every structural synapse of the forward
matrix ``M`` (fused (K+1)^2 kernel for avg-pool conv) and of its transpose
(feedback), stored unrolled at the destination (no weight sharing, no list
headers: a lower bound).  A synapse is as wide as the values it must hold
(``Bw`` for FC, ``Bw + 2`` for the fused kernel); a width beyond the chip's
weight format is split into 8-bit digit synapses as the mapping does
(layout.py), i.e. ``8 * digits`` bits.

A population that cannot be placed at all (one neuron alone exceeds a limit)
raises :class:`ResourceError` naming the population, the limit and by how much
(or, with ``raise_on_error=False``, is reported in ``report.errors``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from neurochip.errors import UserError
from neurochip.network import Network

from . import layout as lay

LIMITS = ("compartments", "synaptic_memory", "fan_in", "fan_out")
LIMIT_LABELS = {"compartments": "neurons (compartments) per core",
                "synaptic_memory": "synaptic memory per core",
                "fan_in": "input axons (fan-in) per core",
                "fan_out": "output axons (fan-out) per core"}


class ResourceError(UserError):
    """A population cannot be placed: one neuron alone exceeds a per-core limit."""

    def __init__(self, message: str, layer: int, limit: str, needed: int, available: int):
        super().__init__(message)
        self.layer, self.limit, self.needed, self.available = layer, limit, needed, available
        self.excess = needed - available


@dataclass(frozen=True)
class Profile:
    """Per-core limits of a chip (None = not published, not checked)."""

    name: str
    neurons_per_core: int
    syn_bytes_per_core: int
    fan_in_axons: int | None
    fan_out_axons: int | None
    cores_per_chip: int
    max_weight_bits: int
    memory_holds_state: bool          # Loihi 2: synapses and neuron state share the memory
    state_bytes_fixed: int | None     # Loihi: fixed compartment state (reported, not enforced)
    source: str = ""


LOIHI = Profile("loihi", 1024, 128 * 1024, 4096, 4096, 128, 9, False, 24,
                "Davies et al. 2018 (IEEE Micro) p.86-92: 1,024 compartments, 128 KB synaptic "
                "state, <= 4,096 input axons and 4,096 output axons per core, 1-9 bit weights; "
                "24 B fixed state per compartment (Intel Loihi 2 brief)")
LOIHI2 = Profile("loihi2", 8192, 192 * 1024, None, None, 128, 8, True, None,
                 "Intel Loihi 2 brief 2021: 192 KB per core, flexible allocation (synapses and "
                 "state), ~8,192 neurons per core (1 M / 128); fan-in/fan-out not published")
PROFILES = {"loihi": LOIHI, "loihi2": LOIHI2}


@dataclass
class LayerResources:
    """One population (0 = input encoder) on its cores.

    ``*_per_core``: the worst core's load; ``*_limit``: the profile's limit
    (None: unchecked); ``allowed``: per limit, the largest ``n`` that limit
    alone allows; ``binding``: the limit that sets ``neurons_per_core``
    ('population' when the whole population fits on one core).
    """

    layer: int
    name: str
    neurons: int
    neurons_per_core: int | None
    cores: int | None
    binding: str | None
    syn_bytes_per_core: int | None
    syn_bytes_limit: int
    fan_in_per_core: int | None
    fan_in_limit: int | None
    fan_out_per_core: int | None
    fan_out_limit: int | None
    synapses_in: int
    synapse_bits: dict
    state_bytes_per_neuron: int
    allowed: dict = field(default_factory=dict)
    error: str | None = None


@dataclass
class ResourceReport:
    profile: Profile
    layers: list
    total_cores: int | None
    chips: int | None
    binding: str | None          # the limit that binds the most cores
    errors: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        p = self.profile
        out = [f"{p.name}: {self.total_cores} cores ({self.chips} chip(s)), binding limit: "
               f"{self.binding}" if self.fits else f"{p.name}: does not map ({len(self.errors)} "
               "error(s))"]
        out.append(f"  {'layer':<12} {'neurons':>8} {'n/core':>7} {'cores':>6} {'syn KB/core':>12} "
                   f"{'fan-in':>7} {'fan-out':>8}  binding")
        for r in self.layers:
            kb = "-" if r.syn_bytes_per_core is None else f"{r.syn_bytes_per_core / 1024:.1f}"
            out.append(f"  {r.name:<12} {r.neurons:>8} {str(r.neurons_per_core):>7} "
                       f"{str(r.cores):>6} {kb:>12} {str(r.fan_in_per_core):>7} "
                       f"{str(r.fan_out_per_core):>8}  {r.binding or r.error}")
        return out


# ------------------------------------------------------------- geometry
class _Pop:
    """Population ``l`` at position level: ``n_pos`` positions x ``ch`` channels."""

    def __init__(self, shape):
        if len(shape) == 3:
            self.ch, self.n_pos = int(shape[0]), int(shape[1] * shape[2])
        else:
            self.ch, self.n_pos = 1, int(shape[0])
        self.n = self.ch * self.n_pos


def _mpos(edge: lay.EdgeSpec, src: _Pop, dst: _Pop) -> np.ndarray:
    """Bool (dst positions x src positions): a source position reaches a destination one."""
    if edge.kind == "fc":
        return np.ones((dst.n_pos, src.n_pos), bool)
    g = edge.geometry
    m = np.zeros((g.hout, g.wout, g.hin, g.win), bool)
    for r in range(g.hout):
        for c in range(g.wout):
            y0, x0 = g.stride * r - g.pad, g.stride * c - g.pad
            m[r, c, max(y0, 0):max(min(y0 + g.kf, g.hin), 0),
              max(x0, 0):max(min(x0 + g.kf, g.win), 0)] = True
    return m.reshape(g.hout * g.wout, g.hin * g.win)


def _bits(needed_bits: int, max_bits: int) -> int:
    """Stored bits of one synapse: its width, or 8-bit digits when wider than the format."""
    if needed_bits <= max_bits:
        return needed_bits
    return lay.DIGIT_BITS * lay.n_digits(-(1 << (needed_bits - 1)), (1 << (needed_bits - 1)) - 1)


def neuron_state_bits(net: Network, layer: int) -> int:
    """Bits of state one EP neuron holds in the mapping (mapping/procs/ep.py).

    Hidden/output: s, dec, psi, enc_prev, their snapshot, the two recorded
    inputs of step T1+1, two traces (the bias is per channel, not counted);
    input encoder: psi, enc_prev, x, their snapshot (psi, enc_prev), two traces.
    """
    w = net.widths
    s_bits = w.state_bits + 1
    reg = 24
    if layer == 0:
        return 3 * s_bits + 2 * reg + 2 * w.trace_bits     # x, enc_prev (+snap), psi (+snap)
    return 2 * (2 * s_bits + 2 * reg) + 2 * reg + 2 * w.trace_bits


# ------------------------------------------------------------- placement
class _Placement:
    def __init__(self, net: Network, profile: Profile):
        self.net, self.p = net, profile
        arch = net.arch
        shapes = [tuple(arch.input_shape)] + [tuple(s) for s in arch.state_shapes()]
        self.shapes = shapes
        self.pops = [_Pop(s) for s in shapes]
        self.edges = lay.edges(net)
        self.L = arch.n_layers
        wb = net.widths.weight_bits
        self.mpos = {}          # edge layer l -> (dst=l positions x src=l-1 positions)
        self.edge_bits = {}
        for e in self.edges:
            self.mpos[e.layer] = _mpos(e, self.pops[e.layer - 1], self.pops[e.layer])
            need = wb + 2 if e.kind == "conv" else wb
            self.edge_bits[e.layer] = _bits(need, profile.max_weight_bits)
        # per population, per position: synapses in, stored bits in, fan-in of one neuron
        self.syn_pos, self.bits_pos, self.fanin_one = [], [], []
        for l, pop in enumerate(self.pops):
            syn = np.zeros(pop.n_pos, np.int64)
            bits = np.zeros(pop.n_pos, np.int64)
            fi = np.zeros(pop.n_pos, np.int64)
            for src, m, b in self._incoming(l):
                deg = m.sum(axis=1).astype(np.int64) * self.pops[src].ch
                syn += deg
                bits += deg * b
                fi += deg
            self.syn_pos.append(syn)
            self.bits_pos.append(bits)
            self.fanin_one.append(fi)
        self.state_bits = [neuron_state_bits(net, l) for l in range(self.L + 1)]

    def _incoming(self, l):
        """(source population, dst x src position matrix, stored bits per synapse)."""
        out = []
        if l >= 1:
            out.append((l - 1, self.mpos[l], self.edge_bits[l]))
        if 1 <= l < self.L:     # feedback from l+1 (none into the input)
            out.append((l + 1, self.mpos[l + 1].T, self.edge_bits[l + 1]))
        return out

    def _outgoing(self, l):
        """(destination population, src=l positions x dst positions)."""
        out = []
        if l < self.L:
            out.append((l + 1, self.mpos[l + 1].T))
        if l >= 2:
            out.append((l - 1, self.mpos[l]))
        return out

    # loads of blocks of n neurons ------------------------------------------
    def _blocks(self, l, n):
        pop = self.pops[l]
        starts = np.arange(0, pop.n, n)
        ends = np.minimum(starts + n, pop.n)
        return starts, ends

    def mem_bytes(self, l, n) -> int:
        pop = self.pops[l]
        per_neuron = np.repeat(self.bits_pos[l], pop.ch)
        if self.p.memory_holds_state:
            per_neuron = per_neuron + self.state_bits[l]
        prefix = np.concatenate([[0], np.cumsum(per_neuron)])
        s, e = self._blocks(l, n)
        return int(math.ceil((prefix[e] - prefix[s]).max() / 8))

    def fan_in(self, l, n) -> int:
        pop = self.pops[l]
        inc = self._incoming(l)
        if not inc:
            return 0
        s, e = self._blocks(l, n)
        best = 0
        cache = {}
        for a, b in zip(s, e):
            key = (a // pop.ch, (b - 1) // pop.ch)
            if key not in cache:
                p0, p1 = key
                cache[key] = sum(int(m[p0:p1 + 1].any(axis=0).sum()) * self.pops[src].ch
                                 for src, m, _ in inc)
            best = max(best, cache[key])
        return best

    def dest_cores(self, l, n_of) -> np.ndarray:
        """Per position of population l: distinct destination cores of one neuron."""
        pop = self.pops[l]
        per_pos = np.zeros(pop.n_pos, np.int64)
        for dst, m in self._outgoing(l):
            nd, cd = n_of[dst], self.pops[dst].ch
            k = math.ceil(self.pops[dst].n / nd)
            for q in range(pop.n_pos):
                ps = np.nonzero(m[q])[0]
                if ps.size == 0:
                    continue
                mark = np.zeros(k, bool)
                lo = (ps * cd) // nd
                hi = ((ps + 1) * cd - 1) // nd
                for a, b in zip(lo, hi):
                    mark[a:b + 1] = True
                per_pos[q] += int(mark.sum())
        return per_pos

    def fan_out(self, l, n, dest_pos) -> int:
        per_neuron = np.repeat(dest_pos, self.pops[l].ch)
        prefix = np.concatenate([[0], np.cumsum(per_neuron)])
        s, e = self._blocks(l, n)
        return int((prefix[e] - prefix[s]).max())

    @staticmethod
    def largest(n_max: int, ok) -> int:
        """Largest n in [1, n_max] with ok(n) (binary search, then a downward check)."""
        if not ok(1):
            return 0
        lo, hi = 1, n_max
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if ok(mid):
                lo = mid
            else:
                hi = mid - 1
        while lo > 1 and not ok(lo):
            lo -= 1
        return lo


def _layer_name(net: Network, l: int) -> str:
    return "input" if l == 0 else f"L{l} {net.arch.layers[l - 1].token()}"


def check_resources(network: Network, profile: Profile | str = "loihi", *,
                    raise_on_error: bool = True) -> ResourceReport:
    """Neurons per core, memory, fan-in/out, cores and binding limit per population.

    ``profile``: 'loihi', 'loihi2' or a :class:`Profile`.  Raises
    :class:`ResourceError` for the first population that cannot be placed
    (unless ``raise_on_error=False``: then it is listed in ``report.errors``
    and has ``cores=None``).
    """
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    pl = _Placement(network, prof)
    L = pl.L
    lim_mem = prof.syn_bytes_per_core
    allowed: list[dict] = []
    errors: list[tuple] = []
    n_of: dict[int, int] = {}
    for l, pop in enumerate(pl.pops):
        a = {"compartments": min(prof.neurons_per_core, pop.n)}
        a["synaptic_memory"] = pl.largest(pop.n, lambda n: pl.mem_bytes(l, n) <= lim_mem)
        if a["synaptic_memory"] == 0:
            errors.append((l, "synaptic_memory", pl.mem_bytes(l, 1), lim_mem, "bytes"))
        if prof.fan_in_axons is not None:
            a["fan_in"] = pl.largest(pop.n, lambda n: pl.fan_in(l, n) <= prof.fan_in_axons)
            if a["fan_in"] == 0:
                errors.append((l, "fan_in", pl.fan_in(l, 1), prof.fan_in_axons, "axons"))
        allowed.append(a)
        n_of[l] = max(1, min(a.values()))
    # fan-out depends on the neighbours' blocks: shrink until nothing changes
    dest = {l: pl.dest_cores(l, n_of) for l in range(L + 1)}
    if prof.fan_out_axons is not None:
        for _ in range(64):
            changed = False
            for l in range(L + 1):
                dest[l] = pl.dest_cores(l, n_of)
                n_fo = pl.largest(n_of[l], lambda n: pl.fan_out(l, n, dest[l]) <= prof.fan_out_axons)
                if n_fo == 0:
                    continue          # reported below
                if n_fo < n_of[l]:
                    n_of[l] = n_fo
                    changed = True
            if not changed:
                break
        for l in range(L + 1):
            dest[l] = pl.dest_cores(l, n_of)
            allowed[l]["fan_out"] = pl.largest(pl.pops[l].n, lambda n: pl.fan_out(
                l, n, dest[l]) <= prof.fan_out_axons)
            if allowed[l]["fan_out"] == 0:
                errors.append((l, "fan_out", pl.fan_out(l, 1, dest[l]), prof.fan_out_axons,
                               "destination cores"))
    err_msgs = []
    for l, limit, need, avail, unit in errors:
        msg = (f"{_layer_name(network, l)}: one neuron needs {need} {unit} of "
               f"{LIMIT_LABELS[limit]}, {prof.name} has {avail} (exceeds it by {need - avail}); "
               "the population cannot be placed without splitting neurons (not modelled)")
        if raise_on_error:
            raise ResourceError(msg, l, limit, need, avail)
        err_msgs.append(msg)
    bad = {l for l, *_ in errors}
    layers = []
    per_binding: dict[str, int] = {}
    for l, pop in enumerate(pl.pops):
        a = allowed[l]
        n = None if l in bad else n_of[l]
        cores = None if n is None else math.ceil(pop.n / n)
        if n is None:
            binding = None
        elif n >= pop.n:
            binding = "population"
        else:
            binding = min((k for k in LIMITS if k in a), key=lambda k: (a[k], LIMITS.index(k)))
            if a[binding] > n:     # shrunk while the neighbours' blocks moved: fan-out, jointly
                binding = "fan_out"
        if cores is not None:
            per_binding[binding] = per_binding.get(binding, 0) + cores
        wbits = {}
        if l >= 1:
            wbits["forward"] = pl.edge_bits[l]
        if 1 <= l < L:
            wbits["feedback"] = pl.edge_bits[l + 1]
        layers.append(LayerResources(
            layer=l, name=_layer_name(network, l), neurons=pop.n, neurons_per_core=n, cores=cores,
            binding=binding,
            syn_bytes_per_core=None if n is None else pl.mem_bytes(l, n), syn_bytes_limit=lim_mem,
            fan_in_per_core=None if n is None else pl.fan_in(l, n), fan_in_limit=prof.fan_in_axons,
            fan_out_per_core=None if n is None else pl.fan_out(l, n, dest[l]),
            fan_out_limit=prof.fan_out_axons,
            synapses_in=int((pl.syn_pos[l] * pop.ch).sum()), synapse_bits=wbits,
            state_bytes_per_neuron=math.ceil(pl.state_bits[l] / 8), allowed=dict(a),
            error=next((m for (ll, *_), m in zip(errors, err_msgs) if ll == l), None)))
    total = None if bad else int(sum(r.cores for r in layers))
    chips = None if total is None else math.ceil(total / prof.cores_per_chip)
    binding = max(per_binding.items(), key=lambda kv: kv[1])[0] if per_binding else None
    notes = ["each population on its own cores, equal blocks in internal order (y, x, c)",
             "synapses unrolled at the destination, forward and feedback, no weight sharing, "
             "no list headers (a lower bound)"]
    if prof.fan_in_axons is None or prof.fan_out_axons is None:
        notes.append("fan-in/fan-out limits not published for this chip: not checked")
    if prof.state_bytes_fixed is not None:
        need = max(r.state_bytes_per_neuron for r in layers)
        if need > prof.state_bytes_fixed:
            notes.append(f"the EP neuron holds up to {need} B of state, more than the "
                         f"{prof.state_bytes_fixed} B fixed per {prof.name} compartment: it needs "
                         "a custom neuron (multi-compartment or microcode); not counted here")
    return ResourceReport(prof, layers, total, chips, binding, err_msgs, notes)


def main(argv=None) -> int:
    """``python -m mapping.resources [--preset P | --load CKPT] [--profile loihi|loihi2]``."""
    import argparse
    import sys
    p = argparse.ArgumentParser(prog="python -m mapping.resources",
                                description="Loihi / Loihi 2 per-core resources of a network")
    p.add_argument("--preset", default="digits")
    p.add_argument("--arch", default=None, help="architecture string instead of the preset's")
    p.add_argument("--load", metavar="CKPT", default=None)
    p.add_argument("--bits", type=int, default=None)
    p.add_argument("--profile", default="all", choices=("all",) + tuple(PROFILES))
    args = p.parse_args(argv)
    try:
        if args.load:
            from neurochip.checkpoint import load_checkpoint
            net, _ = load_checkpoint(args.load)
        else:
            import dataclasses as dc
            from neurochip.network import get_preset
            pre = get_preset(args.preset)
            widths = pre.widths if args.bits is None else dc.replace(pre.widths,
                                                                     weight_bits=args.bits)
            net = Network.create(args.arch or pre.arch, pre.hyper if args.arch is None else None,
                                 widths, seed=0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rc = 0
    for name in (PROFILES if args.profile == "all" else (args.profile,)):
        try:
            rep = check_resources(net, name)
        except ResourceError as exc:
            print(f"{name}: ResourceError: {exc}")
            rc = 1
            continue
        print("\n".join(rep.lines()))
        for note in rep.notes:
            print(f"  note: {note}")
    return rc


if __name__ == "__main__":
    import sys
    sys.exit(main())

"""Chip profiles: capacity limits, core fit, and prices, each number with its source.

Counts (from :mod:`.counts`, the core's own tallies) and prices (from the
tables below) are kept apart until :func:`price_workload` multiplies them, and
every price carries its source and evidence grade (``/work/shared/spec/budget.md``):
C code, P primary (via quoted secondary), S secondary, D derived here, U
unknown.  A term without an honest price stays **visibly unpriced** (value
``None``, listed in ``unpriced``); it is never a silent zero.

Core fit (:func:`check_fit`): the one model of how a network sits on a chip's
cores, used by this report and by the Lava mapping's resource check
(``mapping.resources.check_resources`` is a thin caller).  Model and
assumptions, printed with every result:

* every population (input encoder, each layer) gets its own cores; its
  neurons are placed in contiguous blocks of the core's internal order
  (conv maps position-major ``(y, x, c)``), each as large as all limits allow
  (greedy: the fewest contiguous blocks); no other placement optimisation;
* one compartment per neuron;
* synapses are stored **unrolled** at the destination cores (forward and
  feedback), no weight sharing, in a dense format with no per-list headers or
  indices (a lower bound on the real compiler's bytes);
* the width of a stored synapse is the **synapse storage model**'s
  (:class:`SynapseStorage`): ``'fused'`` (default here) stores each synapse as
  wide as the core's arithmetic needs (fused avg-pool kernel ``Bw + 2`` bits),
  even beyond the chip's weight format (reported as a violation);
  ``'mapped'`` (a plug-in of ``mapping.resources``) counts the 8-bit digit
  synapses the Lava mapping builds when that width exceeds the format;
* input axons of a core = distinct presynaptic neurons of its neurons; output
  axons of a core = for each of its neurons, the number of distinct
  destination cores (D18 constraints 3 and 4);
* limits marked U are not checked, and say so.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..network import Network
from . import counts as cnt


# ------------------------------------------------------------- references
@dataclass(frozen=True)
class Ref:
    """A cited number; ``value is None`` means unknown (grade U), never zero."""

    value: float | None
    unit: str
    source: str
    grade: str
    note: str = ""

    def as_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit, "source": self.source,
                "grade": self.grade, "note": self.note}


def U(unit: str, why: str) -> Ref:
    return Ref(None, unit, "none found", "U", why)


@dataclass(frozen=True)
class Included(Ref):
    """A term this table does not price separately: part of another term's price."""


def included(why: str, source: str) -> Included:
    return Included(None, "J", source, "-", why)


D18 = "Davies et al., IEEE Micro 38(1), 2018"
D18T2 = D18 + ", Table 2 (pre-silicon SDF/SPICE, 0.75 V)"
D21 = "Davies et al., Proc. IEEE 109(5), 2021"
F20 = "Frady et al., NICE 2020 (Pohoiki Springs), Table 1"
IB21 = "Intel, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', brief, 2021"
SANAFE = "SANA-FE arch/loihi.yaml @8951ab0711 (Boyle et al., IEEE TCAD 2025)"


@dataclass
class ChipProfile:
    """Capacity limits and price tables of one chip.

    Limits (``Ref``, value None = unchecked): ``neurons_per_core``,
    ``synapse_bits_per_core`` (synapse-only memory, Loihi), ``memory_bits_per_core``
    (synapses + neuron state share it, Loihi 2), ``fan_in_axons``,
    ``fan_out_axons``, ``max_weight_bits``, ``state_bytes_per_neuron`` (fixed on
    Loihi; the maximum on Loihi 2, ``state_fixed`` tells which).
    ``energy``: term -> Ref (J per count) or {sub-kind: Ref}; ``time``: term ->
    Ref (s per count); ``alt_energy``: other tables, printed but not headline.
    """

    key: str
    title: str
    cores_per_chip: Ref
    neurons_per_core: Ref
    synapse_bits_per_core: Ref | None
    memory_bits_per_core: Ref | None
    fan_in_axons: Ref
    fan_out_axons: Ref
    max_weight_bits: Ref
    state_bytes_per_neuron: Ref
    state_fixed: bool
    energy: dict
    time: dict
    static_power_per_chip: Ref
    alt_energy: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def with_limits(self, key: str | None = None, **values) -> "ChipProfile":
        """A copy with some limits' values replaced (``neurons_per_core=100``, ...).

        Each replaced :class:`Ref` keeps its unit and source and is marked
        grade D ("changed here"); ``key`` renames the copy.
        """
        refs = {}
        for name, v in values.items():
            ref = getattr(self, name)
            if not isinstance(ref, Ref):
                raise ValueError(f"chip {self.key} has no limit {name!r}")
            refs[name] = dataclasses.replace(ref, value=v, grade="D",
                                             note="changed from the published value")
        return dataclasses.replace(self, key=key or self.key, **refs)


_LEARN_U = ("EP's product rule on the chip's learning engine is not verified (budget.md §5.5); "
            "D18's 120 pJ is a pairwise-STDP synaptic update, a different operation")

LOIHI = ChipProfile(
    key="loihi", title="Intel Loihi (2018)",
    cores_per_chip=Ref(128, "cores", D18 + " p.86", "P"),
    neurons_per_core=Ref(1024, "compartments", D18 + " p.86/89", "P"),
    synapse_bits_per_core=Ref(128 * 1024 * 8, "bits", D18 + " p.89/92, D21 p.913",
                              "P", "128 KB synaptic state = 16,384 64-bit words"),
    memory_bits_per_core=None,
    fan_in_axons=Ref(4096, "input axons", D18 + " p.89 constraint 4", "P"),
    fan_out_axons=Ref(4096, "output axons", D18 + " p.89 constraint 3", "P"),
    max_weight_bits=Ref(9, "bits", D18 + " p.87, D21", "P", "1-9 bits signed or unsigned"),
    state_bytes_per_neuron=Ref(24, "B", IB21 + " (table)", "P", "fixed per compartment"),
    state_fixed=True,
    energy={
        "synaptic_op": Ref(23.6e-12, "J", D18T2, "P", "synaptic spike op, no learning; a minimum"),
        "neuron_update": {"active": Ref(81e-12, "J", D18T2, "P"),
                          "idle": Ref(52e-12, "J", D18T2, "P", "inactive neuron update")},
        "spike_message": Ref(1.7e-12, "J", D18T2, "P",
                             "spike within a tile: a lower bound, mesh hops not modelled"),
        "spikes_out": included("no separate spike-generation figure in D18; read as part of the "
                               "active neuron update (81 pJ)", D18T2),
        "mesh_hop": U("J", "3.0/4.0 pJ per E-W/N-S hop (D18) but the hop count needs a placement, "
                           "not modelled"),
        "input_encoder_update": U("J", "the core does not record whether an input encoder's state "
                                       "changed (active 81 / idle 52 pJ)"),
        "learning_product": U("J", _LEARN_U),
        "weight_write": U("J", "no per-op figure published for synaptic-memory writes (budget.md §2c)"),
        "trace_latch": U("J", "no figure for latching a trace register"),
        "snapshot": U("J", "no figure for copying/restoring neuron state"),
    },
    time={
        "synaptic_op": Ref(3.5e-9, "s", D18T2, "P", "maximum"),
        "neuron_update_active": Ref(8.4e-9, "s", D18T2, "P"),
        "neuron_update_idle": Ref(5.3e-9, "s", D18T2, "P"),
        "barrier_sync": Ref(465e-9, "s", D18T2, "P",
                            "mesh-wide barrier, 1-32 tiles: the largest published; more tiles U"),
        "realtime_step": Ref(1e-3, "s", D21 + " p.914", "P", "throttled real-time mode"),
    },
    static_power_per_chip=Ref(3.34 / 32, "W", F20, "P", "3.34 W / 32 chips, voltage unstated"),
    alt_energy={
        "sana-fe": {
            "synaptic_op": {"conv": Ref(24.0e-12, "J", SANAFE, "C", "conv synapse, per spike processed"),
                            "dense": Ref(35.5e-12, "J", SANAFE, "C", "dense synapse")},
            "neuron_update": Ref(72.8e-12, "J", SANAFE, "C",
                                 "neuron access 51.2 + update 21.6 pJ, applied to every update"),
            "spikes_out": Ref(69.3e-12, "J", SANAFE, "C", "spike out, per emitted spike"),
            "spike_message": Ref(111e-12, "J", SANAFE, "C", "message out"),
            "mesh_hop": U("J", "4.2 pJ N-S hop in SANA-FE; hop count not modelled"),
        },
    },
    notes=("D18 Table 2 is pre-silicon (SDF/SPICE, 0.75 V), not measured; 23.6 pJ is a minimum.",
           "Our EP neuron (sigma-delta encoder, decoder, snapshot, traces) is not Loihi's CUBA "
           "compartment; its mapping onto compartments is not verified."),
)

LOIHI2 = ChipProfile(
    key="loihi2", title="Intel Loihi 2 (2021)",
    cores_per_chip=Ref(128, "cores", IB21, "P", "up to 128"),
    neurons_per_core=Ref(8192, "neurons", IB21, "D", "1,048,576 neurons / 128 cores"),
    synapse_bits_per_core=None,
    memory_bits_per_core=Ref(192 * 1024 * 8, "bits", IB21, "P",
                             "192 KB flexible allocation, synapses and neuron state"),
    fan_in_axons=U("input axons", "not in the brief"),
    fan_out_axons=U("output axons", "not in the brief"),
    max_weight_bits=Ref(8, "bits", "MatMul-free LM on Loihi 2 (via a secondary note)", "S",
                        "8-bit default; wider by chaining synapses with different exponents"),
    state_bytes_per_neuron=Ref(4096, "B", IB21, "P", "0-4,096 B/neuron, model-dependent"),
    state_fixed=False,
    energy={term: U("J", "no per-op energy published for Loihi 2 (IB21 gives none; "
                         "blog '~1 pJ/synop' figures cite nothing)")
            for term in ("synaptic_op", "neuron_update", "spikes_out", "spike_message", "mesh_hop",
                         "input_encoder_update", "learning_product", "weight_write",
                         "trace_latch", "snapshot")},
    time={"step": U("s", "no per-op latency published for Loihi 2")},
    static_power_per_chip=U("W", "no static power per chip published"),
    notes=("Loihi 2 results in the literature are whole-system energy/latency per inference "
           "(Shrestha et al. 2023; Brehove et al. 2025), not per-op prices.",),
)

CHIPS: dict[str, ChipProfile] = {"loihi": LOIHI, "loihi2": LOIHI2}


def register_chip(profile: ChipProfile) -> None:
    """Add a chip profile (any chip with the same kind of limits and tables)."""
    CHIPS[profile.key] = profile


# ---------------------------------------------------------------- core fit
@dataclass(frozen=True)
class SynapseStorage:
    """How one unrolled synapse is stored: ``bits(needed, fmt)`` stored bits.

    ``needed``: the bits its values need (``Bw``, fused avg-pool kernel
    ``Bw + 2``); ``fmt``: the chip's largest weight format (None: unknown).
    A model that stores a too-wide synapse at ``needed`` bits makes that a
    ``WeightWidthExceeded`` violation; one that splits it, a note.
    """

    key: str
    description: str
    bits: Callable[[int, int | None], int]


FUSED = SynapseStorage(
    "fused", "fused: each synapse as wide as the core's arithmetic needs (fused avg-pool kernel "
    "Bw + 2 bits), even beyond the chip's weight format", lambda needed, fmt: needed)
#: the built-in storage models; others plug in through :mod:`neurochip.registry`
#: (group ``neurochip.storage``: 'mapped' is :mod:`mapping.resources`').
STORAGE: dict[str, SynapseStorage] = {"fused": FUSED}


def storage_names() -> tuple[str, ...]:
    """Keys :func:`storage_model` accepts (built-in first; plug-ins are not imported)."""
    from .. import registry
    return tuple(STORAGE) + tuple(n for n in registry.names("neurochip.storage") if n not in STORAGE)


def storage_model(key: str) -> SynapseStorage:
    """The synapse storage model called ``key``: built-in or a registered plug-in."""
    if key in STORAGE:
        return STORAGE[key]
    from .. import registry
    return registry.get("neurochip.storage", key)


FIT_ASSUMPTIONS = (
    "each population (input encoder, every layer) on its own cores",
    "neurons in contiguous blocks of the core's internal order (conv: position-major y, x, c), "
    "each block as large as every limit allows (greedy, optimal for contiguous blocks)",
    "one compartment per neuron",
    "synapses unrolled at the destination cores (forward and feedback), no weight sharing",
    "dense synapse format, weight bits only, no list headers or indices (a lower bound)",
    "input axons per core = distinct presynaptic neurons; output axons per core = sum over its "
    "neurons of distinct destination cores",
)

CONSTRAINT_LABELS = {
    "neurons": "neurons/compartments per core",
    "synapse_memory": "synaptic memory per core",
    "memory": "memory per core (synapses + neuron state)",
    "fan_in": "input axons per core",
    "fan_out": "output axons per core",
    "population": "whole population on one core",
}


class _Population:
    """Per-population helper: per-position memory bits, fan-in rows, greedy split."""

    def __init__(self, net: Network, layer: int, projs: list[cnt.Projection], chip: ChipProfile,
                 stored_bits: dict):
        self.layer = layer
        pos, ch = cnt.population_shapes(net)[layer]
        self.n_pos, self.ch = pos, ch
        self.n = pos * ch
        self.incoming = [p for p in projs if p.dst == layer]
        self.stored_bits = {p.direction: stored_bits[id(p)] for p in self.incoming}
        syn_bits_pos = np.zeros(pos, np.int64)
        syn_pos = np.zeros(pos, np.int64)
        for p in self.incoming:
            syn_bits_pos += p.row_degree() * stored_bits[id(p)]
            syn_pos += p.row_degree()
        self.syn_neuron = np.repeat(syn_pos, ch)
        self.state_bits = sum(cnt.neuron_state_bits(net, layer).values())
        self.mem_pos = syn_bits_pos + (self.state_bits if chip.memory_bits_per_core is not None else 0)
        self.fanin_pos = np.zeros(pos, np.int64)      # fan-in of one neuron at each position
        for p in self.incoming:
            self.fanin_pos += p.mpos.sum(axis=1) * p.c_src

    def split(self, lim_n=None, lim_m=None, lim_fi=None, fo_pos=None, lim_fo=None) -> np.ndarray:
        """Greedy contiguous split in internal order; returns block start indices (k+1).

        Every constraint is monotone under extending a block (counts and bits add
        up, presynaptic sets only grow), so the greedy maximal blocks give the
        fewest contiguous blocks meeting all the given limits.  A limit that one
        neuron alone exceeds must be passed as None (reported as a violation).
        """
        starts = [0]
        masks = [np.zeros(p.mpos.shape[1], bool) for p in self.incoming]
        cnt_n, mem, fo = 0, 0, 0

        def fanin_with(q):
            return sum(int((m | p.mpos[q]).sum()) * p.c_src for m, p in zip(masks, self.incoming))

        idx = 0
        for q in range(self.n_pos):
            left = self.ch
            while left:
                if cnt_n and lim_fi is not None and fanin_with(q) > lim_fi:
                    room = 0
                else:
                    room = left
                    if lim_n is not None:
                        room = min(room, int(lim_n) - cnt_n)
                    if lim_m is not None and self.mem_pos[q] > 0:
                        room = min(room, int((lim_m - mem) // self.mem_pos[q]))
                    if lim_fo is not None and fo_pos is not None and fo_pos[q] > 0:
                        room = min(room, int((lim_fo - fo) // fo_pos[q]))
                if room <= 0:
                    if cnt_n == 0:
                        raise RuntimeError("a single neuron exceeds a limit passed as feasible")
                    starts.append(idx)
                    masks = [np.zeros_like(m) for m in masks]
                    cnt_n, mem, fo = 0, 0, 0
                    continue
                cnt_n += room
                mem += room * int(self.mem_pos[q])
                if fo_pos is not None:
                    fo += room * int(fo_pos[q])
                for m, p in zip(masks, self.incoming):
                    m |= p.mpos[q]
                idx += room
                left -= room
        starts.append(idx)
        return np.asarray(starts, np.int64)

    def loads(self, starts: np.ndarray) -> dict:
        mem_neuron = np.repeat(self.mem_pos, self.ch)
        prefix = np.concatenate([[0], np.cumsum(mem_neuron)])
        fanin = []
        for b in range(len(starts) - 1):
            p0, p1 = starts[b] // self.ch, (starts[b + 1] - 1) // self.ch
            fanin.append(sum(int(p.mpos[p0:p1 + 1].any(axis=0).sum()) * p.c_src
                             for p in self.incoming))
        return {"neurons": int(np.diff(starts).max()),
                "mem_bits": int((prefix[starts[1:]] - prefix[starts[:-1]]).max()),
                "input_axons": int(max(fanin))}


def _limit(ref: Ref | None):
    return None if ref is None or ref.value is None else ref.value


def _fanout(pops: dict, projs: list[cnt.Projection], starts: dict, src: int) -> np.ndarray:
    """Destination cores of one neuron at each position of population ``src``."""
    pop = pops[src]
    per_pos = np.zeros(pop.n_pos, np.int64)
    for p in projs:
        if p.src != src:
            continue
        st = starts[p.dst]
        k = len(st) - 1
        c_dst = pops[p.dst].ch
        for q_pos in range(p.mpos.shape[1]):
            qs = np.nonzero(p.mpos[:, q_pos])[0]
            if qs.size == 0:
                continue
            mark = np.zeros(k, bool)
            lo = np.searchsorted(st, qs * c_dst, side="right") - 1
            hi = np.searchsorted(st, (qs + 1) * c_dst - 1, side="right") - 1
            for a, b in zip(lo, hi):
                mark[a:b + 1] = True
            per_pos[q_pos] += int(mark.sum())
    return per_pos


def check_fit(net: Network, chip: ChipProfile | str,
              storage: SynapseStorage | str = "fused") -> dict:
    """Cores needed per population on ``chip`` and the limit that binds.

    ``storage``: the synapse storage model (:class:`SynapseStorage` or a key
    of :func:`storage_names`: 'fused', or a registered plug-in such as 'mapped').  Returns a dict: ``cores`` (total), ``chips``,
    ``binding_limit`` (the constraint binding the most cores; ``binding``: its
    key), ``storage``,
    ``layers`` (per population: neurons, cores, binding ('population' when it
    fits on one core), the cores each constraint alone would need, the worst
    core's loads, the stored bits of one incoming synapse by direction,
    ``infeasible`` limits), ``violations`` (named, Xylo-style: a limit no split
    can meet, with ``limit``, ``needed`` and ``available``; or a format the
    chip cannot hold), ``unchecked`` limits, ``assumptions``.
    ``_dest_cores`` (per population, destination cores per neuron in internal
    order) is kept for counting spike messages, ``_starts`` (block starts per
    population); they are not serialised.
    """
    if isinstance(chip, str):
        chip = CHIPS[chip]
    if isinstance(storage, str):
        storage = storage_model(storage)
    projs = cnt.projections(net)
    n_layers = net.arch.n_layers
    wmax = _limit(chip.max_weight_bits)
    stored = {id(p): int(storage.bits(p.weight_bits, None if wmax is None else int(wmax)))
              for p in projs}
    pops = {l: _Population(net, l, projs, chip, stored) for l in range(n_layers + 1)}
    lim_n = _limit(chip.neurons_per_core)
    mem_ref = chip.memory_bits_per_core or chip.synapse_bits_per_core
    mem_key = "memory" if chip.memory_bits_per_core is not None else "synapse_memory"
    lim_m = _limit(mem_ref)
    lim_fi = _limit(chip.fan_in_axons)
    lim_fo = _limit(chip.fan_out_axons)
    violations = []
    unchecked = [name for name, ref in (("fan_in", chip.fan_in_axons),
                                        ("fan_out", chip.fan_out_axons)) if _limit(ref) is None]

    # formats the chip cannot hold ------------------------------------------------
    for p in projs:
        if wmax is not None and p.weight_bits > wmax and p.direction == "fwd":
            what = ("fused avg-pool kernel, Bw+2" if p.fmt == "conv" and net.hyper.pool == "avg"
                    else "Bw")
            head = (f"layer {p.layer}: synapses need {p.weight_bits} bits ({what}) > "
                    f"{int(wmax)} ({chip.max_weight_bits.note or chip.max_weight_bits.source})")
            if stored[id(p)] > p.weight_bits:
                violations.append({"code": "WeightSplit", "severity": "note", "layer": p.layer,
                                   "message": f"{head}; stored as {stored[id(p)]} bits per "
                                              f"synapse ({storage.key} storage)"})
                continue
            sev = "warning" if chip.max_weight_bits.grade == "S" else "violation"
            violations.append({"code": "WeightWidthExceeded", "severity": sev, "layer": p.layer,
                               "message": f"{head}; memory counted at the needed width"})
    if net.hyper.pool == "max" and any(s.kind == "conv" for s in net.arch.layers):
        violations.append({"code": "MaxPoolUnmappable", "severity": "violation", "layer": None,
                           "message": "max-pool/unpool has no synaptic mapping (no max op); "
                                      "counted with the avg-pool window, Bw bits"})
    state_lim = _limit(chip.state_bytes_per_neuron)
    for l in range(n_layers + 1):
        need = cnt.neuron_state_bytes(net, l)
        if state_lim is not None and need > state_lim:
            violations.append({
                "code": "NeuronStateExceeded", "severity": "violation", "layer": l,
                "message": f"population {l}: the EP neuron holds {need} B "
                           f"(live state, snapshot, traces, accumulators) > {int(state_lim)} B "
                           f"{'fixed' if chip.state_fixed else 'maximum'} per neuron; one compartment "
                           "per neuron assumed anyway (multi-compartment mapping not verified)"})

    def unplaceable(code, l, limit, needed, available, message):
        violations.append({"code": code, "severity": "violation", "layer": l, "limit": limit,
                           "needed": int(needed), "available": int(available),
                           "message": f"population {l}: {message}"})

    # limits one neuron alone breaks: reported, then left out of the split -------
    feasible = {}
    for l, pop in pops.items():
        f = {"neurons": lim_n, mem_key: lim_m, "fan_in": lim_fi}
        if lim_m is not None and pop.mem_pos.max(initial=0) > lim_m:
            unplaceable("SynapseMemoryExceeded", l, mem_key, pop.mem_pos.max(), lim_m,
                        f"one neuron needs {int(pop.mem_pos.max())} bits > {int(lim_m)} per core")
            f[mem_key] = None
        if lim_fi is not None and pop.fanin_pos.max(initial=0) > lim_fi:
            unplaceable("FanInExceeded", l, "fan_in", pop.fanin_pos.max(), lim_fi,
                        f"one neuron has {int(pop.fanin_pos.max())} presynaptic neurons > "
                        f"{int(lim_fi)} input axons per core; needs splitting (relay neurons or "
                        "dendritic accumulation), not modelled")
            f["fan_in"] = None
        feasible[l] = f

    def do_split(l, fo_pos=None, fo_lim=None):
        f = feasible[l]
        return pops[l].split(f["neurons"], f[mem_key], f["fan_in"], fo_pos, fo_lim)

    starts = {l: do_split(l) for l in pops}
    fo_ok = {l: True for l in pops}
    fo_pos = {}
    if lim_fo is not None:   # fan-out depends on the neighbours' splits: iterate to a fixed point
        for _ in range(64):
            changed = False
            for l in pops:
                fo_pos[l] = _fanout(pops, projs, starts, l)
                if fo_pos[l].max(initial=0) > lim_fo:
                    if fo_ok[l]:
                        unplaceable("FanOutExceeded", l, "fan_out", fo_pos[l].max(), lim_fo,
                                    f"one neuron reaches {int(fo_pos[l].max())} cores > "
                                    f"{int(lim_fo)}")
                    fo_ok[l] = False
                    continue
                new = do_split(l, fo_pos[l], lim_fo)
                if len(new) != len(starts[l]) or not np.array_equal(new, starts[l]):
                    starts[l] = new
                    changed = True
            if not changed:
                break
    for l in pops:
        fo_pos[l] = _fanout(pops, projs, starts, l)

    # standalone needs, binding constraint, loads ---------------------------------
    layers = []
    binding_cores = {}
    binding_keys = {}
    dest_cores = {}
    for l, pop in pops.items():
        f = feasible[l]
        k = len(starts[l]) - 1
        alone = {}
        if f["neurons"] is not None:
            alone["neurons"] = len(pop.split(lim_n=f["neurons"])) - 1
        if f[mem_key] is not None:
            alone[mem_key] = len(pop.split(lim_m=f[mem_key])) - 1
        if f["fan_in"] is not None:
            alone["fan_in"] = len(pop.split(lim_fi=f["fan_in"])) - 1
        if lim_fo is not None and fo_ok[l]:
            alone["fan_out"] = len(pop.split(fo_pos=fo_pos[l], lim_fo=lim_fo)) - 1
        top = max(alone.values())
        if k == 1:
            binding = "population"
            label = CONSTRAINT_LABELS[binding]
        elif k > top:
            tied = sorted(alone, key=lambda c: -alone[c])[:2]
            binding = "+".join(tied)
            label = " + ".join(CONSTRAINT_LABELS[c] for c in tied) + " (jointly)"
        else:
            binding = max(alone, key=lambda c: alone[c])
            label = CONSTRAINT_LABELS[binding]
        ld = pop.loads(starts[l])
        per_neuron_fo = np.repeat(fo_pos[l], pop.ch)
        prefix = np.concatenate([[0], np.cumsum(per_neuron_fo)])
        st = starts[l]
        dest_cores[l] = per_neuron_fo
        layers.append({
            "layer": l, "neurons": pop.n, "cores": int(k), "alone": alone,
            "binding": binding, "binding_label": label,
            "max_per_core": {"neurons": ld["neurons"],
                             ("memory_bits" if mem_key == "memory" else "synapse_bits"): ld["mem_bits"],
                             "input_axons": ld["input_axons"],
                             "output_axons": int((prefix[st[1:]] - prefix[st[:-1]]).max())},
            "synapses_in": int(pop.syn_neuron.sum()),
            "synapse_bits_in": dict(pop.stored_bits),
            "state_bytes_per_neuron": cnt.neuron_state_bytes(net, l),
            "infeasible": sorted(c for c, v in f.items() if v is None and
                                 {"neurons": lim_n, mem_key: lim_m, "fan_in": lim_fi}[c] is not None)
            + ([] if fo_ok[l] else ["fan_out"]),
        })
        binding_cores[label] = binding_cores.get(label, 0) + int(k)
        binding_keys[label] = binding
    total = int(sum(r["cores"] for r in layers))
    binding = max(binding_cores.items(), key=lambda kv: kv[1])[0]
    per_chip = _limit(chip.cores_per_chip)
    return {
        "chip": chip.title,
        "cores": total,
        "chips": math.ceil(total / per_chip) if per_chip else None,
        "binding_limit": binding,
        "binding": binding_keys[binding],
        "binding_cores": binding_cores,
        "storage": storage.key,
        "storage_note": storage.description,
        "limits": {
            "neurons_per_core": chip.neurons_per_core.as_dict(),
            ("memory_bits_per_core" if mem_key == "memory" else "synapse_bits_per_core"):
                mem_ref.as_dict(),
            "fan_in_axons": chip.fan_in_axons.as_dict(),
            "fan_out_axons": chip.fan_out_axons.as_dict(),
            "max_weight_bits": chip.max_weight_bits.as_dict(),
            "state_bytes_per_neuron": chip.state_bytes_per_neuron.as_dict(),
            "cores_per_chip": chip.cores_per_chip.as_dict(),
        },
        "layers": layers,
        "violations": violations,
        "unchecked": unchecked,
        "assumptions": list(FIT_ASSUMPTIONS) + [f"synapse storage: {storage.description}"],
        "_dest_cores": dest_cores,
        "_starts": starts,
    }


# ---------------------------------------------------------------- pricing
def price_workload(table: dict, workload: dict) -> dict:
    """Multiply counts by prices, term by term; unpriced and uncounted stay visible.

    ``workload``: term -> ``{"count": n or None, "by": {sub: n}, "why": reason}``.
    ``table``: term -> Ref, :class:`Included` or {sub: Ref}.  Returns ``{"terms":
    {...}, "total_J": sum of priced terms, "unpriced": [...], "uncounted": [...],
    "included_elsewhere": [...]}``.
    """
    terms, total, unpriced, uncounted, inside = {}, 0.0, [], [], []
    for term, w in workload.items():
        count = w.get("count")
        entry = table.get(term)
        line = {"count": count}
        if count is None:
            line.update(energy_J=None, status="uncounted", why=w.get("why", ""))
            if isinstance(entry, Ref):
                line["price"] = entry.as_dict()
            uncounted.append(term)
        elif entry is None:
            line.update(energy_J=None, status="unpriced", why="no entry in this table")
            unpriced.append(term)
        elif isinstance(entry, Included):
            line.update(price=entry.as_dict(), energy_J=None, status="included", why=entry.note)
            inside.append(term)
        elif isinstance(entry, Ref):
            line["price"] = entry.as_dict()
            if entry.value is None:
                line.update(energy_J=None, status="unpriced", why=entry.note)
                unpriced.append(term)
            else:
                line.update(energy_J=count * entry.value, status="priced")
                total += count * entry.value
        else:   # priced by sub-kind
            by = w.get("by", {})
            subs, e, missing = {}, 0.0, []
            for sub, ref in entry.items():
                n = by.get(sub)
                subs[sub] = {"count": n, "price": ref.as_dict(),
                             "energy_J": None if (n is None or ref.value is None) else n * ref.value}
                if subs[sub]["energy_J"] is None:
                    missing.append(sub)
                else:
                    e += subs[sub]["energy_J"]
            line["by"] = subs
            if missing:
                line.update(energy_J=None, status="unpriced",
                            why=f"sub-kinds without a price or count: {missing}")
                unpriced.append(term)
            else:
                line.update(energy_J=e, status="priced")
                total += e
        terms[term] = line
    any_priced = any(t["status"] == "priced" for t in terms.values())
    return {"terms": terms, "total_J": total if any_priced else None, "unpriced": unpriced,
            "uncounted": uncounted, "included_elsewhere": inside,
            "complete": not unpriced and not uncounted}


def step_time(chip: ChipProfile, fit: dict, per_layer: dict, steps: int) -> dict:
    """Unthrottled time of ``steps`` synchronous steps (grade D), from per-op latencies.

    ``per_layer[l] = (events_in, active, idle)`` over the ``steps``.  Assumes
    an even load over a layer's cores and over the steps; a step lasts as long
    as the slowest core plus one mesh barrier; spike routing time is not
    modelled.  Returns None-valued results when the chip publishes no latencies.
    """
    t = chip.time
    need = ("synaptic_op", "neuron_update_active", "neuron_update_idle", "barrier_sync")
    if any(k not in t or t[k].value is None for k in need):
        return {"seconds": None, "grade": "U", "why": "no per-op latencies for this chip"}
    worst = 0.0
    worst_layer = None
    for l, (ev, act, idle) in per_layer.items():
        k = fit["layers"][l]["cores"]
        core = (ev * t["synaptic_op"].value + act * t["neuron_update_active"].value
                + idle * t["neuron_update_idle"].value) / (k * steps)
        if core > worst:
            worst, worst_layer = core, l
    per_step = worst + t["barrier_sync"].value
    return {"seconds": per_step * steps, "per_step_s": per_step, "slowest_layer": worst_layer,
            "grade": "D", "why": "even load per core and step; max synaptic-op latency; "
            "routing not modelled; barrier figure for <= 32 tiles",
            "sources": [t[k].source for k in need]}

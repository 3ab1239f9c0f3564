"""The core fit (:func:`check_fit`): the one model of how a network sits on a chip's
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

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..network import Network
from . import counts as cnt
from .chips import CHIPS, ChipProfile, Ref


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

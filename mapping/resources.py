"""Loihi / Loihi 2 resource checks for the EP network as the Lava mapping builds it.

``check_resources(network, profile)`` is the hardware budget's core fit
(:func:`neurochip.budget.fit.check_fit`, one model for both reports) with
the synapse storage model **'mapped'** (:data:`MAPPED`): a synapse is as wide
as the values it must hold (``Bw`` for FC, ``Bw + 2`` for the fused avg-pool
kernel) and, when that exceeds the chip's weight format (Loihi 9 bits,
Loihi 2 8 bits), it is the 8-bit digit synapses the mapping builds
(:mod:`mapping.layout`), ``8 * digits`` bits.  The budget report uses the
same fit with 'fused' storage (each synapse at its needed width).

The fit places every population (the input encoder and each layer) on its own
cores in contiguous blocks of the core's internal order (conv maps
position-major ``(y, x, c)``), each block as large as every per-core limit
allows (docs/lava.md, budget.md §2):

* ``compartments``: neurons per core (Loihi 1024, Loihi 2 ~8192);
* ``synaptic_memory``: bytes of the synapses stored on the core (Loihi:
  128 KB of synaptic state; Loihi 2: 192 KB shared with neuron state, so the
  neurons' state bytes count too);
* ``fan_in``: distinct presynaptic neurons (input axons) of the core's
  neurons, forward and feedback (Loihi 4096; Loihi 2 not published:
  unchecked);
* ``fan_out``: for each neuron the number of distinct destination cores,
  summed over the core (Loihi 4096; Loihi 2 unchecked).

Synapses are unrolled at the destination (forward matrix ``M`` and its
transpose, the feedback), no weight sharing, no list headers: a lower bound.

A population that cannot be placed at all (one neuron alone exceeds a limit)
raises :class:`ResourceError` naming the population, the limit and by how much
(or, with ``raise_on_error=False``, is reported in ``report.errors``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from neurochip.budget import chips as chp
from neurochip.budget import fit as bfit
from neurochip.errors import UserError, command
from neurochip.network import Network

from . import layout as lay

LIMITS = ("compartments", "synaptic_memory", "fan_in", "fan_out")
LIMIT_LABELS = {"compartments": "neurons (compartments) per core",
                "synaptic_memory": "synaptic memory per core",
                "fan_in": "input axons (fan-in) per core",
                "fan_out": "output axons (fan-out) per core"}
# the fit's constraint names -> this module's (its API since before the fit was shared)
_NAMES = {"neurons": "compartments", "synapse_memory": "synaptic_memory",
          "memory": "synaptic_memory", "fan_in": "fan_in", "fan_out": "fan_out",
          "population": "population"}
_UNITS = {"synaptic_memory": "bytes", "fan_in": "axons", "fan_out": "destination cores"}

# Chip profiles are the budget's (limits with their sources); ``Profile`` is kept as a name.
Profile = chp.ChipProfile
LOIHI, LOIHI2 = chp.LOIHI, chp.LOIHI2
PROFILES = {"loihi": LOIHI, "loihi2": LOIHI2}


def _mapped_bits(needed: int, fmt: int | None) -> int:
    """Stored bits of one synapse: its width, or 8-bit digits when wider than the format."""
    if fmt is None or needed <= fmt:
        return needed
    return lay.DIGIT_BITS * lay.n_digits(-(1 << (needed - 1)), (1 << (needed - 1)) - 1)


MAPPED = bfit.SynapseStorage(
    "mapped", "mapped: as the Lava mapping builds them, each synapse as wide as its values "
    "(Bw, fused avg-pool kernel Bw + 2) and split into 8-bit digit synapses (mapping/layout.py) "
    "when that exceeds the chip's weight format", _mapped_bits)


class ResourceError(UserError):
    """A population cannot be placed: one neuron alone exceeds a per-core limit."""

    def __init__(self, message: str, layer: int, limit: str, needed: int, available: int):
        super().__init__(message)
        self.layer, self.limit, self.needed, self.available = layer, limit, needed, available
        self.excess = needed - available


@dataclass
class LayerResources:
    """One population (0 = input encoder) on its cores.

    ``*_per_core``: the worst core's load; ``*_limit``: the profile's limit
    (None: unchecked); ``alone``: per limit, the cores that limit alone would
    need; ``binding``: the limit that sets the cores ('population' when the
    whole population fits on one core, 'a+b' when two bind jointly).
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
    alone: dict = field(default_factory=dict)
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
    storage: str = MAPPED.key

    @property
    def fits(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        name = self.profile.key
        out = [f"{name}: {self.total_cores} cores ({self.chips} chip(s)), binding limit: "
               f"{self.binding}; synapse storage: {self.storage}" if self.fits
               else f"{name}: does not map ({len(self.errors)} error(s))"]
        out.append(f"  {'layer':<12} {'neurons':>8} {'n/core':>7} {'cores':>6} {'syn KB/core':>12} "
                   f"{'fan-in':>7} {'fan-out':>8}  binding")
        for r in self.layers:
            kb = "-" if r.syn_bytes_per_core is None else f"{r.syn_bytes_per_core / 1024:.1f}"
            out.append(f"  {r.name:<12} {r.neurons:>8} {str(r.neurons_per_core):>7} "
                       f"{str(r.cores):>6} {kb:>12} {str(r.fan_in_per_core):>7} "
                       f"{str(r.fan_out_per_core):>8}  {r.binding or r.error}")
        return out


def _layer_name(net: Network, l: int) -> str:
    return "input" if l == 0 else f"L{l} {net.arch.layers[l - 1].token()}"


def _name(binding: str) -> str:
    return "+".join(_NAMES[b] for b in binding.split("+"))


def check_resources(network: Network, profile: Profile | str = "loihi", *,
                    raise_on_error: bool = True,
                    storage: bfit.SynapseStorage | str = MAPPED) -> ResourceReport:
    """Neurons per core, memory, fan-in/out, cores and binding limit per population.

    ``profile``: 'loihi', 'loihi2' or a chip profile
    (:class:`neurochip.budget.chips.ChipProfile`; ``LOIHI.with_limits(...)``
    for changed limits).  ``storage``: the synapse storage model, the Lava
    mapping's ('mapped') by default.  Raises :class:`ResourceError` for the
    first population that cannot be placed (unless ``raise_on_error=False``:
    then it is listed in ``report.errors`` and has ``cores=None``).
    """
    prof = chp.CHIPS[profile] if isinstance(profile, str) else profile
    lay.edges(network)      # raises MappingError for what has no Lava mapping (max-pool)
    fit = bfit.check_fit(network, prof, MAPPED if storage == MAPPED.key else storage)
    limits = {k: (None if v["value"] is None else int(v["value"]))
              for k, v in fit["limits"].items()}
    lim_mem = limits.get("memory_bits_per_core", limits.get("synapse_bits_per_core")) // 8
    lim_fi, lim_fo = limits["fan_in_axons"], limits["fan_out_axons"]
    err_msgs, err_layer = [], {}
    for v in fit["violations"]:
        if "limit" not in v:
            continue
        l, limit = v["layer"], _NAMES[v["limit"]]
        need, avail = v["needed"], v["available"]
        if limit == "synaptic_memory":
            need, avail = math.ceil(need / 8), avail // 8
        msg = (f"{_layer_name(network, l)}: one neuron needs {need} {_UNITS[limit]} of "
               f"{LIMIT_LABELS[limit]}, {prof.key} has {avail} (exceeds it by {need - avail}); "
               "the population cannot be placed without splitting neurons (not modelled)")
        if raise_on_error:
            raise ResourceError(msg, l, limit, need, avail)
        err_msgs.append(msg)
        err_layer.setdefault(l, msg)
    layers = []
    for r in fit["layers"]:
        l, ok = r["layer"], r["layer"] not in err_layer
        per_core = r["max_per_core"]
        mem_bits = per_core.get("memory_bits", per_core.get("synapse_bits"))
        bits = r["synapse_bits_in"]
        layers.append(LayerResources(
            layer=l, name=_layer_name(network, l), neurons=r["neurons"],
            neurons_per_core=per_core["neurons"] if ok else None,
            cores=r["cores"] if ok else None, binding=_name(r["binding"]) if ok else None,
            syn_bytes_per_core=math.ceil(mem_bits / 8) if ok else None, syn_bytes_limit=lim_mem,
            fan_in_per_core=per_core["input_axons"] if ok else None, fan_in_limit=lim_fi,
            fan_out_per_core=per_core["output_axons"] if ok else None, fan_out_limit=lim_fo,
            synapses_in=r["synapses_in"],
            synapse_bits={{"fwd": "forward", "fb": "feedback"}[d]: b for d, b in bits.items()},
            state_bytes_per_neuron=r["state_bytes_per_neuron"],
            alone={_NAMES[k]: v for k, v in r["alone"].items()}, error=err_layer.get(l)))
    total = None if err_msgs else fit["cores"]
    chips = None if err_msgs else fit["chips"]
    binding = None if err_msgs else _name(fit["binding"])
    notes = list(fit["assumptions"])
    if fit["unchecked"]:
        notes.append(f"{' and '.join(fit['unchecked'])} limits not published for this chip: "
                     "not checked")
    notes += [v["message"] for v in fit["violations"] if "limit" not in v]
    return ResourceReport(prof, layers, total, chips, binding, err_msgs, notes, fit["storage"])


@command
def main(argv=None) -> int:
    """``python -m mapping.resources [--preset P | --load CKPT] [--profile loihi|loihi2]``."""
    from neurochip.errors import ArgumentParser
    p = ArgumentParser(prog="python -m mapping.resources",
                                description="Loihi / Loihi 2 per-core resources of a network")
    p.add_argument("--preset", default="digits")
    p.add_argument("--arch", default=None, help="architecture string instead of the preset's")
    p.add_argument("--load", metavar="CKPT", default=None)
    p.add_argument("--bits", type=int, default=None)
    p.add_argument("--profile", default="all", choices=("all",) + tuple(PROFILES))
    p.add_argument("--synapses", default=MAPPED.key, choices=tuple(dict.fromkeys(bfit.storage_names() + (MAPPED.key,))),
                   help="synapse storage model (default: as the Lava mapping builds them)")
    args = p.parse_args(argv)
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
    rc = 0
    for name in (PROFILES if args.profile == "all" else (args.profile,)):
        try:
            rep = check_resources(net, name, storage=args.synapses)
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

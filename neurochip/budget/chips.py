"""Chip profiles: capacity limits, latencies and prices, each number with its source.

Every price carries its source and evidence grade (``/work/shared/spec/budget.md``):
C code, P primary (via quoted secondary), S secondary, D derived here, U
unknown.  A term without an honest price stays **visibly unpriced** (value
``None``); it is never a silent zero.  The core fit of a network on these
profiles is :mod:`.fit`; counts times prices is :mod:`.pricing`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


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

"""Counts times prices, term by term, and step times: what a workload costs on a chip.

Counts (from :mod:`.counts`, the core's own tallies) and prices (the tables of
:mod:`.chips`) are kept apart until :func:`price_workload` multiplies them;
unpriced and uncounted terms stay visible.
"""
from __future__ import annotations

from .chips import ChipProfile, Included, Ref


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

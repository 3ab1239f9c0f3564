"""The hardware-budget report: one dict, rendered as a table, JSON, Markdown and a PNG.

:func:`build_report` assembles, from the network description and the counts
the core took (a :class:`~neurochip.trainer.Tally` of a run and/or the counts
and spike raster of one recorded sample):

* ``network``, ``source`` (where each count came from);
* ``static``: per-layer neurons, synapses, memory at hardware widths;
* ``per_sample`` (one training sample: three phases + its share of the
  update) and ``per_inference`` (the free phase);
* ``neurobench`` (NeuroBench key names, NeuroBench's rules) and
  ``neurochip_variants`` (ours, labelled as different);
* ``chips.<name>``: cores, chips, ``binding_limit``, ``storage`` (the synapse
  storage model of the fit, :func:`.chips.check_fit`), per-layer fit,
  violations, and energy/time per inference and per training sample, each
  price with source and grade, unpriced terms listed;
* ``memory`` (EP vs BPTT, with ``assumptions``) and ``compute``;
* ``figure``: spikes per layer per step of the recorded sample.
"""
from __future__ import annotations

import datetime
import json
import math
import os

import numpy as np

from .. import learning
from ..atomic import atomic_path, atomic_write_text
from ..core import K_ACTIVE, K_EVENTS_FB, K_EVENTS_FWD, K_SPIKES, K_UPDATES, N_COUNTS, PHASES
from ..network import Network
from . import chips as chp
from . import counts as cnt
from . import memory as mem
from . import neurobench as nb

SCHEMA = "neurochip.budget/1"


# --------------------------------------------------------------- simulate
def simulate_samples(net: Network, x_fp: np.ndarray, labels, train: bool = True):
    """Run ``N`` recorded samples through the core, one at a time.

    Returns ``(counts, rasters, tally, predictions)``: ``counts`` int64 ``(N, 3,
    L+1, N_COUNTS)``, ``rasters`` uint8 ``(N, steps, n_all)`` (internal order),
    the summed :class:`~neurochip.trainer.Tally` and the free-phase predictions
    int64 ``(N,)``.  With ``train`` each sample's EP update is applied to its
    own *copy* of ``net`` (the tally holds the learning counts of those
    updates); ``net`` itself is untouched.
    """
    from ..trainer import NumbaBackend, Tally
    labels = np.asarray(labels, np.int64).reshape(-1)
    x = np.asarray(x_fp, np.int64).reshape(len(labels), -1)
    tally = Tally.zeros(net.arch.n_layers)
    counts, rasters, preds = [], [], []
    for i in range(len(labels)):
        work = net.copy()
        backend = NumbaBackend(work)
        res = backend.run(x[i:i + 1], labels[i:i + 1], train=train, record=True)
        tally.counts += res.counts.sum(axis=0)
        if train:
            grads = learning.contrastive(work, backend.layer_traces(res))
            stats = learning.update_network(work, grads)
            tally.samples_train += 1
            tally.learning_products += learning.learning_products(work, 1)
            tally.weight_writes += stats.weight_writes
            tally.weight_saturations += stats.weight_saturations
            tally.bias_saturations += stats.bias_saturations
            tally.updates += 1
        else:
            tally.samples_eval += 1
        counts.append(res.counts[0])
        rasters.append(res.rec_spikes[0])
        preds.append(int(res.predictions[0]))
    return np.stack(counts), np.stack(rasters), tally, np.array(preds, np.int64)


def simulate_sample(net: Network, x_fp: np.ndarray, label: int, train: bool = True):
    """One recorded sample (:func:`simulate_samples` with ``N = 1``): ``(counts, raster, tally)``.

    ``counts`` int64 ``(3, L+1, N_COUNTS)``, ``raster`` uint8 ``(steps, n_all)``.
    """
    counts, rasters, tally, _ = simulate_samples(net, np.asarray(x_fp).reshape(1, -1),
                                                 [label], train)
    return counts[0].copy(), rasters[0].copy(), tally


# ---------------------------------------------------------------- helpers
def _network_info(net: Network) -> dict:
    wd, h = net.widths, net.hyper
    return {"arch": str(net.arch), "preset": net.preset, "seed": net.seed,
            "updates": net.updates, "weights_sha256": net.weights_sha256(),
            "widths": {"weight_bits": wd.weight_bits, "state_bits": wd.state_bits,
                       "trace_bits": wd.trace_bits, "bias_bits": wd.bias_bits,
                       "register_bits": cnt.REG_BITS},
            "t1": h.t1, "t2": h.t2, "batch_size": h.batch_size, "pool": h.pool,
            "layer_sizes": net.arch.layer_sizes()}


def _format_of_events(net: Network) -> tuple[np.ndarray, np.ndarray]:
    """Per layer (0..L): 1 if its forward / feedback input comes through a conv kernel."""
    L = net.arch.n_layers
    fwd = np.zeros(L + 1, bool)
    fb = np.zeros(L + 1, bool)
    for l, spec in enumerate(net.arch.layers, start=1):
        fwd[l] = spec.kind == "conv"
        if l >= 2:
            fb[l - 1] = spec.kind == "conv"
    return fwd, fb


def _workload(net: Network, c: np.ndarray, phases: tuple, delivered: np.ndarray | None,
              dest_cores: dict | None, learn: dict | None) -> dict:
    """Workload terms (counts only) of the given phases of one (averaged) sample."""
    c = np.asarray(c)[list(phases)]
    conv_fwd, conv_fb = _format_of_events(net)
    ev_fwd = c[..., K_EVENTS_FWD].sum(axis=0)
    ev_fb = c[..., K_EVENTS_FB].sum(axis=0)
    conv = float(ev_fwd[conv_fwd].sum() + ev_fb[conv_fb].sum())
    dense = float(ev_fwd[~conv_fwd].sum() + ev_fb[~conv_fb].sum())
    upd = float(c[..., K_UPDATES].sum())
    act = float(c[..., K_ACTIVE].sum())
    steps = sum(cnt.phase_steps(net)[PHASES[p]] for p in phases)
    w = {
        "synaptic_op": {"count": conv + dense, "by": {"conv": conv, "dense": dense}},
        "neuron_update": {"count": upd, "by": {"active": act, "idle": upd - act}},
        "spikes_out": {"count": float(c[..., K_SPIKES].sum())},
    }
    if delivered is not None and dest_cores is not None:
        per_neuron = np.concatenate([dest_cores[l] for l in sorted(dest_cores)])
        w["spike_message"] = {"count": float((delivered[list(phases)].sum(axis=0)
                                              * per_neuron).sum())}
    else:
        w["spike_message"] = {"count": None, "why": "needs the recorded raster (per-neuron spikes)"}
    w["mesh_hop"] = {"count": None, "why": "needs a placement of cores on the mesh (not modelled)"}
    w["input_encoder_update"] = {"count": float(net.arch.layer_sizes()[0] * steps)}
    if learn is not None:
        n_all = sum(net.arch.layer_sizes())
        w["learning_product"] = {"count": learn.get("learning_products")}
        w["weight_write"] = {"count": learn.get("weight_writes"),
                             "why": "weights changed are only known from a run's updates"}
        w["trace_latch"] = {"count": float(2 * n_all)}
        w["snapshot"] = {"count": float(2 * n_all), "why": ""}
    for v in w.values():
        if v.get("count") is not None:
            v["count"] = float(v["count"])
    return w


def _chip_costs(net: Network, chip: chp.ChipProfile, fit: dict, c: np.ndarray, phases: tuple,
                delivered, learn) -> dict:
    steps = sum(cnt.phase_steps(net)[PHASES[p]] for p in phases)
    cc = np.asarray(c, dtype=np.float64)[list(phases)].sum(axis=0)
    per_layer = {l: (cc[l, K_EVENTS_FWD] + cc[l, K_EVENTS_FB], cc[l, K_ACTIVE],
                     cc[l, K_UPDATES] - cc[l, K_ACTIVE]) for l in range(1, cc.shape[0])}
    time = chp.step_time(chip, fit, per_layer, steps)
    rt = chip.time.get("realtime_step")
    time["realtime_seconds"] = None if rt is None or rt.value is None else rt.value * steps
    time["steps"] = steps
    work = _workload(net, c, phases, delivered, fit.get("_dest_cores"), learn)
    chips_n = fit["chips"]
    if time.get("seconds") is not None and chips_n:
        work["static"] = {"count": time["seconds"] * chips_n}
    else:
        work["static"] = {"count": None, "why": "no time estimate for this chip"}
    table = dict(chip.energy)
    table["static"] = chip.static_power_per_chip
    priced = chp.price_workload(table, work)
    # the alternative tables price the same counts
    alts = {}
    for name, alt in chip.alt_energy.items():
        alts[name] = chp.price_workload(alt, {k: v for k, v in work.items() if k in alt})
    return {"energy": priced, "energy_alt": alts, "time": time,
            "static_units": "chip-seconds x W per chip"}


def _learning_per_sample(net: Network, tally) -> dict:
    if tally is not None and tally.samples_train:
        n = tally.samples_train
        return {"learning_products": float(tally.learning_products.sum()) / n,
                "weight_writes": float(tally.weight_writes.sum()) / n,
                "weight_saturations": float(tally.weight_saturations.sum()) / n,
                "bias_saturations": float(tally.bias_saturations.sum()) / n,
                "source": f"tally: {tally.updates} update(s), {n} training sample(s); "
                          "a sample's share of its minibatch update"}
    return {"learning_products": float(learning.learning_products(net, 1).sum()),
            "weight_writes": None, "weight_saturations": None, "bias_saturations": None,
            "source": "learning.learning_products(net, 1): products formed per sample; "
                      "weights changed unknown without an update"}


# ------------------------------------------------------------------- build
def build_report(net: Network, tally=None, sample_counts=None, sample_raster=None, *,
                 chips=("loihi", "loihi2"), mem_batch: int | None = None,
                 t_bptt: int | None = None, k_bptt: float = 3,
                 k_source: str = "assumed, not measured; budget.md: k = 2-4",
                 note: str = "", storage: str = "fused", predictions=None,
                 labels=None) -> dict:
    """The hardware-budget report of ``net`` as a JSON-ready dict.

    From a tally, the free phase is averaged over training and evaluation
    samples (it is the same computation), the nudged phases and the learning
    counts over training samples.

    ``tally``: a :class:`~neurochip.trainer.Tally` of a run (may be None);
    ``sample_counts``: the core's counts of ``N`` recorded samples, ``(N, 3,
    L+1, N_COUNTS)`` (or one sample's ``(3, L+1, N_COUNTS)``); ``sample_raster``:
    their recorded spikes ``(N, steps, n_all)`` (or ``(steps, n_all)``),
    internal order, as ``BatchResult.rec_spikes``.  Per-sample counts are the
    samples' averages when given (``report["source"]["samples"]`` says how
    many), else the tally's averages.  ``predictions``/``labels`` of those
    samples (free phase) add ``ClassificationAccuracy`` to
    ``report["neurobench_results"]``, the metrics in the dict NeuroBench's
    ``Benchmark.run()`` returns.  The raster is needed for
    NeuroBench's ``SynapticOperations``, spike messages and the figure.
    ``storage``: the core fit's synapse storage model ('fused': each synapse
    at the width the core's arithmetic needs; 'mapped' once
    ``mapping.resources`` is imported: the Lava mapping's 8-bit digit synapses).
    """
    L = net.arch.n_layers
    if sample_counts is not None:
        sc = np.asarray(sample_counts, np.int64)
        if sc.ndim == 3:
            sc = sc[None]
        if sc.shape[1:] != (3, L + 1, N_COUNTS):
            raise ValueError(f"sample_counts: shape {sc.shape[1:]} != {(3, L + 1, N_COUNTS)}")
        n_samples = sc.shape[0]
        sc = sc.sum(axis=0)
    else:
        sc = None
        n_samples = 0
    delivered = None
    if sample_raster is not None:
        rasters = np.asarray(sample_raster)
        if rasters.ndim == 2:
            rasters = rasters[None]
        delivered = sum(cnt.delivered_spikes(r, net.hyper.t1, net.hyper.t2) for r in rasters)
    has_counts = sc is not None or (tally is not None and
                                    (tally.samples_train + tally.samples_eval) > 0)

    # per-sample counts ----------------------------------------------------------
    if not has_counts:     # static parts only: nothing was simulated
        per_train = np.zeros((3, L + 1, N_COUNTS))
        has_train = False
        free_samples, free_sum = 0.0, per_train[0]
        src = "none (nothing simulated): static counts, fit and memory only"
    elif sc is not None:
        per_train = sc / n_samples if n_samples > 1 else sc
        has_train = bool(sc[1:].any())
        free_samples = float(n_samples)
        free_sum = sc[0]
        src = ("one recorded sample" if n_samples == 1 else
               f"averages over {n_samples} recorded samples") + \
            (" (training: 3 phases)" if has_train else " (inference)")
    else:
        n_tr, n_ev = tally.samples_train, tally.samples_eval
        per_train = tally.counts.astype(np.float64).copy()
        per_train[0] /= max(n_tr + n_ev, 1)
        per_train[1:] /= max(n_tr, 1)
        has_train = n_tr > 0
        free_samples = float(n_tr + n_ev)
        free_sum = tally.counts[0]
        src = (f"run averages over {n_tr} training + {n_ev} evaluation samples")

    learn = _learning_per_sample(net, tally) if has_train else None
    report = {
        "schema": SCHEMA,
        "generated": datetime.date.today().isoformat(),
        "note": note,
        "network": _network_info(net),
        "source": {"counts": src, "samples": n_samples, "raster": delivered is not None,
                   "tally": None if tally is None else {"samples_train": tally.samples_train,
                                                        "samples_eval": tally.samples_eval,
                                                        "updates": tally.updates}},
        "static": {"layers": cnt.static_counts(net), "parameters": cnt.parameter_totals(net)},
    }
    if has_train:
        ps = cnt.summarise_counts(per_train)
        ps["learning"] = learn
        ps["trace_latches"] = 2 * sum(net.arch.layer_sizes())
        ps["snapshot_neurons"] = sum(net.arch.layer_sizes())
        ps["steps"] = net.hyper.t1 + 2 * net.hyper.t2
        report["per_sample"] = ps
    else:
        report["per_sample"] = None
    if has_counts:
        pi = cnt.summarise_counts(per_train, phases=(0,))
        pi["steps"] = net.hyper.t1
        report["per_inference"] = pi
    else:
        report["per_inference"] = None

    # NeuroBench -----------------------------------------------------------------
    free_delivered = None
    if delivered is not None:
        free_delivered = nb.split_canonical(net, delivered[0])
    if has_counts:
        first = nb.first_step_changes(net)
        wl, notes = nb.workload_metrics(net, free_sum, free_samples, first, free_delivered)
    else:
        wl = {}
        notes = {k: "not computed: no counts (nothing simulated)"
                 for k in ("ActivationSparsity", "SynapticOperations", "MembraneUpdates")}
    report["neurobench"] = {**nb.static_metrics(net), **wl}
    report["neurobench_results"] = nb.results_dict(report["neurobench"], predictions, labels)
    report["neurobench_not_computed"] = {**nb.NOT_COMPUTED, **notes}
    report["neurobench_port"] = list(nb.PORT_RULES)
    if has_counts:     # training counts summed over the samples they come from
        train_sum, train_n = (sc, float(n_samples)) if sc is not None else (per_train, 1.0)
        report["neurochip_variants"] = nb.hardware_variants(
            net, free_sum, free_samples, train_sum if has_train else None,
            train_n if has_train else 0.0)
    else:
        p = cnt.parameter_totals(net)
        report["neurochip_variants"] = {"Footprint_hw_bytes": p["weight_bytes_hw"]
                                        + p["bias_bytes_hw"]}

    # chips ----------------------------------------------------------------------
    report["chips"] = {}
    per_sample_delivered = None if delivered is None else delivered / max(n_samples, 1)
    for key in chips:
        chip = chp.CHIPS[key]
        fit = chp.check_fit(net, chip, storage)
        entry = {k: v for k, v in fit.items() if not k.startswith("_")}
        if has_counts:
            entry["per_inference"] = _chip_costs(net, chip, fit, per_train, (0,),
                                                 per_sample_delivered, None)
        if has_train:
            entry["per_training_sample"] = _chip_costs(net, chip, fit, per_train, (0, 1, 2),
                                                       per_sample_delivered, learn)
        entry["notes"] = list(chip.notes)
        report["chips"][key] = entry

    # memory and compute ---------------------------------------------------------
    report["memory"] = mem.training_memory(net, mem_batch, t_bptt, k_bptt, k_source)
    dense_fwd = 0
    shapes = [net.arch.input_shape] + net.arch.state_shapes()
    for l, spec in enumerate(net.arch.layers, start=1):
        w = net.weights_q[l - 1]
        z = np.zeros(shapes[l - 1], np.int64)
        dense_fwd += (nb.conv_synops(w, spec.padding, z, 1) if spec.kind == "conv"
                      else nb.linear_synops(w, z.reshape(-1), 1))[1]
    report["compute"] = mem.training_compute(net, dense_fwd, t_bptt)
    if has_train and report["per_sample"] is not None:
        report["compute"]["ep_core_events_per_training_sample"] = \
            report["per_sample"]["synaptic_events"]["total"]

    # run summary and figure data -------------------------------------------------
    report["run"] = None if tally is None else tally.as_dict()
    report["figure"] = None
    if delivered is not None:      # the figure shows the first sample's raster
        raster = rasters[0]
        sps = cnt.spikes_per_step(net, raster)
        report["figure"] = {
            "spikes_per_step": sps.T.tolist(),          # (L+1) lists over steps
            "layer_sizes": net.arch.layer_sizes(),
            "phase_bounds": [0, net.hyper.t1, net.hyper.t1 + net.hyper.t2,
                             net.hyper.t1 + 2 * net.hyper.t2][:4 if raster.shape[0] > net.hyper.t1 else 2],
        }
    c = np.asarray(per_train, dtype=np.float64)
    report["events_by_layer_phase"] = None if not has_counts else {
        "fwd": c[..., K_EVENTS_FWD].T.tolist(), "fb": c[..., K_EVENTS_FB].T.tolist(),
        "spikes": c[..., K_SPIKES].T.tolist(), "phases": list(PHASES),
        "note": "[layer][phase]; fwd = into the layer from below, fb = into it from above"}
    return report


# ----------------------------------------------------------------- format
def _si(v, unit="", digits=3) -> str:
    if v is None:
        return "n/a"
    if v == 0:
        return f"0 {unit}".strip()
    prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"),
                (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")]
    a = abs(v)
    for f, p in prefixes:
        if a >= f:
            return f"{v / f:.{digits}g} {p}{unit}".strip()
    return f"{v:.{digits}g} {unit}".strip()


def _bytes(v) -> str:
    if v is None:
        return "n/a"
    for f, u in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
        if v >= f:
            return f"{v / f:.3g} {u}"
    return f"{int(v)} B"


def _energy_line(e: dict) -> str:
    en = e["energy"]
    dyn = sum(t["energy_J"] for k, t in en["terms"].items()
              if t["status"] == "priced" and k != "static")
    stat = en["terms"].get("static", {}).get("energy_J")
    missing = en["unpriced"] + en["uncounted"]
    if dyn == 0 and stat is None:
        return f"unpriced ({len(missing)} terms without an honest price)"
    s = f"{_si(dyn, 'J')} dynamic"
    s += f" + {_si(stat, 'J')} static" if stat is not None else " + static unpriced"
    if missing:
        s += f"; not priced: {', '.join(missing)}"
    return s


def format_table(report: dict, short: bool = True) -> str:
    """Human-readable table; ``short`` is the few-line block printed after every run."""
    net = report["network"]
    w = net["widths"]
    lines = [f"hardware budget  {net['preset'] or ''} {net['arch']}  W{w['weight_bits']} "
             f"S{w['state_bits']} Tr{w['trace_bits']} B{w['bias_bits']}  T1={net['t1']} "
             f"T2={net['t2']}  (counts: {report['source']['counts']})"]
    ps = report.get("per_sample")
    if ps:
        se = ps["synaptic_events"]
        lines.append(f"  synaptic events / training sample: free {_si(se['free'])}  +beta "
                     f"{_si(se['plus'])}  -beta {_si(se['minus'])}  total {_si(se['total'])}")
    nbm = report["neurobench"]
    if report["per_inference"] is not None:
        pi = report["per_inference"]["synaptic_events"]
        so = nbm.get("SynapticOperations")
        nb_txt = (f"NeuroBench Effective_ACs {_si(so['Effective_ACs'])}, Dense {_si(so['Dense'])}"
                  if so else "NeuroBench SynapticOperations: needs a raster")
        lines.append(f"  per inference: synaptic events {_si(pi['total'])} (core, incl. feedback); "
                     f"{nb_txt}; ActivationSparsity {nbm['ActivationSparsity']:.4f}")
    for key, ch in report["chips"].items():
        viol = [v for v in ch["violations"] if v["severity"] == "violation"]
        vtxt = (f"; {len(viol)} violation(s): " +
                ", ".join(sorted({v['code'] for v in viol}))) if viol else ""
        unch = f"; unchecked (U): {', '.join(ch['unchecked'])}" if ch["unchecked"] else ""
        lines.append(f"  {ch['chip']:<22} {ch['cores']} cores ({ch['chips']} chip(s)), binding: "
                     f"{ch['binding_limit']}; synapses {ch['storage']}{vtxt}{unch}")
        if "per_training_sample" in ch:
            lines.append(f"      energy / training sample: {_energy_line(ch['per_training_sample'])}")
        if "per_inference" in ch:
            lines.append(f"      energy / inference:       {_energy_line(ch['per_inference'])}")
    m = report["memory"]
    lines.append(f"  training memory (B={m['batch']}): EP {_bytes(m['ep_bytes'])} vs BPTT "
                 f"{_bytes(m['bptt_bytes'])} at hardware widths (T={m['t_bptt']}, k={m['k_bptt']:.3g}, "
                 f"x{m['ratio_bptt_over_ep']:.1f}); float32: EP {_bytes(m['ep_bytes_fp32'])} vs BPTT "
                 f"{_bytes(m['bptt_bytes_fp32'])} (x{m['ratio_bptt_over_ep_fp32']:.1f})")
    if short:
        return "\n".join(lines)

    # long form -------------------------------------------------------------------
    out = lines + ["", "per layer (static, hardware widths):",
                   f"  {'layer':<10}{'neurons':>9}{'shared w':>11}{'unrolled in (fwd+fb)':>24}"
                   f"{'syn KiB':>10}{'state B/n':>10}"]
    for r in report["static"]["layers"]:
        un = r["synapses_unrolled_in"]
        out.append(f"  {r['name']:<10}{r['neurons']:>9}{r.get('synapses_shared', 0):>11}"
                   f"{un['fwd'] + un['fb']:>24}{r['synapse_bits_unrolled_in'] / 8192:>10.1f}"
                   f"{r['state_bytes_per_neuron']:>10}")
    ev = report["events_by_layer_phase"]
    if ev:
        out += ["", "per layer, per phase: synaptic events in (fwd + fb) / spikes emitted:"]
        for l, (f, b, sp) in enumerate(zip(ev["fwd"], ev["fb"], ev["spikes"])):
            cells = "  ".join(f"{_si(f[p] + b[p]):>8} / {_si(sp[p]):>7}" for p in range(3))
            out.append(f"  layer {l:<3} {cells}")
    for key, ch in report["chips"].items():
        out += ["", f"{ch['chip']}: {ch['cores']} cores, {ch['chips']} chip(s); binding: "
                    f"{ch['binding_limit']}", f"  synapse storage: {ch['storage_note']}"]
        out.append(f"  {'pop':<5}{'neurons':>9}{'cores':>7}  {'binding':<48} alone")
        for r in ch["layers"]:
            out.append(f"  {r['layer']:<5}{r['neurons']:>9}{r['cores']:>7}  {r['binding_label']:<48} "
                       f"{r['alone']}" + (f"  INFEASIBLE: {r['infeasible']}" if r['infeasible'] else ""))
        for v in ch["violations"]:
            out.append(f"  [{v['severity']}] {v['code']}: {v['message']}")
        for k, ref in ch["limits"].items():
            out.append(f"  limit {k}: {ref['value']} {ref['unit']}  ({ref['source']}; {ref['grade']})"
                       + (f" {ref['note']}" if ref["note"] else ""))
        for wname in ("per_inference", "per_training_sample"):
            if wname not in ch:
                continue
            e = ch[wname]
            out.append(f"  {wname.replace('_', ' ')}: time {_si(e['time'].get('seconds'), 's')} "
                       f"unthrottled ({e['time'].get('grade')}), "
                       f"{_si(e['time'].get('realtime_seconds'), 's')} at 1 ms/step")
            if e["energy"]["total_J"] is None:
                out.append("    no term has an honest price (U): " + ", ".join(
                    f"{k} {_si(t['count'])}" for k, t in e["energy"]["terms"].items()))
                continue
            for term, t in e["energy"]["terms"].items():
                pr = t.get("price", {})
                src = f"{pr.get('source', '')} [{pr.get('grade', '')}]" if pr else ""
                if t.get("by") and not pr:
                    src = "; ".join(f"{k} {_si(b['price']['value'], 'J')} [{b['price']['grade']}]"
                                    for k, b in t["by"].items()) + "  " + "; ".join(
                        sorted({b["price"]["source"] for b in t["by"].values()}))
                val = _si(t["energy_J"], "J") if t["energy_J"] is not None else t["status"].upper()
                out.append(f"    {term:<22}{_si(t['count']):>10}  {val:>12}  {src}"
                           + (f"  ({t.get('why')})" if t.get("why") and t["status"] != "priced" else ""))
            for aname, alt in e["energy_alt"].items():
                out.append(f"    alt table {aname}: {_si(alt['total_J'], 'J')} priced"
                           + (f"; unpriced: {', '.join(alt['unpriced'] + alt['uncounted'])}"
                              if alt["unpriced"] or alt["uncounted"] else ""))
    out += ["", "NeuroBench (its rules, on the torch port described in neurobench_port):"]
    for k, v in report["neurobench"].items():
        out.append(f"  {k}: {v}")
    for k, v in report["neurobench_not_computed"].items():
        out.append(f"  {k}: {v}")
    n = report["source"].get("samples") or 0
    out.append(f"  results dict (NeuroBench's Benchmark.run() keys, {n} image(s)): "
               f"{report['neurobench_results']}")
    out += ["neurochip variants (not NeuroBench):"]
    for k, v in report["neurochip_variants"].items():
        out.append(f"  {k}: {v}")
    out += ["", "memory assumptions:"] + [f"  - {a}" for a in report["memory"]["assumptions"]]
    out += ["compute: EP dense ops/training sample "
            f"{_si(report['compute']['ep_dense_ops_per_training_sample'])}, BPTT "
            f"{_si(report['compute']['bptt_dense_ops_per_training_sample'])}"]
    out += [f"  - {a}" for a in report["compute"]["assumptions"]]
    return "\n".join(out)


def to_markdown(report: dict) -> str:
    """The report as Markdown (headline table, per-layer fit, prices with sources, memory)."""
    net = report["network"]
    md = [f"# Hardware budget: `{net['arch']}`", "",
          f"Preset `{net['preset']}`, widths {net['widths']}, T1 = {net['t1']}, T2 = {net['t2']}, "
          f"batch {net['batch_size']}; weights sha256 `{net['weights_sha256'][:16]}…`; "
          f"counts from {report['source']['counts']}.", "", "```", format_table(report, True), "```",
          ""]
    md += ["## Static counts (hardware widths)", "",
           "| layer | neurons | shared weights | unrolled synapses in (fwd + fb) | synapse KiB | "
           "state B/neuron |", "|---|---:|---:|---:|---:|---:|"]
    for r in report["static"]["layers"]:
        un = r["synapses_unrolled_in"]
        md.append(f"| {r['name']} | {r['neurons']} | {r.get('synapses_shared', 0)} | "
                  f"{un['fwd']} + {un['fb']} | {r['synapse_bits_unrolled_in'] / 8192:.1f} | "
                  f"{r['state_bytes_per_neuron']} |")
    for key, ch in report["chips"].items():
        md += ["", f"## {ch['chip']}: {ch['cores']} cores, {ch['chips']} chip(s); binding limit: "
                   f"{ch['binding_limit']}", "", "Fit model:", ""]
        md += [f"- {a}" for a in ch["assumptions"]]
        md += ["",
               "| population | neurons | cores | binding | cores each limit alone needs |",
               "|---|---:|---:|---|---|"]
        for r in ch["layers"]:
            inf = f" **infeasible: {', '.join(r['infeasible'])}**" if r["infeasible"] else ""
            md.append(f"| {r['layer']} | {r['neurons']} | {r['cores']} | {r['binding_label']}{inf} | "
                      f"{r['alone']} |")
        if ch["violations"]:
            md += [""] + [f"- **{v['code']}** ({v['severity']}): {v['message']}"
                          for v in ch["violations"]]
        if ch["unchecked"]:
            md.append(f"- unchecked (grade U): {', '.join(ch['unchecked'])}")
        for wname in ("per_training_sample", "per_inference"):
            if wname not in ch:
                continue
            e = ch[wname]
            md += ["", f"### Energy {wname.replace('_', ' ')} ({e['time']['steps']} steps)", "",
                   f"Time: {_si(e['time'].get('seconds'), 's')} unthrottled (grade "
                   f"{e['time'].get('grade')}: {e['time'].get('why')}); "
                   f"{_si(e['time'].get('realtime_seconds'), 's')} in 1 ms/step real-time mode.", "",
                   ]
            whys = {t.get("why") for t in e["energy"]["terms"].values()}
            if e["energy"]["total_J"] is None:
                md.append("No term has an honest price on this chip (grade U): "
                          + "; ".join(sorted(w for w in whys if w)) + ". Counts: "
                          + ", ".join(f"{k} {_si(t['count'])}" for k, t in e["energy"]["terms"].items())
                          + ".")
                continue
            md += ["| term | count | price | energy | source (grade) |", "|---|---:|---:|---:|---|"]
            for term, t in e["energy"]["terms"].items():
                pr = t.get("price")
                if t.get("by") and not pr:
                    price = "; ".join(f"{s}: {_si(b['price']['value'], 'J')}" for s, b in t["by"].items())
                    source = "; ".join(sorted({f"{b['price']['source']} ({b['price']['grade']})"
                                               for b in t["by"].values()}))
                else:
                    price = _si(pr["value"], pr["unit"]) if pr and pr["value"] is not None else "—"
                    source = f"{pr['source']} ({pr['grade']})" if pr else ""
                en = _si(t["energy_J"], "J") if t["energy_J"] is not None else \
                    f"**{t['status']}**: {t.get('why', '')}"
                md.append(f"| {term} | {_si(t['count'])} | {price} | {en} | {source} |")
            md.append(f"| **total priced** | | | **{_si(e['energy']['total_J'], 'J')}** | "
                      f"unpriced: {', '.join(e['energy']['unpriced'] + e['energy']['uncounted']) or 'none'} |")
            for aname, alt in e["energy_alt"].items():
                md.append(f"\nAlternative table `{aname}` on the same counts: "
                          f"{_si(alt['total_J'], 'J')} priced; unpriced/uncounted: "
                          f"{', '.join(alt['unpriced'] + alt['uncounted']) or 'none'}.")
    m = report["memory"]
    md += ["", "## EP vs BPTT training memory", "",
           "| | EP | BPTT | BPTT/EP |", "|---|---:|---:|---:|",
           f"| hardware widths | {_bytes(m['ep_bytes'])} | {_bytes(m['bptt_bytes'])} | "
           f"{m['ratio_bptt_over_ep']:.1f} |",
           f"| float32 | {_bytes(m['ep_bytes_fp32'])} | {_bytes(m['bptt_bytes_fp32'])} | "
           f"{m['ratio_bptt_over_ep_fp32']:.1f} |",
           f"| BPTT checkpointed, float32 | | {_bytes(m['bptt_checkpointed_bytes_fp32'])} | |", ""]
    md += ["| breakdown | " + " | ".join(m["breakdown"]) + " |",
           "|---|" + "---:|" * len(m["breakdown"])]
    keys = []
    for d in m["breakdown"].values():
        keys += [k for k in d if k not in keys]
    for k in keys:
        md.append(f"| {k} | " + " | ".join(_bytes(d[k]) if k in d else "" for d in
                                           m["breakdown"].values()) + " |")
    md += ["", "Assumptions:", ""] + [f"- {a}" for a in m["assumptions"]]
    cp = report["compute"]
    md += ["", f"Compute price: EP {_si(cp['ep_dense_ops_per_training_sample'])} vs BPTT "
               f"{_si(cp['bptt_dense_ops_per_training_sample'])} dense synaptic ops per training "
               "sample:", ""] + [f"- {a}" for a in cp["assumptions"]]
    md += ["", "## NeuroBench", "", "Rules applied to this torch port:", ""]
    md += [f"- {x}" for x in report["neurobench_port"]]
    md += ["", "| metric | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in report["neurobench"].items()]
    md += [f"| {k} | *{v}* |" for k, v in report["neurobench_not_computed"].items()]
    md += ["", "neurochip variants (**not** NeuroBench metrics):", ""]
    md += [f"- `{k}`: {v}" for k, v in report["neurochip_variants"].items()]
    return "\n".join(md) + "\n"


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_report(report: dict, path: str) -> str:
    """Write ``report`` as JSON (``.json``) or Markdown (``.md``); returns the path."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        text = json.dumps(_jsonable(report), indent=2)
    elif ext in (".md", ".markdown"):
        text = to_markdown(report)
    else:
        raise ValueError(f"report path must end in .json or .md, got {path!r}")
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    atomic_write_text(path, text if text.endswith("\n") else text + "\n")
    return path


# ------------------------------------------------------------------ figure
def plot_report(report, path: str, tally=None, sample_counts=None, sample_raster=None) -> str:
    """PNG: spikes per layer over the steps of the recorded sample (phases marked),
    and per-layer synaptic events by phase (forward and feedback).

    ``report``: a dict from :func:`build_report`; a :class:`Network` is also
    accepted together with ``tally`` and/or ``sample_counts``/``sample_raster``
    (the report is then built here).  The top panel needs a raster.
    """
    if isinstance(report, Network):
        report = build_report(report, tally, sample_counts, sample_raster)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7.5), gridspec_kw={"height_ratios": [3, 2]})
    net = report["network"]
    names = ["input"] + [r["name"] for r in report["static"]["layers"][1:]]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fg = report.get("figure")
    if fg:
        sps = np.asarray(fg["spikes_per_step"], dtype=np.float64)
        sizes = np.asarray(fg["layer_sizes"], dtype=np.float64)
        steps = np.arange(1, sps.shape[1] + 1)
        for l in range(sps.shape[0]):
            ax1.plot(steps, sps[l] / sizes[l], lw=1.0 if sizes[l] >= 100 else 0.6,
                     color=colors[l % len(colors)], alpha=1.0 if sizes[l] >= 100 else 0.6,
                     label=f"{names[l]} ({int(sizes[l])} neurons)")
        b = fg["phase_bounds"]
        shades = ("#f2f2f2", "#dff0d8", "#f9e0e0")
        labels = ("free (beta = 0)", "+beta", "-beta (restored)")
        for p in range(len(b) - 1):
            ax1.axvspan(b[p] + 0.5, b[p + 1] + 0.5, color=shades[p], zorder=0)
            ax1.text((b[p] + b[p + 1]) / 2, 0.97, labels[p], transform=ax1.get_xaxis_transform(),
                     ha="center", va="top", fontsize=9, fontweight="bold")
        for x in b[1:-1]:
            ax1.axvline(x + 0.5, color="k", lw=0.8, ls="--")
        ax1.set_xlim(0.5, sps.shape[1] + 0.5)
        ax1.set_ylabel("spikes per neuron per step")
        ax1.set_xlabel("time step of the sample")
        ax1.set_ylim(0, max(0.05, float((sps / sizes[:, None]).max())) * 1.25)
        ax1.legend(fontsize=8, loc="upper left", ncol=3, bbox_to_anchor=(0.0, 0.92))
    else:
        ax1.text(0.5, 0.5, "no spike raster recorded", ha="center", va="center",
                 transform=ax1.transAxes)
        ax1.set_axis_off()
    ev = report["events_by_layer_phase"] or {"fwd": [[0.0] * 3] * len(names),
                                              "fb": [[0.0] * 3] * len(names)}
    fwd = np.asarray(ev["fwd"], dtype=np.float64)
    fb = np.asarray(ev["fb"], dtype=np.float64)
    x = np.arange(fwd.shape[0])
    width = 0.13
    pcol = ("#7f7f7f", "#2ca02c", "#d62728")
    for p in range(3):
        for j, (arr, kind) in enumerate(((fwd, "forward"), (fb, "feedback"))):
            off = (2 * p + j - 2.5) * width
            vals = np.where(arr[:, p] > 0, arr[:, p], np.nan)
            ax2.bar(x + off, vals, width, color=pcol[p], alpha=1.0 if j == 0 else 0.45,
                    hatch=None if j == 0 else "//", edgecolor="white" if j == 0 else pcol[p],
                    label=f"{PHASES[p]}: {kind}")
    ax2.set_xticks(x)
    ax2.set_xticklabels([f"{l}: {n}" for l, n in enumerate(names)])
    if np.nanmax(np.concatenate([fwd.ravel(), fb.ravel(), [0.0]])) > 0:
        ax2.set_yscale("log")
    else:
        ax2.text(0.5, 0.5, "no counts", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_ylabel("synaptic events into the layer")
    ax2.legend(fontsize=7, ncol=3, loc="upper right")
    ax2.set_title("synaptic events per layer and phase, forward and feedback (the core's counts)",
                  fontsize=10)
    ax1.set_title(f"{net['preset'] or ''} {net['arch']}, W{net['widths']['weight_bits']}: "
                  "spikes per layer over the steps of one sample", fontsize=10)
    fig.tight_layout()
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path

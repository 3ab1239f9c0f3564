"""The hardware-budget report as one JSON-ready dict (rendering: :mod:`.render`).

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
  storage model of the fit, :func:`.fit.check_fit`), per-layer fit,
  violations, and energy/time per inference and per training sample, each
  price with source and grade, unpriced terms listed;
* ``memory`` (EP vs BPTT, with ``assumptions``) and ``compute``;
* ``figure``: spikes per layer per step of the recorded sample.
"""
from __future__ import annotations

import datetime

import numpy as np

from .. import learning
from ..kinds import K_ACTIVE, K_EVENTS_FB, K_EVENTS_FWD, K_SPIKES, K_UPDATES, N_COUNTS, PHASES
from ..network import Network
from . import chips as chp
from . import fit as bfit
from . import pricing
from . import counts as cnt
from . import memory as mem
from . import neurobench as nb
from .render import format_table, plot_figure, to_markdown, write_report  # noqa: F401  (re-exported)

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
    time = pricing.step_time(chip, fit, per_layer, steps)
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
    priced = pricing.price_workload(table, work)
    # the alternative tables price the same counts
    alts = {}
    for name, alt in chip.alt_energy.items():
        alts[name] = pricing.price_workload(alt, {k: v for k, v in work.items() if k in alt})
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
        fit = bfit.check_fit(net, chip, storage)
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


def plot_report(report, path: str, tally=None, sample_counts=None, sample_raster=None) -> str:
    """PNG: spikes per layer over the steps of the recorded sample (phases marked),
    and per-layer synaptic events by phase (forward and feedback); see :func:`.render.plot_figure`.

    ``report``: a dict from :func:`build_report`; a :class:`Network` is also
    accepted together with ``tally`` and/or ``sample_counts``/``sample_raster``
    (the report is then built here).  The top panel needs a raster.
    """
    if isinstance(report, Network):
        report = build_report(report, tally, sample_counts, sample_raster)
    return plot_figure(report, path)

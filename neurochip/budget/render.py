"""The hardware-budget report rendered: a table, Markdown, JSON and a PNG, written atomically.

Presentation only: every figure comes from :func:`.report.build_report`'s dict.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from ..atomic import atomic_path, atomic_write_text
from ..kinds import PHASES


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
def plot_figure(report: dict, path: str) -> str:
    """PNG of a report (written atomically): spikes per layer over the steps of the recorded
    sample (phases marked; needs a raster), and per-layer synaptic events by phase."""
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

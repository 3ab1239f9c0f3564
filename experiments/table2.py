"""The seed's Table II, row by row, in 8-bit integers: ``python -m experiments.table2 ...``.

Reads what the runs wrote and prints one Markdown table with the published figure
beside ours (mean ± std over 3 seeds, ddof 1, and every seed):

* the FC rows from ``python -m experiments.protocol experiments/configs/table2-1fc.json`` and
  ``table2-3fc.json`` (``--protocol``, repeated: their JSON; each arm's rate chosen on the
  validation split);
* the same FC rows at length (``--fc-headline``, repeated: the JSON of ``python -m
  experiments.headline experiments/configs/headline-table2-1fc-e30.json --report``, and 3FC's):
  the rates their sweeps chose, a longer schedule, the row taken at the last epoch every seed
  has finished (marked partial before the planned total), printed under the short row;
* the 2C1FC row from the ``mnist-medium`` headline runs (``--headline``: the JSON of
  ``python -m experiments.headline ... --report``), whose architecture is Ernoult's P-conv
  and whose rate was chosen by the pilots (``--pilots``: the pilots' JSON, for the rates tried);
* the 2C2FC row (the paper's network, ``paper-mnist``) from its headline run
  (``--paper-headline``: the JSON of ``python -m experiments.headline
  experiments/configs/headline-paper-mnist.json --report``; as many of the paper's 250
  epochs and seeds as were trained, marked partial); ``--paper-ms`` (measured milliseconds
  per training sample) gives what its remaining epochs would take.

The published figures are algorithm.md §7.2's (test / train error %).
"""
from __future__ import annotations

import argparse
import json
import sys

from .common import fail, flag_value
from .headline import at_equal_epochs
from .protocol import mean_std

#: (row, architecture, published rows: (source, test %, train % or None))
PUBLISHED = {
    "1FC 784-500-10": [("O'Connor et al. [8]", 2.37, 0.15), ("EqSpike [3]", 2.41, 1.09)],
    "3FC 784-500-500-10": [("O'Connor et al. [8]", 2.42, 0.27)],
    "2C1FC (P-conv) 784-c32k5-c64k5-10": [("Ernoult et al. [9]", 1.02, 0.54)],
    "2C2FC (the paper) c128k3-c256k3-512-10": [("Lin, Bal, Sengupta 2024 (float32, 250 epochs)", 0.97, None)],
}


#: Table II's FC rows by the ``--arch`` their runs were given
FC_ROWS = {"1x28x28:f500-f10": "1FC 784-500-10", "1x28x28:f500-f500-f10": "3FC 784-500-500-10"}


def _seeds_cell(tests: list[float]) -> tuple[str, str]:
    per = " / ".join(f"{100 * t:.2f}" for t in tests)
    if len(tests) >= 2:
        m, s = mean_std(tests)
        return f"**{100 * m:.2f} ± {100 * s:.2f}**", per
    return "-", per


def recipe_of(flags: list[str]) -> str:
    """The headline run's rates and schedule in words (rates: the preset's, chosen by pilots)."""
    from neurochip.network import get_preset
    lrs = ",".join(f"{v:g}" for v in get_preset(flag_value(flags, "--preset", "mnist-medium")).hyper.lrs)
    return f"x1 = {lrs} (pilots)" + schedule_of(flags)


def schedule_of(flags: list[str]) -> str:
    """A run's rate schedule in words, after its rates ("" for a constant rate); the step
    drop's factor was chosen by the headline pilots (docs/results.md §9.3)."""
    from neurochip.schedule import LRSchedule
    default = LRSchedule()       # the CLI's schedule without the flag
    kind = flag_value(flags, "--lr-schedule", default.kind)
    if kind == "step":
        gamma = flag_value(flags, "--lr-gamma", f"{default.gamma:g}")
        return f", x{gamma} per {flag_value(flags, '--lr-step-epochs', str(default.step_epochs))} epochs (pilots)"
    if kind == "cosine":
        return f", cosine to x{flag_value(flags, '--lr-min-factor', f'{default.min_factor:g}')}"
    return ""


def equal_epochs(report: dict) -> dict:
    """A headline report's seeds at the last epoch all have finished (a report holds
    "equal_epochs" only once every planned seed has run: else from the seeds run)."""
    return report.get("equal_epochs") or at_equal_epochs(report["seeds"])


def headline_cells(headline: dict) -> tuple[str, str, str, str]:
    """(epochs, mean ± std, per seed, mean train error on the fly) of a headline report, every
    seed at the last epoch all have finished; "(partial)" where fewer than planned."""
    equal = equal_epochs(headline)
    eq = equal["seeds"]
    cell, per = _seeds_cell([eq[s]["test_error"] for s in sorted(eq)])
    if len(eq) < 3:
        per += f" (seed{'s' if len(eq) > 1 else ''} {', '.join(sorted(eq))} only)"
    train = [v["train_error_on_the_fly"] for v in eq.values()]
    tr = "-" if not train else f"{100 * sum(train) / len(train):.2f}"
    done, total = equal["epoch"], headline["total_epochs"]
    epochs = str(total) if done >= total else f"{done} of {total} (partial)"
    return epochs, cell, per, tr


def fc_row(report: dict) -> tuple[str, str]:
    """(Table II row, Markdown line) of an FC row's run at length (a headline report)."""
    flags = report["flags"]
    row = FC_ROWS.get(flag_value(flags, "--arch"))
    if row is None:
        raise ValueError(f"{report['name']}: --arch {flag_value(flags, '--arch')!r} is not a Table II FC row "
                         f"({', '.join(FC_ROWS)})")
    epochs, cell, per, tr = headline_cells(report)
    rates = f"`{report['name']}`: {flag_value(flags, '--lrs')} (the row's sweep){schedule_of(flags)}"
    return row, f"| {row} | {_published(row)} | {rates} | {epochs} | {cell} | {per} | {tr} |"


def _published(row: str) -> str:
    return "; ".join(f"{src}: {t:.2f} / {'-' if tr is None else f'{tr:.2f}'}"
                     for src, t, tr in PUBLISHED[row])


def rows(protocols: list[dict], headline: dict | None, paper_ms: float | None,
         paper: dict | None = None, fc_reports: list[dict] = ()) -> list[str]:
    out = ["| row | published (test / train error %) | ours, 8-bit: rate (chosen on validation) | "
           "epochs | test error % (mean ± std) | per seed (0 / 1 / 2) | train error % on the fly, "
           "best epoch (mean) |", "|---|---|---|---|---|---|---|"]

    at_length = {}
    for report in fc_reports:
        row, line = fc_row(report)
        at_length.setdefault(row, []).append(line)
    for protocol, arm, a in ((p, arm, a) for p in protocols for arm, a in p["arms"].items()):
        row = arm if arm in PUBLISHED else None
        if row is None or a.get("chosen_factor") is None:
            continue
        n_ep = flag_value(protocol["config"]["full"]["flags"], "--epochs")
        f = a["chosen_factor"]
        rates = ",".join(f"{v * f:.10g}" for v in a["base_lrs"])
        runs = [a["full"][s] for s in ("0", "1", "2") if s in a["full"]]
        cell, per = _seeds_cell([r["test_error"] for r in runs])
        train = [r["train_error"] for r in runs]
        tr = "-" if not train else f"{100 * sum(train) / len(train):.2f}"
        part = "" if len(runs) == 3 else f" (partial: {len(runs)} of 3 seeds)"
        out.append(f"| {row} | {_published(row)} | x{f:g} = {rates} | {n_ep} | {cell}{part} | {per or '-'} | {tr} |")
        out.extend(at_length.pop(row, []))
    for lines in at_length.values():      # a row at length without its short row
        out.extend(lines)
    row = "2C1FC (P-conv) 784-c32k5-c64k5-10"
    if headline:
        epochs, cell, per, tr = headline_cells(headline)
        out.append(f"| {row} | {_published(row)} | `{headline['name']}`: {recipe_of(headline['flags'])} | "
                   f"{epochs} | {cell} | {per} | {tr} |")
    row = "2C2FC (the paper) c128k3-c256k3-512-10"
    from neurochip.network import get_preset
    preset = get_preset("paper-mnist")
    left = preset.epochs - (equal_epochs(paper)["epoch"] if paper else 0)
    cost = ""
    if paper_ms:
        epoch_h = 60000 * paper_ms / 1000 / 3600
        cost = (f"{paper_ms:g} ms per training sample -> {epoch_h:.1f} h per 60,000-image epoch, "
                f"{left * epoch_h / 24:.0f} days for the {left} epochs left")
    if paper:
        lrs = ",".join(f"{v:g}" for v in preset.hyper.lrs)
        epochs, cell, per, tr = headline_cells(paper)
        note = f"`{paper['name']}`: the paper's rates {lrs}, constant (not tuned here)"
        out.append(f"| {row} | {_published(row)} | {note}{'; ' + cost if cost else ''} | {epochs} | {cell} "
                   f"| {per} | {tr} |")
    else:
        out.append(f"| {row} | {_published(row)} | not trained here{': ' + cost if cost else ''} "
                   "| - | - | - | - |")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.table2", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", required=True, action="append",
                   help="JSON of experiments.protocol (experiments/configs/table2-*.json); repeatable")
    p.add_argument("--fc-headline", default=[], action="append",
                   help="JSON of experiments.headline --report of an FC row at length "
                        "(experiments/configs/headline-table2-*.json); repeatable")
    p.add_argument("--headline", default=None, help="JSON of experiments.headline --report (mnist-medium)")
    p.add_argument("--paper-headline", default=None,
                   help="JSON of experiments.headline --report (paper-mnist), however far it got")
    p.add_argument("--paper-ms", type=float, default=None,
                   help="measured ms per paper-mnist training sample (docs/speed.md)")
    a = p.parse_args(argv)
    protocols = []
    for path in a.protocol:
        with open(path) as fh:
            protocols.append(json.load(fh))
    headline = paper = None
    if a.headline:
        with open(a.headline) as fh:
            headline = json.load(fh)
    if a.paper_headline:
        with open(a.paper_headline) as fh:
            paper = json.load(fh)
    fc_reports = []
    for path in a.fc_headline:
        with open(path) as fh:
            fc_reports.append(json.load(fh))
    try:
        lines = rows(protocols, headline, a.paper_ms, paper, fc_reports)
    except ValueError as e:
        fail(str(e))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

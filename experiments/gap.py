"""What the integers cost: ``python -m experiments.gap CONFIG.json``.

One network, one schedule, one learning rate, one data order, every seed of
``seeds``; only the arithmetic changes between the arms:

* each integer arm is ``neurochip.run`` with the configuration's ``common``
  flags plus the arm's (e.g. ``--bits 8`` against ``--bits 16 --state-bits 16
  --trace-bits 16 --bias-bits 24``), trained and cached as
  ``experiments.protocol`` does (so a run shared with a protocol comparison,
  such as the 8-bit arm of Table II, is trained once);
* the ``real`` arm (optional) is :mod:`experiments.real_run`: the real-valued
  spiking EP model of ``reference/real.py`` (float32) on exactly the same
  images, validation split, order, network and rates.

Every run reports its best-on-validation weights' test error.  The table gives
each arm's mean ± std (ddof 1) and every seed, and each arm's difference from
the ``baseline`` arm per seed (paired: same seed = same initial draw, split
and order), mean ± std.  Outputs: ``--out/NAME.md`` and ``NAME.json``.

The configuration (JSON)::

    {"name": "gap-1fc", "title": "...", "baseline": "8-bit",
     "common": ["--preset", "mnist-small", "--arch", "1x28x28:f500-f10", "--lrs", "0.1,0.04",
                "--dataset", "mnist", "--data-dir", "{data}/mnist", "--val-split", "5000",
                "--epochs", "3", "--pool", "avg"],
     "arms": {"8-bit": ["--bits", "8"], "16-bit": ["--bits", "16", "--state-bits", "16", ...]},
     "real": "real-valued (float32)",
     "seeds": [0, 1, 2]}
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .common import driver_setup, fail, log, machine, read_config, write_report
from .protocol import cached, canonical, mean_std, run_once

#: the flags of ``common`` that the real-valued run takes (the rest are integer-only or outputs)
REAL_FLAGS = ("--preset", "--arch", "--lrs", "--dataset", "--data-dir", "--epochs", "--val-split",
              "--train-samples", "--test-samples", "--lr-schedule", "--lr-step-epochs", "--lr-gamma",
              "--lr-min-factor")


def load_config(path: str, data_root: str | None) -> dict:
    cfg = read_config(path, data_root, ("name", "common", "arms", "seeds", "baseline"))
    if len(cfg["seeds"]) < 3:
        fail(f"{path}: seeds needs at least 3 seeds")
    if "--val-split" not in cfg["common"] or "--lrs" not in cfg["common"]:
        fail(f"{path}: common needs --val-split and --lrs (one rate for every arm)")
    cfg.setdefault("title", cfg["name"])
    return cfg


def real_argv(cfg: dict, seed: int) -> list[str]:
    c, out, i = cfg["common"], [], 0
    while i < len(c):
        flag = c[i]
        has_value = i + 1 < len(c) and not c[i + 1].startswith("--")
        if flag in REAL_FLAGS:
            out += c[i:i + 2] if has_value else [flag]
        i += 2 if has_value else 1
    return out + ["--seed", str(seed)]


def run_gap(cfg: dict, cache: str, log, report_only: bool = False) -> dict:
    """Every arm and seed; two drivers on the same configuration share the runs (each run is
    trained by one; runs another process holds are taken last, waited for)."""
    def one_run(argv, wait, model="core"):
        return (cached(argv, cache, model) if report_only
                else run_once(argv, cache, 50, log, wait=wait, model=model))

    jobs = [(arm, seed, one_run, canonical(list(cfg["common"]) + list(flags) + ["--seed", str(seed)]))
            for arm, flags in cfg["arms"].items() for seed in cfg["seeds"]]
    if cfg.get("real"):
        jobs += [(cfg["real"], seed, lambda argv, wait: one_run(argv, wait, "real"),
                  real_argv(cfg, seed)) for seed in cfg["seeds"]]
    arms = {arm: {} for arm, _, _, _ in jobs}
    for wait in (False, True):
        for arm, seed, run, argv in jobs:
            if seed in arms[arm] or (report_only and wait):
                continue
            r = run(argv, wait)
            if r is not None:
                arms[arm][seed] = r
                log(f"{cfg['name']}: {arm} seed {seed}: test {r['test_error']:.2%}")
    # in the configuration's seed order, whichever run finished first (the same table from every driver)
    arms = {arm: {s: runs[s] for s in cfg["seeds"] if s in runs} for arm, runs in arms.items()}
    res = {"name": cfg["name"], "title": cfg["title"], "machine": machine(), "config": cfg, "arms": {}}
    base = arms[cfg["baseline"]]
    for arm, runs in arms.items():
        a = res["arms"][arm] = {
            "seeds": {s: {"test_error": r["test_error"], "val_error": (r.get("best") or {}).get("val_error"),
                          "best_epoch": (r.get("best") or {}).get("epoch"),
                          "history": r.get("history"), "seconds": r.get("seconds")}
                      for s, r in runs.items()}}
        if len(runs) == len(cfg["seeds"]):
            a["test_error_mean_std"] = mean_std([r["test_error"] for r in runs.values()])
            if arm != cfg["baseline"] and len(base) == len(cfg["seeds"]):
                a["minus_baseline_mean_std"] = mean_std([runs[s]["test_error"] - base[s]["test_error"]
                                                         for s in cfg["seeds"]])
    res["missing_runs"] = sum(len(cfg["seeds"]) - len(r) for r in arms.values())
    return res


def markdown(res: dict, command: str) -> str:
    cfg = res["config"]
    seeds = cfg["seeds"]
    lines = [f"### {res['title']}", "", f"Command: `{command}`  ",
             f"Machine: {res['machine']}; date {time.strftime('%Y-%m-%d', time.gmtime())}.  ",
             f"Common flags: `{' '.join(cfg['common'])}`", "",
             f"| arm | flags | test error % (mean ± std) | per seed ({', '.join(map(str, seeds))}) | "
             f"minus {cfg['baseline']}, per seed (mean ± std) | validation error % per seed | seconds per run |",
             "|---|---|---|---|---|---|---|"]
    base = res["arms"][cfg["baseline"]]["seeds"]
    for arm, a in res["arms"].items():
        flags = " ".join(cfg["arms"].get(arm, ["(reference/real.py, float32)"]))
        ms = a.get("test_error_mean_std")
        cell = "-" if ms is None else f"**{100 * ms[0]:.2f} ± {100 * ms[1]:.2f}**"
        per = " / ".join("-" if s not in a["seeds"] else f"{100 * a['seeds'][s]['test_error']:.2f}" for s in seeds)
        vals = " / ".join("-" if s not in a["seeds"] or a["seeds"][s]["val_error"] is None
                          else f"{100 * a['seeds'][s]['val_error']:.2f}" for s in seeds)
        if arm == cfg["baseline"]:
            diff = "-"
        else:
            d = [f"{100 * (a['seeds'][s]['test_error'] - base[s]['test_error']):+.2f}"
                 if s in a["seeds"] and s in base else "-" for s in seeds]
            mb = a.get("minus_baseline_mean_std")
            diff = " / ".join(d) + ("" if mb is None else f" ({100 * mb[0]:+.2f} ± {100 * mb[1]:.2f})")
        secs = [a["seeds"][s]["seconds"] for s in seeds if s in a["seeds"] and a["seeds"][s]["seconds"]]
        sec = "-" if not secs else f"{sum(secs) / len(secs):.0f}"
        lines.append(f"| {arm} | `{flags}` | {cell} | {per} | {diff} | {vals} | {sec} |")
    if res["missing_runs"]:
        lines += ["", f"**Partial: {res['missing_runs']} run(s) not finished.**"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.gap", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--out", default=None, help="folder for NAME.md/.json (default runs/gap)")
    p.add_argument("--cache", default=None, help="per-run cache (default runs/protocol/runs)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=None, help="Numba threads")
    p.add_argument("--report-only", action="store_true")
    a = p.parse_args(argv)
    cfg = load_config(a.config, a.data_root)
    out = a.out or os.path.join("runs", "gap")
    cache = driver_setup(a)
    os.makedirs(cache, exist_ok=True)
    res = run_gap(cfg, cache, log, a.report_only)
    command = "python -m experiments.gap " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(res, command)
    write_report(out, cfg["name"], text, res)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pilot runs that choose a preset: ``python -m experiments.pilots CONFIG.json``.

Each pilot is one ``neurochip.run`` (the configuration's ``common`` flags, its
``budget`` flags and the pilot's own), trained with seed 0 and scored on a
validation split carved from the training set (``--val-split`` is required in
``budget``; the test set is never used: ``--test-samples 1``).  The table lists
every pilot's validation error, its wall time in this process and its spikes
per sample; the choice made from it is written in the preset's ``about`` and
in docs/results.md.

It resumes and shares work like ``experiments.protocol`` (the same per-run
cache, keyed by the flags, and per-run locks): two processes may run the same
configuration at once and each trains the pilots the other has not started.

The configuration (JSON)::

    {"name": "pilots-mnist", "title": "...",
     "common": ["--dataset", "mnist", "--data-dir", "{data}/mnist", "--bits", "8"],
     "budget": ["--train-samples", "12000", "--val-split", "2000", "--test-samples", "1",
                "--epochs", "1", "--seed", "0"],
     "runs": {"c16k5-c32k3 T40/10 x0.5": ["--arch", "...", "--lrs", "..."], ...}}

A pilot may replace a ``budget`` flag (e.g. ``--epochs 3`` for a schedule pilot).

``"model": "real"`` makes every pilot the real-valued twin instead
(:mod:`experiments.real_run`: ``reference/real.py``, float32; its flags, e.g.
``--preset``, ``--lrs``, ``--dataset``, ``--train-samples``): the same images,
split and order as the integer pilot with the same flags, so an arm of an
integer-versus-real comparison gets its own rate the same way.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .common import driver_setup, fail, log, machine, read_config, write_report
from .protocol import canonical, run_once


def load_config(path: str, data_root: str | None) -> dict:
    cfg = read_config(path, data_root, ("name", "runs", "budget"))
    if "--val-split" not in cfg["budget"]:
        fail(f"{path}: budget needs --val-split (choices are made on a "
             "validation split, never on the test set)")
    cfg.setdefault("title", cfg["name"])
    cfg.setdefault("common", [])
    cfg.setdefault("model", "core")
    if cfg["model"] not in ("core", "real"):
        fail(f"{path}: 'model' must be \"core\" or \"real\", got {cfg['model']!r}")
    if cfg["model"] == "real":
        from .real_run import parser
        known = {o for action in parser()._actions for o in action.option_strings}
        for label in cfg["runs"]:
            argv = pilot_argv(cfg, label)
            unknown = [f for f in argv if f.startswith("--") and f not in known]
            if unknown:
                fail(f"{path}: pilot {label!r}: experiments.real_run takes no {', '.join(unknown)}")
            if "--lrs" not in argv:
                fail(f"{path}: pilot {label!r}: a real-valued pilot needs --lrs")
    return cfg


def pilot_argv(cfg: dict, label: str) -> list[str]:
    """The pilot's flags: common + budget, with the pilot's own flags replacing budget's."""
    own = list(cfg["runs"][label])
    owned = {f for f in own if f.startswith("--")}
    budget, i = [], 0
    b = cfg["budget"]
    while i < len(b):
        flag = b[i]
        has_value = i + 1 < len(b) and not b[i + 1].startswith("--")
        if flag not in owned:
            budget += b[i:i + 2] if has_value else [flag]
        i += 2 if has_value else 1
    return canonical(list(cfg["common"]) + budget + own)


def run_pilots(cfg: dict, cache: str, checkpoint_every: int, log, report_only: bool = False) -> dict:
    res = {"name": cfg["name"], "title": cfg["title"], "machine": machine(), "config": cfg,
           "runs": {}, "missing_runs": 0}
    jobs = {label: pilot_argv(cfg, label) for label in cfg["runs"]}
    from .protocol import cached
    for wait in ((None,) if report_only else (False, True)):
        for label, argv in jobs.items():
            if label in res["runs"]:
                continue
            r = (cached(argv, cache, cfg["model"]) if report_only
                 else run_once(argv, cache, checkpoint_every, log, wait=wait, model=cfg["model"]))
            if r is None:
                continue
            best = r.get("best") or {}
            # a real-valued run has no learning-health record and counts no spikes
            res["runs"][label] = {
                "argv": argv, "val_error": best.get("val_error"), "best_epoch": best.get("epoch"),
                "history": r["history"], "stopped": r.get("learning_health", {}).get("stopped", False),
                "spikes_per_sample": r.get("spikes_per_sample"), "updates": r["updates"],
                "train_seconds": r.get("train_seconds", r.get("seconds")),
                "wall_seconds": r.get("wall_seconds_this_process")}
            log(f"{cfg['name']}: {label}: val {best.get('val_error', float('nan')):.2%}")
    res["missing_runs"] = len(jobs) - len(res["runs"])
    return res


def markdown(res: dict, command: str) -> str:
    cfg = res["config"]
    lines = [f"### {res['title']}", "", f"Command: `{command}`  ",
             f"Machine: {res['machine']}; date {time.strftime('%Y-%m-%d', time.gmtime())}.  ",
             f"Common flags: `{' '.join(cfg['common'])}`  ",
             f"Budget: `{' '.join(cfg['budget'])}` (a pilot's own flags replace these)  ",
             "Model: " + ("the real-valued twin (experiments.real_run: reference/real.py, "
                          "binary spikes, float weights, no rounding)" if cfg["model"] == "real"
                          else "the integer core (neurochip.run)"), "",
             "† = learning stopped (the learning-health check, docs/results.md §6).", "",
             "| pilot | own flags | validation error % (per epoch) | updates of the best weights | "
             "spikes / sample | train seconds |", "|---|---|---|---|---|---|"]
    for label in cfg["runs"]:
        r = res["runs"].get(label)
        own = f"`{' '.join(cfg['runs'][label])}`" if cfg["runs"][label] else "none"
        if r is None:
            lines.append(f"| {label} | {own} | - | - | - | - |")
            continue
        per_epoch = ", ".join(f"{100 * h['val_error']:.2f}" for h in r["history"] if "val_error" in h)
        mark = " †" if r["stopped"] else ""
        spikes = "-" if r["spikes_per_sample"] is None else f"{r['spikes_per_sample']:,.0f}"
        lines.append(f"| {label} | {own} | **{100 * r['val_error']:.2f}**{mark} ({per_epoch}) | "
                     f"{r['updates']} | {spikes} | {r['train_seconds']:.0f} |")
    if res["missing_runs"]:
        lines += ["", f"**Partial: {res['missing_runs']} pilot(s) not finished.**"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.pilots", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="pilot configuration (JSON), e.g. experiments/configs/pilots-mnist.json")
    p.add_argument("--out", default=None, help="folder for NAME.md/.json (default runs/pilots)")
    p.add_argument("--cache", default=None, help="per-run cache (default runs/protocol/runs, shared "
                                                 "with experiments.protocol)")
    p.add_argument("--data-root", default=None, help="folder holding mnist/ and fashion-mnist/")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=None, help="Numba threads")
    p.add_argument("--report-only", action="store_true", help="train nothing: tabulate finished pilots")
    a = p.parse_args(argv)
    cfg = load_config(a.config, a.data_root)
    out = a.out or os.path.join("runs", "pilots")
    cache = driver_setup(a)
    res = run_pilots(cfg, cache, a.checkpoint_every, log, a.report_only)
    command = "python -m experiments.pilots " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(res, command)
    write_report(out, cfg["name"], text, res)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

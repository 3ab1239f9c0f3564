"""Long headline runs, all seeds advanced together: ``python -m experiments.headline CONFIG.json ...``.

Each configuration is one ``neurochip.run`` command (its ``flags``, with
``--epochs`` the *planned* total: a cosine schedule depends on it) trained
with every seed of ``seeds``.  The driver advances the runs round-robin, one
epoch at a time: a run with the fewest finished epochs of its configuration
continues to the end of its next epoch (``--resume`` of the run's checkpoint,
bit-identical to an uninterrupted run) and stops it with SIGTERM as soon as
its checkpoint shows the target epoch finished (the CLI finishes the
minibatch, saves and exits; the next step resumes from there).  So no seed is
more than one epoch ahead of another whenever the driver is stopped (two
drivers started on the same configurations share the runs, one lock per run,
with the same guarantee), and the runs
are exactly the uninterrupted ``--epochs TOTAL`` runs, cut into pieces.

State (resumable, small, meant to be committed so a fresh checkout can
continue): ``--state DIR/NAME/seed{S}.npz`` (the run's checkpoint: latest
weights, best-on-validation weights, the per-epoch history with validation
and test error) and ``DIR/NAME/log.json`` (every piece's wall time).  Run the
same command again to continue; ``--until-epoch K`` stops after epoch K of
every run, ``--stop-at HH:MM`` (UTC) stops the running piece at that time
(saved, resumable).

A configuration with ``"continues": "OTHER"`` starts each seed from the
finished checkpoint of configuration OTHER (copied from ``DIR/OTHER/``) and
trains it on to its own ``--epochs``: a longer plan whose first epochs are
OTHER's run (the CLI refuses a schedule that would change the rate factor of
an epoch already trained, so the continued run is bit for bit an
uninterrupted run of the longer plan).  ``--seeds 0`` trains only seed 0 of
each configuration (a pilot before the other seeds).

``--report OUT`` trains nothing and writes ``OUT/NAME.md``, ``OUT/NAME.json``
and ``OUT/NAME.png`` (validation and test error per epoch, every seed) from
the checkpoints.  ``--versus OUT`` trains nothing and compares the
configurations seed by seed at equal epochs, the first the baseline (best
validation error, what a choice may use, and its test error; paired
differences, mean +- std) and epoch by epoch (each configuration's errors in
that epoch, mean +- std, and a figure of the mean curves), in
``OUT/versus-NAME-NAME.{md,json,png}``.

The configuration (JSON)::

    {"name": "mnist-medium", "title": "...",
     "flags": ["--preset", "mnist-medium", "--dataset", "mnist", "--data-dir", "{data}/mnist",
               "--val-split", "5000", "--epochs", "30"],
     "seeds": [0, 1, 2],
     "continues": "mnist-medium-20",          # optional
     "model": "core"}                         # optional: "core" (default) or "real"

``"model": "real"`` makes the configuration the real-valued twin of an
integer one: its ``flags`` are :mod:`experiments.real_run`'s (binary spikes,
float32 weights and states, the same images, split and sample order per seed),
its state ``DIR/NAME/seed{S}.npz`` that script's per-epoch state (each piece
stops at an epoch's end with ``--until-epoch``; a piece stopped by
``--stop-at`` loses its unfinished epoch), and ``--versus`` sets it beside
the integer runs (``--publish`` takes integer checkpoints only).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time

from .common import fail, flag_value, machine, read_config, write_report
from .protocol import mean_std

DEFAULT_STATE = os.path.join("experiments", "state")
POLL_SECONDS = 2.0
#: what trains a configuration: the integer core's CLI, or the real-valued twin
MODELS = {"core": "neurochip.run", "real": "experiments.real_run"}


def load_config(path: str, data_root: str | None) -> dict:
    cfg = read_config(path, data_root, ("name", "flags", "seeds"))
    flags = cfg["flags"]
    if "--val-split" not in flags or "--epochs" not in flags:
        fail(f"{path}: flags need --val-split (best-on-validation weights) and "
             "--epochs (the planned total)")
    if "--seed" in flags:
        fail(f"{path}: the seeds come from 'seeds', not --seed")
    if len(cfg["seeds"]) < 3:
        fail(f"{path}: seeds needs at least 3 seeds")
    if not isinstance(cfg.get("continues", ""), str) or cfg.get("continues") == cfg["name"]:
        fail(f"{path}: 'continues' must name another configuration")
    cfg.setdefault("title", cfg["name"])
    cfg.setdefault("model", "core")
    if cfg["model"] not in MODELS:
        fail(f"{path}: 'model' must be one of {', '.join(MODELS)}, got {cfg['model']!r}")
    if cfg["model"] == "real" and "--lrs" not in flags:
        fail(f"{path}: a real-valued configuration's flags need --lrs (experiments.real_run)")
    cfg["total_epochs"] = int(flag_value(flags, "--epochs"))
    cfg["lineage"] = ancestry(cfg, os.path.dirname(os.path.abspath(path)))
    return cfg


def ancestry(cfg: dict, folder: str) -> list[str]:
    """``cfg``'s name, the configuration it continues, the one that continues, and so on: each
    parent's ``continues`` is read from the configuration of that name in ``folder`` (the chain
    stops at a parent whose configuration is not there, or at a name already seen)."""
    names, parent, by_name = [cfg["name"]], cfg.get("continues"), None
    while parent and parent not in names:
        names.append(parent)
        if by_name is None:
            by_name = {}
            for path in sorted(os.listdir(folder)):
                try:
                    with open(os.path.join(folder, path)) as fh:
                        other = json.load(fh)
                except (OSError, ValueError):
                    continue
                if isinstance(other, dict) and isinstance(other.get("name"), str):
                    by_name.setdefault(other["name"], other)
        parent = (by_name.get(parent) or {}).get("continues")
        parent = parent if isinstance(parent, str) else None
    return names


def checkpoint_path(state: str, cfg: dict, seed: int) -> str:
    return os.path.join(state, cfg["name"], f"seed{seed}.npz")


def is_real_state(path: str) -> bool:
    """Whether ``path`` is :mod:`experiments.real_run`'s state (its record is ``meta``; a core
    checkpoint's is ``__meta__``)."""
    import numpy as np
    with np.load(path) as z:
        return "meta" in z.files and "__meta__" not in z.files


def training_of(path: str) -> dict | None:
    """The checkpoint's training record (position, history, best), or None if there is none yet
    (the driver polls this while a piece runs: it reads the record and nothing more)."""
    if not os.path.exists(path):
        return None
    if is_real_state(path):
        from .real_run import training_record
        return training_record(path)
    from neurochip.checkpoint import load_checkpoint
    return load_checkpoint(path)[1]


def run_of(path: str) -> tuple[dict | None, list[float] | None]:
    """One read of the run at ``path`` for a report: its training record (:func:`training_of`)
    and, per layer, the fraction of its latest integer weights at either end of their range
    (:func:`neurochip.health.rail_fractions`; None for a real-valued state or no run)."""
    if not os.path.exists(path) or is_real_state(path):
        return training_of(path), None
    from neurochip.checkpoint import load_checkpoint
    from neurochip.health import rail_fractions
    net, training = load_checkpoint(path, which="last")
    return training, rail_fractions(net.weights_q, net.constants().w_range)


def epochs_done(path: str) -> int:
    """Finished epochs of the run at ``path`` (0 before its first checkpoint); reads only the metadata."""
    if not os.path.exists(path):
        return 0
    if is_real_state(path):
        from .real_run import read_meta
        return len(read_meta(path)["history"])
    import numpy as np
    with np.load(path) as z:
        meta = json.loads(z["__meta__"].tobytes().decode())
    return int((meta.get("training") or {}).get("epoch", 0))


class Log:
    """``log.json`` beside the checkpoints: one entry per piece of training."""

    def __init__(self, path: str):
        self.path = path

    def add(self, entry: dict) -> None:
        """Append ``entry`` (with the machine it ran on) under a lock: two drivers share the file."""
        import fcntl
        from neurochip.atomic import atomic_write_bytes
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        here = machine()
        with open(self.path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            pieces = []
            if os.path.exists(self.path):
                with open(self.path) as fh:
                    pieces = json.load(fh)["pieces"]
            pieces.append(dict(entry, machine=here))
            atomic_write_bytes(self.path, (json.dumps({"machine": here, "pieces": pieces},
                                                      indent=1) + "\n").encode())


def advance(cfg: dict, seed: int, target: int, state: str, stop_at: float | None,
            threads: int, log) -> str:
    """Train the run to the end of epoch ``target``; returns 'done', 'target', 'deadline' or
    'busy' (another driver process holds the run: two drivers share the work)."""
    import fcntl
    ck = checkpoint_path(state, cfg, seed)
    os.makedirs(os.path.dirname(ck), exist_ok=True)
    with open(ck[:-len(".npz")] + ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "busy"
        return _advance(cfg, seed, target, state, stop_at, threads, log, ck)


def start_from_parent(cfg: dict, seed: int, state: str, ck: str) -> None:
    """A continuing configuration's first step: the parent run's finished checkpoint becomes the
    seed's checkpoint (written atomically; the parent's folder is only read)."""
    parent = checkpoint_path(state, {"name": cfg["continues"]}, seed)
    if os.path.exists(parent) and is_real_state(parent) != (cfg["model"] == "real"):
        fail(f"{cfg['name']} seed {seed}: continues {cfg['continues']}, whose run {parent} is "
             f"{'real-valued' if cfg['model'] == 'core' else 'an integer run'}; a run continues "
             "only a run of its own model")
    t = training_of(parent)
    if t is None or int(t.get("epoch", 0)) < int(t.get("epochs") or 0) or t.get("batch"):
        fail(f"{cfg['name']} seed {seed}: continues {cfg['continues']}, whose run {parent} "
             "is not finished")
    from neurochip.atomic import atomic_write_bytes
    with open(parent, "rb") as fh:
        atomic_write_bytes(ck, fh.read())


def _advance(cfg, seed, target, state, stop_at, threads, log, ck) -> str:
    if cfg.get("continues") and not os.path.exists(ck):
        start_from_parent(cfg, seed, state, ck)
    start = epochs_done(ck)
    if start >= target:
        return "target"
    out = os.path.join(state, cfg["name"], f"seed{seed}.json")
    real = cfg["model"] == "real"
    argv = [sys.executable, "-m", MODELS[cfg["model"]]] + cfg["flags"] + ["--seed", str(seed)]
    if real:                   # resumes from its state by itself; stops at the epoch's end
        argv += ["--state", ck, "--threads", str(threads), "--json", out, "--until-epoch", str(target)]
    else:
        argv += ["--save", ck, "--checkpoint-every", "100", "--quiet", "--threads", str(threads),
                 "--json", out] + (["--resume", ck] if os.path.exists(ck) else [])
    t0 = time.time()
    log(f"{cfg['name']} seed {seed}: epoch {start} -> {target} (pid of the piece follows)")
    child = subprocess.Popen(argv)
    log(f"  pid {child.pid}")
    outcome = None

    def forward(signum, frame):           # stopping the driver stops the piece (saved, resumable)
        nonlocal outcome
        outcome = "deadline"
        child.send_signal(signal.SIGTERM)
    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    while child.poll() is None:
        time.sleep(POLL_SECONDS)
        if outcome is None and stop_at is not None and time.time() >= stop_at:
            outcome = "deadline"
            child.send_signal(signal.SIGTERM)
        elif outcome is None and target < cfg["total_epochs"] and not real:
            try:
                reached = epochs_done(ck)
            except Exception:          # noqa: BLE001 - a checkpoint being replaced; look again
                continue
            if reached >= target:
                outcome = "target"
                child.send_signal(signal.SIGTERM)
    code = child.returncode
    for sig, handler in old.items():
        signal.signal(sig, handler)
    if outcome is None:
        if code != 0:
            raise SystemExit(f"error: {cfg['name']} seed {seed}: {MODELS[cfg['model']]} exited with {code}")
        outcome = "done" if epochs_done(ck) >= cfg["total_epochs"] else "target"
    # 128 + SIGTERM: stopped and saved; -SIGTERM: the signal came after training had ended (the
    # epoch-end checkpoint is written, atomically, before that), so nothing is lost either way
    elif code not in (0, 128 + signal.SIGTERM, -signal.SIGTERM):
        raise SystemExit(f"error: {cfg['name']} seed {seed}: {MODELS[cfg['model']]} exited with {code}")
    Log(os.path.join(state, cfg["name"], "log.json")).add(
        {"seed": seed, "from_epoch": start, "to_epoch": epochs_done(ck), "outcome": outcome,
         "wall_seconds": round(time.time() - t0, 1),
         "started_utc": dt.datetime.fromtimestamp(t0, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
         "pid": child.pid})
    log(f"{cfg['name']} seed {seed}: at epoch {epochs_done(ck)} ({outcome}, {time.time() - t0:.0f} s)")
    return outcome


# ------------------------------------------------------------------ report
def collect(cfg: dict, state: str) -> dict:
    """Per seed: the per-epoch history, the best-on-validation record and its test error."""
    from neurochip.health import activity_rise
    seeds = {}
    for seed in cfg["seeds"]:
        t, rails = run_of(checkpoint_path(state, cfg, seed))
        if t is None:
            continue
        hist = [h for h in t.get("history", [])]
        best = t.get("best") or {}
        best_test = None
        if best.get("epoch"):
            best_test = hist[best["epoch"] - 1].get("test_error")
        rise = activity_rise(hist)
        seeds[seed] = {"epochs": int(t.get("epoch", 0)), "history": hist, "best": best,
                       "best_test_error": best_test, "train_seconds": t.get("train_seconds"),
                       "rail_fractions": rails,
                       "activity": None if rise is None else rise.as_dict()}
    wall, machines = {}, []
    for name in cfg["lineage"]:          # a continued run's wall time includes every ancestor's pieces
        log_path = os.path.join(state, name, "log.json")
        if not os.path.exists(log_path):
            continue
        with open(log_path) as fh:
            for p in json.load(fh)["pieces"]:
                if p["seed"] not in cfg["seeds"]:
                    continue
                wall[p["seed"]] = wall.get(p["seed"], 0.0) + p["wall_seconds"]
                m = p.get("machine", "not recorded (earlier pieces)")
                if m not in machines:
                    machines.append(m)
    res = {"name": cfg["name"], "title": cfg["title"], "flags": cfg["flags"], "model": cfg["model"],
           "machine": "; ".join(machines) if machines else machine(),
           "total_epochs": cfg["total_epochs"], "seeds": seeds,
           "wall_seconds": {str(k): v for k, v in wall.items()}}
    tests = [s["best_test_error"] for s in seeds.values() if s["best_test_error"] is not None]
    if len(tests) == len(cfg["seeds"]):
        res["best_test_error_mean_std"] = mean_std(tests)
        res["equal_epochs"] = at_equal_epochs(seeds)
    return res


def at_equal_epochs(seeds: dict, epoch: int | None = None) -> dict:
    """Every seed at the last epoch all seeds have finished (or at ``epoch``, if given and not
    later): the best-on-validation epoch up to it (the earliest wins a tie, as the CLI's), its test
    error, validation error and train error on the fly; mean +- std (ddof 1) of the test errors.
    The fair figure while seeds differ by an epoch."""
    e = min(s["epochs"] for s in seeds.values())
    if epoch is not None:
        e = min(e, epoch)
    per = {}
    for seed, s in seeds.items():
        hist = s["history"][:e]
        if not hist:
            return {"epoch": 0, "seeds": {}}
        b = min(range(e), key=lambda i: (hist[i]["val_error"], i))
        per[seed] = {"best_epoch": b + 1, "test_error": hist[b]["test_error"],
                     "val_error": hist[b]["val_error"],
                     "train_error_on_the_fly": hist[b]["train_error_on_the_fly"]}
    out = {"epoch": e, "seeds": per}
    if len(per) >= 2:
        out["test_error_mean_std"] = mean_std([v["test_error"] for v in per.values()])
    return out


def versus(results: list[dict], only: set[int] | None = None) -> dict:
    """The configurations side by side, the first the baseline, at the last epoch every seed of
    every one has finished: per seed, the best validation error up to that epoch (what a choice
    between them may use) and that epoch's test error (recorded, never used to choose); and each
    configuration's difference from the baseline seed by seed (paired: a seed fixes the validation
    split and every epoch's sample order, whatever the network), mean +- std (ddof 1)."""
    seeds = sorted(s for s in set.intersection(*(set(r["seeds"]) for r in results))
                   if only is None or s in only)
    if not seeds:
        fail("--versus: the configurations have no trained seed in common")
    epoch = min(r["seeds"][s]["epochs"] for r in results for s in seeds)
    if epoch == 0:
        empty = [f"{r['name']} seed {s}" for r in results for s in seeds if not r["seeds"][s]["epochs"]]
        fail(f"--versus: no finished epoch yet in {', '.join(empty)}; compare later, or name the "
             "seeds that have one with --seeds")
    rows = []
    for r in results:
        eq = at_equal_epochs({s: r["seeds"][s] for s in seeds}, epoch)
        row = {"name": r["name"], "title": r["title"], "flags": r["flags"], "seeds": eq["seeds"],
               # how well each fits its training images by then (on the fly, the last epoch)
               "train_error_on_the_fly_last": [r["seeds"][s]["history"][epoch - 1]["train_error_on_the_fly"]
                                               for s in seeds],
               # weights held at the range's ends (latest weights, whatever epoch each run is at)
               "rail_fractions_latest": {s: r["seeds"][s].get("rail_fractions") for s in seeds},
               # hidden activity, latest epoch against the best-on-validation one (whole run)
               "activity_latest": {s: r["seeds"][s].get("activity") for s in seeds},
               "epochs_latest": {s: r["seeds"][s]["epochs"] for s in seeds}}
        for key in ("val_error", "test_error"):
            row[key + "_mean_std"] = mean_std([eq["seeds"][s][key] for s in seeds])
        rows.append(row)
    base = rows[0]
    for row in rows[1:]:
        for key in ("val_error", "test_error"):
            row[key + "_minus_baseline"] = [row["seeds"][s][key] - base["seeds"][s][key] for s in seeds]
            row[key + "_minus_baseline_mean_std"] = mean_std(row[key + "_minus_baseline"])
    return {"epoch": epoch, "seeds": seeds, "baseline": base["name"], "rows": rows,
            "per_epoch": per_epoch(results, seeds, epoch)}


PER_EPOCH_KEYS = ("val_error", "test_error", "train_error_on_the_fly")


def per_epoch(results: list[dict], seeds: list[int], epoch: int) -> list[dict]:
    """Epoch by epoch up to ``epoch``, each configuration's errors *in* that epoch (not the best so
    far) over ``seeds``, mean +- std (ddof 1), and the validation error's paired difference from
    the first configuration's: the curves side by side."""
    out = []
    for e in range(1, epoch + 1):
        at = {r["name"]: {s: r["seeds"][s]["history"][e - 1] for s in seeds} for r in results}
        base = at[results[0]["name"]]
        rows = {}
        for name, hist in at.items():
            row = {key + "_mean_std": mean_std([hist[s][key] for s in seeds]) for key in PER_EPOCH_KEYS}
            if name != results[0]["name"]:
                row["val_error_minus_baseline_mean_std"] = mean_std(
                    [hist[s]["val_error"] - base[s]["val_error"] for s in seeds])
            rows[name] = row
        out.append({"epoch": e, "rows": rows})
    return out


def versus_markdown(res: dict, command: str) -> str:
    pct = lambda v: f"{100 * v:.2f}"                                        # noqa: E731
    seeds = res["seeds"]
    spread = len(seeds) > 1           # one seed has no spread: its figure alone, no "± 0.00"
    pm = lambda ms: f"{100 * ms[0]:.2f}" + (f" ± {100 * ms[1]:.2f}" if spread else "")      # noqa: E731
    signed = lambda ms: f"{100 * ms[0]:+.2f}" + (f" ± {100 * ms[1]:.2f}" if spread else "")  # noqa: E731
    lines = [f"Command: `{command}`  ",
             f"Seeds {', '.join(map(str, seeds))}, each at its best-on-validation epoch up to epoch "
             f"{res['epoch']} (the last every run has finished); baseline `{res['baseline']}`; "
             f"report date {time.strftime('%Y-%m-%d', time.gmtime())}.", "",
             "| configuration | best validation error % per seed (epoch) | mean ± std | minus baseline, "
             "per seed (mean ± std) | its test error % per seed | mean ± std | minus baseline (mean ± std) | "
             f"train error % on the fly in epoch {res['epoch']}, per seed |",
             "|---|---|---|---|---|---|---|---|"]
    for row in res["rows"]:
        per = row["seeds"]
        val = " / ".join(f"{pct(per[s]['val_error'])} ({per[s]['best_epoch']})" for s in seeds)
        test = " / ".join(pct(per[s]["test_error"]) for s in seeds)
        if "val_error_minus_baseline" in row:
            dv = (" / ".join(f"{100 * d:+.2f}" for d in row["val_error_minus_baseline"])
                  + f" ({signed(row['val_error_minus_baseline_mean_std'])})")
            dt_ = signed(row["test_error_minus_baseline_mean_std"])
        else:
            dv = dt_ = "-"
        lines.append(f"| `{row['name']}` | {val} | {pm(row['val_error_mean_std'])} | {dv} | {test} | "
                     f"{pm(row['test_error_mean_std'])} | {dt_} | "
                     f"{' / '.join(pct(v) for v in row['train_error_on_the_fly_last'])} |")
    lines += per_seed_table(res, "rail_fractions_latest",
                            "Weights at either end of their range, % per layer (each run's latest weights, "
                            "after the epoch in brackets; a real-valued run has no range):",
                            lambda row, s, rails: " / ".join(f"{100 * f:.2f}" for f in rails)
                            + f" ({row['epochs_latest'][s]})")
    lines += per_seed_table(res, "activity_latest",
                            "Hidden activity, latest / best-on-validation epoch, per layer (each run's "
                            "whole history; \"-\" where not measured):",
                            lambda row, s, a: activity_cell(a))
    lines += ["", "Epoch by epoch (each configuration's errors in that epoch, not the best so far; "
                  "mean ± std over the seeds; the validation error's paired difference from the baseline):",
              "", "| epoch | configuration | validation error % | minus baseline | test error % | "
                  "train error % on the fly |", "|---|---|---|---|---|---|"]
    for at in res.get("per_epoch", []):
        for name, row in at["rows"].items():
            dv = signed(row["val_error_minus_baseline_mean_std"]) if "val_error_minus_baseline_mean_std" in row else "-"
            lines.append(f"| {at['epoch']} | `{name}` | {pm(row['val_error_mean_std'])} | {dv} | "
                         f"{pm(row['test_error_mean_std'])} | {pm(row['train_error_on_the_fly_mean_std'])} |")
    return "\n".join(lines) + "\n"


def per_seed_table(res: dict, key: str, caption: str, cell) -> list[str]:
    """A versus table, configuration by seed, of each row's ``key`` (a dict seed -> value):
    ``cell(row, seed, value)`` formats a value, "-" stands for None; no table when all are None."""
    if not any(v is not None for row in res["rows"] for v in row.get(key, {}).values()):
        return []
    seeds = res["seeds"]
    lines = ["", caption, "", "| configuration | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|" + "---|" * len(seeds)]
    for row in res["rows"]:
        values = [(s, row[key].get(s)) for s in seeds]
        lines.append(f"| `{row['name']}` | "
                     + " | ".join("-" if v is None else cell(row, s, v) for s, v in values) + " |")
    return lines


def activity_cell(a: dict) -> str:
    """One seed's activity rise (:meth:`neurochip.health.ActivityRise.as_dict`) as
    ``ratios (latest epoch vs best epoch)``."""
    return f"{' / '.join(f'{r:.2f}' for r in a['ratios'])} ({a['latest_epoch']} vs {a['best_epoch']})"


def versus_figure(res: dict, path: str) -> None:
    """Each configuration's validation error per epoch, mean over the seeds with a +-std band
    (solid), and its test error's mean (dashed)."""
    fig, ax = new_axes()
    epochs = [at["epoch"] for at in res["per_epoch"]]
    for k, row in enumerate(res["rows"]):
        val = [at["rows"][row["name"]]["val_error_mean_std"] for at in res["per_epoch"]]
        test = [at["rows"][row["name"]]["test_error_mean_std"][0] for at in res["per_epoch"]]
        m = [100 * v[0] for v in val]
        ax.plot(epochs, m, "o-", color=f"C{k}", label=f"{row['name']} validation")
        ax.fill_between(epochs, [100 * (v[0] - v[1]) for v in val], [100 * (v[0] + v[1]) for v in val],
                        color=f"C{k}", alpha=0.2)
        ax.plot(epochs, [100 * t for t in test], "--", color=f"C{k}", label=f"{row['name']} test")
    ax.set_ylabel("error % (solid: validation, band ± std; dashed: test)")
    ax.set_title(f"mean over seeds {', '.join(map(str, res['seeds']))}, each epoch's own errors", fontsize=9)
    save_figure(fig, ax, path)


def markdown(res: dict, command: str) -> str:
    from neurochip.health import ACTIVITY_RISE_WARN
    lines = [f"### {res['title']}", "", f"Command: `{command}`  ",
             f"Flags: `{' '.join(res['flags'])}` (planned {res['total_epochs']} epochs)  ",
             f"Machines of the training pieces: {res['machine']}; "
             f"report date {time.strftime('%Y-%m-%d', time.gmtime())}.", "",
             "| seed | epochs done | validation error % per epoch | test error % per epoch | "
             "best-on-validation epoch | its test error % | wall time |",
             "|---|---|---|---|---|---|---|"]
    for seed, s in res["seeds"].items():
        v = ", ".join(f"{100 * h['val_error']:.2f}" for h in s["history"] if "val_error" in h)
        t = ", ".join(f"{100 * h['test_error']:.2f}" for h in s["history"] if "test_error" in h)
        bt = "-" if s["best_test_error"] is None else f"{100 * s['best_test_error']:.2f}"
        w = res["wall_seconds"].get(str(seed))
        lines.append(f"| {seed} | {s['epochs']} of {res['total_epochs']} | {v} | {t} | "
                     f"{s['best'].get('epoch', '-')} | {bt} | "
                     f"{'-' if w is None else f'{w / 60:.0f} min'} |")
    eq = res.get("equal_epochs") or {}
    if "test_error_mean_std" in eq:
        m, sd = eq["test_error_mean_std"]
        per = " / ".join(f"{100 * v['test_error']:.2f}" for v in eq["seeds"].values())
        lines += ["", f"At epoch {eq['epoch']}, the last every seed has finished (best-on-validation "
                      f"weights up to it): test error **{100 * m:.2f} ± {100 * sd:.2f} %** (std ddof 1; "
                      f"seeds {per})."]
    if "best_test_error_mean_std" in res and len({s["epochs"] for s in res["seeds"].values()}) > 1:
        m, sd = res["best_test_error_mean_std"]
        lines += ["", f"Best-on-validation so far, each seed at its own number of epochs: "
                      f"{100 * m:.2f} ± {100 * sd:.2f} %."]
    recorded = {seed: s for seed, s in res["seeds"].items()
                if any("val_spikes_per_sample" in h for h in s["history"])}
    if recorded:
        lines += ["", "Hidden activity: free-phase spikes per validation sample, per layer, at the "
                      "best-on-validation epoch and at the latest; the health check names a layer "
                      f"above {ACTIVITY_RISE_WARN:g}x:", "",
                  "| seed | best epoch: spikes | latest epoch: spikes | latest / best |", "|---|---|---|---|"]
        for seed, s in recorded.items():
            a = s.get("activity")
            if a is None:             # trained before the count existed: no honest baseline
                lines.append(f"| {seed} | {s['best'].get('epoch', '-')}: not recorded (trained before "
                             "the count existed) | - | not measured |")
                continue
            lines.append(f"| {seed} | {a['best_epoch']}: {' / '.join(f'{v:,.0f}' for v in a['best'])} | "
                         f"{a['latest_epoch']}: {' / '.join(f'{v:,.0f}' for v in a['latest'])} | "
                         f"{' / '.join(f'{r:.2f}' for r in a['ratios'])} |")
    done = [s["epochs"] for s in res["seeds"].values()]
    if not done or min(done) < res["total_epochs"]:
        lines += ["", f"**Partial: {min(done) if done else 0} of {res['total_epochs']} planned epochs "
                      "done; continue with the same command (resumable).**"]
    return "\n".join(lines) + "\n"


def figure_title(res: dict) -> str:
    """The curves' title: the configuration, its weights (bits from its flags, or the real-valued
    twin's float dtype), seeds and plan."""
    from neurochip.network import Widths
    if res.get("model") == "real":
        weights = f"real-valued {flag_value(res['flags'], '--dtype', 'float32')} weights"
    else:
        weights = f"{flag_value(res['flags'], '--bits', str(Widths().weight_bits))}-bit weights"
    n_seeds = len(res["seeds"])
    return (f"{res['name']}: {weights}, {n_seeds} seed{'' if n_seeds == 1 else 's'} "
            f"(planned {res['total_epochs']} epochs)")


def new_axes():
    """A figure and its axes for error-per-epoch curves (matplotlib without a display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(6.4, 4.2))


def save_figure(fig, ax, path: str) -> None:
    """Integer epochs on x, grid and legend; the PNG written atomically to ``path``."""
    import io
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    from neurochip.atomic import atomic_write_bytes
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def figure(res: dict, path: str) -> None:
    fig, ax = new_axes()
    for k, (seed, s) in enumerate(res["seeds"].items()):
        ep = [h["epoch"] for h in s["history"]]
        ax.plot(ep, [100 * h["val_error"] for h in s["history"]], "o--", color=f"C{k}",
                label=f"seed {seed} validation")
        ax.plot(ep, [100 * h["test_error"] for h in s["history"]], "s-", color=f"C{k}",
                label=f"seed {seed} test")
    ax.set_ylabel("error % (dashed: validation, solid: test)")
    ax.set_title(figure_title(res), fontsize=9)
    save_figure(fig, ax, path)


# ------------------------------------------------------------------ publish
CHECK_SAMPLES = 1000     # the subset a test re-evaluates quickly (the full figure is checked by hand)


def load_eval(model: str, dataset: str, data_dir: str | None, test_samples: int | None) -> dict:
    """``python -m neurochip.run --load MODEL`` (the best-on-validation weights) as a reader would run it."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        argv = [sys.executable, "-m", "neurochip.run", "--load", model, "--dataset", dataset,
                "--json", out, "--quiet"] + \
            (["--data-dir", data_dir] if data_dir else [])
        if test_samples:
            argv += ["--test-samples", str(test_samples)]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        with open(out) as fh:
            return json.load(fh)


def publish(cfg: dict, state: str, folder: str, log) -> dict:
    """Copy the best seed's checkpoint (lowest best-on-validation error) to ``folder/NAME.npz``,
    re-evaluate it with ``--load`` on the whole test set and on its first CHECK_SAMPLES images,
    and record both in ``folder/models.json``."""
    import shutil
    if cfg["model"] != "core":
        fail(f"--publish: {cfg['name']} is a {cfg['model']}-valued run; only the integer core's "
             "checkpoints are published (neurochip.run --load re-evaluates them)")
    res = collect(cfg, state)
    if not res["seeds"]:
        fail(f"{cfg['name']}: no checkpoint to publish yet")
    seed = min(res["seeds"], key=lambda s: (res["seeds"][s]["best"].get("val_error", 2.0), s))
    s = res["seeds"][seed]
    os.makedirs(folder, exist_ok=True)
    model = os.path.join(folder, cfg["name"] + ".npz")
    shutil.copyfile(checkpoint_path(state, cfg, seed), model)
    flags = cfg["flags"]
    dataset = flag_value(flags, "--dataset") or training_of(model)["dataset"]
    data_dir = flag_value(flags, "--data-dir")
    n_test = int(flag_value(flags, "--test-samples")) if "--test-samples" in flags else None
    full = load_eval(model, dataset, data_dir, n_test)       # the run's own test set
    n_check = min(CHECK_SAMPLES, full["test_samples"])
    part = load_eval(model, dataset, data_dir, n_check)
    recorded = s["best_test_error"]
    if recorded is not None and full["test_error"] != recorded:
        raise SystemExit(f"error: {model}: --load gives {full['test_error']} but the run recorded "
                         f"{recorded} for its best epoch")
    entry = {"dataset": dataset, "config": cfg["name"], "seed": seed, "epochs_trained": s["epochs"],
             "best_epoch": s["best"].get("epoch"), "val_error": s["best"].get("val_error"),
             "test_error": full["test_error"], "test_samples": full["test_samples"],
             "check": {"test_samples": n_check, "test_error": part["test_error"]},
             "weights_sha256": full["weights_sha256"],
             "command": f"python -m neurochip.run --load {model} --dataset {dataset} --data-dir DIR "
                        "--json out.json",
             "machine": res["machine"], "date": time.strftime("%Y-%m-%d", time.gmtime())}
    index = os.path.join(folder, "models.json")
    models = {}
    if os.path.exists(index):
        with open(index) as fh:
            models = json.load(fh)
    models[os.path.basename(model)] = entry
    from neurochip.atomic import atomic_write_bytes
    atomic_write_bytes(index, (json.dumps(models, indent=1, sort_keys=True) + "\n").encode())
    log(f"{cfg['name']}: published seed {seed} (epoch {entry['best_epoch']}): test error "
        f"{entry['test_error']:.2%} on {entry['test_samples']} images")
    return entry


def next_utc(hhmm: str, now: dt.datetime) -> float:
    """The next moment after ``now`` (aware, UTC) whose clock reads ``hhmm`` (UTC), as a POSIX time.

    A time already past today means tomorrow's: a session that crosses midnight stops at
    ``--stop-at 00:40`` after midnight, not at once.  Bad text fails with one line (exit 2).
    """
    parts = hhmm.split(":")
    if len(parts) != 2 or not all(x.isdigit() for x in parts) or int(parts[0]) > 23 or int(parts[1]) > 59:
        fail(f"--stop-at {hhmm!r}: expected HH:MM (UTC), e.g. 00:40")
    at = now.replace(hour=int(parts[0]), minute=int(parts[1]), second=0, microsecond=0)
    if at <= now:
        at += dt.timedelta(days=1)
    return at.timestamp()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.headline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", help="headline configurations (JSON), advanced together")
    p.add_argument("--state", default=DEFAULT_STATE, help=f"checkpoint folder (default {DEFAULT_STATE})")
    p.add_argument("--data-root", default=None, help="folder holding mnist/ and fashion-mnist/")
    p.add_argument("--until-epoch", type=int, default=None, help="stop when every run has this many epochs")
    p.add_argument("--stop-at", default=None,
                   help="HH:MM (UTC; the next such time, after midnight if already past today): "
                        "stop the running piece then (saved, resumable)")
    p.add_argument("--seeds", default=None, metavar="S,S",
                   help="train only these seeds of each configuration now (a pilot on one seed "
                        "before the others), or compare only these (--versus); default: all")
    p.add_argument("--threads", type=int, default=1,
                   help="Numba threads of each piece (default 1); torch threads for a real-valued "
                        "configuration, fixed by its state (float sums depend on the count)")
    p.add_argument("--report", default=None, metavar="OUT", help="train nothing: write the tables and "
                                                                  "curves to OUT")
    p.add_argument("--publish", default=None, metavar="DIR",
                   help="train nothing: copy each configuration's best seed (on validation) to "
                        "DIR/NAME.npz and record its re-evaluated test error in DIR/models.json")
    p.add_argument("--versus", default=None, metavar="OUT",
                   help="train nothing: compare the configurations seed by seed at equal epochs, "
                        "the first the baseline (best validation error and its test error, paired "
                        "differences; and epoch by epoch); writes OUT/versus-FIRST-SECOND....{md,json,png}")
    a = p.parse_args(argv)
    cfgs = [load_config(c, a.data_root) for c in a.configs]
    only = None
    if a.seeds is not None:
        try:
            only = {int(x) for x in a.seeds.split(",")}
        except ValueError:
            fail(f"--seeds must be comma-separated integers, got {a.seeds!r}")
        if not any(seed in only for cfg in cfgs for seed in cfg["seeds"]):
            fail(f"--seeds {a.seeds}: no configuration has these seeds")
    log = lambda *m: print(time.strftime("%H:%M:%S", time.gmtime()), *m, file=sys.stderr, flush=True)  # noqa: E731
    if a.publish:
        for cfg in cfgs:
            publish(cfg, a.state, a.publish, log)
        return 0
    if a.versus:
        if len(cfgs) < 2:
            fail("--versus needs at least two configurations (the first is the baseline)")
        command = "python -m experiments.headline " + " ".join(argv if argv is not None else sys.argv[1:])
        res = versus([collect(cfg, a.state) for cfg in cfgs], only)
        text = versus_markdown(res, command.replace(f" --versus {a.versus}", ""))
        name = "versus-" + "-".join(cfg["name"] for cfg in cfgs)
        write_report(a.versus, name, text, res)
        versus_figure(res, os.path.join(a.versus, name + ".png"))
        print(text)
        return 0
    if a.report:
        command = "python -m experiments.headline " + " ".join(argv if argv is not None else sys.argv[1:])
        for cfg in cfgs:
            res = collect(cfg, a.state)
            text = markdown(res, command.replace(f" --report {a.report}", ""))
            write_report(a.report, cfg["name"], text, res)
            if res["seeds"]:
                figure(res, os.path.join(a.report, cfg["name"] + ".png"))
            print(text)
        return 0
    stop_at = None
    if a.stop_at:
        stop_at = next_utc(a.stop_at, dt.datetime.now(dt.timezone.utc))
    runs = [(cfg, seed, cfg["total_epochs"] if a.until_epoch is None else min(cfg["total_epochs"], a.until_epoch))
            for cfg in cfgs for seed in cfg["seeds"] if only is None or seed in only]
    stopped = "stopped (stop time or signal); resumable: run the same command again"
    while True:
        if stop_at is not None and time.time() >= stop_at:
            log(stopped)
            return 0
        done = [(cfg, seed, epochs_done(checkpoint_path(a.state, cfg, seed)), cap) for cfg, seed, cap in runs]
        behind = [(cfg, seed, d) for cfg, seed, d, cap in done if d < cap]
        if not behind:
            return 0
        # equal progress of the seeds: only a run with the fewest epochs of its configuration starts
        # its next one (so no seed is more than one epoch ahead of another, also with two drivers
        # sharing the runs); the runs furthest behind go first
        fewest = {}
        for cfg, _, d in behind:
            fewest[cfg["name"]] = min(d, fewest.get(cfg["name"], d))
        eligible = sorted((r for r in behind if r[2] == fewest[r[0]["name"]]), key=lambda r: r[2])
        for cfg, seed, d in eligible:
            outcome = advance(cfg, seed, d + 1, a.state, stop_at, a.threads, log)
            if outcome == "deadline":
                log(stopped)
                return 0
            if outcome != "busy":
                break
        else:          # every run with the fewest epochs is trained by another driver: wait for one
            time.sleep(10 * POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())

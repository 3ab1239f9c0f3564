"""A fair comparison in one command: ``python -m experiments.protocol CONFIG.json``.

For every arm of the comparison (a set of ``neurochip.run`` flags):

1. **learning-rate sweep**: the preset's per-layer rates times each factor of
   ``lr_factors`` (default x1, x1/2, x1/4, x1/8, x1/16), trained on the short
   ``sweep`` budget with seed ``sweep.seed`` and scored on the validation split
   carved from the training set (``--val-split``; the test set is never used
   for a choice);
2. **the chosen rate**: the factor with the lowest validation error (the
   larger rate wins a tie);
3. **full budget**: the chosen rate trained with every seed of ``full.seeds``
   (>= 3), each reporting its best-on-validation weights' validation and test
   error; the table gives mean +- std (sample standard deviation, ddof 1)
   and every seed's figure.

Outputs in ``--out`` (default ``runs/protocol/NAME``): ``NAME.md`` (the
tables), ``NAME.json`` (every run's figures) and ``NAME.png`` (the sweep and
the seeds).  It resumes: every finished run's JSON is cached under
``runs/`` (keyed by its flags, so two comparisons sharing a run, e.g. the
avg-pool 8-bit arm, train it once), and a run cut short continues from its
checkpoint (``--resume``, bit-identical to an uninterrupted run).

The configuration (JSON)::

    {"name": "pooling", "title": "...",
     "common": ["--preset", "mnist-small", "--dataset", "mnist", "--data-dir", "{data}/mnist"],
     "arms": {"avg-pool": ["--pool", "avg"], "max-pool": ["--pool", "max"]},
     "base_lrs": {"max-pool": [0.2, 0.15, 0.08]},       (optional; default: the preset's)
     "lr_factors": [1, 0.5, 0.25, 0.125, 0.0625],         (optional)
     "sweep": {"flags": ["--train-samples", "7000", "--val-split", "2000", ...], "seed": 0},
     "full": {"flags": [...], "seeds": [0, 1, 2]}}

``{data}`` is replaced by ``--data-root`` (default ../shared/data).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time

from .common import driver_setup, fail, flag_value, machine, read_config

DEFAULT_FACTORS = (1.0, 0.5, 0.25, 0.125, 0.0625)
STAGES = ("sweep", "full")


# ------------------------------------------------------------------ config
def load_config(path: str, data_root: str | None) -> dict:
    """The configuration with ``{data}`` substituted and defaults filled in."""
    cfg = read_config(path, data_root, ("name", "arms", "sweep", "full"))
    cfg.setdefault("title", cfg["name"])
    cfg.setdefault("common", [])
    cfg.setdefault("base_lrs", {})
    cfg["lr_factors"] = [float(f) for f in cfg.get("lr_factors", DEFAULT_FACTORS)]
    cfg["sweep"].setdefault("seed", 0)
    if len(cfg["full"].get("seeds", [])) < 3:
        fail(f"{path}: full.seeds needs at least 3 seeds")
    for stage in STAGES:
        if "--val-split" not in cfg[stage]["flags"]:
            fail(f"{path}: {stage}.flags needs --val-split (choices are made "
                 "on a validation split, never on the test set)")
    return cfg


def base_lrs(cfg: dict, arm: str) -> list[float]:
    """The arm's x1 rates: ``base_lrs[arm]`` or the preset's (or an ``--lrs`` among its flags)."""
    if arm in cfg["base_lrs"]:
        return [float(v) for v in cfg["base_lrs"][arm]]
    flags = cfg["common"] + cfg["arms"][arm]
    if "--lrs" in flags:
        return [float(v) for v in flag_value(flags, "--lrs").replace(",", " ").split()]
    from neurochip.network import Architecture, get_preset
    preset = get_preset(flag_value(flags, "--preset", "digits"))
    lrs = list(preset.hyper.lrs)
    if "--arch" in flags:     # a custom architecture: the CLI's rule (hidden rate, readout rate)
        n = Architecture.parse(flag_value(flags, "--arch")).n_layers
        if len(lrs) != n:
            lrs = [lrs[0]] * (n - 1) + [lrs[-1]]
    return lrs


def scaled(lrs: list[float], factor: float) -> str:
    return ",".join(f"{v * factor:.10g}" for v in lrs)


def run_argv(cfg: dict, arm: str, stage: str, factor: float, seed: int) -> list[str]:
    """The ``neurochip.run`` flags of one run (without outputs)."""
    flags = [f for f in cfg["arms"][arm]]
    if "--lrs" in flags:                   # the arm's own rates are the x1 of its sweep
        i = flags.index("--lrs")
        del flags[i:i + 2]
    return canonical(list(cfg["common"]) + flags + list(cfg[stage]["flags"])
                     + ["--lrs", scaled(base_lrs(cfg, arm), factor), "--seed", str(seed)])


def canonical(argv: list[str]) -> list[str]:
    """``--flag value`` pairs sorted by flag, so that the same run has the same
    cache key in every comparison; a flag given twice is a configuration error."""
    pairs, i = {}, 0
    while i < len(argv):
        flag = argv[i]
        if not flag.startswith("--"):
            fail(f"configuration: expected a --flag, got {flag!r}")
        value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
        if flag in pairs:
            fail(f"configuration: {flag} given twice")
        pairs[flag] = value
        i += 1 if value is None else 2
    out = []
    for flag in sorted(pairs):
        out += [flag] if pairs[flag] is None else [flag, pairs[flag]]
    return out


def run_key(argv: list[str], model: str = "core") -> str:
    """The cache key of a run: a hash of its canonical flags, prefixed ``real-`` for the
    real-valued twin (whose flags may equal an integer run's)."""
    key = hashlib.sha256(json.dumps(argv).encode()).hexdigest()[:16]
    return key if model == "core" else f"{model}-{key}"


# --------------------------------------------------------------------- runs
def run_once(argv: list[str], cache: str, checkpoint_every: int, log, wait: bool = True,
             model: str = "core") -> dict | None:
    """One run, from the cache if done, resumed from its checkpoint if started (:func:`once`).

    ``model`` "core" trains ``neurochip.run ARGV``; "real" trains the real-valued twin,
    ``experiments.real_run ARGV`` (its flags; resumed per finished epoch)."""
    key = run_key(argv, model)
    train = _train if model == "core" else _train_real
    return once(cache, key, lambda done: train(argv, cache, key, done, checkpoint_every, log), wait)


def once(cache: str, key: str, train, wait: bool = True) -> dict | None:
    """Run ``key``'s JSON from ``cache/KEY.json`` if it is done, else ``train(that path)``'s.

    One process trains a run (a lock file per run); another one needing it
    waits and then reads the cache, or with ``wait=False`` returns None at once
    (to train other runs meanwhile).
    """
    import fcntl
    os.makedirs(cache, exist_ok=True)
    done = os.path.join(cache, key + ".json")
    with open(os.path.join(cache, key + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return None
        return read_json(done) or train(done)


def _train(argv, cache, key, done, checkpoint_every, log) -> dict:
    from neurochip.run import run as run_cli
    ck = os.path.join(cache, key + ".npz")
    out = os.path.join(cache, key + ".partial.json")
    extra = ["--save", ck, "--checkpoint-every", str(checkpoint_every), "--json", out, "--quiet"]
    if os.path.exists(ck):
        extra = ["--resume", ck] + extra
        log(f"  resuming {key} from its checkpoint")
    t0 = time.perf_counter()
    code = run_cli(argv + extra)
    if code != 0:
        raise RuntimeError(f"neurochip.run {' '.join(argv)} exited with {code}")
    return _finish(argv, done, out, t0)


def _finish(argv, done, out, t0) -> dict:
    """The finished run's JSON (``out``, written by the run) moved to the cache as ``done``."""
    with open(out) as fh:
        result = json.load(fh)
    result["argv"] = argv
    result["wall_seconds_this_process"] = round(time.perf_counter() - t0, 2)
    tmp = done + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh)
    os.replace(tmp, done)
    os.unlink(out)
    return result


def _train_real(argv, cache, key, done, checkpoint_every, log) -> dict:
    """:func:`_train` for the real-valued twin: ``experiments.real_run`` keeps its own
    per-epoch state (``checkpoint_every`` does not apply: it resumes at an epoch's end)."""
    from .real_run import main as real_main
    state = os.path.join(cache, key + ".npz")
    out = os.path.join(cache, key + ".partial.json")
    log(f"  real-valued run {key}{' (resumed)' if os.path.exists(state) else ''}: {' '.join(argv)}")
    t0 = time.perf_counter()
    code = real_main(argv + ["--state", state, "--json", out])
    if code != 0:
        raise RuntimeError(f"experiments.real_run {' '.join(argv)} exited with {code}")
    return _finish(argv, done, out, t0)


def summary(r: dict) -> dict:
    """The figures a comparison keeps of one run."""
    best = r.get("best") or {}
    return {"val_error": best.get("val_error"), "best_epoch": best.get("epoch"),
            "test_error": r["test_error"], "train_error": r["train_error"],
            "stopped": r["learning_health"]["stopped"], "health": r["learning_health"]["reasons"],
            "rail_fractions": r["learning_health"]["rail_fractions"],
            "spikes_per_sample": r["spikes_per_sample"], "updates": r["updates"],
            "seconds": r["seconds"], "weights_sha256": r["weights_sha256"],
            "history": r["history"], "argv": r.get("argv")}


def choose(sweep: dict) -> float:
    """The factor with the lowest validation error; the larger rate wins a tie."""
    return min(sweep, key=lambda f: (sweep[f]["val_error"], -f))


def mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, s


def cached(argv: list[str], cache: str, model: str = "core") -> dict | None:
    """A finished run's JSON from the cache, or None (never trains, never waits)."""
    return read_json(os.path.join(cache, run_key(argv, model) + ".json"))


def read_json(path: str) -> dict | None:
    """The JSON record at ``path`` (a finished run's), or None if there is none."""
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def run_comparison(cfg: dict, out_dir: str, cache: str, checkpoint_every: int = 50,
                   stages=STAGES, log=None, report_only: bool = False) -> dict:
    """Every run of the comparison (cached/resumed); returns the results record.

    ``report_only``: train nothing, tabulate the finished runs (``partial`` says
    how many of the comparison's runs are missing).
    """
    log = log or (lambda *a: print(*a, file=sys.stderr, flush=True))
    os.makedirs(cache, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    res = {"name": cfg["name"], "title": cfg["title"], "config": cfg, "machine": machine(),
           "arms": {}, "missing_runs": 0}
    factors = cfg["lr_factors"]
    def stage(jobs):
        """Run ``{(arm, x): argv}``; runs another process holds are taken last (waited for)."""
        out = {}
        if report_only:
            for key, argv in jobs.items():
                r = cached(argv, cache)
                if r is None:
                    res["missing_runs"] += 1
                else:
                    out[key] = summary(r)
            return out
        for wait in (False, True):
            for (arm, x), argv in jobs.items():
                if (arm, x) in out:
                    continue
                r = run_once(argv, cache, checkpoint_every, log, wait=wait)
                if r is None:
                    log(f"{cfg['name']}: {arm} {x}: another process is training it; later")
                    continue
                out[arm, x] = summary(r)
                s = out[arm, x]
                log(f"{cfg['name']}: {arm} {x}: val {s['val_error']:.2%} test {s['test_error']:.2%}"
                    + ("  (learning stopped)" if s["stopped"] else ""))
        return out

    sweep = stage({(arm, f): run_argv(cfg, arm, "sweep", f, cfg["sweep"]["seed"])
                   for arm in cfg["arms"] for f in factors})
    for arm in cfg["arms"]:
        a = res["arms"][arm] = {"base_lrs": base_lrs(cfg, arm), "full": {},
                                "sweep": {f: sweep[arm, f] for f in factors if (arm, f) in sweep}}
        # an incomplete sweep (report_only) chooses nothing
        a["chosen_factor"] = choose(a["sweep"]) if len(a["sweep"]) == len(factors) else None
    chosen = {arm: a for arm, a in res["arms"].items() if a["chosen_factor"] is not None}
    if "full" not in stages:
        return res
    full = stage({(arm, seed): run_argv(cfg, arm, "full", a["chosen_factor"], seed)
                  for arm, a in chosen.items() for seed in cfg["full"]["seeds"]})
    for arm, a in chosen.items():
        a["full"] = {seed: full[arm, seed] for seed in cfg["full"]["seeds"] if (arm, seed) in full}
        if a["full"]:
            for key in ("val_error", "test_error"):
                a[key + "_mean_std"] = mean_std([r[key] for r in a["full"].values()])
    if report_only:
        res["missing_runs"] += sum(len(cfg["full"]["seeds"]) for a in res["arms"].values()
                                   if a["chosen_factor"] is None)
    return res


# ------------------------------------------------------------------ outputs
def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def markdown(res: dict, command: str) -> str:
    cfg = res["config"]
    factors = cfg["lr_factors"]
    lines = [f"### {res['title']}", "",
             f"Command: `{command}`  ", f"Machine: {res['machine']}; date "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}.  ",
             f"Common flags: `{' '.join(cfg['common'])}`  ",
             f"Sweep budget: `{' '.join(cfg['sweep']['flags'])}`, seed {cfg['sweep']['seed']}  ",
             f"Full budget: `{' '.join(cfg['full']['flags'])}`, seeds "
             f"{', '.join(map(str, cfg['full']['seeds']))}", "",
             "Learning-rate sweep (validation error %, rates = the arm's x1 rates times the "
             "factor; * = chosen, † = learning stopped):", "",
             "| arm | x1 rates | " + " | ".join(f"x{f:g}" for f in factors) + " |",
             "|---|---|" + "---|" * len(factors)]
    for arm, a in res["arms"].items():
        cells = []
        for f in factors:
            s = a["sweep"].get(f)
            if s is None:
                cells.append("-")
                continue
            mark = ("*" if f == a.get("chosen_factor") else "") + ("†" if s["stopped"] else "")
            cells.append(f"{_pct(s['val_error'])}{mark}")
        lines.append(f"| {arm} | {','.join(f'{v:g}' for v in a['base_lrs'])} | " + " | ".join(cells) + " |")
    if any(a["full"] for a in res["arms"].values()):
        seeds = cfg["full"]["seeds"]
        lines += ["", f"Full budget at the chosen rate, {len(seeds)} seeds (mean ± std, std with "
                      "ddof 1; the best-on-validation weights of each run are evaluated):", "",
                  "| arm | chosen rates | validation error % | test error % | test error % per seed "
                  "(seeds " + ", ".join(map(str, seeds)) + ") | learning stopped | spikes / sample |",
                  "|---|---|---|---|---|---|---|"]
        for arm, a in res["arms"].items():
            if not a["full"]:
                continue
            runs = [a["full"][s] for s in seeds if s in a["full"]]
            vm, vs = a["val_error_mean_std"]
            tm, ts = a["test_error_mean_std"]
            stopped = sum(r["stopped"] for r in runs)
            spikes = sum(r["spikes_per_sample"] for r in runs) / len(runs)
            n = f" (n={len(runs)})" if len(runs) < len(seeds) else ""
            lines.append(f"| {arm} | x{a['chosen_factor']:g} = {scaled(a['base_lrs'], a['chosen_factor'])} "
                         f"| {100 * vm:.2f} ± {100 * vs:.2f}{n} | **{100 * tm:.2f} ± {100 * ts:.2f}**{n} | "
                         + " / ".join(_pct(a["full"][s]["test_error"]) if s in a["full"] else "-"
                                      for s in seeds)
                         + f" | {stopped} of {len(runs)} | {spikes:,.0f} |")
    if res.get("missing_runs"):
        lines += ["", f"**Partial: {res['missing_runs']} run(s) of this comparison had not finished "
                      "when this table was made** (`-`: not yet run; n: seeds finished)."]
    return "\n".join(lines) + "\n"


def figure(res: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arms = list(res["arms"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, arm in enumerate(arms):
        a = res["arms"][arm]
        fs = sorted(a["sweep"])
        ax1.plot([math.log2(f) for f in fs], [100 * a["sweep"][f]["val_error"] for f in fs], "o-",
                 color=f"C{k}", label=arm)
        for f in fs:
            if a["sweep"][f]["stopped"]:
                ax1.plot(math.log2(f), 100 * a["sweep"][f]["val_error"], "x", color="k", ms=9)
        if a.get("chosen_factor") is not None:
            f = a["chosen_factor"]
            ax1.plot(math.log2(f), 100 * a["sweep"][f]["val_error"], "*", color=f"C{k}", ms=16)
        if a["full"]:
            tests = [100 * r["test_error"] for r in a["full"].values()]
            vals = [100 * r["val_error"] for r in a["full"].values()]
            tm, ts = a["test_error_mean_std"]
            ax2.bar(k - 0.18, 100 * tm, 0.34, yerr=100 * ts, color=f"C{k}", alpha=0.75,
                    capsize=4, label="test" if k == 0 else None)
            vm, vs = a["val_error_mean_std"]
            ax2.bar(k + 0.18, 100 * vm, 0.34, yerr=100 * vs, color=f"C{k}", alpha=0.35,
                    capsize=4, hatch="//", label="validation" if k == 0 else None)
            ax2.plot([k - 0.18] * len(tests), tests, "k.", ms=7)
            ax2.plot([k + 0.18] * len(vals), vals, "k.", ms=7)
    ax1.set_xlabel("learning-rate factor (log2; 0 = the preset's rates)")
    ax1.set_ylabel("validation error % (sweep budget)")
    ax1.set_title("sweep (x: learning stopped, *: chosen)")
    ax1.legend(fontsize=8)
    ax2.set_xticks(range(len(arms)))
    ax2.set_xticklabels(arms, fontsize=8, rotation=15)
    ax2.set_ylabel("error % at the chosen rate (mean ± std, dots: seeds)")
    ax2.set_title("full budget")
    ax2.legend(fontsize=8)
    fig.suptitle(res["title"], fontsize=10)
    fig.tight_layout()
    import io
    from neurochip.atomic import atomic_write_bytes
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())       # several comparisons may write at once


def write_outputs(res: dict, out_dir: str, command: str) -> dict:
    name = res["name"]
    paths = {k: os.path.join(out_dir, f"{name}.{k}") for k in ("md", "json", "png")}
    from neurochip.atomic import atomic_write_bytes
    for key, text in (("md", markdown(res, command)),
                      ("json", json.dumps(res, indent=1, default=str) + "\n")):
        atomic_write_bytes(paths[key], text.encode())
    figure(res, paths["png"])
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.protocol", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="comparison configuration (JSON), e.g. experiments/configs/pooling.json")
    p.add_argument("--out", default=None, help="folder for NAME.md/.json/.png (default runs/protocol/NAME)")
    p.add_argument("--cache", default=None, help="folder of the per-run JSON and checkpoints "
                                                 "(default runs/protocol/runs)")
    p.add_argument("--data-root", default=None, help="folder holding mnist/ and fashion-mnist/")
    p.add_argument("--stages", default="sweep,full", help="sweep or sweep,full")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=None, help="Numba threads")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: tabulate the runs finished so far (a partial table says so)")
    a = p.parse_args(argv)
    cfg = load_config(a.config, a.data_root)
    out = a.out or os.path.join("runs", "protocol", cfg["name"])
    cache = driver_setup(a)
    stages = tuple(s.strip() for s in a.stages.split(","))
    res = run_comparison(cfg, out, cache, a.checkpoint_every, stages, report_only=a.report_only)
    command = "python -m experiments.protocol " + " ".join(argv if argv is not None else sys.argv[1:])
    paths = write_outputs(res, out, command)
    print(markdown(res, command))
    print("written: " + ", ".join(paths.values()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

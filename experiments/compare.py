"""Run named configurations of ``neurochip.run`` and tabulate them: ``python -m experiments.compare``.

Each ``--config NAME=FLAGS`` is one run (the shared ``--common`` flags are
added to all).  Used for the Table I reading pilot (H1 vs H2, algorithm.md
§7.1) and the Fashion-MNIST run in docs/results.md.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from .common import machine, run_cli, write_json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--common", default="", help="flags shared by every configuration")
    p.add_argument("--config", action="append", required=True, metavar="NAME=FLAGS")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    rows = []
    for spec in a.config:
        name, _, flags = spec.partition("=")
        r = run_cli(shlex.split(a.common) + shlex.split(flags))
        rows.append({"name": name, "flags": flags, **{k: r[k] for k in (
            "test_error", "train_error", "seconds", "spikes_per_sample", "saturations", "history")}})
        print(f"{name}: test {r['test_error']:.2%} train {r['train_error']:.2%} ({r['seconds']:.0f} s)",
              file=sys.stderr, flush=True)
    print("| configuration | flags | test error | train error | spikes / sample | seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | `{r['flags']}` | {r['test_error']:.2%} | {r['train_error']:.2%} | "
              f"{r['spikes_per_sample']:,.0f} | {r['seconds']:.0f} |")
    print(f"\nmachine: {machine()}; common flags: `{a.common}`")
    write_json(a.out, {"rows": rows, "args": vars(a), "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m reference.check``: run the Numba core and the PyTorch mirror side by side.

Both executions start from the same network (preset, ``--bits``, ``--pool``,
``--seed``; batch size = ``--samples``) and see the same ``--updates``
minibatches (the training order of ``neurochip.run``).  Each side evolves *its
own* parameters: the core with :mod:`neurochip.learning`, the mirror with its
own torch update (:meth:`reference.mirror.Mirror.update`), so any difference
anywhere would propagate and show.

Compared with exact equality, per layer and phase: the spikes of every step,
the end-of-phase states ``s, dec, psi, enc_prev``, the traces, the max-pool
argmax, the counters (``BatchResult.counts``); per layer and update: the
contrastive sums ``G, Gb``, the weights and biases after the update, and the
update statistics.  The table lists the number of differing integers; the last
line is ``differing integers: N`` and the exit code is 0 iff N == 0
(2 for bad arguments).

Example::

    python -m reference.check --preset digits-2c --bits 8 --pool max --samples 20 --updates 3
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from neurochip.compare import SIM_COLUMNS, DiffTally, diff_batches
from neurochip.errors import command
from neurochip.kinds import PHASES

LEARN_COLUMNS = ("G", "Gb", "weights", "biases", "stats")


def compare_update(tally: DiffTally, u: int, grads_n, grads_t, net_n, mirror, stats_n,
                   stats_t) -> None:
    """Compare the contrastive sums, the parameters after the update and its statistics."""
    for l, ((g_n, gb_n), (g_t, gb_t)) in enumerate(zip(grads_n, grads_t), start=1):
        tally.add((l, u, "G"), g_n, g_t.cpu().numpy())
        tally.add((l, u, "Gb"), gb_n, gb_t.cpu().numpy())
        tally.add((l, u, "weights"), net_n.weights_q[l - 1], mirror.weights[l - 1].cpu().numpy())
        tally.add((l, u, "biases"), net_n.biases_q[l - 1], mirror.biases[l - 1].cpu().numpy())
        sn = [getattr(stats_n, f)[l - 1] for f in ("products", "weight_writes",
                                                   "weight_saturations", "bias_saturations")]
        st = [getattr(stats_t, f)[l - 1] for f in ("products", "weight_writes",
                                                   "weight_saturations", "bias_saturations")]
        tally.add((l, u, "stats"), sn, st)
    tally.add(("all", "updates"), net_n.updates, mirror.updates)


@dataclass
class CheckResult:
    """What :func:`compare_networks` found."""

    tally: DiffTally
    lines: list            # one per update
    sha_numba: str
    sha_torch: str
    spikes: int            # spikes the core emitted, all updates

    @property
    def differing(self) -> int:
        return self.tally.differing() + int(self.sha_numba != self.sha_torch)


def compare_networks(net, x_all, y_all, batches, device="cpu") -> CheckResult:
    """Train a copy of ``net`` with the core and one with the mirror; compare everything.

    ``batches``: sample indices of each minibatch.  ``net`` itself is left untouched.
    """
    from neurochip import learning
    from neurochip.backend import NumbaBackend

    from .backend import TorchBackend

    net_n, net_t = net.copy(), net.copy()
    nb = NumbaBackend(net_n)
    tb = TorchBackend(net_t, device=device)
    tally = DiffTally()
    lines = []
    spikes = 0
    for u, idx in enumerate(batches):
        xb, yb = x_all[idx], y_all[idx]
        before = tally.differing()
        rn = nb.run(xb, yb, train=True, record=True)
        rt = tb.run(xb, yb, train=True, record=True)
        diff_batches(tally, net_n, nb.core.layout, rn, rt, train=True, pool_offs=tb.pool_offs)
        grads_n = learning.contrastive(net_n, nb.layer_traces(rn))
        stats_n = learning.update_network(net_n, grads_n)
        stats_n.products = learning.learning_products(net_n, len(yb))  # the trainer's tally
        nb.refresh()
        grads_t = tb.mirror.contrastive(tb.last.layer_traces())
        stats_t = tb.mirror.update(grads_t, batch=len(yb))
        tb.mirror.store(net_t)
        compare_update(tally, u, grads_n, grads_t, net_n, tb.mirror, stats_n, stats_t)
        n_spk = int(rn.counts[..., 0].sum())
        spikes += n_spk
        lines.append(f"update {u + 1}: {len(yb)} samples, {n_spk} spikes (core), "
                     f"{tally.differing() - before} differing")
    return CheckResult(tally, lines, net_n.weights_sha256(), tb.mirror.weights_sha256(), spikes)


def run_check(args, out=None) -> int:
    out = out or sys.stdout
    import torch

    from .common import build_network, load_train, minibatches
    from .mirror import resolve_device

    device = resolve_device(args.device)
    net = build_network(args)
    x_all, y_all = load_train(args, net)
    batches = minibatches(net.seed, len(y_all), args.samples, args.updates)
    h = net.hyper
    print(f"reference.check: preset {args.preset} ({net.arch}), bits {net.widths.weight_bits}, "
          f"pool {h.pool}, seed {net.seed}, {args.samples} samples x {args.updates} updates, "
          f"T1 {h.t1} T2 {h.t2}, numba core vs torch {torch.__version__} mirror on {device}",
          file=out)
    res = compare_networks(net, x_all, y_all, batches, device)
    for line in res.lines:
        print(line, file=out)
    _print_tables(res.tally, net.arch.n_layers, args.updates, out)
    print(f"weights_sha256 numba {res.sha_numba}", file=out)
    print(f"weights_sha256 torch {res.sha_torch}", file=out)
    print(f"compared integers: {res.tally.compared()}", file=out)
    print(f"differing integers: {res.differing}", file=out)
    return 0 if res.differing == 0 else 1


def _print_tables(tally: DiffTally, n_layers: int, n_updates: int, out) -> None:
    w = 9
    print("\nsimulation: differing integers per layer and phase (summed over the updates)", file=out)
    print("layer phase " + "".join(f"{c:>{w}}" for c in SIM_COLUMNS), file=out)
    for l in range(n_layers + 1):
        for p, pname in enumerate(PHASES):
            cells = []
            for c in SIM_COLUMNS:
                key = (l, p, c)
                cells.append(f"{tally.diff[key]:>{w}}" if key in tally.total else f"{'-':>{w}}")
            print(f"{l:>5} {pname:<5} " + "".join(cells), file=out)
    print("compared  " + " " * 2 + "".join(f"{tally.column(c)[1]:>{w}}" for c in SIM_COLUMNS),
          file=out)
    print("\nlearning: differing integers per layer and update "
          "(G, Gb: contrastive sums; weights, biases: after the update; stats: products, "
          "writes, saturations)", file=out)
    print("layer update" + "".join(f"{c:>{w}}" for c in LEARN_COLUMNS), file=out)
    for l in range(1, n_layers + 1):
        for u in range(n_updates):
            print(f"{l:>5} {u + 1:>6}" + "".join(f"{tally.diff[(l, u, c)]:>{w}}"
                                               for c in LEARN_COLUMNS), file=out)
    print("compared    " + "".join(f"{tally.column(c)[1]:>{w}}" for c in LEARN_COLUMNS),
          file=out)
    extra = {k[1]: tally.diff[k] for k in tally.total if k[0] == "all"}
    print("other: " + ", ".join(f"{k} {v}" for k, v in extra.items()), file=out)


def build_parser():
    from .common import Parser, add_network_args
    p = Parser(prog="python -m reference.check",
               description="Bit-exactness check: the Numba integer core against the PyTorch "
                           "mirror (reference.mirror), integer by integer.")
    add_network_args(p)
    return p


@command
def main(argv=None) -> int:
    return run_check(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""The command line of ``python -m neurochip.run``: flags, their groups, help and limits.

Where a new flag goes: add it to its group in :func:`build_parser` (network,
bit widths, hyper-parameters, run, outputs; a new concern gets its own group);
check it in :func:`neurochip.cli.validation.check_plain_flags` (no work done
yet) and use it in :func:`neurochip.cli.main.run`.  An output flag is also
listed in ``OUTPUT_FLAGS`` so that it is probed and written atomically.
"""
from __future__ import annotations

import argparse

from ..errors import ArgumentParser as _Parser

MAX_STEPS = 1_000_000            # --t1 / --t2
MAX_EPOCHS = 1_000_000
MAX_PARAMETERS = 1 << 28         # weights + biases of an architecture
MAX_NEURONS = 1 << 26            # neurons of all layers (one sample)
OUTPUT_FLAGS = ("json", "save", "report", "figure", "export_lava", "export_nir")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show '(default: X)' only where there is a real default (not None / False)."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like '0.1,0.05', got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    from ..network import PRESETS
    from .. import registry
    presets = ", ".join(f"{k}" for k in PRESETS)
    p = _Parser(
        prog="python -m neurochip.run",
        description="Train and evaluate a spiking convolutional network with three-phase "
                    "Equilibrium Propagation, every number a B-bit integer held and updated as "
                    "an on-chip learning core would (docs/numerics.md).",
        formatter_class=_HelpFormatter,
        epilog="Examples:\n  python -m neurochip.run --bits 8\n"
               "  python -m neurochip.run --preset mnist-small --data-dir ../shared/data/mnist\n"
               "  python -m neurochip.run --load net.npz --json out.json")
    g = p.add_argument_group("network")
    g.add_argument("--preset", default=None, help=f"named preset ({presets}); default 'digits', "
                   "or the one matching --dataset")
    g.add_argument("--arch", default=None,
                   help="architecture string CxHxW:layers, e.g. 1x28x28:c128k3-c256k3-f512-f10 "
                        "(c<ch>k<k>[p<pad>] = conv + 2x2 pool, f<n> = fully connected)")
    g.add_argument("--pool", choices=("avg", "max"), default=None,
                   help="avg: index-free sum-pool + NN upsampling (default); max: max-pool/unpool ablation")
    g.add_argument("--load", metavar="CKPT", default=None, help="evaluate a saved checkpoint (no training)")
    g.add_argument("--resume", metavar="CKPT", default=None,
                   help="continue an interrupted training run from CKPT (and keep checkpointing "
                        "to it, or to --save if given); a finished run is only evaluated, unless "
                        "--epochs (or --lr-schedule) sets a longer plan that keeps the rate factor "
                        "of every epoch already trained")
    w = p.add_argument_group("bit widths")
    w.add_argument("--bits", type=int, default=None, help="weight bits B (signed), 2..16 (default 8)")
    w.add_argument("--state-bits", type=int, default=None,
                   help="state fraction bits S, ONE = 2**S, 8..16 (default 12)")
    w.add_argument("--trace-bits", type=int, default=None, help="trace register bits, 2..16 (default 8)")
    w.add_argument("--bias-bits", type=int, default=None,
                   help="bias register bits, S+2..24 (default 16)")
    h = p.add_argument_group("hyper-parameters (defaults from the preset)")
    h.add_argument("--beta", type=float, default=None, help="nudge strength, (0, 1]")
    h.add_argument("--epsilon", type=float, default=None, help="Euler step, (0, 1]")
    h.add_argument("--lambda", dest="lam", type=float, default=None,
                   help="predictive-coding factor of encoder/decoder, (0, 1]")
    h.add_argument("--alpha", type=float, default=None, help="feedback upsampling scale, (0, 1]")
    h.add_argument("--theta", type=float, default=None, help="sigma-delta threshold, (0, 1]")
    h.add_argument("--t1", type=int, default=None, help=f"free-phase steps, 1..{MAX_STEPS}")
    h.add_argument("--t2", type=int, default=None, help=f"steps of each nudged phase, 1..{MAX_STEPS}")
    h.add_argument("--lrs", type=_floats, default=None,
                   help="per-layer learning rates in [0, 10], e.g. 0.1,0.05")
    h.add_argument("--batch-size", type=int, default=None, help="minibatch size")
    h.add_argument("--lr-schedule", choices=("constant", "step", "cosine"), default=None,
                   help="per-epoch factor on every layer's rate (default constant): step = "
                        "gamma**(epoch // step-epochs), cosine from 1 to --lr-min-factor")
    h.add_argument("--lr-step-epochs", type=int, default=None, help="step schedule: epochs per step (default 1)")
    h.add_argument("--lr-gamma", type=float, default=None, help="step schedule: factor per step (default 0.5)")
    h.add_argument("--lr-min-factor", type=float, default=None,
                   help="cosine schedule: the factor it approaches in the last epoch (default 0)")
    h.add_argument("--weight-headroom", type=float, default=None,
                   help="share of the weight range the initial weights may use, (0, 1] (default 0.5: "
                        "one bit of headroom)")
    h.add_argument("--augment-shift", type=int, default=None, metavar="PIXELS",
                   help="move each training image by a random whole-pixel shift of up to PIXELS "
                        "on each axis, drawn per epoch from the seed (default 0: none)")
    h.add_argument("--augment-flip", action="store_true", default=None,
                   help="mirror each training image left-right with probability 1/2 (before any "
                        "shift), drawn per epoch from the seed (default: never)")
    h.add_argument("--update-scale", choices=("quarter", "alpha"), default=None,
                   help="conv update uses the exact 1/4 of the average pool, or alpha")
    t = p.add_argument_group("run")
    t.add_argument("--dataset", default=None, help="digits (embedded, default), mnist, fashion-mnist")
    t.add_argument("--data-dir", default=None, help="folder with the IDX files (or env NEUROCHIP_DATA)")
    t.add_argument("--download", action="store_true", help="download missing IDX files (checksummed)")
    t.add_argument("--epochs", type=int, default=None, help="training epochs (default from the preset)")
    t.add_argument("--train-samples", type=int, default=None, help="use only the first N training samples")
    t.add_argument("--test-samples", type=int, default=None, help="use only the first N test samples")
    t.add_argument("--val-split", default=None, metavar="N|FRACTION",
                   help="hold out N training images (or a fraction in (0, 1)), drawn from the seed, "
                        "for a per-epoch validation error and best-on-validation weights, which "
                        "--save keeps and the run reports (the test set is untouched)")
    t.add_argument("--eval-train", action="store_true",
                   help="measure the train error with a final free-phase pass (default: on the fly in the "
                        "last epoch; with --load, not measured)")
    t.add_argument("--seed", type=int, default=None,
                   help="seed of the initial weights, data order and rounding, 0..2**32-1 (default 0)")
    t.add_argument("--backend", choices=registry.names("neurochip.backends"), default="numba",
                   help="numba: event-driven integer core; torch: the bit-exact PyTorch reference; "
                        "lava: the Lava processes (slow, verification only); others as registered")
    t.add_argument("--device", default="cpu", help="device of a backend that takes one (torch: cpu, cuda)")
    t.add_argument("--threads", type=int, default=None, help="Numba threads (default: all cores)")
    t.add_argument("--checkpoint-every", type=int, default=50, metavar="N",
                   help="with --save/--resume, write the checkpoint every N updates (and at every epoch end)")
    t.add_argument("--debug", action="store_true",
                   help="check every register against its declared width after each batch "
                        "(also: env NEUROCHIP_DEBUG=1)")
    o = p.add_argument_group("outputs")
    o.add_argument("--json", metavar="PATH", default=None, help="write every figure as JSON")
    o.add_argument("--save", metavar="PATH", default=None, help="save the trained network (checkpoint .npz)")
    o.add_argument("--report", metavar="PATH", default=None, help="hardware-budget report (.json or .md)")
    o.add_argument("--figure", metavar="PATH", default=None, help="hardware-budget PNG figure")
    o.add_argument("--export-lava", metavar="PATH", default=None,
                   help="export the network for Lava (HDF5: a part lava-dl netx loads + the exact "
                        "network)")
    o.add_argument("--export-nir", metavar="PATH", default=None,
                   help="export the network as a NIR graph (feedback cycles, real-unit weights, "
                        "integers in metadata)")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    return p

"""``python -m neurochip.run``: train and evaluate a spiking conv EP network in fixed point.

Progress goes to stderr, results to stdout; ``--json`` writes every figure.

Reliability contract (tests/test_cli_errors.py, tests/test_reliability.py):

* Bad input (a flag out of range, an unknown or malformed name, data of the
  wrong shape or with labels the network cannot represent, a configuration
  whose integers could overflow 64 bits, an unusable output path, a bad
  checkpoint) gives one line on stderr and exit code 2.  Everything is
  checked before any work, outputs are written only at the end and
  atomically, so no existing file is overwritten or left half-written.
* ``--save``/``--resume`` checkpoint the complete training state (weights,
  update counter, position in the epoch, the epoch's partial sums, history,
  counts) every ``--checkpoint-every`` updates and at every epoch end; a run
  killed at any moment (even SIGKILL) and continued with ``--resume`` ends
  with bit-identical weights and the same figures.
* Ctrl-C (SIGINT) or SIGTERM during training finishes the current minibatch,
  saves a checkpoint and exits with 128 + signal (130 for Ctrl-C) and one
  line naming the checkpoint; a second Ctrl-C before the minibatch ends aborts at
  once, and once the final save has begun further signals are ignored.
* ``--debug`` or ``NEUROCHIP_DEBUG=1``: every register is checked against its
  declared width after each batch and update (:mod:`neurochip.debug`).
* ``seconds`` in the JSON is the wall time of the whole command, from the
  process start (interpreter start-up, imports and compilation included).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time

T_IMPORT = time.perf_counter()


def _process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or None."""
    try:
        with open("/proc/self/stat") as fh:
            stat = fh.read()
        fields = stat[stat.rindex(")") + 2:].split()
        start_ticks = int(fields[19])            # field 22, 'starttime', in clock ticks
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
        return age if 0.0 <= age < 86400.0 * 365 else None
    except (OSError, ValueError, IndexError, AttributeError):
        return None


_AGE = _process_age()
#: ``time.perf_counter()`` reading at the (estimated) start of this process.
PROCESS_T0 = T_IMPORT - _AGE if _AGE is not None else T_IMPORT

from .errors import ArgumentParser as _Parser, CheckpointError, UserError  # noqa: E402

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_STEPS = 1_000_000            # --t1 / --t2
MAX_EPOCHS = 1_000_000
MAX_PARAMETERS = 1 << 28         # weights + biases of an architecture
MAX_NEURONS = 1 << 26            # neurons of all layers (one sample)
INT64_LIMIT = 1 << 63
EXACT_FLOAT64 = 1 << 53
OUTPUT_FLAGS = ("json", "save", "report", "figure", "export_lava")

# what the current run has done so far, for main()'s interrupt message
_STATUS: dict = {"checkpoint": None, "updates": None}


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
    from .network import PRESETS
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
                        "to it, or to --save if given); a finished run is only evaluated")
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
    h.add_argument("--update-scale", choices=("quarter", "alpha"), default=None,
                   help="conv update uses the exact 1/4 of the average pool, or alpha")
    t = p.add_argument_group("run")
    t.add_argument("--dataset", default=None, help="digits (embedded, default), mnist, fashion-mnist")
    t.add_argument("--data-dir", default=None, help="folder with the IDX files (or env NEUROCHIP_DATA)")
    t.add_argument("--download", action="store_true", help="download missing IDX files (checksummed)")
    t.add_argument("--epochs", type=int, default=None, help="training epochs (default from the preset)")
    t.add_argument("--train-samples", type=int, default=None, help="use only the first N training samples")
    t.add_argument("--test-samples", type=int, default=None, help="use only the first N test samples")
    t.add_argument("--eval-train", action="store_true",
                   help="measure the train error with a final free-phase pass (default: on the fly in the last epoch)")
    t.add_argument("--seed", type=int, default=None,
                   help="seed of the initial weights, data order and rounding, 0..2**32-1 (default 0)")
    t.add_argument("--backend", choices=("numba", "torch"), default="numba",
                   help="numba: event-driven integer core; torch: the bit-exact PyTorch reference")
    t.add_argument("--device", default="cpu", help="torch backend device (cpu, cuda)")
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
    o.add_argument("--export-lava", metavar="PATH", default=None, help="export the network for Lava (HDF5)")
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


# ----------------------------------------------------------- input checks
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_output(path: str | None, flag: str) -> None:
    """Fail before any work if an output cannot be written (a real probe, root included)."""
    if path is None:
        return
    if not path.strip():
        raise UserError(f"{flag}: empty path")
    if os.path.isdir(path):
        raise UserError(f"{flag} {path}: is a directory")
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.exists(folder):
        raise UserError(f"{flag} {path}: folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {path}: {folder} is not a folder")
    if os.path.exists(path) and not os.path.isfile(path):
        raise UserError(f"{flag} {path}: exists and is not a regular file")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path}: file is not writable")
    import tempfile
    try:
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{flag} {path}: folder {folder} is not writable ({exc.strerror or exc})") from None


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _check_outputs(args) -> None:
    for name in OUTPUT_FLAGS:
        _check_output(getattr(args, name), _flag(name))
    given = [(name, getattr(args, name)) for name in OUTPUT_FLAGS if getattr(args, name)]
    for i, (na, pa) in enumerate(given):
        for nb, pb in given[i + 1:]:
            if _same_file(pa, pb):
                raise UserError(f"{_flag(na)} and {_flag(nb)} name the same file {pa}")
    for src_flag, src in (("--load", args.load), ("--resume", args.resume)):
        if not src:
            continue
        for name, path in given:
            if name == "save" and src_flag == "--resume":
                continue                      # --resume X --save X: keep checkpointing to X
            if _same_file(path, src):
                raise UserError(f"{_flag(name)} {path} would overwrite the checkpoint given to {src_flag}")
    if args.report and os.path.splitext(args.report)[1].lower() not in (".json", ".md"):
        raise UserError(f"--report {args.report}: use a .json or .md file name")


def _module_available(name: str) -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def _need(module: str, flag: str, what: str) -> None:
    if not _module_available(module):
        raise UserError(f"{flag} needs {what} ({module}), which is not installed here")


def _check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> None:
    if value is None:
        return
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise UserError(f"{name} must be {'positive' if lo == 1 else f'>= {lo}'}, got {value}")
        raise UserError(f"{name} must be in [{lo}, {hi}], got {value}")


def _check_plain_flags(args) -> None:
    """Flags checkable without the network or the data."""
    from .data import DATASETS
    from .network import check_seed
    if args.load and args.resume:
        raise UserError("--load and --resume exclude each other")
    _check_int("--epochs", args.epochs, 0, MAX_EPOCHS)
    _check_int("--train-samples", args.train_samples, 1)
    _check_int("--test-samples", args.test_samples, 1)
    _check_int("--checkpoint-every", args.checkpoint_every, 1)
    _check_int("--t1", args.t1, 1, MAX_STEPS)
    _check_int("--t2", args.t2, 1, MAX_STEPS)
    _check_int("--batch-size", args.batch_size, 1)
    if args.seed is not None:
        check_seed(args.seed)
    if args.threads is not None:
        import numba
        _check_int("--threads", args.threads, 1)
        if args.threads > numba.config.NUMBA_NUM_THREADS:
            raise UserError(f"--threads {args.threads} exceeds the {numba.config.NUMBA_NUM_THREADS} available")
    if args.dataset is not None and args.dataset not in DATASETS:
        raise UserError(f"unknown dataset {args.dataset!r}; choose one of: {', '.join(DATASETS)}")
    _check_outputs(args)
    if args.resume and not args.save:
        _check_output(args.resume, "--resume")     # it is checkpointed to in place
    if args.report or args.figure:
        _need("neurochip.budget.report", "--report" if args.report else "--figure",
              "the hardware-budget report")
    if args.figure:
        _need("matplotlib", "--figure", "matplotlib")
    if args.export_lava:
        _need("mapping.export", "--export-lava", "the Lava mapping")
    if args.backend == "torch":
        _need("torch", "--backend torch", "PyTorch")
        _need("reference.backend", "--backend torch", "the PyTorch reference")


HYPER_FLAGS = (("beta", "beta"), ("epsilon", "epsilon"), ("lam", "lambda"), ("alpha", "alpha"),
               ("theta", "theta"), ("t1", "t1"), ("t2", "t2"), ("batch_size", "batch-size"),
               ("pool", "pool"), ("update_scale", "update-scale"), ("lrs", "lrs"))
WIDTH_FLAGS = (("weight_bits", "bits"), ("state_bits", "state-bits"),
               ("trace_bits", "trace-bits"), ("bias_bits", "bias-bits"))


def _arg_for(args, field: str):
    name = {"lam": "lam", "weight_bits": "bits"}.get(field, field)
    v = getattr(args, name)
    return tuple(v) if isinstance(v, (list, tuple)) else v


def _apply_overrides(hyper, widths, args, n_layers: int):
    """Hyper-parameters and widths with the flags given, validated (one-line errors)."""
    import dataclasses
    from . import numerics as nx
    over = {f: _arg_for(args, f) for f, _ in HYPER_FLAGS if _arg_for(args, f) is not None}
    wover = {f: _arg_for(args, f) for f, _ in WIDTH_FLAGS if _arg_for(args, f) is not None}
    widths = dataclasses.replace(widths, **wover)
    widths.validate()
    hyper = dataclasses.replace(hyper, **over)
    hyper.validate(n_layers)
    for field, flag in (("beta", "beta"), ("epsilon", "epsilon"), ("lam", "lambda"), ("alpha", "alpha")):
        v = getattr(hyper, field)
        if nx.q12(v) < 1:
            raise UserError(f"--{flag} {v} is below the Q12 resolution 1/4096 "
                            f"(it would be stored as 0); use at least {1 / 8192:.6g}")
    one = 1 << widths.state_bits
    if math.floor(hyper.theta * one + 0.5) < 1:
        raise UserError(f"--theta {hyper.theta} is below the state resolution 2**-{widths.state_bits} "
                        "(it would be stored as 0)")
    for field in ("t1", "t2"):
        _check_int(f"--{field}", getattr(hyper, field), 1, MAX_STEPS)
    return hyper, widths


def _check_size(arch) -> None:
    import numpy as np
    params = sum(int(np.prod(s)) for s in arch.weight_shapes()) + sum(s[0] for s in arch.bias_shapes())
    neurons = sum(arch.layer_sizes())
    if params > MAX_PARAMETERS:
        raise UserError(f"architecture {arch} has {params:,} parameters; the limit is {MAX_PARAMETERS:,}")
    if neurons > MAX_NEURONS:
        raise UserError(f"architecture {arch} has {neurons:,} neurons; the limit is {MAX_NEURONS:,}")


class _Plan:
    """What to run: a loaded network or the description of a new one."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _plan(args) -> _Plan:
    """Network source, dataset name, epochs; every network flag checked."""
    import dataclasses
    from .checkpoint import load_checkpoint
    from .network import Architecture, PRESETS, get_preset

    if args.load or args.resume:
        src = args.load or args.resume
        net, training = load_checkpoint(src, expect_arch=args.arch)
        hyper, widths = _apply_overrides(net.hyper, net.widths, args, net.arch.n_layers)
        for field, flag in HYPER_FLAGS + WIDTH_FLAGS:
            mine = getattr(hyper if hasattr(hyper, field) else widths, field)
            theirs = getattr(net.hyper if hasattr(net.hyper, field) else net.widths, field)
            if mine != theirs:
                show = lambda v: ",".join(map(str, v)) if isinstance(v, tuple) else v  # noqa: E731
                raise UserError(f"--{flag} {show(mine)} conflicts with checkpoint {src}, which has "
                                f"{show(theirs)}; a checkpoint's network cannot be changed")
        if args.seed is not None and args.seed != net.seed:
            raise UserError(f"--seed {args.seed} conflicts with checkpoint {src}, which has seed {net.seed}")
        if args.preset is not None and args.preset != net.preset:
            get_preset(args.preset)          # unknown preset: its own message
            raise UserError(f"--preset {args.preset} conflicts with checkpoint {src}, "
                            f"which holds preset {net.preset or '(custom)'!r}")
        stored = (training or {}).get("dataset")
        if args.resume and args.dataset and stored and args.dataset != stored:
            raise UserError(f"--dataset {args.dataset} conflicts with checkpoint {src}, "
                            f"which was trained on {stored}")
        dataset = args.dataset or stored or (PRESETS[net.preset].dataset if net.preset in PRESETS
                                             else "digits")
        epochs = (training or {}).get("epochs")
        if args.resume:
            if args.epochs is not None:
                epochs = args.epochs
            elif training is None or epochs is None:
                raise UserError(f"checkpoint {src} holds no training position; give --epochs N "
                                "to train it further, or use --load to evaluate it")
        return _Plan(net=net, training=training, arch=net.arch, dataset=dataset, epochs=epochs,
                     preset=net.preset, source=src)

    dataset = args.dataset
    preset_name = args.preset
    if preset_name is None:
        preset_name = {"mnist": "mnist-small", "fashion-mnist": "fmnist-small"}.get(dataset or "", "digits")
    preset = get_preset(preset_name)
    dataset = dataset or preset.dataset
    arch = Architecture.parse(args.arch if args.arch is not None else preset.arch)
    _check_size(arch)
    hyper = preset.hyper
    if args.lrs is None and len(hyper.lrs) != arch.n_layers:
        # a custom architecture: first rate for hidden layers, last for the readout
        hyper = dataclasses.replace(
            hyper, lrs=tuple([hyper.lrs[0]] * (arch.n_layers - 1) + [hyper.lrs[-1]]))
    hyper, widths = _apply_overrides(hyper, preset.widths, args, arch.n_layers)
    epochs = args.epochs if args.epochs is not None else preset.epochs
    return _Plan(net=None, training=None, arch=arch, hyper=hyper, widths=widths,
                 seed=args.seed if args.seed is not None else 0, dataset=dataset, epochs=epochs,
                 preset=preset_name, source=None)


def _load_data(args, plan):
    """The dataset, checked against the architecture, cut to the sample counts."""
    from .data import load_dataset
    arch = plan.arch
    ds = load_dataset(plan.dataset, args.data_dir, download=args.download)
    if tuple(ds.input_shape) != tuple(arch.input_shape):
        raise UserError(f"dataset {plan.dataset} has images of shape {ds.input_shape}, but the "
                        f"architecture {arch} expects {arch.input_shape}")
    if arch.num_classes < ds.num_classes:
        raise UserError(f"the architecture has {arch.num_classes} outputs but dataset "
                        f"{plan.dataset} has {ds.num_classes} classes")
    stored = plan.training or {}
    n_train, n_test = args.train_samples, args.test_samples
    if args.resume:
        for flag, key, given in (("--train-samples", "train_samples", n_train),
                                 ("--test-samples", "test_samples", n_test)):
            if stored.get(key) is not None and given is not None and given != stored[key]:
                raise UserError(f"{flag} {given} conflicts with checkpoint {plan.source}, "
                                f"which was trained with {stored[key]}")
        n_train = n_train if n_train is not None else stored.get("train_samples")
        n_test = n_test if n_test is not None else stored.get("test_samples")
    for flag, n, have, part in (("--train-samples", n_train, len(ds.train_y), "training"),
                                ("--test-samples", n_test, len(ds.test_y), "test")):
        if n is not None and n > have:
            raise UserError(f"{flag} {n} exceeds the {have} {part} samples of {plan.dataset}")
    ds = ds.subset(n_train, n_test)
    for part, y in (("training", ds.train_y), ("test", ds.test_y)):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= arch.num_classes):
            bad = int(y.max()) if int(y.max()) >= arch.num_classes else int(y.min())
            raise UserError(f"dataset {plan.dataset}: {part} label {bad} is out of range for the "
                            f"{arch.num_classes} outputs of {arch} (labels must be 0..{arch.num_classes - 1})")
    return ds


def _log2(v: float) -> str:
    return f"2^{math.log2(v):.1f}" if v > 0 else "0"


def check_headroom(net, training: bool = True) -> None:
    """Refuse a configuration whose int64 intermediates could overflow (never silent).

    Bounds, per layer: the aligned input ``(u_fwd << sh_fwd) + ((u_fb *
    fb_mult) << sh_fb)``, the contrastive sums (``< 2**53``, exact in
    float64) and the update products ``G * M + 2**K`` of weights and biases
    (the last two only when ``training``).
    """
    try:
        consts = net.constants()
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        raise UserError(f"the hyper-parameters give an unrepresentable learning-rate constant "
                        f"({exc}); lower --lrs or raise --beta / --batch-size") from None
    arch, hyp, wd = net.arch, net.hyper, net.widths
    wmax = 1 << (wd.weight_bits - 1)
    tmax = (1 << wd.trace_bits) - 1
    bsz = hyp.batch_size
    is_max = hyp.pool == "max"
    sizes = arch.layer_sizes()
    shapes = arch.state_shapes()
    n = arch.n_layers

    def fan(i: int) -> int:       # weights summed into one u of layer i+1, times the entry bound
        spec = arch.layers[i]
        if spec.kind == "fc":
            return sizes[i] * wmax
        cin = arch.weight_shapes()[i][1]
        if is_max:
            return cin * spec.kernel ** 2 * wmax
        return cin * (spec.kernel + 1) ** 2 * 4 * wmax

    for i, spec in enumerate(arch.layers):
        lc = consts.layers[i]
        tok = f"layer {i + 1} ({spec.token()})"
        fb = 0
        if i + 1 < n:
            nxt = arch.layers[i + 1]
            if nxt.kind == "fc":
                fb = nxt.channels * wmax
            elif is_max:
                fb = nxt.channels * nxt.kernel ** 2 * wmax
            else:
                fb = nxt.channels * (nxt.kernel + 1) ** 2 * 4 * wmax
        bound = (fan(i) << lc.sh_fwd) + ((fb * max(lc.fb_mult, 1)) << lc.sh_fb) + (1 << lc.sh_out)
        if bound >= INT64_LIMIT:
            raise UserError(f"{tok}: the aligned synaptic input could overflow 64 bits "
                            f"(bound {_log2(bound)}); lower --bits or --state-bits")
        if not training:
            continue
        if spec.kind == "conv":
            _, hc, wc = arch.conv_shape(i)
            positions, pooled = hc * wc, int(shapes[i][1] * shapes[i][2])
        else:
            positions = pooled = 1
        g_learning = 2.0 * bsz * positions * tmax * tmax      # neurochip.learning's bound
        if g_learning >= EXACT_FLOAT64:
            raise UserError(f"{tok}: --batch-size {bsz} with --trace-bits {wd.trace_bits} could "
                            f"exceed the exact 53-bit contrastive sum (bound {_log2(g_learning)}); "
                            "lower --batch-size or --trace-bits")
        for what, g, (mant, shift) in (("weight", bsz * positions * tmax * tmax, lc.lr_w),
                                       ("bias", bsz * pooled * tmax, lc.lr_b)):
            prod = g * mant + (1 << shift)
            if prod >= INT64_LIMIT:
                raise UserError(f"{tok}: the {what} update product could overflow 64 bits "
                                f"(bound {_log2(prod)}); lower --batch-size, --trace-bits or --lrs")


# ------------------------------------------------------------ the training
class _Stop(Exception):
    """A signal asked training to stop at the next consistent point."""


def _tally_to_dict(tally) -> dict:
    return {"counts": tally.counts.ravel().tolist(), "samples_train": int(tally.samples_train),
            "samples_eval": int(tally.samples_eval), "updates": int(tally.updates),
            "learning_products": tally.learning_products.tolist(),
            "weight_writes": tally.weight_writes.tolist(),
            "weight_saturations": tally.weight_saturations.tolist(),
            "bias_saturations": tally.bias_saturations.tolist()}


def _restore_tally(tally, state: dict, src: str) -> None:
    import numpy as np
    try:
        t = state.get("tally")
        if isinstance(t, dict):
            tally.counts[...] = np.asarray(t["counts"], np.int64).reshape(tally.counts.shape)
            tally.samples_train = int(t["samples_train"])
            tally.samples_eval = int(t["samples_eval"])
            tally.updates = int(t["updates"])
            for key in ("learning_products", "weight_writes", "weight_saturations", "bias_saturations"):
                arr = getattr(tally, key)
                arr[...] = np.asarray(t[key], np.int64).reshape(arr.shape)
        elif "tally_counts" in state:
            tally.counts[...] = np.asarray(state["tally_counts"], np.int64).reshape(tally.counts.shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {src}: corrupted tally of counts ({exc})") from None


def _interrupt_path() -> str:
    """A fresh file name for the checkpoint of an interrupted run without --save."""
    import tempfile
    folder = os.getcwd() if os.access(os.getcwd(), os.W_OK) else tempfile.gettempdir()
    for k in range(1000):
        name = "neurochip-interrupted.npz" if k == 0 else f"neurochip-interrupted-{k}.npz"
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            return path
    return tempfile.mkstemp(prefix="neurochip-interrupted-", suffix=".npz", dir=folder)[1]


def _progress(total: int, desc: str, quiet: bool):
    if quiet:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False,
                dynamic_ncols=True, mininterval=0.5)


def _budget_report(net, tally, sample=None):
    """The hardware-budget report of the run and its short table.

    ``sample``: ``(x_fp, label)`` of one image to record (spike raster and
    per-sample counts) for the NeuroBench metrics and the figure; the EP update
    of that recording is applied to a copy, never to ``net``.
    """
    from .budget.report import build_report, format_table, simulate_sample
    counts = raster = None
    if sample is not None:
        counts, raster, _ = simulate_sample(net, sample[0], sample[1], train=True)
    report = build_report(net, tally, sample_counts=counts, sample_raster=raster)
    return report, format_table(report, short=True)


def _write(flag: str, path: str, writer) -> None:
    try:
        writer()
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot write ({exc.strerror or exc})") from None


# ------------------------------------------------------------------- main
def run(argv=None, t0: float | None = None) -> int:
    """The command; ``t0`` is the ``perf_counter`` time the command started."""
    t0 = time.perf_counter() if t0 is None else t0
    _STATUS.update(checkpoint=None, updates=None)
    parser = build_parser()
    args = parser.parse_args(argv)
    from .debug import DebugBackend, enabled as debug_enabled
    debug = debug_enabled(args.debug)
    _check_plain_flags(args)
    plan = _plan(args)

    import numpy as np
    from .checkpoint import (atomic_write_bytes, checkpoint_bytes, remove_stale_temporaries,
                             save_checkpoint)
    from .network import Network
    from .trainer import Tally, evaluate, make_backend, train_epoch

    ds = _load_data(args, plan)
    if plan.net is None:
        net = Network.create(plan.arch, plan.hyper, plan.widths, seed=plan.seed, preset=plan.preset)
    else:
        net = plan.net
    training, epochs, dataset_name, preset_name = plan.training, plan.epochs, plan.dataset, plan.preset
    state = dict(training or {}) if not args.load else {}
    bs = net.hyper.batch_size
    n_train, n_test = len(ds.train_y), len(ds.test_y)
    n_batches = n_train // bs
    start_epoch = int(state.get("epoch", 0))
    start_batch = int(state.get("batch", 0))
    will_train = not args.load and start_epoch < (epochs or 0)
    check_headroom(net, training=will_train)
    if will_train and n_train < bs:
        raise UserError(f"--batch-size {bs} exceeds the {n_train} training samples")
    if start_batch > n_batches:
        raise UserError(f"checkpoint {plan.source} is at batch {start_batch} of an epoch, but "
                        f"{n_train} samples make only {n_batches} batches of {bs}")
    if args.threads is not None:
        import numba
        numba.set_num_threads(args.threads)

    sbits = net.widths.state_bits
    x_train, x_test = ds.quantised(ds.train_x, sbits), ds.quantised(ds.test_x, sbits)
    try:
        backend = make_backend(net, args.backend,
                               **({"device": args.device} if args.backend == "torch" else {}))
    except (ImportError, RuntimeError, ValueError, AssertionError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise UserError(f"--backend {args.backend} --device {args.device}: {first}") from None
    if debug:
        backend = DebugBackend(backend, net)

    tally = Tally.zeros(net.arch.n_layers)
    history = list(state.get("history", []))
    _restore_tally(tally, state, plan.source)
    partial = state.get("partial") or {}
    acc = {"wrong": int(partial.get("wrong", 0)), "loss": float(partial.get("loss", 0.0)),
           "seen": int(partial.get("seen", 0))}
    train_seconds = float(state.get("train_seconds", 0.0))
    pos = {"epoch": start_epoch, "batch": start_batch}
    ckpt_path = None if args.load else (args.save or args.resume)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    log(f"neurochip: {net.arch} | {dataset_name} {n_train}/{n_test} | "
        f"{net.widths.weight_bits}-bit weights, S={sbits} | T1={net.hyper.t1} T2={net.hyper.t2} "
        f"batch {bs} | {args.backend} backend{' | debug: register widths checked' if debug else ''}")
    if args.resume:
        log(f"resuming {plan.source}: epoch {start_epoch + 1}/{epochs}, batch {start_batch}/{n_batches}, "
            f"update {net.updates}")

    def training_state() -> dict:
        return {"epoch": pos["epoch"], "batch": pos["batch"], "epochs": epochs,
                "dataset": dataset_name, "train_samples": n_train, "test_samples": n_test,
                "history": history, "partial": dict(acc), "train_seconds": round(train_seconds, 6),
                "tally_counts": tally.counts.ravel().tolist(), "tally": _tally_to_dict(tally)}

    def checkpoint(path: str) -> None:
        save_checkpoint(path, net, training_state())
        _STATUS.update(checkpoint=path, updates=net.updates)

    stop: dict = {"signal": None}

    def on_signal(signum, frame):
        if stop["signal"] is not None:
            raise KeyboardInterrupt          # the second one: abort at once
        stop["signal"] = signum
        if not args.quiet:
            print(f"\nneurochip: {signal.Signals(signum).name}: stopping after this minibatch "
                  "(again to abort)", file=sys.stderr)

    interrupted = None
    if will_train and ckpt_path:
        remove_stale_temporaries(ckpt_path)      # what a SIGKILL'd earlier writer left behind
    if will_train:
        handlers = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                handlers[sig] = signal.signal(sig, on_signal)
            except (ValueError, OSError):     # not the main thread
                pass
        try:
            for epoch in range(start_epoch, epochs):
                sb = start_batch if epoch == start_epoch else 0
                bar = _progress(n_batches * bs, f"epoch {epoch + 1}/{epochs}", args.quiet)
                if bar is not None:
                    bar.update(sb * bs)
                t_epoch = time.perf_counter()
                t_batch = [t_epoch]

                def on_batch(i, step, wrong, epoch=epoch, bar=bar):
                    nonlocal train_seconds
                    now = time.perf_counter()
                    train_seconds += now - t_batch[0]
                    t_batch[0] = now
                    acc["wrong"] += wrong
                    acc["loss"] += step.loss * bs
                    acc["seen"] += bs
                    pos["epoch"], pos["batch"] = epoch, i + 1
                    if bar is not None:
                        bar.update(bs)
                        bar.set_postfix(loss=f"{step.loss:.3f}", refresh=False)
                    if ckpt_path and net.updates % args.checkpoint_every == 0:
                        checkpoint(ckpt_path)
                    if stop["signal"] is not None:
                        raise _Stop

                train_epoch(backend, net, x_train, ds.train_y, epoch, tally, sb, on_batch)
                if bar is not None:
                    bar.close()
                err = acc["wrong"] / max(acc["seen"], 1)
                loss = acc["loss"] / max(acc["seen"], 1)
                test_err, test_loss = evaluate(backend, net, x_test, ds.test_y, tally=None)
                history.append({"epoch": epoch + 1, "train_error_on_the_fly": err, "train_loss": loss,
                                "test_error": test_err, "test_loss": test_loss,
                                "seconds": round(time.perf_counter() - t_epoch, 3)})
                log(f"epoch {epoch + 1}/{epochs}: train error {err:.2%} (on the fly), "
                    f"test error {test_err:.2%}, {time.perf_counter() - t_epoch:.1f} s")
                pos["epoch"], pos["batch"] = epoch + 1, 0
                acc.update(wrong=0, loss=0.0, seen=0)
                if ckpt_path:
                    checkpoint(ckpt_path)
                if stop["signal"] is not None:
                    raise _Stop
        except _Stop:
            interrupted = stop["signal"]
        except OverflowError as exc:          # a bound the up-front check did not foresee
            raise UserError(f"integer range exceeded during training ({exc}); lower --batch-size, "
                            "--trace-bits or --lrs") from None
        except KeyboardInterrupt:
            last = _STATUS["checkpoint"]
            print("aborted: stopped in the middle of a minibatch, nothing saved now; " +
                  (f"the last checkpoint is {last} (update {_STATUS['updates']}); continue with "
                   f"--resume {last}" if last else "no checkpoint was written"), file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            for sig, old in handlers.items():
                # once stopping, a further signal must not cut the final save short
                signal.signal(sig, signal.SIG_IGN if stop["signal"] is not None else old)
    if interrupted is not None:
        path = ckpt_path or _interrupt_path()
        checkpoint(path)
        name = signal.Signals(interrupted).name
        where = ("training complete" if pos["epoch"] >= epochs else
                 f"epoch {pos['epoch'] + 1}/{epochs}, batch {pos['batch']}/{n_batches}")
        print(f"interrupted ({name}): checkpoint saved to {path} ({where}, update {net.updates}); "
              f"continue with --resume {path}", file=sys.stderr)
        return 128 + int(interrupted)

    # the training state as it stands now (before evaluation counts enter the tally)
    final_state = training_state() if not args.load else training
    final_bytes = None
    if args.save or ckpt_path:
        final_bytes = checkpoint_bytes(net, final_state)

    def final_evaluation():
        bar = _progress(n_test, "test", args.quiet)
        test_error, test_loss = evaluate(backend, net, x_test, ds.test_y, tally=tally,
                                         progress=(bar.update if bar else None))
        if bar is not None:
            bar.close()
        train_error = float("nan")
        if not args.load and history and history[-1].get("epoch") == epochs and pos["batch"] == 0 \
                and (epochs or 0) > 0:
            train_error = float(history[-1]["train_error_on_the_fly"])
        if args.eval_train or math.isnan(train_error):
            bar = _progress(n_train, "train eval", args.quiet)
            train_error, _ = evaluate(backend, net, x_train, ds.train_y,
                                      progress=(bar.update if bar else None))
            if bar is not None:
                bar.close()
            return test_error, test_loss, train_error, "free-phase pass after training"
        return test_error, test_loss, train_error, "on the fly during the last epoch"

    try:
        test_error, test_loss, train_error, train_error_method = final_evaluation()
    except KeyboardInterrupt:
        if will_train and not ckpt_path:     # keep the training that was done: save it now
            path = _interrupt_path()
            atomic_write_bytes(path, checkpoint_bytes(net, final_state))
            _STATUS.update(checkpoint=path, updates=net.updates)
        raise

    want_sample = bool(args.report or args.figure) and len(ds.test_y) > 0
    report, table = _budget_report(net, tally, (x_test[0], int(ds.test_y[0])) if want_sample else None)
    samples = max(tally.samples_train + tally.samples_eval, 1)
    from .core import K_SPIKES
    spikes_per_sample = float(tally.counts[..., K_SPIKES].sum()) / samples
    sat = tally.saturations()
    result = {
        "test_error": test_error, "train_error": train_error,
        "train_error_method": train_error_method, "test_loss": test_loss,
        "seconds": None, "train_seconds": round(train_seconds, 3),
        "bits": net.widths.weight_bits, "widths": dict(vars(net.widths)),
        "dataset": dataset_name, "preset": preset_name, "arch": str(net.arch),
        "hyper": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(net.hyper).items()},
        "seed": net.seed, "epochs": epochs, "updates": net.updates, "backend": args.backend,
        "train_samples": int(n_train), "test_samples": int(n_test),
        "spikes_per_sample": spikes_per_sample,
        "saturations": tally.total_saturations(), "saturations_by_kind": sat,
        "weights_sha256": net.weights_sha256(),
        "weights_sha256_order": "for l=1..L: weights (PyTorch layout, C order) then biases, little-endian int32",
        "history": history, "counts": tally.as_dict(), "budget": report,
        "debug": {"enabled": debug,
                  "batches_checked": getattr(backend, "batches_checked", 0) if debug else 0,
                  "updates_checked": getattr(backend, "updates_checked", 0) if debug else 0},
        "resumed_from": plan.source if args.resume else None,
    }
    seconds = time.perf_counter() - t0
    result["seconds"] = round(seconds, 3)
    print(f"\nneurochip {net.arch}  ({preset_name or 'custom'}, {dataset_name}, {args.backend})")
    print(f"  test error   {test_error:7.2%}   ({n_test} held-out samples)")
    print(f"  train error  {train_error:7.2%}   ({train_error_method})")
    print(f"  bits         weights {net.widths.weight_bits}, state S={sbits}, traces "
          f"{net.widths.trace_bits}, biases {net.widths.bias_bits}")
    print(f"  spikes       {spikes_per_sample:,.0f} per sample (all layers and phases)")
    print(f"  saturations  {tally.total_saturations()}  " +
          ", ".join(f"{k} {v}" for k, v in sat.items()))
    print(f"  updates      {net.updates}   time {seconds:.1f} s   weights sha256 {net.weights_sha256()[:16]}…")
    print()
    print(table)
    # outputs, each written atomically (the checkpoint first: it is the expensive part)
    save_to = args.save or ckpt_path
    if save_to and final_bytes is not None:
        _write("--save", save_to, lambda: atomic_write_bytes(save_to, final_bytes))
        _STATUS.update(checkpoint=save_to, updates=net.updates)
    if args.json:
        data = (json.dumps(result, indent=2, default=_json_default) + "\n").encode()
        _write("--json", args.json, lambda: atomic_write_bytes(args.json, data))
    if args.report:
        from .budget.report import write_report
        _write("--report", args.report, lambda: write_report(report, args.report))
    if args.figure:
        from .budget.report import plot_report
        _write("--figure", args.figure, lambda: plot_report(report, args.figure))
    if args.export_lava:
        from mapping.export import export_lava
        _write("--export-lava", args.export_lava, lambda: export_lava(net, args.export_lava))
    return 0


def load_dataset_download(name, data_dir):
    """Kept for callers of the old API: ``load_dataset(name, data_dir, download=True)``."""
    from .data import load_dataset
    return load_dataset(name, data_dir, download=True)


def _json_default(o):
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def main(argv=None) -> int:
    """Entry point.  ``argv=None`` (the real command line) times ``seconds`` from the
    process start; an explicit ``argv`` (a call from Python) from this call."""
    t0 = PROCESS_T0 if argv is None else time.perf_counter()
    try:
        return run(argv, t0)
    except UserError as exc:
        msg = " ".join(str(exc).split()) or exc.__class__.__name__
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("error: out of memory: the network, batch or dataset is too large for this machine",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a further Ctrl-C must not cut this short
        last = _STATUS["checkpoint"]
        print("interrupted; " + (f"the last checkpoint is {last} (update {_STATUS['updates']}); "
                                 f"continue with --resume {last}" if last else "nothing was saved"),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

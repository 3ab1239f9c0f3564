"""Checks of the command line before any work: flags, outputs, the network plan, the data.

Every problem is a :class:`~neurochip.errors.UserError` (one line, exit 2),
raised before training starts, so nothing is written or overwritten.
"""
from __future__ import annotations

import math
import os

from ..bounds import check_headroom  # noqa: F401  (the CLI's last check before work)
from ..errors import UserError
from .parser import MAX_EPOCHS, MAX_NEURONS, MAX_PARAMETERS, MAX_STEPS, OUTPUT_FLAGS


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_output(path: str | None, flag: str) -> None:
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


def check_outputs(args) -> None:
    for name in OUTPUT_FLAGS:
        check_output(getattr(args, name), flag_name(name))
    given = [(name, getattr(args, name)) for name in OUTPUT_FLAGS if getattr(args, name)]
    for i, (na, pa) in enumerate(given):
        for nb, pb in given[i + 1:]:
            if _same_file(pa, pb):
                raise UserError(f"{flag_name(na)} and {flag_name(nb)} name the same file {pa}")
    for src_flag, src in (("--load", args.load), ("--resume", args.resume)):
        if not src:
            continue
        for name, path in given:
            if name == "save" and src_flag == "--resume":
                continue                      # --resume X --save X: keep checkpointing to X
            if _same_file(path, src):
                raise UserError(f"{flag_name(name)} {path} would overwrite the checkpoint given to {src_flag}")
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


def need_plugin(group: str, name: str, flag: str):
    """The registered plug-in ``name`` of ``group``, imported now (before any work)."""
    from .. import registry
    try:
        return registry.get(group, name)
    except UserError as exc:
        raise UserError(f"{flag}: {exc}") from None


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> None:
    if value is None:
        return
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise UserError(f"{name} must be {'positive' if lo == 1 else f'>= {lo}'}, got {value}")
        raise UserError(f"{name} must be in [{lo}, {hi}], got {value}")


def check_plain_flags(args) -> None:
    """Flags checkable without the network or the data."""
    from ..data import DATASETS
    from ..network import check_seed
    if args.load and args.resume:
        raise UserError("--load and --resume exclude each other")
    check_int("--epochs", args.epochs, 0, MAX_EPOCHS)
    check_int("--train-samples", args.train_samples, 1)
    check_int("--test-samples", args.test_samples, 1)
    check_int("--checkpoint-every", args.checkpoint_every, 1)
    check_int("--t1", args.t1, 1, MAX_STEPS)
    check_int("--t2", args.t2, 1, MAX_STEPS)
    check_int("--batch-size", args.batch_size, 1)
    for flag, value in (("--augment-shift", args.augment_shift), ("--augment-flip", args.augment_flip)):
        if args.load and value is not None:
            raise UserError(f"{flag} moves training images; --load only evaluates")
    if args.seed is not None:
        check_seed(args.seed)
    if args.threads is not None:
        import numba
        check_int("--threads", args.threads, 1)
        if args.threads > numba.config.NUMBA_NUM_THREADS:
            raise UserError(f"--threads {args.threads} exceeds the {numba.config.NUMBA_NUM_THREADS} available")
    if args.dataset is not None and args.dataset not in DATASETS:
        raise UserError(f"unknown dataset {args.dataset!r}; choose one of: {', '.join(DATASETS)}")
    check_outputs(args)
    if args.resume and not args.save:
        check_output(args.resume, "--resume")     # it is checkpointed to in place
    if args.report or args.figure:
        _need("neurochip.budget.report", "--report" if args.report else "--figure",
              "the hardware-budget report")
    if args.figure:
        _need("matplotlib", "--figure", "matplotlib")
    if args.export_lava:
        need_plugin("neurochip.exporters", "lava", "--export-lava")
    if args.export_nir:
        need_plugin("neurochip.exporters", "nir", "--export-nir")
    need_plugin("neurochip.backends", args.backend, f"--backend {args.backend}")


HYPER_FLAGS = (("beta", "beta"), ("epsilon", "epsilon"), ("lam", "lambda"), ("alpha", "alpha"),
               ("theta", "theta"), ("t1", "t1"), ("t2", "t2"), ("batch_size", "batch-size"),
               ("pool", "pool"), ("update_scale", "update-scale"), ("lrs", "lrs"))
WIDTH_FLAGS = (("weight_bits", "bits"), ("state_bits", "state-bits"),
               ("trace_bits", "trace-bits"), ("bias_bits", "bias-bits"))


def _arg_for(args, field: str):
    name = {"lam": "lam", "weight_bits": "bits"}.get(field, field)
    v = getattr(args, name)
    return tuple(v) if isinstance(v, (list, tuple)) else v


def apply_overrides(hyper, widths, args, n_layers: int):
    """Hyper-parameters and widths with the flags given, validated (one-line errors)."""
    import dataclasses
    from .. import numerics as nx
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
        check_int(f"--{field}", getattr(hyper, field), 1, MAX_STEPS)
    return hyper, widths


def check_size(arch) -> None:
    import numpy as np
    params = sum(int(np.prod(s)) for s in arch.weight_shapes()) + sum(s[0] for s in arch.bias_shapes())
    neurons = sum(arch.layer_sizes())
    if params > MAX_PARAMETERS:
        raise UserError(f"architecture {arch} has {params:,} parameters; the limit is {MAX_PARAMETERS:,}")
    if neurons > MAX_NEURONS:
        raise UserError(f"architecture {arch} has {neurons:,} neurons; the limit is {MAX_NEURONS:,}")


def recipe(args, training: dict | None, source: str | None, epochs: int | None = None):
    """``(schedule, val_split, weight_headroom)`` from the flags, or from the
    checkpoint being resumed (a flag that disagrees with it is an error).

    A resumed run of ``epochs`` epochs may change the schedule (and its
    number of epochs) only where no epoch it has trained, wholly or in part,
    changes its factor: the continued run is then bit for bit an
    uninterrupted run of the new plan."""
    import dataclasses
    from ..network import DEFAULT_WEIGHT_HEADROOM, check_weight_headroom
    from ..schedule import LRSchedule, first_changed_epoch, given_fields
    from ..validation_split import parse_split
    given = given_fields(args)
    split = parse_split(args.val_split) if args.val_split is not None else None
    if args.weight_headroom is not None:
        check_weight_headroom(args.weight_headroom)
    if source is None:
        schedule = dataclasses.replace(LRSchedule(), **given).validate()
        headroom = args.weight_headroom if args.weight_headroom is not None else DEFAULT_WEIGHT_HEADROOM
        return schedule, split, headroom
    stored = training or {}
    schedule = LRSchedule.from_dict(stored.get("lr_schedule"))
    if args.resume:
        mine = dataclasses.replace(schedule, **given).validate()
        stored_epochs = int(stored.get("epochs") or epochs or 0)
        trained = int(stored.get("epoch", 0)) + (1 if stored.get("batch") else 0)
        changed = first_changed_epoch(schedule, stored_epochs, mine,
                                      stored_epochs if epochs is None else epochs, trained)
        if changed is not None:
            raise UserError(f"--lr-schedule/--epochs conflict with checkpoint {source} (trained with "
                            f"{schedule.as_dict()} over {stored_epochs} epochs): epoch {changed + 1}, "
                            "already trained, would change its rate factor")
        schedule = mine
    headroom = stored.get("weight_headroom", DEFAULT_WEIGHT_HEADROOM)
    if args.weight_headroom is not None and args.weight_headroom != headroom:
        raise UserError(f"--weight-headroom {args.weight_headroom} conflicts with checkpoint {source}, "
                        f"whose weights were initialised with {headroom}")
    if args.resume:
        stored_split = stored.get("val_split")
        if split is not None and stored.get("train_samples") is not None and split != stored_split:
            raise UserError(f"--val-split {args.val_split} conflicts with checkpoint {source}, "
                            f"which was trained with {stored_split}")
        split = stored_split
    else:
        split = None                  # --load only evaluates: nothing is held out
    return schedule, split, headroom


def augmentation(args, training: dict | None, source: str | None, arch):
    """The :class:`~neurochip.augment.Augment` of ``--augment-shift`` and ``--augment-flip``,
    or of the checkpoint being resumed (a flag that disagrees with it is an error: the
    epochs already trained saw its moves)."""
    from ..augment import Augment
    image_hw = tuple(arch.input_shape[1:])
    shift, flip = args.augment_shift, args.augment_flip
    given = Augment(shift or 0, bool(flip)).validate(image_hw)      # a bad value: its own message
    if source is None:
        return given
    record = (training or {}).get("augment")
    try:
        stored = Augment.from_dict(record)
    except (UserError, AttributeError, TypeError, ValueError, KeyError):
        raise UserError(f"checkpoint {source} holds an invalid augmentation record {record!r}") from None
    if args.resume and shift is not None and given.max_shift != stored.max_shift:
        raise UserError(f"--augment-shift {shift} conflicts with checkpoint {source}, "
                        f"which was trained with --augment-shift {stored.max_shift}")
    if args.resume and flip and not stored.flip:
        raise UserError(f"--augment-flip conflicts with checkpoint {source}, which was trained "
                        f"without mirroring")
    return stored


def carve_validation(ds, split, seed: int):
    """``(training set without the held-out images, val images, val labels)``;
    ``(ds, None, None)`` without a split.  The test set is untouched."""
    if split is None:
        return ds, None, None
    import dataclasses
    from ..validation_split import split_count, split_indices
    tr, va = split_indices(len(ds.train_y), split_count(split, len(ds.train_y)), seed)
    rest = dataclasses.replace(ds, train_x=ds.train_x[tr], train_y=ds.train_y[tr])
    return rest, ds.train_x[va], ds.train_y[va]


class Plan:
    """What to run: a loaded network or the description of a new one."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def plan(args) -> Plan:
    """Network source, dataset name, epochs; every network flag checked."""
    import dataclasses
    from ..checkpoint import load_checkpoint
    from ..network import Architecture, PRESETS, get_preset, rates_for

    if args.load or args.resume:
        src = args.load or args.resume
        # --load evaluates a validation-split run's best-on-validation weights
        net, training = load_checkpoint(src, expect_arch=args.arch,
                                        which="best" if args.load else "last")
        hyper, widths = apply_overrides(net.hyper, net.widths, args, net.arch.n_layers)
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
        schedule, split, headroom = recipe(args, training, src, epochs)
        return Plan(net=net, training=training, arch=net.arch, dataset=dataset, epochs=epochs,
                    preset=net.preset, source=src, schedule=schedule, val_split=split,
                    headroom=headroom, augment=augmentation(args, training, src, net.arch))

    dataset = args.dataset
    preset_name = args.preset
    if preset_name is None:
        preset_name = {"mnist": "mnist-small", "fashion-mnist": "fmnist-small"}.get(dataset or "", "digits")
    preset = get_preset(preset_name)
    dataset = dataset or preset.dataset
    arch = Architecture.parse(args.arch if args.arch is not None else preset.arch)
    check_size(arch)
    hyper = preset.hyper
    if args.lrs is None:
        hyper = dataclasses.replace(hyper, lrs=rates_for(hyper.lrs, arch.n_layers))
    hyper, widths = apply_overrides(hyper, preset.widths, args, arch.n_layers)
    epochs = args.epochs if args.epochs is not None else preset.epochs
    schedule, split, headroom = recipe(args, None, None)
    return Plan(net=None, training=None, arch=arch, hyper=hyper, widths=widths,
                seed=args.seed if args.seed is not None else 0, dataset=dataset, epochs=epochs,
                preset=preset_name, source=None, schedule=schedule, val_split=split,
                headroom=headroom, augment=augmentation(args, None, None, arch))


def load_data(args, plan):
    """The dataset, checked against the architecture, cut to the sample counts."""
    from ..data import load_dataset
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

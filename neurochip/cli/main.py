"""``python -m neurochip.run``: the command's flow (plan, data, training loop, outputs).

The reliability contract (one-line errors, atomic outputs, exact resume,
signals) is described in :mod:`neurochip.run`; the flags are in
:mod:`.parser`, their checks in :mod:`.validation`, what is shown and written
in :mod:`.outputs`.
"""
from __future__ import annotations

import math
import os
import inspect
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

from .. import checkpoint, trainer  # noqa: E402  (module attributes: tests replace them)
from ..errors import CheckpointError, UserError  # noqa: E402
from . import outputs, validation  # noqa: E402
from .parser import build_parser  # noqa: E402
from .validation import check_headroom  # noqa: E402,F401
from ..health import HealthCallback, HealthMonitor, activity_rise, rail_fractions, warning_line  # noqa: E402
from ..validation_split import BestOnValidation, BestTracker  # noqa: E402

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# what the current run has done so far, for main()'s interrupt message
_STATUS: dict = {"checkpoint": None, "updates": None}


# ------------------------------------------------------------ the training
class _StopOnSignal(trainer.Callback):
    """SIGINT/SIGTERM: finish the minibatch (and its checkpoint), then stop; a second one aborts."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.signal = None

    def handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt          # the second one: abort at once
        self.signal = signum
        if not self.quiet:     # one write: a second signal cannot cut the line before its newline
            sys.stderr.write(f"\nneurochip: {signal.Signals(signum).name}: stopping after this "
                             "minibatch (again to abort)\n")

    def install(self) -> dict:
        handlers = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                handlers[sig] = signal.signal(sig, self.handle)
            except (ValueError, OSError):     # not the main thread
                pass
        return handlers

    def uninstall(self, handlers: dict) -> None:
        for sig, old in handlers.items():
            # once stopping, a further signal must not cut the final save short
            signal.signal(sig, signal.SIG_IGN if self.signal is not None else old)

    def on_batch_end(self, state, batch) -> None:
        if self.signal is not None:
            raise trainer.StopTraining

    def on_epoch_end(self, state, record) -> None:
        if self.signal is not None:
            raise trainer.StopTraining


class _Checkpoints(trainer.Callback):
    """``--save``/``--resume``: every ``every`` updates and at every epoch end."""

    def __init__(self, save, path: str | None, every: int, net):
        self.save, self.path, self.every, self.net = save, path, every, net

    def on_batch_end(self, state, batch) -> None:
        if self.path and self.net.updates % self.every == 0:
            self.save(self.path)

    def on_epoch_end(self, state, record) -> None:
        if self.path:
            self.save(self.path)


def _restore_tally(tally, state: dict, src: str) -> None:
    import numpy as np
    try:
        t = state.get("tally")
        if isinstance(t, dict):
            tally.load_state_dict(t)
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


# ------------------------------------------------------------------- main
def run(argv=None, t0: float | None = None) -> int:
    """The command; ``t0`` is the ``perf_counter`` time the command started."""
    opened: list = []
    try:
        return _run(argv, time.perf_counter() if t0 is None else t0, opened)
    finally:
        for backend in opened:    # a backend with live processes (Lava) must not outlive the command
            close = getattr(backend, "close", None)
            if callable(close):
                close()


def _run(argv, t0: float, opened: list) -> int:
    _STATUS.update(checkpoint=None, updates=None)
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..debug import DebugBackend, enabled as debug_enabled
    debug = debug_enabled(args.debug)
    validation.check_plain_flags(args)
    plan = validation.plan(args)

    from ..network import Network

    ds = validation.load_data(args, plan)
    if plan.net is None:
        net = Network.create(plan.arch, plan.hyper, plan.widths, seed=plan.seed, preset=plan.preset,
                             weight_headroom=plan.headroom)
    else:
        net = plan.net
    training, epochs, dataset_name, preset_name = plan.training, plan.epochs, plan.dataset, plan.preset
    state = dict(training or {}) if not args.load else {}
    bs = net.hyper.batch_size
    n_train_given = len(ds.train_y)          # --train-samples (what a checkpoint records)
    ds, val_x_raw, val_y = validation.carve_validation(ds, plan.val_split, net.seed)
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
    validation_set = None if val_y is None else (ds.quantised(val_x_raw, sbits), val_y)
    factory = validation.need_plugin("neurochip.backends", args.backend, f"--backend {args.backend}")

    def make_backend(the_net):
        try:
            takes_device = "device" in inspect.signature(factory).parameters
            be = factory(the_net, **({"device": args.device} if takes_device else {}))
        except (ImportError, RuntimeError, ValueError, AssertionError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            raise UserError(f"--backend {args.backend} --device {args.device}: {first}") from None
        opened.append(be)        # closed when the command ends (run())
        return DebugBackend(be, the_net) if debug else be

    backend = make_backend(net)

    tally = trainer.Tally.zeros(net.arch.n_layers)
    _restore_tally(tally, state, plan.source)
    progress = trainer.TrainingState.from_state_dict(state, epochs=epochs or 0)
    history = progress.history
    health = HealthMonitor.from_state(state.get("health"))
    best = BestTracker(record=state.get("best"))
    if best.record is not None and plan.source:
        best.net = checkpoint.load_checkpoint(plan.source, which="best")[0]
    ckpt_path = None if args.load else (args.save or args.resume)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    log(f"neurochip: {net.arch} | {dataset_name} {n_train}/"
        f"{'' if val_y is None else f'{len(val_y)} val/'}{n_test} | "
        f"{net.widths.weight_bits}-bit weights, S={sbits} | T1={net.hyper.t1} T2={net.hyper.t2} "
        f"batch {bs} | {args.backend} backend{' | debug: register widths checked' if debug else ''}")
    if args.resume:
        log(f"resuming {plan.source}: epoch {start_epoch + 1}/{epochs}, batch {start_batch}/{n_batches}, "
            f"update {net.updates}")

    def training_state() -> dict:
        """The checkpoint's ``training``: the loop's position, the run's data, the counts.

        State a new callback needs on ``--resume`` is one more key here, read back
        from ``state`` (the checkpoint's ``training``) where the callback is made.
        """
        pos = progress.state_dict()
        pos["epochs"] = epochs
        return {**{k: pos[k] for k in ("epoch", "batch", "epochs")},
                "dataset": dataset_name, "train_samples": n_train_given, "test_samples": n_test,
                **{k: pos[k] for k in ("history", "partial", "train_seconds")},
                "tally_counts": tally.counts.ravel().tolist(), "tally": tally.state_dict(),
                "lr_schedule": plan.schedule.as_dict(), "val_split": plan.val_split,
                "weight_headroom": plan.headroom, "augment": plan.augment.as_dict(),
                "health": health.state(), "best": best.record}

    def save_training(path: str) -> None:
        checkpoint.save_checkpoint(path, net, training_state(), best.net)
        _STATUS.update(checkpoint=path, updates=net.updates)

    stop = _StopOnSignal(args.quiet)
    # the command's callbacks, in order; a new per-batch or per-epoch job is one more entry here
    # (the best-on-validation weights are kept before the epoch's checkpoint is written)
    callbacks = ([outputs.ProgressBar(n_batches, bs, args.quiet), HealthCallback(health)]
                 + ([BestOnValidation(best, net)] if validation_set is not None else [])
                 + [outputs.EpochLog(log),
                    _Checkpoints(save_training, ckpt_path, args.checkpoint_every, net), stop])
    interrupted = None
    if will_train and ckpt_path:
        checkpoint.remove_stale_temporaries(ckpt_path)      # what a SIGKILL'd earlier writer left behind
    if will_train:
        handlers = stop.install()
        try:
            trainer.fit(backend, net, x_train, ds.train_y, epochs, test=(x_test, ds.test_y),
                        validation=validation_set, lr_schedule=plan.schedule, augment=plan.augment,
                        tally=tally, callbacks=callbacks, state=progress)
            if progress.stopped:
                interrupted = stop.signal
        except OverflowError as exc:          # a bound the up-front check did not foresee
            raise UserError(f"integer range exceeded during training ({exc}); lower --batch-size, "
                            "--trace-bits or --lrs") from None
        except KeyboardInterrupt:
            last = _STATUS["checkpoint"]
            # its own line, whatever write (a progress bar's) the second signal cut short
            sys.stderr.write("\naborted: stopped in the middle of a minibatch, nothing saved now; " +
                             (f"the last checkpoint is {last} (update {_STATUS['updates']}); continue "
                              f"with --resume {last}" if last else "no checkpoint was written") + "\n")
            return EXIT_INTERRUPTED
        finally:
            stop.uninstall(handlers)
    if interrupted is not None:
        path = ckpt_path or _interrupt_path()
        save_training(path)
        name = signal.Signals(interrupted).name
        where = ("training complete" if progress.epoch >= epochs else
                 f"epoch {progress.epoch + 1}/{epochs}, batch {progress.batch}/{n_batches}")
        print(f"interrupted ({name}): checkpoint saved to {path} ({where}, update {net.updates}); "
              f"continue with --resume {path}", file=sys.stderr)
        return 128 + int(interrupted)

    # the training state as it stands now (before evaluation counts enter the tally)
    final_state = training_state() if not args.load else training
    final_bytes = None
    if args.save or ckpt_path:
        final_bytes = checkpoint.checkpoint_bytes(net, final_state, best.net)
    # a run with a validation split reports (and --load evaluates) its best-on-validation weights
    eval_net, eval_backend = net, backend
    if best.net is not None:
        eval_net = best.net
        eval_backend = make_backend(eval_net)

    import numpy as np
    classes = eval_net.arch.num_classes
    test_confusion = np.zeros((classes, classes), np.int64)   # [true label, predicted class]

    def final_evaluation():
        bar = outputs.progress_bar(n_test, "test", args.quiet)
        test_error, test_loss = trainer.evaluate(eval_backend, eval_net, x_test, ds.test_y, tally=tally,
                                                 progress=(bar.update if bar else None),
                                                 confusion=test_confusion)
        if bar is not None:
            bar.close()
        if args.load and not args.eval_train:     # nothing trained: no pass over the training set unless asked
            return test_error, test_loss, None, "not measured (--load; --eval-train measures it)"
        train_error, method = float("nan"), "on the fly during the last epoch"
        if not args.load and history and history[-1].get("epoch") == epochs and progress.batch == 0 \
                and (epochs or 0) > 0:
            if eval_net is net:
                train_error = float(history[-1]["train_error_on_the_fly"])
            elif len(history) >= best.record["epoch"]:    # the best epoch's own figure
                train_error = float(history[best.record["epoch"] - 1]["train_error_on_the_fly"])
                method = f"on the fly during epoch {best.record['epoch']} (the best on validation)"
        if args.eval_train or math.isnan(train_error):
            bar = outputs.progress_bar(n_train, "train eval", args.quiet)
            train_error, _ = trainer.evaluate(eval_backend, eval_net, x_train, ds.train_y,
                                              progress=(bar.update if bar else None))
            if bar is not None:
                bar.close()
            return test_error, test_loss, train_error, "free-phase pass after training"
        return test_error, test_loss, train_error, method

    try:
        test_error, test_loss, train_error, train_error_method = final_evaluation()
    except KeyboardInterrupt:
        if will_train and not ckpt_path:     # keep the training that was done: save it now
            path = _interrupt_path()
            checkpoint.atomic_write_bytes(path, checkpoint.checkpoint_bytes(net, final_state))
            _STATUS.update(checkpoint=path, updates=net.updates)
        raise

    health_report = health.report(rail_fractions(net.weights_q, net.constants().w_range),
                                  activity_rise(history))
    warning = warning_line(health_report)
    if warning:
        print(warning, file=sys.stderr)
    want_sample = bool(args.report or args.figure) and len(ds.test_y) > 0
    report, table = outputs.budget_report(net, tally, (x_test[0], int(ds.test_y[0])) if want_sample else None)
    result = outputs.result_record(
        eval_net, tally, report, history,
        errors={"test_error": test_error, "train_error": train_error,
                "train_error_method": train_error_method, "test_loss": test_loss},
        run={"train_seconds": round(progress.train_seconds, 3), "dataset": dataset_name, "preset": preset_name,
             "epochs": epochs, "backend": args.backend, "train_samples": int(n_train),
             "test_samples": int(n_test)},
        debug={"enabled": debug,
               "batches_checked": getattr(backend, "batches_checked", 0) if debug else 0,
               "updates_checked": getattr(backend, "updates_checked", 0) if debug else 0},
        resumed_from=plan.source if args.resume else None)
    result.update({
        "learning_health": health_report,
        "val_split": plan.val_split, "val_samples": None if val_y is None else int(len(val_y)),
        "best": best.record, "evaluated": "best on validation" if eval_net is not net else "latest",
        "lr_schedule": plan.schedule.as_dict(), "weight_headroom": plan.headroom,
        "augment": plan.augment.as_dict(), "weights_sha256_latest": net.weights_sha256(),
        "test_confusion": test_confusion.tolist(),
        "test_error_by_class": [None if math.isnan(e) else float(e)
                                for e in trainer.error_by_class(test_confusion)]})
    seconds = time.perf_counter() - t0
    result["seconds"] = round(seconds, 3)
    outputs.print_summary(result, eval_net, tally, table, seconds)
    # outputs, each written atomically (the checkpoint first: it is the expensive part)
    save_to = args.save or ckpt_path
    if save_to and final_bytes is not None:
        outputs.write_output("--save", save_to, lambda: checkpoint.atomic_write_bytes(save_to, final_bytes))
        _STATUS.update(checkpoint=save_to, updates=net.updates)
    outputs.write_files(args, net, result, report)
    return 0


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

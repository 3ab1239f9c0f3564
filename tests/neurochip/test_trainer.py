"""neurochip.trainer: train_step / train_epoch / evaluate / fit with callbacks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurochip import trainer
from neurochip.backend import make_backend
from neurochip.data import load_digits
from neurochip.network import Network, get_preset


def _setup(seed=3):
    p = get_preset("digits")
    hyper = dataclasses.replace(p.hyper, t1=6, t2=2, batch_size=10)
    net = Network.create(p.arch, hyper, p.widths, seed=seed)
    ds = load_digits()
    s = net.widths.state_bits
    return net, ds.quantised(ds.train_x[:60], s), ds.train_y[:60], ds.quantised(ds.test_x[:20], s), \
        ds.test_y[:20]


def test_train_epoch_needs_no_tally_and_equals_train_steps():
    net, x, y, _, _ = _setup()
    ref = net.copy()
    err, loss = trainer.train_epoch(make_backend(net), net, x, y, epoch=0)
    be = make_backend(ref)
    order = trainer.epoch_order(ref.seed, 0, len(y))
    for i in range(len(y) // 10):
        trainer.train_step(be, ref, x[order[i * 10:(i + 1) * 10]], y[order[i * 10:(i + 1) * 10]])
    assert net.updates == ref.updates == 6 and net.weights_sha256() == ref.weights_sha256()
    assert 0.0 <= err <= 1.0 and loss > 0


def test_fit_history_and_callback_order():
    net, x, y, xt, yt = _setup()
    ref = net.copy()
    calls = []
    cb = trainer.LambdaCallback(
        on_train_begin=lambda st: calls.append("begin"),
        on_epoch_begin=lambda st: calls.append(f"e{st.epoch}"),
        on_batch_end=lambda st, b: calls.append(b.index),
        on_epoch_end=lambda st, rec: calls.append(f"end{rec['epoch']}"),
        on_train_end=lambda st: calls.append("done"))
    tally = trainer.Tally.zeros(net.arch.n_layers)
    st = trainer.fit(make_backend(net), net, x, y, 2, test=(xt, yt), tally=tally, callbacks=[cb])
    assert calls == ["begin", "e0", 0, 1, 2, 3, 4, 5, "end1", "e1", 0, 1, 2, 3, 4, 5, "end2", "done"]
    assert [r["epoch"] for r in st.history] == [1, 2] and not st.stopped and st.finished
    assert set(st.history[0]) == {"epoch", "train_error_on_the_fly", "train_loss", "test_error",
                                  "test_loss", "seconds"}
    assert tally.updates == 12 and tally.samples_train == 120
    be = make_backend(ref)
    for e in range(2):
        trainer.train_epoch(be, ref, x, y, e)
    assert net.weights_sha256() == ref.weights_sha256()
    assert st.history[1]["test_error"] == trainer.evaluate(be, ref, xt, yt)[0]


def test_stop_then_continue_is_exact():
    """StopTraining after batch 4 of epoch 0, then fit again from the state: same integers."""
    net, x, y, _, _ = _setup()
    ref = net.copy()
    trainer.fit(make_backend(ref), ref, x, y, 2)

    def stop_at(st, b):
        if (st.epoch, b.index) == (0, 3):
            raise trainer.StopTraining
    be = make_backend(net)
    st = trainer.fit(be, net, x, y, 2, callbacks=[trainer.LambdaCallback(on_batch_end=stop_at)])
    assert st.stopped and (st.epoch, st.batch, net.updates) == (0, 4, 4) and st.seen == 40
    st = trainer.fit(be, net, x, y, 2, state=dataclasses.replace(st, stopped=False))
    assert st.finished and net.updates == ref.updates == 12
    assert net.weights_sha256() == ref.weights_sha256()


def test_early_stopping_on_a_monitored_value():
    net, x, y, _, _ = _setup()
    values = iter([0.5, 0.4, 0.45, 0.46, 0.3])

    def add(st, rec):
        rec["val_error"] = next(values)
    st = trainer.fit(make_backend(net), net, x, y, 5,
                     callbacks=[trainer.LambdaCallback(on_epoch_end=add),
                                trainer.EarlyStopping("val_error", patience=2)])
    assert st.stopped and len(st.history) == 4 and [r["val_error"] for r in st.history] == \
        [0.5, 0.4, 0.45, 0.46]


def test_unknown_hook_is_refused():
    with pytest.raises(TypeError):
        trainer.LambdaCallback(on_step=lambda st: None)


def test_print_progress(capsys):
    net, x, y, xt, yt = _setup()
    trainer.fit(make_backend(net), net, x, y, 1, test=(xt, yt), callbacks=[trainer.PrintProgress()])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("epoch 1/1: train error ") and "test error" in err[0]
    assert np.isfinite(float(err[0].split("test error ")[1].split("%")[0]))


def test_api_run_saved_and_continued_is_exact(tmp_path):
    """nc.train 2 epochs == nc.train 1 epoch, TrainingRun.save, nc.load_run, 1 more epoch."""
    import neurochip as nc
    data = nc.load_dataset("digits").subset(60, 20)
    ref = nc.Network.from_preset("digits", t1=6, t2=2, batch_size=10, seed=4)
    net = ref.copy()
    full = nc.train(ref, data, epochs=2)
    first = nc.train(net, data, epochs=1)
    first.save(str(tmp_path / "run.npz"))
    again = nc.load_run(str(tmp_path / "run.npz"))
    assert again.state.epoch == 1 and again.tally.updates == first.tally.updates == 6
    rest = nc.train(again.net, data, epochs=2, state=again.state, tally=again.tally)
    assert rest.net.weights_sha256() == ref.weights_sha256()
    assert np.array_equal(rest.tally.counts, full.tally.counts)
    assert [h["train_loss"] for h in rest.history] == [h["train_loss"] for h in full.history]


def test_epoch_order_is_a_pure_function():
    a = trainer.epoch_order(7, 3, 500)
    assert np.array_equal(a, trainer.epoch_order(7, 3, 500))
    assert not np.array_equal(a, trainer.epoch_order(7, 4, 500)) and \
        not np.array_equal(a, trainer.epoch_order(8, 3, 500))
    assert np.array_equal(np.sort(a), np.arange(500))

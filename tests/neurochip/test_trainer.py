"""neurochip.trainer: train_step / train_epoch / evaluate / fit with callbacks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurochip import trainer
from neurochip.backend import make_backend
from neurochip.data import load_digits
from neurochip.kinds import K_SPIKES
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


def test_api_evaluate_confusion_matches_the_error_of_each_class_alone():
    """nc.evaluate's confusion rows against an independent route: the error of each class's
    test samples evaluated on their own."""
    import neurochip as nc
    data = nc.load_dataset("digits").subset(60, 40)
    net = nc.Network.from_preset("digits", t1=6, t2=2, batch_size=10, seed=5)
    nc.train(net, data, epochs=1)
    ev = nc.evaluate(net, data)
    assert ev.confusion.shape == (10, 10) and ev.confusion.dtype == np.int64
    assert ev.confusion.sum() == 40 and np.trace(ev.confusion) == round((1 - ev.error) * 40)
    for c in range(10):
        mine = data.test_y == c
        if not mine.any():
            assert np.isnan(ev.error_by_class[c])
            continue
        alone = nc.Dataset.from_arrays(data.train_x, data.train_y, data.test_x[mine], data.test_y[mine],
                                       pixel_max=data.pixel_max, num_classes=10)
        assert ev.error_by_class[c] == pytest.approx(nc.evaluate(net, alone).error, abs=1e-12)
        assert ev.confusion[c].sum() == mine.sum()


def test_epoch_order_is_a_pure_function():
    a = trainer.epoch_order(7, 3, 500)
    assert np.array_equal(a, trainer.epoch_order(7, 3, 500))
    assert not np.array_equal(a, trainer.epoch_order(7, 4, 500)) and \
        not np.array_equal(a, trainer.epoch_order(8, 3, 500))
    assert np.array_equal(np.sort(a), np.arange(500))


class _FixedPredictions:
    """A backend whose free phase 'predicts' a fixed class per sample (by position), with the
    real backend's other outputs: the confusion counts can be written down by hand."""

    def __init__(self, real, predictions):
        self.real, self.predictions, self.at = real, np.asarray(predictions, np.int64), 0

    def run(self, x, labels, train=False):
        res = self.real.run(x, labels, train=train)
        res.predictions = self.predictions[self.at:self.at + len(labels)].copy()
        self.at += len(labels)
        return res


def test_evaluate_confusion_counts_true_label_by_predicted_class():
    net, _, _, xt, _ = _setup()
    labels = np.array([0, 0, 1, 2, 2, 2, 9, 1], np.int64)
    predicted = np.array([0, 3, 1, 2, 1, 2, 9, 0], np.int64)
    confusion = np.zeros((10, 10), np.int64)
    err, _ = trainer.evaluate(_FixedPredictions(make_backend(net), predicted), net, xt[:8], labels,
                              batch_size=3, confusion=confusion)       # three batches: 3, 3, 2
    want = np.zeros((10, 10), np.int64)
    want[0, 0] = want[0, 3] = 1          # two zeros: one right, one called 3
    want[1, 1] = want[1, 0] = 1          # two ones: one right, one called 0
    want[2, 2], want[2, 1] = 2, 1        # three twos: two right, one called 1
    want[9, 9] = 1
    np.testing.assert_array_equal(confusion, want)
    assert err == 3 / 8
    by_class = trainer.error_by_class(confusion)
    np.testing.assert_allclose(by_class[[0, 1, 2, 9]], [0.5, 0.5, 1 / 3, 0.0])
    assert np.isnan(by_class[[3, 4, 5, 6, 7, 8]]).all()      # classes with no sample


def test_evaluate_confusion_adds_to_what_is_there_and_leaves_the_figures():
    net, _, _, xt, yt = _setup()
    be = make_backend(net)
    confusion = np.zeros((10, 10), np.int64)
    first = trainer.evaluate(be, net, xt, yt, confusion=confusion)
    assert first == trainer.evaluate(be, net, xt, yt)
    assert confusion.sum() == len(yt) and np.trace(confusion) == round((1 - first[0]) * len(yt))
    np.testing.assert_array_equal(confusion.sum(axis=1), np.bincount(yt, minlength=10))
    trainer.evaluate(be, net, xt, yt, confusion=confusion)
    assert confusion.sum() == 2 * len(yt)


def test_tally_free_spikes_per_sample_counts_the_free_phase_of_every_sample():
    tally = trainer.Tally.zeros(2)
    tally.counts[0, :, K_SPIKES] = [900, 40, 6]     # input layer, layer 1, layer 2
    tally.counts[1:, :, K_SPIKES] = 1000            # nudged phases: not the free phase
    tally.counts[0, :, K_SPIKES + 1] = 77           # another count: not spikes
    assert trainer.Tally.zeros(2).free_spikes_per_sample() == [0.0, 0.0]
    tally.samples_train, tally.samples_eval = 3, 1
    assert tally.free_spikes_per_sample() == [10.0, 1.5]


def test_fit_records_the_free_phase_spikes_per_validation_sample():
    net, x, y, xt, yt = _setup()
    ref = net.copy()
    st = trainer.fit(make_backend(net), net, x[:40], y[:40], 1, validation=(x[40:], y[40:]))
    rec = st.history[0]
    assert set(rec) == {"epoch", "train_error_on_the_fly", "train_loss", "val_error", "val_loss",
                        "val_spikes_per_sample", "seconds"}
    be = make_backend(ref)
    trainer.train_epoch(be, ref, x[:40], y[:40], 0)
    counted = trainer.Tally.zeros(ref.arch.n_layers)
    assert trainer.evaluate(be, ref, x[40:], y[40:], tally=counted)[0] == rec["val_error"]
    want = [float(c) / 20 for c in counted.counts[0, 1:, K_SPIKES]]
    assert rec["val_spikes_per_sample"] == want and len(want) == ref.arch.n_layers
    assert sum(want) > 0

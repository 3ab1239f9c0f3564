"""Random mirroring and whole-pixel shifts of the training images (neurochip/augment.py)."""
from __future__ import annotations

import numpy as np
import pytest

import neurochip as nc
from neurochip.augment import Augment, epoch_flips, epoch_shifts, flip_images, shift_images
from neurochip.errors import UserError


def _oracle_shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Pixel by pixel, from the definition: out[c, y, x] = img[c, y - dy, x - dx] or 0."""
    c, h, w = img.shape
    out = np.zeros_like(img)
    for ch in range(c):
        for y in range(h):
            for x in range(w):
                sy, sx = y - dy, x - dx
                if 0 <= sy < h and 0 <= sx < w:
                    out[ch, y, x] = img[ch, sy, sx]
    return out


def _oracle_flip(img: np.ndarray) -> np.ndarray:
    """Pixel by pixel, from the definition: out[c, y, x] = img[c, y, W - 1 - x]."""
    c, h, w = img.shape
    out = np.zeros_like(img)
    for ch in range(c):
        for y in range(h):
            for x in range(w):
                out[ch, y, x] = img[ch, y, w - 1 - x]
    return out


def _oracle_moved(img: np.ndarray, flip: bool, dy: int, dx: int) -> np.ndarray:
    return _oracle_shift(_oracle_flip(img) if flip else img, dy, dx)


@pytest.mark.parametrize("chw", [(1, 8, 8), (2, 5, 7), (3, 6, 1)])
def test_flip_matches_the_pixel_definition(chw):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 4096, size=(30, int(np.prod(chw))), dtype=np.int64)
    flips = rng.integers(0, 2, 30) == 1
    flips[:2] = [False, True]
    got = flip_images(x, chw, flips)
    assert got.dtype == x.dtype and got.shape == x.shape
    for b in range(len(x)):
        want = _oracle_flip(x[b].reshape(chw)) if flips[b] else x[b].reshape(chw)
        np.testing.assert_array_equal(got[b].reshape(chw), want)
    np.testing.assert_array_equal(got[0], x[0])


def test_flip_direction():
    img = np.zeros((1, 3, 5), np.int64)
    img[0, 1, 0] = 7                                 # left edge, middle row
    out = flip_images(img.reshape(1, -1), (1, 3, 5), np.array([True])).reshape(3, 5)
    assert out[1, 4] == 7 and out.sum() == 7         # now at the right edge, same row


def test_epoch_flips_are_a_pure_function_of_seed_and_epoch():
    a = epoch_flips(5, 3, 4000)
    np.testing.assert_array_equal(a, epoch_flips(5, 3, 4000))
    assert a.shape == (4000,) and a.dtype == bool
    assert 1800 < a.sum() < 2200                     # about half (binomial sd 32)
    assert not np.array_equal(a, epoch_flips(5, 4, 4000))
    assert not np.array_equal(a, epoch_flips(6, 3, 4000))
    np.testing.assert_array_equal(epoch_flips(5, 3, 10), a[:10])


def test_mirroring_leaves_the_shifts_as_they_were():
    """Each move has its own stream: turning --augment-flip on changes no shift."""
    plain, both = Augment(2).epoch_moves(7, 1, 500), Augment(2, True).epoch_moves(7, 1, 500)
    assert plain.flips is None and both.flips is not None
    np.testing.assert_array_equal(plain.shifts, both.shifts)
    np.testing.assert_array_equal(both.shifts, epoch_shifts(7, 1, 500, 2))
    np.testing.assert_array_equal(both.flips, epoch_flips(7, 1, 500))
    assert Augment(0, True).epoch_moves(7, 1, 500).shifts is None
    assert Augment(0, True).active and Augment(1).active and not Augment(0, False).active


@pytest.mark.parametrize("chw", [(1, 8, 8), (2, 5, 7), (3, 6, 4)])
def test_shift_matches_the_pixel_definition(chw):
    rng = np.random.default_rng(1)
    c, h, w = chw
    x = rng.integers(0, 4096, size=(40, c * h * w), dtype=np.int64)
    shifts = np.stack([rng.integers(-h, h + 1, 40), rng.integers(-w, w + 1, 40)], axis=1)
    shifts[:4] = [(0, 0), (h, 0), (0, -w), (h - 1, 1 - w)]      # identity, out of view, a corner
    got = shift_images(x, chw, shifts)
    assert got.dtype == x.dtype and got.shape == x.shape
    for b in range(len(x)):
        want = _oracle_shift(x[b].reshape(chw), int(shifts[b, 0]), int(shifts[b, 1]))
        np.testing.assert_array_equal(got[b].reshape(chw), want)
    np.testing.assert_array_equal(got[0], x[0])
    assert not got[1].any() and not got[2].any()


def test_shift_direction():
    img = np.zeros((1, 5, 5), np.int64)
    img[0, 2, 2] = 7
    out = shift_images(img.reshape(1, -1), (1, 5, 5), np.array([[1, -2]])).reshape(5, 5)
    assert out[3, 0] == 7 and out.sum() == 7         # down one row, left two columns


def test_epoch_shifts_are_a_pure_function_of_seed_and_epoch():
    a = epoch_shifts(5, 3, 1000, 2)
    np.testing.assert_array_equal(a, epoch_shifts(5, 3, 1000, 2))
    assert a.shape == (1000, 2) and a.dtype == np.int64
    assert set(np.unique(a)) == {-2, -1, 0, 1, 2}          # both ends reached, nothing beyond
    assert not np.array_equal(a, epoch_shifts(5, 4, 1000, 2))
    assert not np.array_equal(a, epoch_shifts(6, 3, 1000, 2))
    # the first samples' shifts do not depend on how many samples there are
    np.testing.assert_array_equal(epoch_shifts(5, 3, 10, 2), a[:10])


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_shift_is_a_user_error(bad):
    with pytest.raises(UserError, match="--augment-shift"):
        Augment(bad).validate()
    with pytest.raises(UserError, match="out of view"):
        Augment(8).validate((8, 8))
    assert Augment.from_dict(None) == Augment() and not Augment().active
    assert Augment.from_dict(Augment(3).as_dict()) == Augment(3)
    assert Augment.from_dict(Augment(2, True).as_dict()) == Augment(2, True)
    assert Augment.from_dict({"max_shift": 1}) == Augment(1, False)   # a record from before --augment-flip


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_bad_flip_is_a_user_error(bad):
    with pytest.raises(UserError, match="--augment-flip"):
        Augment(0, bad).validate()


def _digits_run(epochs_each, augment, seed=2):
    net = nc.Network.from_preset("digits", t1=6, t2=2, batch_size=10, seed=seed)
    data = nc.load_digits()
    run = None
    for _ in epochs_each:
        run = nc.train(net, data, epochs=(run.state.epoch if run else 0) + 1, augment=augment,
                       state=run.state if run else None, tally=run.tally if run else None)
    return net, run


def test_no_shift_trains_exactly_as_without_augmentation():
    a, _ = _digits_run([1], None)
    b, _ = _digits_run([1], Augment(0))
    assert a.weights_sha256() == b.weights_sha256()


@pytest.mark.parametrize("augment", [Augment(1), Augment(0, True), Augment(1, True)])
def test_a_continued_augmented_run_is_the_uninterrupted_one(augment):
    whole = nc.Network.from_preset("digits", t1=6, t2=2, batch_size=10, seed=2)
    nc.train(whole, nc.load_digits(), epochs=2, augment=augment)
    pieces, _ = _digits_run([1, 1], augment)
    plain, _ = _digits_run([1, 1], None)
    assert pieces.weights_sha256() == whole.weights_sha256()
    assert plain.weights_sha256() != whole.weights_sha256()        # the moves did change the input


@pytest.mark.parametrize("augment", [Augment(2), Augment(0, True), Augment(2, True)])
def test_training_images_are_moved_validation_never(monkeypatch, augment):
    """What the backend receives: each training sample mirrored and shifted as its epoch
    moves say (checked against the pixel definitions), the validation images as given."""
    import neurochip.trainer as trainer
    net = nc.Network.from_preset("digits", t1=4, t2=2, batch_size=10, seed=1)
    data = nc.load_digits()
    seen = []
    real = trainer.train_step

    def spy(backend, net_, xb, labels, *a, **k):
        seen.append(xb.copy())
        return real(backend, net_, xb, labels, *a, **k)
    monkeypatch.setattr(trainer, "train_step", spy)
    x = data.quantised(data.train_x, net.widths.state_bits)
    evaluated = []
    real_eval = trainer.evaluate
    monkeypatch.setattr(trainer, "evaluate",
                        lambda be, n, xv, yv, *a, **k: (evaluated.append(xv.copy()), real_eval(be, n, xv, yv))[1])
    trainer.fit(nc.make_backend(net), net, x[:100], data.train_y[:100], 1,
                validation=(x[100:130], data.train_y[100:130]), augment=augment)
    order = trainer.epoch_order(net.seed, 0, 100)
    rng = np.random.Generator(np.random.PCG64([net.seed, 0, 1]))       # the shift stream, by hand
    shifts = rng.integers(-2, 3, size=(100, 2)) if augment.max_shift else np.zeros((100, 2), int)
    flips = (np.random.Generator(np.random.PCG64([net.seed, 0, 2])).integers(0, 2, 100) == 1
             if augment.flip else np.zeros(100, bool))
    for i, xb in enumerate(seen):
        idx = order[i * 10:(i + 1) * 10]
        for row, j in zip(xb, idx):
            want = _oracle_moved(x[j].reshape(net.arch.input_shape), bool(flips[j]), *map(int, shifts[j]))
            np.testing.assert_array_equal(row.reshape(net.arch.input_shape), want)
    assert len(seen) == 10 and any(not np.array_equal(s, x[order[i * 10:(i + 1) * 10]])
                                   for i, s in enumerate(seen))
    np.testing.assert_array_equal(evaluated[0], x[100:130])


def test_cli_records_the_shift_and_resumes_with_it(tmp_path, capsys):
    """``--augment-shift`` is kept in the checkpoint: a resumed run keeps shifting, bit for bit."""
    import json

    from neurochip.run import main
    small = ["--t1", "6", "--t2", "2", "--batch-size", "10", "--train-samples", "200",
             "--test-samples", "50", "--seed", "3", "--quiet"]
    whole, half = tmp_path / "whole.npz", tmp_path / "half.npz"
    assert main([*small, "--epochs", "2", "--augment-shift", "1", "--save", str(whole),
                 "--json", str(tmp_path / "whole.json")]) == 0
    assert main([*small, "--epochs", "1", "--augment-shift", "1", "--save", str(half)]) == 0
    assert main(["--resume", str(half), "--epochs", "2", "--quiet",
                 "--json", str(tmp_path / "resumed.json")]) == 0
    capsys.readouterr()
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("whole", "resumed"))
    assert a["augment"] == b["augment"] == {"max_shift": 1, "flip": False}
    assert a["weights_sha256"] == b["weights_sha256"]


def test_cli_records_the_mirroring_and_resumes_with_it(tmp_path, capsys):
    import json

    from neurochip.run import main
    small = ["--t1", "6", "--t2", "2", "--batch-size", "10", "--train-samples", "200",
             "--test-samples", "50", "--seed", "3", "--quiet"]
    half = tmp_path / "half.npz"
    assert main([*small, "--epochs", "2", "--augment-flip", "--json", str(tmp_path / "whole.json")]) == 0
    assert main([*small, "--epochs", "2", "--json", str(tmp_path / "plain.json")]) == 0
    assert main([*small, "--epochs", "1", "--augment-flip", "--save", str(half)]) == 0
    assert main(["--resume", str(half), "--epochs", "2", "--augment-flip", "--quiet",
                 "--json", str(tmp_path / "resumed.json")]) == 0
    capsys.readouterr()
    a, b, plain = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("whole", "resumed", "plain"))
    assert a["augment"] == b["augment"] == {"max_shift": 0, "flip": True}
    assert a["weights_sha256"] == b["weights_sha256"] != plain["weights_sha256"]

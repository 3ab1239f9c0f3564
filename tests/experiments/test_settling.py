"""experiments.settling: the contrastive sums at several nudged-phase lengths, weights untouched."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from experiments import settling
from neurochip import trainer
from neurochip.backend import make_backend
from neurochip.checkpoint import load_checkpoint
from neurochip.run import run as run_cli


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("settling") / "ck.npz"
    assert run_cli(["--preset", "digits", "--train-samples", "200", "--test-samples", "20", "--epochs", "1",
                    "--save", str(path), "--quiet"]) == 0
    return str(path)


def test_cosine():
    assert settling.cosine(np.array([3, 0]), np.array([0, 5])) == 0.0
    assert settling.cosine(np.array([1, 2]), np.array([2, 4])) == pytest.approx(1.0)
    assert settling.cosine(np.array([1, 2]), np.array([-1, -2])) == pytest.approx(-1.0)
    assert settling.cosine(np.zeros(3, np.int64), np.array([1, 2, 3])) == 0.0


def test_sums_are_the_training_steps_and_change_no_weight(checkpoint):
    net, _ = load_checkpoint(checkpoint)
    before = net.weights_sha256()
    batches = settling.training_batches(net, "digits", None, None, None, 3)
    sums = settling.weight_sums(net, net.hyper.t2, batches)
    assert net.weights_sha256() == before
    # the same sums as the training step's own (the update applied to a copy, batch by batch)
    expected = None
    for x, y in batches:
        copy = net.copy()
        grads = [g for g, _ in trainer.train_step(make_backend(copy), copy, x, y).grads]
        expected = grads if expected is None else [e + g for e, g in zip(expected, grads)]
    assert all(np.array_equal(s, e) for s, e in zip(sums, expected))
    assert any(np.any(s) for s in sums)                  # an untrained network: something to learn


def test_main_compares_with_the_reference(checkpoint, tmp_path, capsys):
    digest = hashlib.sha256(open(checkpoint, "rb").read()).hexdigest()
    out = tmp_path / "out.json"
    # the dataset and the validation split's size come from the checkpoint
    assert settling.main([checkpoint, "--batches", "3", "--t2", "2,10", "--reference-t2", "10",
                          "--json", str(out)]) == 0
    res = json.loads(out.read_text())["checkpoints"][checkpoint]
    assert (res["dataset"], res["val_split"]) == ("digits", None)
    assert res["reference_t2"] == 10 and res["trained_t2"] == 10
    same = res["t2"]["10"]                               # the reference itself: 1 and 1
    assert same["cosine"] == pytest.approx([1.0, 1.0]) and same["norm_ratio"] == [1.0, 1.0]
    assert res["t2"]["2"]["cosine"] != same["cosine"]
    assert "| 2 (ref 10) |" in capsys.readouterr().out
    assert hashlib.sha256(open(checkpoint, "rb").read()).hexdigest() == digest


@pytest.mark.parametrize("args, says", [
    (["--t2", "ten"], "--t2 must be comma-separated whole numbers"),
    (["--t2", "0"], "--t2 must be whole numbers >= 1"),
    (["--reference-t2", "0"], "--reference-t2 and --batches must be >= 1"),
    (["--val-split", "-3"], "--val-split must be a sample count"),
    (["--batches", "1000"], "exceeds the"),
])
def test_bad_input_is_one_line_exit_2(checkpoint, args, says, capsys):
    with pytest.raises(SystemExit) as e:
        settling.main([checkpoint, "--dataset", "digits", "--val-split", "0"] + args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and says in err and "\n" not in err


def test_the_split_is_the_command_lines(tmp_path):
    # a run with a fractional split and a training subset: the batches are its training images
    path = tmp_path / "frac.npz"
    assert run_cli(["--preset", "digits", "--train-samples", "300", "--test-samples", "20", "--epochs", "1",
                    "--val-split", "0.2", "--save", str(path), "--quiet"]) == 0
    net, training = load_checkpoint(str(path))
    from neurochip.cli.validation import carve_validation
    from neurochip.data import load_digits
    rest, _, _ = carve_validation(load_digits().subset(300, None), 0.2, net.seed)
    batches = settling.training_batches(net, "digits", None, training["train_samples"],
                                        training["val_split"], 2)
    assert np.array_equal(np.concatenate([y for _, y in batches]), rest.train_y[:2 * net.hyper.batch_size])
    assert len(rest.train_y) == 240


def test_norm_ratio_of_an_all_zero_reference_is_none():
    assert settling.norm_ratio(np.array([3, 4]), np.array([0, 5])) == 1.0
    assert settling.norm_ratio(np.array([3, 4]), np.zeros(2, np.int64)) is None


def test_an_unwritable_output_is_one_line_exit_2(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        settling.main([checkpoint, "--batches", "1", "--t2", "2", "--reference-t2", "4",
                       "--json", str(tmp_path / "no" / "such" / "dir" / "out.json")])
    assert e.value.code == 2 and "cannot write" in capsys.readouterr().err


def test_a_missing_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        settling.main([str(tmp_path / "nope.npz"), "--dataset", "digits"])
    assert e.value.code == 2 and "nope.npz" in capsys.readouterr().err

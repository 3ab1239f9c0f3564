"""neurochip.data: the datasets, the default one for an input shape, the test images a command reads."""
from __future__ import annotations

import numpy as np
import pytest

from neurochip.data import (add_test_image_flags, default_dataset, load_dataset, load_digits,
                            load_test_images)
from neurochip.errors import ArgumentParser, DataError, UserError
from neurochip.network import Network, get_preset


def _net(preset="digits"):
    pre = get_preset(preset)
    return Network.create(pre.arch, pre.hyper, pre.widths, seed=0, preset=preset)


def test_digits_split_is_fixed_and_covers_every_image():
    d = load_digits()
    assert d.train_x.shape == (1438, 1, 8, 8) and d.test_x.shape == (359, 1, 8, 8)
    assert d.train_x.dtype == np.uint8 and d.pixel_max == 16
    again = load_digits()
    np.testing.assert_array_equal(d.test_y, again.test_y)
    assert sorted(np.concatenate([d.train_y, d.test_y]).tolist()) == sorted(
        np.concatenate([again.train_y, again.test_y]).tolist())


def test_unknown_dataset_is_one_data_error():
    with pytest.raises(DataError, match="unknown dataset 'cifar'; choose one of: digits, mnist"):
        load_dataset("cifar")


def test_default_dataset_follows_the_input_shape():
    assert default_dataset((1, 8, 8)) == "digits"
    assert default_dataset((1, 28, 28)) == "mnist"
    assert default_dataset([3, 8, 8]) == "digits"


def test_load_test_images_quantises_the_first_samples():
    net = _net()
    x, y, name = load_test_images(net, samples=5)
    d = load_digits()
    assert name == "digits" and x.shape == (5, 64) and x.dtype == np.int64
    np.testing.assert_array_equal(y, d.test_y[:5])
    np.testing.assert_array_equal(x, d.quantised(d.test_x[:5], net.widths.state_bits))
    full_scale = 1 << net.widths.state_bits
    assert x.min() >= 0 and x.max() <= full_scale
    x_all, y_all, _ = load_test_images(net, "digits")
    assert len(y_all) == len(d.test_y) == 359


@pytest.mark.parametrize("samples", [0, -1, 360])
def test_load_test_images_refuses_a_count_outside_the_test_split(samples):
    with pytest.raises(UserError, match=rf"--samples must be in 1\.\.359 .*got {samples}"):
        load_test_images(_net(), samples=samples)


def test_test_image_flags():
    p = ArgumentParser(prog="x")
    add_test_image_flags(p)
    a = p.parse_args(["--dataset", "mnist", "--data-dir", "/d", "--samples", "7"])
    assert (a.dataset, a.data_dir, a.samples) == ("mnist", "/d", 7)
    a = p.parse_args([])
    assert (a.dataset, a.data_dir, a.samples) == (None, None, None)
    with pytest.raises(UserError, match="--samples"):
        p.parse_args(["--samples", "many"])

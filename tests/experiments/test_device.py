"""experiments.device.profile_mirror on the CPU (the GPU run is in docs/results.md §9.8)."""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from experiments.device import profile_mirror
from experiments.device.profile_mirror import batched_conv2d, batched_conv_transpose2d
from tests.paths import SHARED


@pytest.mark.parametrize("stride,padding,kh,kw", [(1, 0, 3, 3), (1, 1, 3, 3), (2, 1, 4, 4),
                                                  (2, 0, 3, 2), (1, 2, 5, 3)])
def test_batched_convolutions_equal_torch_on_integers(stride, padding, kh, kw):
    gen = torch.Generator().manual_seed(stride * 100 + padding * 10 + kh)
    x = torch.randint(0, 2, (3, 5, 11, 9), generator=gen).double()
    k = torch.randint(-128, 128, (7, 5, kh, kw), generator=gen).double()
    ref = F.conv2d(x, k, stride=stride, padding=padding)
    got = batched_conv2d(x, k, stride, padding)
    assert got.shape == ref.shape and torch.equal(got, ref)
    y = torch.randint(0, 2, (3, 7, 6, 5), generator=gen).double()
    ref_t = F.conv_transpose2d(y, k, stride=stride)
    got_t = batched_conv_transpose2d(y, k, stride)
    assert got_t.shape == ref_t.shape and torch.equal(got_t, ref_t)


def test_profile_mirror_times_and_profiles_a_minibatch(capsys):
    code = profile_mirror.main(["--device", "cpu", "--data-dir", str(SHARED / "mnist"),
                                "--samples", "2", "--t1", "2", "--t2", "1",
                                "--profile-t1", "1", "--profile-t2", "1", "--reps", "1"])
    out = capsys.readouterr().out
    assert code == 0
    m = re.search(r"one minibatch of 2, 4 steps \(T1 2, 2 x T2 1\): ([0-9.]+) s, ([0-9.]+) ms per "
                  r"sample, ([0-9.]+) ms per step", out)
    assert m, out
    wall, per_sample, per_step = map(float, m.groups())
    # the seconds are printed to 0.01 s: the per-sample and per-step figures agree with them to that
    assert abs(per_sample - 1e3 * wall / 2) <= 1e3 * 0.005 / 2 + 0.05
    assert abs(per_step - 1e3 * wall / 4) <= 1e3 * 0.005 / 4 + 0.005
    # each convolution of a step, both ways: four rows (two layers, forward and feedback), equal
    rows = re.findall(r"layer \d (forward|feedback) .* batched \([0-9.]+x\), (equal|DIFFERENT)", out)
    assert [r[0] for r in rows] == ["forward", "feedback"] * 2 and {r[1] for r in rows} == {"equal"}
    # the profiler's table names the mirror's convolutions and matrix products
    assert "aten::conv2d" in out and "aten::mm" in out


def test_profile_mirror_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    assert profile_mirror.main(["--device", "cpu", "--data-dir", str(SHARED / "mnist"),
                                "--samples", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--samples must be a positive integer" in err
    assert profile_mirror.main(["--device", "cpu", "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: mnist: missing")

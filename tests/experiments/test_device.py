"""experiments.device.profile_mirror on the CPU (the GPU run is in docs/results.md §9.8)."""
from __future__ import annotations

import re

from experiments.device import profile_mirror
from tests.paths import SHARED


def test_profile_mirror_times_and_profiles_a_minibatch(capsys):
    code = profile_mirror.main(["--device", "cpu", "--data-dir", str(SHARED / "mnist"),
                                "--samples", "2", "--t1", "2", "--t2", "1",
                                "--profile-t1", "1", "--profile-t2", "1"])
    out = capsys.readouterr().out
    assert code == 0
    m = re.search(r"one minibatch of 2, 4 steps \(T1 2, 2 x T2 1\): ([0-9.]+) s, ([0-9.]+) ms per "
                  r"sample, ([0-9.]+) ms per step", out)
    assert m, out
    wall, per_sample, per_step = map(float, m.groups())
    # the seconds are printed to 0.01 s: the per-sample and per-step figures agree with them to that
    assert abs(per_sample - 1e3 * wall / 2) <= 1e3 * 0.005 / 2 + 0.05
    assert abs(per_step - 1e3 * wall / 4) <= 1e3 * 0.005 / 4 + 0.005
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

"""The mnist-medium and fmnist-medium presets: what the pilots chose, and what the committed
headline checkpoints (experiments/state/, docs/models/) were trained with."""
from __future__ import annotations

import pytest

from neurochip.network import PRESETS, SMALL_HYPER, Network


def test_medium_presets_are_what_the_pilots_chose():
    m, f = PRESETS["mnist-medium"], PRESETS["fmnist-medium"]
    assert (m.arch, m.dataset) == ("1x28x28:c32k5-c64k5-f10", "mnist")
    assert (f.arch, f.dataset) == ("1x28x28:c32k5-c64k3-f10", "fashion-mnist")
    for p in (m, f):
        # T1 40 / T2 10 and the x1 rates of the small presets (0.2, 0.15, 0.08), batch 20
        assert p.hyper == SMALL_HYPER and (p.hyper.t1, p.hyper.t2) == (40, 10)
        assert p.hyper.lrs == (0.2, 0.15, 0.08) and p.hyper.batch_size == 20
        assert p.widths.weight_bits == 8 and "pilots" in p.about


def test_medium_presets_build_and_keep_the_small_ones():
    for name in ("mnist-medium", "fmnist-medium"):
        net = Network.from_preset(name, seed=0)
        assert net.preset == name and [w.shape[0] for w in net.weights_q][:2] == [32, 64]
    # the small presets are untouched (their published figures depend on them)
    assert PRESETS["mnist-small"].arch == "1x28x28:c16k5-c32k3-f10"
    assert PRESETS["mnist-small"].hyper == SMALL_HYPER


@pytest.mark.parametrize("name, arch, state", [
    ("fmnist-wide", "1x28x28:c48k5-c96k3-f10", "fmnist-c48k5-c96k3-drop0.1"),
    ("fmnist-large", "1x28x28:c64k5-c128k3-f10", "fmnist-c64k5-c128k3-drop0.1")])
def test_fmnist_wide_and_large_are_the_networks_their_headline_runs_trained(name, arch, state):
    """fmnist-wide and fmnist-large were chosen from runs started as ``--preset fmnist-medium
    --arch ARCH --lrs 0.2,0.15,0.08`` (experiments/configs/headline-fmnist-c48k5-*, -c64k5-*):
    each preset must start the same integers and carry the same settings as those checkpoints."""
    import numpy as np

    from neurochip.checkpoint import load_checkpoint
    from tests.paths import ROOT

    preset = PRESETS[name]
    assert (preset.arch, preset.dataset, preset.hyper) == (arch, "fashion-mnist", SMALL_HYPER)
    channels = [int(part[1:part.index("k")]) for part in arch.split(":")[1].split("-")[:2]]
    for seed in (0, 1, 2):
        a = Network.from_preset(name, seed=seed)
        b = Network.from_preset("fmnist-medium", arch=arch, lrs=(0.2, 0.15, 0.08), seed=seed)
        assert [w.shape[0] for w in a.weights_q][:2] == channels
        assert (a.hyper, a.widths, a.weight_exp) == (b.hyper, b.widths, b.weight_exp)
        for x, y in zip(a.weights_q + a.biases_q, b.weights_q + b.biases_q):
            assert np.array_equal(x, y)
        trained, _ = load_checkpoint(str(ROOT / "experiments" / "state" / state / f"seed{seed}.npz"))
        assert (str(trained.arch), trained.hyper, trained.widths, trained.seed) == \
            (str(a.arch), a.hyper, a.widths, seed)

"""neurochip.checkpoint: what a checkpoint holds, and the one-line error for every bad file."""
from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest

from neurochip.checkpoint import (VERSION, checkpoint_bytes, load_checkpoint, network_meta,
                                  network_spec, save_checkpoint)
from neurochip.errors import CheckpointError
from neurochip.network import Network, get_preset


def _net(preset="digits-2c", seed=3, updates=7):
    pre = get_preset(preset)
    net = Network.create(pre.arch, pre.hyper, pre.widths, seed=seed, preset=preset)
    return dataclasses.replace(net, updates=updates)


def _members(data: bytes) -> dict:
    with np.load(io.BytesIO(data)) as z:
        return {k: z[k] for k in z.files}


def _write(path, members: dict, meta: dict | None = None) -> str:
    if meta is not None:
        members = dict(members, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with open(path, "wb") as fh:
        np.savez(fh, **members)
    return str(path)


def test_roundtrip_keeps_every_integer_and_the_description(tmp_path):
    net = _net()
    path = str(tmp_path / "n.npz")
    save_checkpoint(path, net, {"epoch": 2, "batch": 5, "dataset": "digits"})
    back, training = load_checkpoint(path, expect_arch=str(net.arch))
    assert training == {"epoch": 2, "batch": 5, "dataset": "digits"}
    assert (back.arch, back.hyper, back.widths) == (net.arch, net.hyper, net.widths)
    assert (back.seed, back.updates, back.preset, back.weight_exp) == (3, 7, "digits-2c",
                                                                        net.weight_exp)
    for a, b in zip(net.weights_q + net.biases_q, back.weights_q + back.biases_q):
        assert b.dtype == np.int32 and np.array_equal(a, b)
    assert back.weights_sha256() == net.weights_sha256()
    # the stored arrays are the parameters in PyTorch layout, int32, plus the JSON metadata
    m = _members(checkpoint_bytes(net))
    assert sorted(m) == ["__meta__", "b1", "b2", "b3", "w1", "w2", "w3"]
    assert m["w1"].shape == tuple(net.arch.weight_shapes()[0]) and m["w1"].dtype == np.int32
    meta = json.loads(m["__meta__"].tobytes().decode())
    assert meta == network_meta(net) and "training" not in meta
    assert network_spec(meta) == (net.arch, net.hyper, net.widths)


def test_best_parameters_are_kept_beside_the_latest(tmp_path):
    last, best = _net(seed=1, updates=40), _net(seed=2, updates=25)
    path = str(tmp_path / "n.npz")
    save_checkpoint(path, last, {"epoch": 3, "best": {"updates": 25}}, best=best)
    got_last, _ = load_checkpoint(path)
    got_best, _ = load_checkpoint(path, which="best")
    assert got_last.weights_sha256() == last.weights_sha256() and got_last.updates == 40
    assert got_best.weights_sha256() == best.weights_sha256() and got_best.updates == 25
    plain = str(tmp_path / "plain.npz")            # no best parameters: 'best' is the latest
    save_checkpoint(plain, last)
    assert load_checkpoint(plain, which="best")[0].weights_sha256() == last.weights_sha256()


def test_another_architecture_is_refused(tmp_path):
    path = str(tmp_path / "n.npz")
    save_checkpoint(path, _net())
    with pytest.raises(CheckpointError, match="holds architecture 1x8x8:c8k3p1-c16k3p1-f10, "
                                              "not the requested 1x8x8:f64-f10"):
        load_checkpoint(path, expect_arch="1x8x8:f64-f10")


def test_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(str(tmp_path / "none.npz"))
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty file \(0 bytes\)"):
        load_checkpoint(str(tmp_path / "empty.npz"))
    (tmp_path / "text.npz").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not an .npz archive; starts with 68656c6c"):
        load_checkpoint(str(tmp_path / "text.npz"))
    good = checkpoint_bytes(_net())
    (tmp_path / "cut.npz").write_bytes(good[:len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(str(tmp_path / "cut.npz"))
    with pytest.raises(CheckpointError, match="no metadata"):
        load_checkpoint(_write(tmp_path / "nometa.npz", {"w1": np.zeros(3, np.int32)}))


def _bad_meta(tmp_path, change):
    net = _net()
    members = _members(checkpoint_bytes(net, {"epoch": 1}))
    meta = json.loads(members.pop("__meta__").tobytes().decode())
    change(meta, members)
    return _write(tmp_path / "bad.npz", members, meta)


@pytest.mark.parametrize("change, message", [
    (lambda m, a: m.update(format="other"), "not a neurochip checkpoint \\(format 'other'\\)"),
    (lambda m, a: m.update(version=VERSION + 1), f"format version {VERSION + 1} is not supported"),
    (lambda m, a: m.pop("seed"), "incomplete metadata \\(KeyError"),
    (lambda m, a: m.update(weight_exp=[1, 2]), "weight exponents do not match"),
    (lambda m, a: m.update(weight_exp=[65, 0, 0]), "out of range \\[-64, 64\\]"),
    (lambda m, a: m.update(updates=-1), "updates = -1 is not an integer >= 0"),
    (lambda m, a: m["training"].update(epoch="one"), "training.epoch = 'one' is not an integer"),
    (lambda m, a: m["training"].update(dataset=5), "training.dataset is not a name"),
    (lambda m, a: a.pop("b2"), "parameters of layer 2 are missing or have the wrong shape"),
    (lambda m, a: a.update(w1=a["w1"].astype(np.int64)), "layer 1 parameters are not int32"),
    (lambda m, a: a.update(w3=np.full_like(a["w3"], 1 << 20)), "layer 3 weights exceed 8 bits"),
])
def test_every_bad_part_is_one_checkpoint_error(tmp_path, change, message):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(_bad_meta(tmp_path, change))

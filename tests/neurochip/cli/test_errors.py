"""Bad input to ``python -m neurochip.run``: one line, exit 2, nothing overwritten.

Every case runs the command with a pre-existing ``--json`` and ``--save``
file (unless the case is about those flags) and asserts: exit code 2, exactly
one non-empty stderr line starting with ``error:`` and naming the problem, no
traceback, nothing on stdout, the pre-existing files byte-identical and no
file created or left behind in the folder.  The bulk runs in-process through
:func:`neurochip.run.main` (fast); a sample of each category also runs as a
real subprocess.  (The basic cases of tests/test_core.py are not repeated.)
"""
from __future__ import annotations

import gzip
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurochip.checkpoint import save_checkpoint
from neurochip.network import Network, get_preset

from tests.paths import ROOT, SHARED  # noqa: E402
HAVE_MNIST = all((SHARED / "mnist" / f"{b}.gz").exists() for b in (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte"))
SMALL = ["--epochs", "1", "--train-samples", "40", "--test-samples", "20"]
PRE_JSON = b'{"previous": "run"}\n'
PRE_SAVE = b"previous checkpoint bytes\n"


# --------------------------------------------------------------- fixtures
def _idx_images(n, magic=2051, rows=28, cols=28, count=None):
    hdr = b"".join(int(v).to_bytes(4, "big") for v in (magic, n if count is None else count, rows, cols))
    return hdr + (np.arange(n * rows * cols) % 256).astype(np.uint8).tobytes()


def _idx_labels(labels, magic=2049, count=None):
    hdr = b"".join(int(v).to_bytes(4, "big") for v in (magic, len(labels) if count is None else count))
    return hdr + bytes(labels)


def _idx_dir(root: Path, name: str, **override) -> str:
    """Four gzip'd IDX files, structurally valid (so only the MD5 is wrong) unless overridden."""
    d = root / name
    d.mkdir()
    files = {"train-images-idx3-ubyte": _idx_images(30), "train-labels-idx1-ubyte": _idx_labels([1] * 30),
             "t10k-images-idx3-ubyte": _idx_images(10), "t10k-labels-idx1-ubyte": _idx_labels([2] * 10)}
    for base, data in files.items():
        data = override.get(base.replace("-", "_"), data)
        raw = data if isinstance(data, bytes) and data[:2] == b"\x1f\x8b" else gzip.compress(data)
        if base.replace("-", "_") + "_raw" in override:
            raw = override[base.replace("-", "_") + "_raw"]
        (d / (base + ".gz")).write_bytes(raw)
    return str(d)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Checkpoints good and bad, bad IDX folders; name -> path."""
    d = tmp_path_factory.mktemp("inputs")
    p = get_preset("digits")
    net = Network.create(p.arch, p.hyper, p.widths, seed=0, preset="digits")
    out = {"inputs": str(d)}
    ck = d / "ck.npz"
    training = {"epoch": 1, "batch": 0, "epochs": 1, "dataset": "digits", "train_samples": 40,
                "test_samples": 20, "history": []}
    save_checkpoint(str(ck), net, training)
    out["ck"] = str(ck)
    raw = ck.read_bytes()
    z = dict(np.load(ck))
    meta = json.loads(z["__meta__"].tobytes())

    def variant(name, meta2=None, **arrays):
        arr = dict(z)
        arr.update(arrays)
        arr["__meta__"] = np.frombuffer(json.dumps(meta if meta2 is None else meta2).encode(), np.uint8)
        np.savez(d / name, **arr)
        out[name.split(".")[0]] = str(d / name)

    variant("v2.npz", {**meta, "version": 2})
    variant("v0.npz", {**meta, "version": 0})
    variant("otherformat.npz", {**meta, "format": "something-else"})
    variant("metalist.npz", [1, 2, 3])
    variant("bigweights.npz", w1=np.full_like(z["w1"], 1000))
    variant("int64.npz", w1=z["w1"].astype(np.int64))
    variant("wrongshape.npz", w2=np.zeros((10, 7), np.int32))
    variant("nohyper.npz", {k: v for k, v in meta.items() if k != "hyper"})
    variant("badhyper.npz", {**meta, "hyper": {**meta["hyper"], "beta": 7.0}})
    variant("badexp.npz", {**meta, "weight_exp": [1]})
    variant("badpos.npz", {**meta, "training": {**training, "batch": -3}})
    variant("badtally.npz", {**meta, "training": {**training, "epoch": 0, "tally_counts": [1, 2, 3]}})
    variant("badhistory.npz", {**meta, "training": {**training, "history": [1, 2]}})
    variant("badpartial.npz", {**meta, "training": {**training, "epoch": 0, "partial": {"wrong": "x"}}})
    variant("notrain.npz", {k: v for k, v in meta.items() if k != "training"})
    two = {**training, "epoch": 2, "epochs": 2, "history": [{"epoch": 1}, {"epoch": 2}]}
    variant("ck2.npz", {**meta, "training": two})
    variant("ck2cos.npz", {**meta, "training": {**two, "lr_schedule": {
        "kind": "cosine", "step_epochs": 1, "gamma": 0.5, "min_factor": 0.0}}})
    variant("badaugment.npz", {**meta, "training": {**training, "augment": {"max_shift": -3}}})
    variant("badflip.npz", {**meta, "training": {**training, "augment": {"max_shift": 0, "flip": "yes"}}})
    variant("farbatch.npz", {**meta, "training": {**training, "epoch": 0, "batch": 99}})
    (d / "trunc.npz").write_bytes(raw[:len(raw) // 2])
    (d / "trunc10.npz").write_bytes(raw[:10])
    out["trunc"], out["trunc10"] = str(d / "trunc.npz"), str(d / "trunc10.npz")
    bad = bytearray(raw)
    for i in range(len(bad) // 3, len(bad) // 3 + 64):
        bad[i] ^= 0xFF
    (d / "corrupt.npz").write_bytes(bytes(bad))
    out["corrupt"] = str(d / "corrupt.npz")
    (d / "text.npz").write_text("this is not a checkpoint\n")
    out["text"] = str(d / "text.npz")
    (d / "empty.npz").write_bytes(b"")
    out["empty"] = str(d / "empty.npz")
    np.savez(d / "nometa.npz", a=np.arange(3))
    out["nometa"] = str(d / "nometa.npz")
    np.save(d / "array.npy", np.arange(3))
    out["npy"] = str(d / "array.npy")
    (d / "afile").write_text("x")
    out["afile"] = str(d / "afile")
    # IDX folders, each with one defect (structurally fine ones fail on the MD5)
    out["idx_md5"] = _idx_dir(d, "idx_md5")
    out["idx_magic"] = _idx_dir(d, "idx_magic", train_images_idx3_ubyte=_idx_images(30, magic=2052))
    out["idx_trunc"] = _idx_dir(d, "idx_trunc", train_images_idx3_ubyte=_idx_images(30)[:5000])
    out["idx_labels"] = _idx_dir(d, "idx_labels", t10k_labels_idx1_ubyte=_idx_labels([2] * 9 + [12]))
    out["idx_gzip"] = _idx_dir(d, "idx_gzip", train_labels_idx1_ubyte_raw=gzip.compress(
        _idx_labels([1] * 30))[:-12])
    out["idx_notgz"] = _idx_dir(d, "idx_notgz", t10k_images_idx3_ubyte_raw=b"plain bytes, not gzip")
    out["idx_count"] = _idx_dir(d, "idx_count", train_labels_idx1_ubyte=_idx_labels([1] * 29))
    out["idx_empty"] = str(d / "idx_empty")
    os.mkdir(out["idx_empty"])
    return out


# ------------------------------------------------------------------ cases
# (id, argv with {placeholders}, needle in the message, add --json/--save outputs)
CASES = [
    # widths
    ("state-bits-low", "--state-bits 7", "--state-bits", True),
    ("state-bits-high", "--state-bits 17", "--state-bits", True),
    ("state-bits-needs-bias", "--state-bits 16", "--bias-bits", True),
    ("trace-bits-low", "--trace-bits 1", "--trace-bits", True),
    ("trace-bits-high", "--trace-bits 17", "--trace-bits", True),
    ("bias-bits-low", "--bias-bits 3", "--bias-bits", True),
    ("bias-bits-below-state", "--bias-bits 13", "--bias-bits", True),
    ("bias-bits-high", "--bias-bits 25", "--bias-bits", True),
    ("bits-not-int", "--bits 8.5", "--bits", True),
    ("bits-negative", "--bits -8", "--bits", True),
    # training recipe (validation split, schedule, headroom)
    ("val-split-zero", "--val-split 0", "--val-split", True),
    ("val-split-text", "--val-split half", "--val-split", True),
    ("val-split-all", "--val-split 1438", "--val-split", True),
    ("val-split-fraction-high", "--val-split 1.5", "--val-split", True),
    ("lr-schedule-unknown", "--lr-schedule linear", "--lr-schedule", True),
    ("lr-gamma-zero", "--lr-schedule step --lr-gamma 0", "--lr-gamma", True),
    ("lr-step-epochs-zero", "--lr-schedule step --lr-step-epochs 0", "--lr-step-epochs", True),
    ("lr-min-factor-high", "--lr-schedule cosine --lr-min-factor 2", "--lr-min-factor", True),
    ("weight-headroom-zero", "--weight-headroom 0", "--weight-headroom", True),
    ("weight-headroom-high", "--weight-headroom 1.5", "--weight-headroom", True),
    ("resume-other-schedule", "--resume {ck2} --lr-schedule cosine", "already trained", True),
    ("resume-longer-cosine", "--resume {ck2cos} --epochs 4", "already trained", True),
    ("resume-other-headroom", "--resume {ck} --weight-headroom 0.25", "--weight-headroom", True),
    ("augment-shift-negative", "--augment-shift -1", "--augment-shift", True),
    ("augment-shift-too-large", "--augment-shift 8", "--augment-shift", True),
    ("augment-shift-text", "--augment-shift two", "--augment-shift", True),
    ("augment-shift-with-load", "--load {ck} --augment-shift 1", "--augment-shift", True),
    ("resume-other-augment", "--resume {ck} --augment-shift 2", "--augment-shift", True),
    ("resume-bad-augment", "--resume {badaugment} --epochs 2", "augmentation record", True),
    ("augment-flip-value", "--augment-flip=yes", "--augment-flip", True),
    ("augment-flip-with-load", "--load {ck} --augment-flip", "--augment-flip", True),
    ("resume-other-flip", "--resume {ck} --augment-flip", "--augment-flip", True),
    ("resume-bad-flip", "--resume {badflip} --epochs 2", "augmentation record", True),
    # hyper-parameters
    ("beta-high", "--beta 1.5", "--beta", True),
    ("beta-nan", "--beta nan", "--beta", True),
    ("beta-below-q12", "--beta 0.0001", "--beta", True),
    ("beta-text", "--beta strong", "--beta", True),
    ("epsilon-zero", "--epsilon 0", "--epsilon", True),
    ("epsilon-negative", "--epsilon -0.1", "--epsilon", True),
    ("epsilon-below-q12", "--epsilon 0.00001", "--epsilon", True),
    ("lambda-zero", "--lambda 0", "--lambda", True),
    ("lambda-high", "--lambda 2", "--lambda", True),
    ("alpha-zero", "--alpha 0", "--alpha", True),
    ("alpha-high", "--alpha 1.01", "--alpha", True),
    ("theta-zero", "--theta 0", "--theta", True),
    ("theta-inf", "--theta inf", "--theta", True),
    ("theta-below-lsb", "--theta 0.0001", "--theta", True),
    ("t1-negative", "--t1 -1", "--t1", True),
    ("t1-huge", "--t1 10000000", "--t1", True),
    ("t2-zero", "--t2 0", "--t2", True),
    ("t2-text", "--t2 x", "--t2", True),
    ("lrs-negative", "--lrs 0.1,-0.1", "learning rates", True),
    ("lrs-huge", "--lrs 0.1,11", "learning rates", True),
    ("lrs-text", "--lrs 0.1,abc", "--lrs", True),
    ("lrs-nan", "--lrs nan,0.1", "learning rates", True),
    ("lrs-empty", "--lrs ''", "--lrs", True),
    ("lrs-too-many", "--lrs 0.1,0.1,0.1", "--lrs", True),
    ("batch-zero", "--batch-size 0", "--batch-size", True),
    ("batch-negative", "--batch-size -3", "--batch-size", True),
    ("batch-exceeds-samples", "--batch-size 50", "--batch-size", True),
    ("overflow-headroom", "--bits 16 --trace-bits 16 --batch-size 1000 --train-samples 1000 "
                          "--arch 1x8x8:c32k5p4-f10", "overflow", True),
    # run flags
    ("epochs-negative", "--epochs -1", "--epochs", True),
    ("epochs-text", "--epochs x", "--epochs", True),
    ("epochs-huge", "--epochs 10000000", "--epochs", True),
    ("seed-2-32", "--seed 4294967296", "--seed", True),
    ("seed-text", "--seed x", "--seed", True),
    ("threads-zero", "--threads 0", "--threads", True),
    ("threads-too-many", "--threads 100000", "--threads", True),
    ("checkpoint-every-zero", "--checkpoint-every 0", "--checkpoint-every", True),
    ("checkpoint-every-negative", "--checkpoint-every -5", "--checkpoint-every", True),
    ("train-samples-zero", "--train-samples 0", "--train-samples", True),
    ("train-samples-negative", "--train-samples -1", "--train-samples", True),
    ("train-samples-too-many", "--train-samples 100000", "--train-samples", True),
    ("test-samples-zero", "--test-samples 0", "--test-samples", True),
    ("test-samples-too-many", "--test-samples 100000", "--test-samples", True),
    ("unknown-flag", "--bitz 8", "unrecognized", True),
    ("pool-bogus", "--pool median", "--pool", True),
    ("backend-bogus", "--backend gpu", "--backend", True),
    ("update-scale-bogus", "--update-scale half", "--update-scale", True),
    # names: dataset, preset, architecture
    ("dataset-unknown", "--dataset cifar", "unknown dataset", True),
    ("dataset-empty", "--dataset ''", "unknown dataset", True),
    ("preset-empty", "--preset ''", "unknown preset", True),
    ("preset-unknown-with-load", "--load {ck} --preset nope", "unknown preset", True),
    ("arch-empty", "--arch ''", "malformed", True),
    ("arch-no-layers", "--arch 1x8x8:", "malformed", True),
    ("arch-bad-shape", "--arch 8x8:f10", "malformed", True),
    ("arch-bad-token", "--arch 1x8x8:c8-f10", "malformed", True),
    ("arch-zero-input", "--arch 0x8x8:f10", "input shape", True),
    ("arch-zero-units", "--arch 1x8x8:f0", "no units", True),
    ("arch-conv-after-fc", "--arch 1x8x8:f10-c3k3-f10", "conv layer after", True),
    ("arch-conv-output", "--arch 1x8x8:c4k3p1", "output layer", True),
    ("arch-too-deep", "--arch 1x8x8:c8k3-c8k3-c8k3-f10", "too small", True),
    ("arch-too-big", "--arch 1x8x8:f999999999-f10", "parameters", True),
    # data vs architecture
    ("image-shape", "--arch 1x16x16:f10", "shape", True),
    ("image-channels", "--arch 3x8x8:f10", "shape", True),
    ("labels-exceed-classes", "--arch 1x8x8:f64-f5", "classes", True),
    ("labels-exceed-classes-conv", "--arch 1x8x8:c4k3p1-f9", "classes", True),
    # IDX files (CLI level; the loader itself is tested in test_idx.py)
    ("idx-missing", "--dataset mnist --data-dir {idx_empty}", "missing", True),
    ("idx-md5", "--dataset mnist --data-dir {idx_md5}", "MD5", True),
    ("idx-wrong-magic", "--dataset mnist --data-dir {idx_magic}", "magic", True),
    ("idx-truncated", "--dataset mnist --data-dir {idx_trunc}", "truncated", True),
    ("idx-labels-out-of-range", "--dataset mnist --data-dir {idx_labels}", "out of range", True),
    ("idx-truncated-gzip", "--dataset mnist --data-dir {idx_gzip}", "gzip", True),
    ("idx-not-gzip", "--dataset mnist --data-dir {idx_notgz}", "gzip", True),
    ("idx-count-mismatch", "--dataset fashion-mnist --data-dir {idx_count}", "mismatch", True),
    # outputs
    ("json-empty", "--json ''", "--json", False),
    ("json-dir", "--json {d}", "is a directory", False),
    ("json-no-folder", "--json {d}/missing/x.json", "does not exist", False),
    ("json-under-file", "--json {afile}/x.json", "not a folder", False),
    ("json-proc", "--json /proc/neurochip-test.json", "not writable", False),
    ("json-device", "--json /dev/null", "not a regular file", False),
    ("save-no-folder", "--save {d}/missing/x.npz --json {d}/pre.json", "--save", False),
    ("save-dir", "--save {d}", "is a directory", False),
    ("save-proc", "--save /proc/neurochip-test.npz", "not writable", False),
    ("report-no-folder", "--report {d}/missing/r.json", "--report", True),
    ("report-suffix", "--report {d}/r.txt", "--report", True),
    ("report-proc", "--report /proc/r.md", "--report", True),
    ("figure-no-folder", "--figure {d}/missing/f.png", "--figure", True),
    ("figure-dir", "--figure {d}", "--figure", True),
    ("export-lava-no-folder", "--export-lava {d}/missing/n.h5", "--export-lava", True),
    ("export-lava-under-file", "--export-lava {afile}/n.h5", "--export-lava", True),
    ("json-equals-save", "--json {d}/same.out --save {d}/same.out", "same file", False),
    ("json-overwrites-load", "--load {ck} --json {ck}", "overwrite", False),
    ("report-overwrites-resume", "--resume {ck} --report {ck}", "--report", False),
    # checkpoints
    ("load-and-resume", "--load {ck} --resume {ck}", "exclude", True),
    ("load-other-arch", "--load {ck} --arch 1x8x8:f64-f10", "architecture", True),
    ("resume-other-arch", "--resume {ck} --arch 1x8x8:c16k3p1-f10", "architecture", True),
    ("load-malformed-arch", "--load {ck} --arch 1x8x8:zz", "malformed", True),
    ("load-version-2", "--load {v2}", "version", True),
    ("load-version-0", "--load {v0}", "version", True),
    ("load-other-format", "--load {otherformat}", "not a neurochip checkpoint", True),
    ("load-meta-not-object", "--load {metalist}", "metadata", True),
    ("load-truncated", "--load {trunc}", "truncated", True),
    ("load-truncated-10-bytes", "--load {trunc10}", "truncated", True),
    ("load-corrupted", "--load {corrupt}", "corrupted", True),
    ("load-text-file", "--load {text}", "not a neurochip checkpoint", True),
    ("load-empty-file", "--load {empty}", "empty", True),
    ("load-npz-without-meta", "--load {nometa}", "not a neurochip checkpoint", True),
    ("load-npy", "--load {npy}", "not a neurochip checkpoint", True),
    ("load-dir", "--load {d}", "directory", True),
    ("resume-missing", "--resume {d}/none.npz", "no such file", True),
    ("load-weights-exceed-bits", "--load {bigweights}", "exceed", True),
    ("load-int64", "--load {int64}", "int32", True),
    ("load-wrong-shape", "--load {wrongshape}", "shape", True),
    ("load-no-hyper", "--load {nohyper}", "metadata", True),
    ("load-bad-hyper", "--load {badhyper}", "--beta", True),
    ("load-bad-exponents", "--load {badexp}", "exponents", True),
    ("resume-bad-position", "--resume {badpos}", "training.batch", True),
    ("resume-bad-tally", "--resume {badtally}", "tally", True),
    ("resume-bad-history", "--resume {badhistory}", "history", True),
    ("resume-bad-partial-sums", "--resume {badpartial}", "partial", True),
    ("resume-no-position", "--resume {notrain}", "no training position", True),
    ("resume-batch-beyond-epoch", "--resume {farbatch} --epochs 2", "batch 99", True),
    ("load-conflicting-bits", "--load {ck} --bits 4", "conflicts", True),
    ("load-out-of-range-bits", "--load {ck} --bits 99", "--bits", True),
    ("load-conflicting-lrs", "--load {ck} --lrs 0.3,0.3", "conflicts", True),
    ("load-conflicting-seed", "--load {ck} --seed 3", "conflicts", True),
    ("load-conflicting-preset", "--load {ck} --preset digits-fc", "conflicts", True),
    ("resume-conflicting-batch", "--resume {ck} --batch-size 10", "conflicts", True),
    ("resume-other-samples", "--resume {ck} --train-samples 80", "conflicts", True),
    ("resume-other-dataset", "--resume {ck} --dataset fashion-mnist", "conflicts", True),
    ("load-with-bad-idx", "--load {ck} --dataset mnist --data-dir {idx_md5}", "MD5", True),
]
if HAVE_MNIST:
    CASES += [
        ("mnist-image-shape", f"--dataset mnist --data-dir {SHARED} --arch 1x8x8:f10", "shape", True),
        ("mnist-labels-exceed-classes", f"--dataset mnist --data-dir {SHARED} --arch 1x28x28:f32-f7",
         "classes", True),
        ("load-digits-checkpoint-on-mnist", f"--load {{ck}} --dataset mnist --data-dir {SHARED}", "shape", True),
    ]


def _argv(template: str, files: dict, d: Path, outputs: bool) -> list[str]:
    argv = shlex.split(template.format(**files, d=str(d)))
    if outputs:
        argv += ["--json", str(d / "pre.json"), "--save", str(d / "pre.npz")]
    # small unless the case sets these itself (a --resume keeps its checkpoint's epochs)
    for i in range(0, len(SMALL), 2):
        if SMALL[i] not in argv and not (SMALL[i] == "--epochs" and "--resume" in argv):
            argv += SMALL[i:i + 2]
    return argv


def _prepare(d: Path) -> dict:
    (d / "pre.json").write_bytes(PRE_JSON)
    (d / "pre.npz").write_bytes(PRE_SAVE)
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}


def _assert_one_line_error(rc, out: str, err: str, needle: str, d: Path, before: dict):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, (rc, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines[0]
    assert needle in lines[0], lines[0]
    assert out == "", out
    after = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
    assert after == before, "files created, changed or left behind: " + \
        str(sorted(set(after) ^ set(before)) or [k for k in after if after[k] != before.get(k)])
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_in_process(case, files, tmp_path, capsys, monkeypatch):
    from neurochip.run import main
    _, template, needle, outputs = case
    monkeypatch.delenv("NEUROCHIP_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    before = _prepare(tmp_path)
    rc = main(_argv(template, files, tmp_path, outputs))
    cap = capsys.readouterr()
    line = _assert_one_line_error(rc, cap.out, cap.err, needle, tmp_path, before)
    # checkpoints given as input are never modified
    assert Path(files["ck"]).stat().st_size > 0
    print(line)


SUBPROCESS_CASES = ["beta-nan", "bias-bits-below-state", "lrs-text", "preset-empty", "arch-too-deep",
                    "image-shape", "labels-exceed-classes", "idx-wrong-magic", "idx-md5",
                    "json-proc", "save-no-folder", "load-truncated", "load-version-2",
                    "load-other-arch", "load-text-file", "resume-conflicting-batch"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_input_subprocess(name, files, tmp_path):
    """The same contract for the real command: process exit code 2, one line, no traceback."""
    _, template, needle, outputs = next(c for c in CASES if c[0] == name)
    before = _prepare(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "NEUROCHIP_DATA"}
    env["HOME"] = str(tmp_path / "home")
    r = subprocess.run([sys.executable, "-m", "neurochip.run", *_argv(template, files, tmp_path, outputs)],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    _assert_one_line_error(r.returncode, r.stdout, r.stderr, needle, tmp_path, before)


def test_checkpoint_inputs_untouched_by_errors(files, tmp_path, capsys):
    """A failing --resume must not rewrite the checkpoint it was given."""
    from neurochip.run import main
    ck = Path(files["ck"])
    data, mtime = ck.read_bytes(), ck.stat().st_mtime_ns
    for argv in (["--resume", str(ck), "--batch-size", "10"], ["--resume", str(ck), "--arch", "1x8x8:f10"],
                 ["--resume", str(ck), "--json", str(tmp_path / "missing" / "x.json")]):
        assert main(argv) == 2
    capsys.readouterr()
    assert ck.read_bytes() == data and ck.stat().st_mtime_ns == mtime


def test_keyboard_interrupt_before_training_is_one_line(monkeypatch, capsys):
    """Ctrl-C while the command starts (imports, data): exit 130, one line, no traceback."""
    import neurochip.cli.validation as validation
    import neurochip.run as run_mod

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(validation, "load_data", boom)
    assert run_mod.main(SMALL) == 130
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0] and "nothing was saved" in lines[0]


def test_late_write_failure_is_one_line(tmp_path, monkeypatch, capsys):
    """An output that becomes unwritable during the run (disk full...) is one line, and the
    pre-existing file stays intact (atomic write)."""
    import neurochip.checkpoint as ck_mod
    from neurochip.run import main
    out = tmp_path / "out.json"
    out.write_bytes(PRE_JSON)
    real = ck_mod.os.fsync

    def full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ck_mod.os, "fsync", full)
    rc = main(["--epochs", "0", "--train-samples", "20", "--test-samples", "10", "--quiet",
               "--json", str(out)])
    monkeypatch.setattr(ck_mod.os, "fsync", real)
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "No space left" in lines[0], cap.err
    assert out.read_bytes() == PRE_JSON
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_labels_beyond_the_output_layer(monkeypatch, tmp_path, capsys):
    """A dataset whose label values exceed the output layer (even if it claims 10 classes)."""
    import neurochip.data as data
    from neurochip.run import main
    real = data.load_dataset

    def with_bad_label(*a, **k):
        ds = real(*a, **k)
        ds.test_y = ds.test_y.copy()
        ds.test_y[3] = 12
        return ds
    monkeypatch.setattr(data, "load_dataset", with_bad_label)
    before = _prepare(tmp_path)
    rc = main(SMALL + ["--json", str(tmp_path / "pre.json"), "--save", str(tmp_path / "pre.npz")])
    cap = capsys.readouterr()
    line = _assert_one_line_error(rc, cap.out, cap.err, "label 12", tmp_path, before)
    assert "out of range" in line and "0..9" in line

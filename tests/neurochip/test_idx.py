"""MNIST / Fashion-MNIST IDX loading: real files, directory layouts, bad inputs,
downloads (with a fake network) and the CLI's one-line error."""
from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurochip import idx
from neurochip.data import load_dataset
from neurochip.errors import DataError, UserError
from neurochip.idx import load_idx_dataset

from tests.paths import ROOT as REPO, SHARED  # noqa: E402
BASES = [b for _, _, b in idx.FILES]
TRAIN_IMG, TRAIN_LBL, TEST_IMG, TEST_LBL = BASES

needs_real = pytest.mark.skipif(
    not all((SHARED / n / (b + ".gz")).exists() for n in ("mnist", "fashion-mnist") for b in BASES),
    reason=f"real MNIST / Fashion-MNIST files not in {SHARED}")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No NEUROCHIP_DATA from outside, HOME in tmp, and no real network."""
    monkeypatch.delenv(idx.ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def no_network(*a, **k):
        raise AssertionError("the network must not be used here")
    monkeypatch.setattr(idx, "_urlopen", no_network)


# ---------------------------------------------------------------------------
# helpers

def images_bytes(n=3, rows=28, cols=28, magic=idx.IMAGES_MAGIC, count=None, extra=b""):
    hdr = b"".join(int(v).to_bytes(4, "big") for v in (magic, n if count is None else count, rows, cols))
    pix = (np.arange(n * rows * cols) % 256).astype(np.uint8).tobytes()
    return hdr + pix + extra


def labels_bytes(labels=(1, 2, 3), magic=idx.LABELS_MAGIC, count=None, extra=b""):
    hdr = b"".join(int(v).to_bytes(4, "big") for v in (magic, len(labels) if count is None else count))
    return hdr + bytes(labels) + extra


def write_set(d: Path, gz=True, **override) -> Path:
    """A small, structurally valid dataset (3 train, 2 test) in ``d``; ``override``
    maps a base name (with '-' -> '_') to the raw bytes to store instead."""
    d.mkdir(parents=True, exist_ok=True)
    content = {
        TRAIN_IMG: images_bytes(3), TRAIN_LBL: labels_bytes((1, 2, 3)),
        TEST_IMG: images_bytes(2), TEST_LBL: labels_bytes((4, 5)),
    }
    for key, data in override.items():
        assert key.replace("_", "-") in content, key
        content[key.replace("_", "-")] = data
    for base, data in content.items():
        if gz:
            (d / (base + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            (d / base).write_bytes(data)
    return d


def link_real(dst: Path, name="mnist", bases=BASES) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for b in bases:
        (dst / (b + ".gz")).symlink_to(SHARED / name / (b + ".gz"))
    return dst


def error_of(*args, **kwargs) -> str:
    with pytest.raises(DataError) as ei:
        load_idx_dataset(*args, **kwargs)
    msg = str(ei.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    assert isinstance(ei.value, UserError)
    return msg


# ---------------------------------------------------------------------------
# the real files

def check_real(ds, name, first_train, first_test):
    assert ds.name == name and ds.pixel_max == 255 and ds.num_classes == 10
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.train_x.dtype == np.uint8 and ds.test_x.dtype == np.uint8
    assert ds.train_y.shape == (60000,) and ds.test_y.shape == (10000,)
    assert ds.train_y.dtype == np.int64 and ds.test_y.dtype == np.int64
    for y in (ds.train_y, ds.test_y):
        assert y.min() == 0 and y.max() == 9
        assert len(np.unique(y)) == 10
    assert ds.train_y[0] == first_train and ds.test_y[0] == first_test
    assert ds.train_x.max() == 255 and ds.train_x.min() == 0
    assert ds.input_shape == (1, 28, 28)
    assert ds.train_x.flags.writeable and ds.train_y.flags.writeable


@needs_real
def test_real_mnist():
    ds = load_idx_dataset("mnist", SHARED)          # <dir>/mnist/ layout
    check_real(ds, "mnist", 5, 7)
    assert list(ds.train_y[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    # class balance of the MNIST test set is well known
    assert np.bincount(ds.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_real
def test_real_fashion_mnist_via_load_dataset():
    ds = load_dataset("fashion-mnist", str(SHARED / "fashion-mnist"))   # files directly
    check_real(ds, "fashion-mnist", 9, 9)
    assert np.bincount(ds.train_y).tolist() == [6000] * 10
    assert np.bincount(ds.test_y).tolist() == [1000] * 10


# ---------------------------------------------------------------------------
# where the files are looked for

def test_env_var_both_layouts(tmp_path, monkeypatch):
    write_set(tmp_path / "root" / "mnist")
    monkeypatch.setenv(idx.ENV_VAR, str(tmp_path / "root"))
    assert len(load_idx_dataset("mnist", verify=False).train_y) == 3
    write_set(tmp_path / "flat")
    monkeypatch.setenv(idx.ENV_VAR, str(tmp_path / "flat"))
    assert len(load_idx_dataset("fashion-mnist", verify=False).test_y) == 2


def test_data_dir_beats_env_and_subfolder_beats_flat(tmp_path, monkeypatch):
    monkeypatch.setenv(idx.ENV_VAR, str(tmp_path / "nothing-here"))
    write_set(tmp_path / "d")                                            # flat: 3 train
    write_set(tmp_path / "d" / "mnist", train_labels_idx1_ubyte=labels_bytes((1, 2, 3)),
              train_images_idx3_ubyte=images_bytes(3), t10k_images_idx3_ubyte=images_bytes(1),
              t10k_labels_idx1_ubyte=labels_bytes((7,)))
    ds = load_idx_dataset("mnist", tmp_path / "d", verify=False)
    assert ds.test_y.tolist() == [7]            # from d/mnist/
    ds = load_idx_dataset("fashion-mnist", str(tmp_path / "d"), verify=False)
    assert ds.test_y.tolist() == [4, 5]         # no d/fashion-mnist/: the flat files


def test_default_cache_dir(tmp_path):
    write_set(tmp_path / "home" / ".cache" / "neurochip" / "mnist")
    assert len(load_idx_dataset("mnist", verify=False).train_y) == 3
    msg = error_of("fashion-mnist")
    assert str(tmp_path / "home" / ".cache" / "neurochip" / "fashion-mnist") in msg


def test_raw_preferred_over_gz_and_mixed(tmp_path):
    d = write_set(tmp_path / "d")
    (d / TEST_LBL).write_bytes(labels_bytes((8, 9)))      # raw next to .gz
    ds = load_idx_dataset("mnist", d, verify=False)
    assert ds.test_y.tolist() == [8, 9]


@needs_real
def test_raw_real_files_and_recompressed_gz(tmp_path):
    """Uncompressed originals pass (decompressed MD5); so does a .gz re-made by hand."""
    d = link_real(tmp_path / "d", bases=[TRAIN_IMG, TRAIN_LBL])
    (d / TEST_IMG).write_bytes(gzip.decompress((SHARED / "mnist" / (TEST_IMG + ".gz")).read_bytes()))
    raw_labels = gzip.decompress((SHARED / "mnist" / (TEST_LBL + ".gz")).read_bytes())
    (d / (TEST_LBL + ".gz")).write_bytes(gzip.compress(raw_labels, compresslevel=1, mtime=0))
    ds = load_idx_dataset("mnist", d)
    ref = load_idx_dataset("mnist", SHARED)
    assert np.array_equal(ds.test_x, ref.test_x) and np.array_equal(ds.test_y, ref.test_y)
    assert np.array_equal(ds.train_x, ref.train_x)


# ---------------------------------------------------------------------------
# bad inputs: one-line DataError naming the file and the problem

def test_empty_dir(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    msg = error_of("mnist", d)
    assert msg.startswith("mnist: missing ")
    for b in BASES:
        assert b in msg
    assert str(d) in msg and "--data-dir" in msg and "NEUROCHIP_DATA" in msg
    assert "--download" in msg
    assert "does not exist" not in msg


def test_missing_dir(tmp_path):
    msg = error_of("fashion-mnist", tmp_path / "nope")
    assert "missing" in msg and "does not exist" in msg and "fashion-mnist/ subfolder" in msg


def test_one_file_missing(tmp_path):
    d = write_set(tmp_path / "d")
    (d / (TEST_IMG + ".gz")).unlink()
    msg = error_of("mnist", d)
    assert f"missing {TEST_IMG}[.gz] in {d}" in msg
    assert TRAIN_IMG not in msg


@needs_real
@pytest.mark.parametrize("cut", [5, 11, 2000, -8])
def test_truncated_gz(tmp_path, cut):
    d = link_real(tmp_path / "d", bases=[TRAIN_IMG, TRAIN_LBL, TEST_IMG])
    data = (SHARED / "mnist" / (TEST_LBL + ".gz")).read_bytes()
    (d / (TEST_LBL + ".gz")).write_bytes(data[:cut])
    msg = error_of("mnist", d)
    assert str(d / (TEST_LBL + ".gz")) in msg and "truncated gzip" in msg


@needs_real
@pytest.mark.parametrize("pos", [100, 2000])
def test_corrupted_gz(tmp_path, pos):
    d = link_real(tmp_path / "d", bases=[TRAIN_IMG, TRAIN_LBL, TEST_IMG])
    data = bytearray((SHARED / "mnist" / (TEST_LBL + ".gz")).read_bytes())
    data[pos:pos + 8] = bytes(b ^ 0xFF for b in data[pos:pos + 8])
    (d / (TEST_LBL + ".gz")).write_bytes(bytes(data))
    msg = error_of("mnist", d)
    assert str(d / (TEST_LBL + ".gz")) in msg and "corrupted gzip" in msg


def test_gz_that_is_not_gzip(tmp_path):
    d = write_set(tmp_path / "d")
    (d / (TRAIN_LBL + ".gz")).write_bytes(b"<html>404 Not Found</html>")
    msg = error_of("mnist", d)
    assert "corrupted gzip: not a gzip file" in msg and TRAIN_LBL + ".gz" in msg


def test_empty_gz(tmp_path):
    d = write_set(tmp_path / "d")
    (d / (TRAIN_IMG + ".gz")).write_bytes(b"")
    assert "is empty" in error_of("mnist", d)


def test_raw_file_that_is_gzip(tmp_path):
    d = write_set(tmp_path / "d")
    (d / (TRAIN_LBL + ".gz")).rename(d / TRAIN_LBL)
    msg = error_of("mnist", d)
    assert "gzip-compressed but has no .gz suffix" in msg and str(d / TRAIN_LBL) in msg


@pytest.mark.parametrize("gz", [True, False])
def test_wrong_magic(tmp_path, gz):
    # labels where the images belong, and a random magic
    d = write_set(tmp_path / "d", gz=gz, train_images_idx3_ubyte=labels_bytes((1, 2, 3)))
    msg = error_of("mnist", d)
    assert "wrong magic number 2049" in msg and "labels file" in msg and "expected 2051" in msg
    assert TRAIN_IMG in msg
    d = write_set(tmp_path / "e", gz=gz, t10k_labels_idx1_ubyte=b"\x12\x34\x56\x78" + bytes(20))
    assert "wrong magic number 305419896" in error_of("mnist", tmp_path / "e")


def test_wrong_image_shape(tmp_path):
    d = write_set(tmp_path / "d", train_images_idx3_ubyte=images_bytes(3, rows=32, cols=32))
    msg = error_of("mnist", d)
    assert "wrong image shape 32x32, expected 28x28" in msg and TRAIN_IMG in msg


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_idx_data(tmp_path, gz):
    d = write_set(tmp_path / "d", gz=gz, t10k_images_idx3_ubyte=images_bytes(2)[:1000])
    msg = error_of("mnist", d)
    assert "truncated: header says 2 images" in msg and TEST_IMG in msg
    d = write_set(tmp_path / "e", gz=gz, t10k_labels_idx1_ubyte=b"\x00\x00\x08\x01\x00")
    assert "truncated" in error_of("mnist", d)
    d = write_set(tmp_path / "f", gz=gz, t10k_labels_idx1_ubyte=b"")
    assert "truncated: file " + ("decompresses to 0 bytes" if gz else "is empty") in error_of("mnist", d)


def test_trailing_bytes(tmp_path):
    d = write_set(tmp_path / "d", train_labels_idx1_ubyte=labels_bytes((1, 2, 3), extra=b"xx"))
    assert "size mismatch: 2 unexpected bytes" in error_of("mnist", d)


def test_labels_out_of_range(tmp_path):
    d = write_set(tmp_path / "d", train_labels_idx1_ubyte=labels_bytes((1, 12, 255)))
    msg = error_of("mnist", d)
    assert "labels out of range: label 12 at index 1 (2 of 3 labels outside 0..9)" in msg
    assert TRAIN_LBL in msg


def test_count_mismatch(tmp_path):
    d = write_set(tmp_path / "d", t10k_labels_idx1_ubyte=labels_bytes((1, 2, 3)))
    msg = error_of("mnist", d)
    assert "count mismatch" in msg and "2 images" in msg and "3 labels" in msg
    assert TEST_IMG in msg and TEST_LBL in msg


@pytest.mark.parametrize("gz", [True, False])
def test_md5_mismatch(tmp_path, gz):
    """A structurally valid IDX set that is not the original."""
    d = write_set(tmp_path / "d", gz=gz)
    msg = error_of("mnist", d)
    want = idx.CHECKSUMS["mnist"][TRAIN_IMG][0 if gz else 1]
    assert "MD5 mismatch" in msg and want in msg and TRAIN_IMG in msg
    assert "not the original MNIST file" in msg
    assert len(load_idx_dataset("mnist", d, verify=False).train_y) == 3


@needs_real
def test_md5_mismatch_other_dataset(tmp_path):
    d = link_real(tmp_path / "d", name="fashion-mnist")
    msg = error_of("mnist", d)
    assert "MD5 mismatch" in msg and "it is Fashion-MNIST's train-images-idx3-ubyte" in msg


def test_unreadable_entry(tmp_path):
    d = write_set(tmp_path / "d")
    (d / (TRAIN_IMG + ".gz")).unlink()
    (d / TRAIN_IMG).mkdir()                 # a directory where the file should be
    assert "cannot read" in error_of("mnist", d)


# ---------------------------------------------------------------------------
# downloads (fake network)

class FakeNet:
    """Serves ``files[host][fname]`` (bytes or an exception to raise)."""

    def __init__(self, files):
        self.files, self.calls = files, []

    def __call__(self, req, timeout=None):
        url = req.full_url
        assert timeout is not None and timeout <= 30
        self.calls.append(url)
        host, fname = idx._host(url), url.rsplit("/", 1)[1]
        got = self.files.get(host, OSError("[Errno -2] Name or service not known"))
        if isinstance(got, dict):
            got = got.get(fname, None)
            if got is None:
                import urllib.error
                raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        if isinstance(got, BaseException):
            raise got
        if callable(got):
            return got()
        return io.BytesIO(got)


def real_bytes(name):
    return {b + ".gz": (SHARED / name / (b + ".gz")).read_bytes() for b in BASES}


def no_leftovers(d: Path):
    return not [p for p in d.rglob("*") if p.name.startswith(".") or p.name.endswith(".part")]


@needs_real
def test_download_into_data_dir(tmp_path, monkeypatch):
    good = real_bytes("mnist")
    bad = dict(good, **{TEST_IMG + ".gz": good[TEST_IMG + ".gz"][:-10] + bytes(10)})

    class Dies(io.BytesIO):
        def read(self, n=-1):
            raise ConnectionResetError("connection reset by peer")

    net = FakeNet({
        "ossci-datasets.s3.amazonaws.com": bad,                         # wrong content
        "storage.googleapis.com": dict(good, **{TEST_IMG + ".gz": lambda: Dies(b"")}),
        "yann.lecun.com": good,
    })
    monkeypatch.setattr(idx, "_urlopen", net)
    d = tmp_path / "dl"
    link_real(d, bases=[TRAIN_IMG])                 # only three are missing
    ds = load_idx_dataset("mnist", d, download=True)
    check_real(ds, "mnist", 5, 7)
    assert sorted(p.name for p in d.iterdir()) == sorted(b + ".gz" for b in BASES)
    assert no_leftovers(d)
    assert not any(TRAIN_IMG in u for u in net.calls)
    # the test images: bad MD5 on mirror 1, reset on mirror 2, fine on mirror 3
    assert [idx._host(u) for u in net.calls if TEST_IMG in u] == [
        "ossci-datasets.s3.amazonaws.com", "storage.googleapis.com", "yann.lecun.com"]
    assert (d / (TEST_IMG + ".gz")).read_bytes() == good[TEST_IMG + ".gz"]


@needs_real
def test_download_default_and_env_targets(tmp_path, monkeypatch):
    net = FakeNet({"fashion-mnist.s3-website.eu-central-1.amazonaws.com": real_bytes("fashion-mnist")})
    monkeypatch.setattr(idx, "_urlopen", net)
    ds = load_idx_dataset("fashion-mnist", download=True)
    check_real(ds, "fashion-mnist", 9, 9)
    cache = tmp_path / "home" / ".cache" / "neurochip" / "fashion-mnist"
    assert len(list(cache.iterdir())) == 4 and no_leftovers(cache)
    # NEUROCHIP_DATA is a shared root: the download goes into its fashion-mnist/ subfolder
    monkeypatch.setenv(idx.ENV_VAR, str(tmp_path / "root"))
    load_idx_dataset("fashion-mnist", download=True)
    assert len(list((tmp_path / "root" / "fashion-mnist").iterdir())) == 4


def test_download_offline(tmp_path, monkeypatch):
    net = FakeNet({})                                   # every host unreachable
    monkeypatch.setattr(idx, "_urlopen", net)
    d = tmp_path / "new" / "dir"
    msg = error_of("mnist", d, download=True)
    assert msg.startswith(f"mnist: cannot download {TRAIN_IMG}.gz (")
    assert "Name or service not known" in msg and str(d) in msg
    for b in BASES:
        assert b + ".gz" in msg
    assert "--data-dir" in msg and "NEUROCHIP_DATA" in msg
    assert not (tmp_path / "new").exists()              # nothing created
    assert len(net.calls) == len(idx.MIRRORS["mnist"])  # gave up after the first file


def test_download_wrong_content_everywhere_leaves_nothing(tmp_path, monkeypatch):
    junk = {b + ".gz": b"junk" for b in BASES}
    monkeypatch.setattr(idx, "_urlopen", FakeNet({idx._host(m): junk for m in idx.MIRRORS["mnist"]}))
    d = tmp_path / "d"
    d.mkdir()
    msg = error_of("mnist", d, download=True)
    assert "cannot download" in msg and "MD5" in msg
    assert list(d.iterdir()) == []


def test_no_download_without_flag(tmp_path):
    # the autouse fixture makes any network use fail the test
    assert "--download" in error_of("mnist", tmp_path)


# ---------------------------------------------------------------------------
# the CLI

def test_cli_missing_data_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != idx.ENV_VAR}
    env["HOME"] = str(tmp_path / "home")
    p = subprocess.run([sys.executable, "-m", "neurochip.run", "--dataset", "mnist",
                        "--data-dir", str(empty), "--epochs", "1"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    assert "missing" in lines[0] and str(empty) in lines[0]

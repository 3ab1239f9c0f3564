"""MNIST and Fashion-MNIST from the original IDX files (gzip'd or raw).

``load_idx_dataset(name, data_dir=None, download=False)`` returns a
:class:`neurochip.data.Dataset` with uint8 images ``(N, 1, 28, 28)``, int64
labels and ``pixel_max=255``.

Where the files are looked for, first match wins:

1. ``data_dir`` (the CLI's ``--data-dir``);
2. the environment variable ``NEUROCHIP_DATA``;
3. ``~/.cache/neurochip/<name>``.

A directory from 1. or 2. may hold the four files directly or in a ``<name>/``
subfolder (``mnist/``, ``fashion-mnist/``); the subfolder wins when both are
complete.  Each file may be gzip'd (``.gz``) or raw; the raw one is used when
both exist.

Every file is checked: readable, valid gzip, IDX magic number, 28x28 images,
data size against the header, labels in 0..9, equal image and label counts,
and finally the published MD5 (of the ``.gz`` file, or of the decompressed
data; either matching is accepted, so a file re-compressed by hand still
loads).  Each problem is a one-line :class:`~neurochip.errors.DataError`
naming the file.

With ``download=True`` the missing files are fetched from standard mirrors
(short timeout, MD5-checked, written to a temp file, fsync'd and renamed into
place, so a half-written file never carries the final name).  Downloads go
only to the explicitly given directory (``data_dir`` or ``NEUROCHIP_DATA``,
where they land in the ``<name>/`` subfolder unless the files already live
directly in it) or to the default cache directory.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DataError

ENV_VAR = "NEUROCHIP_DATA"
TIMEOUT_S = 10.0            # per connect / per read, for downloads
_CHUNK = 1 << 20

IMAGES_MAGIC = 2051         # 0x00000803: unsigned byte, 3 dimensions
LABELS_MAGIC = 2049         # 0x00000801: unsigned byte, 1 dimension
ROWS = COLS = 28
NUM_CLASSES = 10

# (split, kind, base file name); order = the order files are reported in.
FILES = (
    ("train", "images", "train-images-idx3-ubyte"),
    ("train", "labels", "train-labels-idx1-ubyte"),
    ("test", "images", "t10k-images-idx3-ubyte"),
    ("test", "labels", "t10k-labels-idx1-ubyte"),
)

TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}

# Published checksums: base name -> (MD5 of .gz, MD5 of decompressed, .gz size).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb", 9912422),
        "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624", 28881),
        "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea", 1648877),
        "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637", 4542),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a", 26421880),
        "train-labels-idx1-ubyte": ("25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9", 29515),
        "t10k-images-idx3-ubyte": ("bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a", 4422102),
        "t10k-labels-idx1-ubyte": ("bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965", 5148),
    },
}

MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

# Replaced in tests; called as _urlopen(request, timeout=...).
_urlopen = urllib.request.urlopen


def _oneline(text: str) -> str:
    return " ".join(str(text).split())


def _fail(msg: str) -> DataError:
    return DataError(_oneline(msg))


# --------------------------------------------------------------------------
# where the files are

def default_cache_dir(name: str) -> Path:
    return Path("~/.cache/neurochip").expanduser() / name


def _find(d: Path, base: str) -> Path | None:
    """The file for ``base`` in ``d``: raw preferred, else ``.gz``; None if absent."""
    for fname in (base, base + ".gz"):
        p = d / fname
        if p.exists():
            return p
    return None


def _scan(d: Path) -> dict[str, Path]:
    found = {}
    for _, _, base in FILES:
        p = _find(d, base)
        if p is not None:
            found[base] = p
    return found


def _resolve(name: str, data_dir) -> tuple[str, Path, list[Path], dict[str, Path]]:
    """(origin, download target, directories looked at, files found in the best one)."""
    if data_dir is not None:
        origin, root = "--data-dir", Path(data_dir).expanduser()
    elif os.environ.get(ENV_VAR):
        origin, root = ENV_VAR, Path(os.environ[ENV_VAR]).expanduser()
    else:
        d = default_cache_dir(name)
        return "default", d, [d], _scan(d)
    # Both layouts: <root>/<name>/ (preferred) and <root>/ itself.
    candidates = [root / name, root]
    scans = [_scan(d) for d in candidates]
    for d, found in zip(candidates, scans):
        if len(found) == len(FILES):
            return origin, d, candidates, found
    # Incomplete everywhere: report (and download into) the one with most files.
    best = max(range(2), key=lambda i: (len(scans[i]), i == 0))
    if scans[best]:
        target = candidates[best]
    else:
        # Nothing anywhere: --data-dir gets the files directly, the shared
        # NEUROCHIP_DATA root gets a per-dataset subfolder.
        target = root if origin == "--data-dir" else root / name
    return origin, target, candidates, scans[best]


def _missing_message(name: str, target: Path, looked: list[Path],
                     found: dict[str, Path], download: bool) -> str:
    missing = [base + "[.gz]" for _, _, base in FILES if base not in found]
    where = str(target)
    if not any(d.is_dir() for d in [target, *looked]):
        where += ", which does not exist"
    others = [str(d) for d in looked if d != target]
    if others:
        where += f" (also looked in {', '.join(others)})"
    hint = (f"put the original {TITLES[name]} IDX files (.gz or uncompressed) there, "
            f"or point --data-dir or {ENV_VAR} at a folder holding them "
            f"(directly or in a {name}/ subfolder)")
    if not download:
        hint += ", or pass --download to fetch them"
    return f"{name}: missing {', '.join(missing)} in {where}; {hint}"


# --------------------------------------------------------------------------
# download

def _download(name: str, target: Path, bases: list[str]) -> None:
    """Fetch ``<base>.gz`` for each base into ``target``; DataError if impossible.

    Nothing is created on disk (not even ``target``) until a mirror answers."""
    dead: dict[str, str] = {}          # mirror -> why it is not tried again
    for base in bases:
        fname = base + ".gz"
        md5_gz, _, size = CHECKSUMS[name][base]
        errors = []
        for mirror in MIRRORS[name]:
            if mirror in dead:
                errors.append(f"{_host(mirror)}: {dead[mirror]}")
                continue
            try:
                _fetch(mirror + fname, target / fname, md5_gz, size)
                break
            except _Unreachable as e:
                dead[mirror] = str(e)
                errors.append(f"{_host(mirror)}: {e}")
            except _BadContent as e:
                errors.append(f"{_host(mirror)}: {e}")
        else:
            still = [b + ".gz" for b in bases if _find(target, b) is None]
            raise _fail(f"{name}: cannot download {fname} ({'; '.join(errors)}); "
                        f"put the original {TITLES[name]} files {', '.join(still)} "
                        f"(.gz or uncompressed) into {target} by hand, or point --data-dir "
                        f"or {ENV_VAR} at a folder holding them")


class _Unreachable(Exception):
    """Network-level failure: skip this mirror from now on."""


class _BadContent(Exception):
    """The mirror answered, but not with the right file."""


def _host(url: str) -> str:
    return url.split("//", 1)[-1].split("/", 1)[0]


def _net_reason(e: BaseException) -> str:
    reason = getattr(e, "reason", None) or e
    return _oneline(str(reason)) or type(e).__name__


def _fetch(url: str, dest: Path, md5: str, size: int) -> None:
    """Stream ``url`` into a temp file next to ``dest``, fsync it and rename it
    into place if size and MD5 match.  No partial file is ever left behind."""
    req = urllib.request.Request(url, headers={"User-Agent": "neurochip/0.1 (urllib)"})
    try:
        resp = _urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise _BadContent(f"HTTP {e.code} {e.reason}") from None
    except Exception as e:          # DNS, refused, timeout, TLS, http.client oddities
        raise _Unreachable(_net_reason(e)) from None
    with resp:
        print(f"neurochip: downloading {url}", file=sys.stderr, flush=True)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        except OSError as e:
            raise _fail(f"cannot write into {dest.parent}: {e.strerror or e}") from None
        try:
            h, n = hashlib.md5(), 0
            with os.fdopen(fd, "wb") as out:
                while True:
                    try:
                        chunk = resp.read(_CHUNK)
                    except Exception as e:   # timeout, reset, IncompleteRead
                        raise _Unreachable(_net_reason(e)) from None
                    if not chunk:
                        break
                    n += len(chunk)
                    if n > size:
                        raise _BadContent(f"more than the expected {size} bytes")
                    h.update(chunk)
                    try:
                        out.write(chunk)
                    except OSError as e:
                        raise _fail(f"cannot write {tmp}: {e.strerror or e}") from None
                try:
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as e:
                    raise _fail(f"cannot write {tmp}: {e.strerror or e}") from None
            if n != size or h.hexdigest() != md5:
                raise _BadContent(f"got {n} bytes with MD5 {h.hexdigest()}, expected {size} "
                                  f"bytes with MD5 {md5}")
            try:
                os.replace(tmp, dest)
            except OSError as e:
                raise _fail(f"cannot rename {tmp} to {dest}: {e.strerror or e}") from None
            tmp = None
            _fsync_dir(dest.parent)
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# reading and checking one file

def _read(name: str, path: Path) -> tuple[bytearray, str, str]:
    """(decompressed bytes, MD5 of the file as stored, MD5 of the decompressed bytes)."""
    try:
        with open(path, "rb") as f:
            raw = bytearray(os.fstat(f.fileno()).st_size)
            got = f.readinto(raw)
            if got != len(raw) or f.read(1):     # changed while reading
                raise OSError("file changed size while being read")
    except OSError as e:
        raise _fail(f"{name}: cannot read {path}: {e.strerror or e}") from None
    md5_file = hashlib.md5(raw).hexdigest()
    if not path.name.endswith(".gz"):
        if raw[:2] == b"\x1f\x8b":
            raise _fail(f"{name}: {path}: file is gzip-compressed but has no .gz suffix; "
                        f"rename it to {path.name}.gz")
        return raw, md5_file, md5_file
    if not raw:
        raise _fail(f"{name}: {path}: file is empty (0 bytes); delete it and fetch it again")
    if raw[:2] != b"\x1f\x8b":
        raise _fail(f"{name}: {path}: corrupted gzip: not a gzip file "
                    f"(starts with {raw[:4].hex()}, expected 1f8b...)")
    try:
        data = gzip.decompress(raw)
    except EOFError:
        raise _fail(f"{name}: {path}: truncated gzip: the compressed stream ends early "
                    f"(file is {len(raw)} bytes); delete it and fetch it again") from None
    except (gzip.BadGzipFile, zlib.error, OSError, ValueError) as e:
        raise _fail(f"{name}: {path}: corrupted gzip: {e}; delete it and fetch it again") from None
    return bytearray(data), md5_file, hashlib.md5(data).hexdigest()


def _parse(name: str, path: Path, kind: str, buf: bytearray) -> np.ndarray:
    want = IMAGES_MAGIC if kind == "images" else LABELS_MAGIC
    header = 16 if kind == "images" else 8
    if len(buf) == 0:
        what = "decompresses to 0 bytes" if path.name.endswith(".gz") else "is empty (0 bytes)"
        raise _fail(f"{name}: {path}: truncated: file {what}")
    if len(buf) < 4:
        raise _fail(f"{name}: {path}: truncated: {len(buf)} bytes, shorter than the "
                    f"{header}-byte IDX header")
    magic = int.from_bytes(buf[:4], "big")
    if magic != want:
        what = {IMAGES_MAGIC: " (an IDX images file)", LABELS_MAGIC: " (an IDX labels file)"}
        raise _fail(f"{name}: {path}: wrong magic number {magic} (0x{magic:08x}){what.get(magic, '')}; "
                    f"expected {want} (0x{want:08x}) for an IDX {kind} file")
    if len(buf) < header:
        raise _fail(f"{name}: {path}: truncated: {len(buf)} bytes, shorter than the "
                    f"{header}-byte IDX header")
    count = int.from_bytes(buf[4:8], "big")
    if kind == "images":
        rows, cols = int.from_bytes(buf[8:12], "big"), int.from_bytes(buf[12:16], "big")
        if (rows, cols) != (ROWS, COLS):
            raise _fail(f"{name}: {path}: wrong image shape {rows}x{cols}, expected {ROWS}x{COLS}")
        per, unit = rows * cols, "images of 28x28"
    else:
        per, unit = 1, "labels"
    need = header + count * per
    if len(buf) < need:
        raise _fail(f"{name}: {path}: truncated: header says {count} {unit} "
                    f"({need} bytes{' decompressed' if path.name.endswith('.gz') else ''}) "
                    f"but there are only {len(buf)} bytes")
    if len(buf) > need:
        raise _fail(f"{name}: {path}: size mismatch: {len(buf) - need} unexpected bytes after "
                    f"the {count} {unit} the header announces")
    arr = np.frombuffer(buf, dtype=np.uint8, count=count * per, offset=header)
    if kind == "images":
        return arr.reshape(count, 1, rows, cols)
    bad = np.flatnonzero(arr >= NUM_CLASSES)
    if bad.size:
        i = int(bad[0])
        raise _fail(f"{name}: {path}: labels out of range: label {int(arr[i])} at index {i} "
                    f"({bad.size} of {count} labels outside 0..{NUM_CLASSES - 1})")
    return arr.astype(np.int64)


def _check_md5(name: str, path: Path, base: str, md5_file: str, md5_data: str) -> None:
    md5_gz, md5_raw, _ = CHECKSUMS[name][base]
    if md5_file == md5_gz or md5_data == md5_raw:
        return
    got = md5_file if path.name.endswith(".gz") else md5_data
    want = md5_gz if path.name.endswith(".gz") else md5_raw
    other = ""
    for oname, table in CHECKSUMS.items():
        for obase, (ogz, oraw, _) in table.items():
            if (oname, obase) != (name, base) and (md5_file == ogz or md5_data == oraw):
                other = f" (it is {TITLES[oname]}'s {obase})"
    raise _fail(f"{name}: {path}: MD5 mismatch: got {got}, expected {want}{other}; "
                f"this is not the original {TITLES[name]} file: replace it, "
                f"e.g. delete it and rerun with --download")


# --------------------------------------------------------------------------

def load_idx_dataset(name: str, data_dir=None, download: bool = False, verify: bool = True):
    """Load ``mnist`` or ``fashion-mnist``; see the module docstring.

    ``verify=False`` skips only the MD5 comparison (all structural checks stay).
    """
    if name not in CHECKSUMS:
        raise _fail(f"unknown IDX dataset {name!r}; choose one of: {', '.join(CHECKSUMS)}")
    _, target, looked, found = _resolve(name, data_dir)
    if len(found) < len(FILES):
        if not download:
            raise _fail(_missing_message(name, target, looked, found, download))
        _download(name, target, [b for _, _, b in FILES if b not in found])
        found = _scan(target)
        if len(found) < len(FILES):     # cannot happen unless the files vanish meanwhile
            raise _fail(_missing_message(name, target, [target], found, download))

    arrays, digests = {}, {}
    for split, kind, base in FILES:
        path = found[base]
        buf, md5_file, md5_data = _read(name, path)
        arrays[split, kind] = _parse(name, path, kind, buf)
        digests[base] = (path, md5_file, md5_data)
    for split in ("train", "test"):
        ni, nl = len(arrays[split, "images"]), len(arrays[split, "labels"])
        if ni != nl:
            pi = found[FILES[0 if split == "train" else 2][2]]
            pl = found[FILES[1 if split == "train" else 3][2]]
            raise _fail(f"{name}: count mismatch: {pi} has {ni} images but {pl} has {nl} labels")
    if verify:
        for base, (path, md5_file, md5_data) in digests.items():
            _check_md5(name, path, base, md5_file, md5_data)
    return Dataset(name, arrays["train", "images"], arrays["train", "labels"],
                   arrays["test", "images"], arrays["test", "labels"], 255)

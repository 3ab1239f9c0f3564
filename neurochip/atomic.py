"""The one atomic writer: a file appears complete under its final name, or not at all.

Steps: a temporary file ``.tmp-*-NAME`` in the same folder, written and
fsync'd, renamed over ``NAME``, then the folder fsync'd.  Whatever happens
(exception, signal, SIGKILL, power loss after the folder's fsync), ``NAME``
holds either its previous content or the new one; on an exception the
temporary file is removed.  Checkpoints, ``--json``, budget reports and
figures are all written through :func:`atomic_path`.
"""
from __future__ import annotations

import contextlib
import glob
import os
import tempfile


def _new_file_mode(path: str) -> int:
    """Mode for the file we are about to (re)place: the old file's, else 0o666 & ~umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary file name to write; on a clean exit it replaces ``path``.

    The temporary name ends with ``-`` + the final name, so writers that pick a
    format by extension (matplotlib, h5py) see the right one.
    """
    folder = os.path.dirname(os.path.abspath(path))
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=folder)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(path: str) -> list[str]:
    """Delete the temporary files a killed writer of ``path`` left (``.tmp-*-NAME``).

    Call it only when this process is the one writer of ``path`` (a training
    run that checkpoints to it).  Returns the names removed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    pattern = os.path.join(glob.escape(folder), ".tmp-*-" + glob.escape(os.path.basename(path)))
    removed = []
    for tmp in glob.glob(pattern):
        try:
            os.unlink(tmp)
            removed.append(tmp)
        except OSError:
            pass
    return removed

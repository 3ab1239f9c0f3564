"""Keep Numba's on-disk kernel cache consistent with the sources kernels inline.

Numba's ``cache=True`` validates a cached kernel only against the source file
that defines it.  The core's kernels inline code of other files
(:data:`INLINED_SOURCES`: the integer rules of ``numerics.py``, the neuron
sequence of ``neuron.py``, the core's meta columns and scatter kernels), so
after an edit of one of those alone Numba would load kernels compiled from the
*old* code.  :func:`drop_stale` is called by every module with cached kernels
before any of them runs: it keeps a SHA-256 of those sources beside the cache
and removes the module's cache files when it changed.  (With
``NUMBA_CACHE_DIR`` set, Numba keeps its cache elsewhere and this check does not
apply: clear that folder after editing those files.)
"""
from __future__ import annotations

import glob
import hashlib
import os
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
# the sources cached kernels inline from other files: the integer rules, the
# neuron's update sequence, the pooling arithmetic, and the core's constants and
# scatter kernels (inlined by core/kernels.py)
INLINED_SOURCES = ("numerics.py", "neuron.py", "pooling.py", "core/meta.py", "core/scatter.py",
                   "core/lanes.py")


def _digest() -> str:
    h = hashlib.sha256()
    for name in INLINED_SOURCES:
        with open(os.path.join(_HERE, name), "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def drop_stale(module_file: str) -> bool:
    """Remove ``module_file``'s Numba cache if an inlined source changed; True if removed."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return False
    folder = os.path.join(os.path.dirname(os.path.abspath(module_file)), "__pycache__")
    name = os.path.splitext(os.path.basename(module_file))[0]
    stamp = os.path.join(folder, f"{name}.numerics-sha256")
    digest = _digest()
    try:
        with open(stamp) as fh:
            if fh.read().strip() == digest:
                return False
    except OSError:
        pass
    removed = False
    for path in glob.glob(os.path.join(folder, f"{name}.*.nb[ic]")):
        try:
            os.unlink(path)
            removed = True
        except OSError:
            pass
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".stamp-")
        with os.fdopen(fd, "w") as fh:
            fh.write(digest + "\n")
        os.replace(tmp, stamp)
    except OSError:          # a read-only install: Numba then does not cache either
        pass
    return removed

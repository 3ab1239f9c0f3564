"""The Numba cache of the core is dropped when numerics.py changes."""
import os

from neurochip import kernel_cache


def test_stale_cache_is_dropped_and_current_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    mod = tmp_path / "kern.py"
    mod.write_text("# a module with cached kernels\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    files = [cache / "kern._run-10.py310.nbi", cache / "kern._run-10.py310.1.nbc"]
    other = cache / "other._f-3.py310.nbi"
    for f in files + [other]:
        f.write_bytes(b"x")
    # no stamp yet: the cache may be from any numerics, so it is dropped
    assert kernel_cache.drop_stale(str(mod)) is True
    assert not any(f.exists() for f in files) and other.exists()
    stamp = cache / "kern.numerics-sha256"
    assert stamp.read_text().strip() == kernel_cache._digest()
    # same numerics: a new cache is kept
    for f in files:
        f.write_bytes(b"x")
    assert kernel_cache.drop_stale(str(mod)) is False
    assert all(f.exists() for f in files)
    # numerics changed (simulated by another stamp): dropped again
    stamp.write_text("0" * 64 + "\n")
    assert kernel_cache.drop_stale(str(mod)) is True
    assert not any(f.exists() for f in files)


def test_core_modules_use_it():
    import neurochip.core.kernels
    import neurochip.core.scatter
    import neurochip.core.tables
    import neurochip.learning as learning
    for m in (neurochip.core.kernels, neurochip.core.scatter, neurochip.core.tables, learning):
        folder = os.path.join(os.path.dirname(m.__file__), "__pycache__")
        name = os.path.splitext(os.path.basename(m.__file__))[0]
        with open(os.path.join(folder, f"{name}.numerics-sha256")) as fh:
            assert fh.read().strip() == kernel_cache._digest()

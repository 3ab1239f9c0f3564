"""Shared helpers of the experiment scripts: run the CLI in-process, write tables."""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time

from neurochip.run import run as run_cli_argv

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "..", "shared", "data")


#: the per-run cache that protocol, pilots and gap share (a run two drivers need is trained once)
RUN_CACHE = os.path.join("runs", "protocol", "runs")


def driver_setup(a) -> str:
    """Apply a driver's ``--threads`` (Numba) and return its run cache (``--cache`` or :data:`RUN_CACHE`)."""
    if a.threads:
        import numba
        numba.set_num_threads(a.threads)
    return a.cache or RUN_CACHE


def log(*parts) -> None:
    """A driver's progress line, on stderr."""
    print(*parts, file=sys.stderr, flush=True)


def read_config(path: str, data_root: str | None, required: tuple[str, ...]) -> dict:
    """A configuration (JSON) with ``{data}`` replaced by the data root (default ../shared/data).

    Exits with one line on stderr and code 2 when the file cannot be read or parsed or
    one of ``required`` is missing.
    """
    try:
        with open(path) as fh:
            text = fh.read()
        root = os.path.abspath(data_root or DEFAULT_DATA)
        cfg = json.loads(text.replace("{data}", root.replace("\\", "/")))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        fail(f"{path}: cannot read the configuration ({exc})")
    if not isinstance(cfg, dict):
        fail(f"{path}: the configuration must be a JSON object")
    for key in required:
        if key not in cfg:
            fail(f"{path}: configuration has no {key!r}")
    return cfg


def flag_value(flags: list[str], flag: str, default: str | None = None) -> str | None:
    """The value after ``flag`` in a ``neurochip.run`` argument list, or ``default`` without it."""
    return flags[flags.index(flag) + 1] if flag in flags else default


def fail(message: str) -> None:
    """Bad input: one line ``error: MESSAGE`` on stderr and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def write_report(out: str, name: str, text: str, result: dict) -> None:
    """``out/NAME.md`` (the tables) and ``out/NAME.json`` (every figure), each written atomically."""
    from neurochip.atomic import atomic_write_bytes
    os.makedirs(out, exist_ok=True)
    atomic_write_bytes(os.path.join(out, name + ".md"), text.encode())
    atomic_write_bytes(os.path.join(out, name + ".json"),
                       (json.dumps(result, indent=1, default=str) + "\n").encode())


def write_outputs(outputs) -> None:
    """Write each ``(path, text)`` of ``outputs`` whole or not at all (a None path is skipped);
    an unwritable one is one line and exit 2 (what was written before it stays)."""
    from neurochip.atomic import atomic_write_bytes
    for path, text in outputs:
        if path:
            try:
                atomic_write_bytes(path, text.encode())
            except OSError as e:
                fail(f"cannot write {path}: {e.strerror or e}")


def data_dir(name: str, root: str | None) -> str | None:
    """Folder of ``name``'s IDX files: ``root`` or ../shared/data (None for digits)."""
    if name == "digits":
        return None
    return os.path.join(root or DEFAULT_DATA, name)


def run_cli(argv: list[str]) -> dict:
    """``python -m neurochip.run ARGV --json TMP`` in this process; returns the JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        t0 = time.perf_counter()
        code = run_cli_argv(list(argv) + ["--json", out, "--quiet"])
        if code != 0:
            raise RuntimeError(f"neurochip.run {' '.join(argv)} exited with {code}")
        with open(out) as fh:
            result = json.load(fh)
        result["wall_seconds"] = round(time.perf_counter() - t0, 2)
        return result


def machine() -> str:
    """The CPU (model, widest vector extension), its core count and Python, e.g.
    ``x86_64 AMD EPYC (AVX-512), 2 cores, Python 3.10.13``: the VMs differ between sittings."""
    model, isa = "", ""
    try:
        with open("/proc/cpuinfo") as fh:
            info = fh.read()
        for line in info.splitlines():
            if line.startswith("model name") and not model:
                model = " " + line.split(":", 1)[1].strip()
            if line.startswith("flags") and not isa:
                flags = set(line.split(":", 1)[1].split())
                isa = " (AVX-512)" if "avx512f" in flags else " (AVX2)" if "avx2" in flags else ""
    except OSError:             # not Linux: the architecture alone
        pass
    return f"{platform.machine()}{model}{isa}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_json(path: str | None, payload: dict) -> None:
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as fh:
            json.dump(payload, fh, indent=2)


def base_args(a) -> list[str]:
    """The ``neurochip.run`` flags shared by an experiment's runs (from its argparse)."""
    argv = ["--preset", a.preset, "--dataset", a.dataset, "--epochs", str(a.epochs),
            "--seed", str(a.seed)]
    dd = data_dir(a.dataset, a.data_root)
    if dd:
        argv += ["--data-dir", dd]
    if a.train_samples:
        argv += ["--train-samples", str(a.train_samples)]
    if a.test_samples:
        argv += ["--test-samples", str(a.test_samples)]
    return argv

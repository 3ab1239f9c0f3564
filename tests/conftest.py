"""Session-wide test settings.

* ``NEUROCHIP_DEBUG=1`` for the whole suite (unless set otherwise outside):
  every ``python -m neurochip.run`` the tests start checks every register
  against its declared width after each batch (:mod:`neurochip.debug`).
* No leaked processes: when the session ends, any process still running that
  descends from the test process (a Lava runtime, a CLI run a test forgot to
  wait for, ...) fails the session.  Each leftover is named with the test
  during which it was started, then killed (by its pid, only ours).
  Multiprocessing's helper daemons (resource tracker, fork server), which
  live until the interpreter exits by design, are not leaks.
"""
from __future__ import annotations

import os
import signal

import pytest

os.environ.setdefault("NEUROCHIP_DEBUG", "1")

# Python-started helpers that are meant to outlive their users until interpreter exit
IGNORED_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver",
                   "multiprocessing.semaphore_tracker")

_windows: list[tuple[float, float, str]] = []    # (start, end) uptime seconds of each test
_CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _uptime() -> float:
    try:
        with open("/proc/uptime") as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError):
        return 0.0


def _stat(pid: int):
    """``(ppid, state, start_seconds_since_boot)`` of ``pid`` or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            s = fh.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), rest[0], int(rest[19]) / _CLK


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def descendants(root: int | None = None) -> dict[int, float]:
    """Living (non-zombie) descendants of ``root`` (default: this process): pid -> start time.

    Reads ``/proc`` only; returns {} where there is no ``/proc``.
    """
    root = os.getpid() if root is None else root
    if not os.path.isdir("/proc"):
        return {}
    children: dict[int, list[tuple[int, str, float]]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st is not None:
            children.setdefault(st[0], []).append((int(name), st[1], st[2]))
    out: dict[int, float] = {}
    todo = [root]
    while todo:
        for pid, state, start in children.get(todo.pop(), []):
            if pid in out:
                continue
            todo.append(pid)
            if state not in ("Z", "X"):
                out[pid] = start
    return out


def leftover_processes(root: int | None = None) -> dict[int, float]:
    """:func:`descendants` without multiprocessing's long-lived helper daemons."""
    return {pid: start for pid, start in descendants(root).items()
            if not any(h in cmdline(pid) for h in IGNORED_HELPERS)}


def _test_at(start: float) -> str:
    for t0, t1, nodeid in _windows:
        if t0 - 0.02 <= start <= t1 + 0.02:
            return nodeid
    return "outside any test (collection or a session fixture)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    t0 = _uptime()
    yield
    _windows.append((t0, _uptime(), item.nodeid))


def pytest_sessionfinish(session, exitstatus):
    left = leftover_processes()
    if not left:
        return
    lines = [f"{len(left)} process(es) started by the tests are still running:"]
    for pid, start in sorted(left.items()):
        lines.append(f"  pid {pid}: {cmdline(pid)[:200]}  -- started during {_test_at(start)}")
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    text = "\n".join(lines) + "\n(killed now; a test must stop every process it starts, even when it fails)"
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("=", "leaked processes", red=True)
        reporter.write_line(text)
    else:
        print(text)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""examples/ and the README's Python example run as written, and agree with the command line."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

from tests.paths import ROOT


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cli(tmp_path, *args) -> dict:
    out = tmp_path / "cli.json"
    r = subprocess.run([sys.executable, "-m", "neurochip.run", *map(str, args), "--quiet", "--json", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


def test_sweep_bits_equals_the_command_line(tmp_path, capsys):
    small = ["--epochs", "1", "--train-samples", "100", "--test-samples", "50", "--t1", "10", "--t2", "3"]
    rows = _example("sweep_bits").main(["--bits", "4,8"] + small)
    out = capsys.readouterr().out
    assert [r["bits"] for r in rows] == [4, 8] and out.count("\n") == 3
    cli = _cli(tmp_path, "--bits", "8", *small)
    assert rows[1]["sha256"] == cli["weights_sha256"]
    assert rows[1]["test_error"] == cli["test_error"]
    assert rows[0]["sha256"] != rows[1]["sha256"]


def test_custom_architecture_on_user_arrays_learns(capsys):
    res = _example("custom_architecture").main(["--epochs", "2", "--samples", "600", "--t1", "20",
                                                "--t2", "6"])
    assert len(res["history"]) == 2 and all("val_error" in r for r in res["history"])
    assert res["test_error"] <= 0.10          # bars are easy: chance is 50 %
    assert "test error" in capsys.readouterr().out


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The first ```python block under '## Python API' in README.md, executed verbatim."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("test error")][-1]
    cli = _cli(tmp_path, "--bits", "8", "--epochs", "2")
    assert f"test error {cli['test_error']:.2%}" in line and cli["weights_sha256"][:16] in line
    assert (tmp_path / "digits-8bit.npz").exists()


def test_api_doc_examples_run_in_order(tmp_path, monkeypatch):
    """Every ```python block of docs/api.md, run in order in one interpreter."""
    code = "\n".join(re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S))
    monkeypatch.chdir(tmp_path)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\d epochs, (stopped early|all epochs run)$", r.stdout, re.M), r.stdout

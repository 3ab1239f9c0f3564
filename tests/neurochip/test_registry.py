"""neurochip.registry and the direction of dependencies: plug-ins by name, no import of them."""
from __future__ import annotations

import ast

import pytest

from neurochip import registry
from neurochip.backend import NumbaBackend, make_backend
from neurochip.errors import UserError
from neurochip.network import get_preset, Network
from tests.paths import ROOT


def _imports(package: str, root=ROOT) -> dict[str, set[str]]:
    """Module -> modules it imports (anywhere in the file, absolute names), for a package folder."""
    graph = {}
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        name = ".".join(parts)
        base = parts if is_pkg else parts[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base[:len(base) - (node.level - 1)]
                    mod = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    mod = node.module
                deps.add(mod)
                deps.update(f"{mod}.{a.name}" for a in node.names)   # 'from . import x' names modules
        graph[name] = deps
    return graph


def _plugin_imports(graph) -> dict[str, list[str]]:
    bad = {m: sorted(d for d in deps if d.split(".")[0] in ("reference", "mapping"))
           for m, deps in graph.items()}
    return {m: d for m, d in bad.items() if d}


def _cycles(graph) -> list[list[str]]:
    edges = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    # a module importing its own package (__init__) is not a cycle between files
    for m in edges:
        edges[m] = {d for d in edges[m] if not m.startswith(d + ".")}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    return cycles


def test_core_never_imports_reference_or_mapping():
    assert _plugin_imports(_imports("neurochip")) == {}


def test_no_import_cycles():
    assert _cycles(_imports("neurochip")) == []


def test_the_checks_find_a_cycle_and_a_plugin_import(tmp_path):
    pkg = tmp_path / "fake"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    import mapping.export\n")
    graph = _imports("fake", tmp_path)
    assert _cycles(graph) == [["fake.a", "fake.b", "fake.a"]]
    assert _plugin_imports(graph) == {"fake.b": ["mapping.export"]}


def test_names_and_lookup():
    assert {"numba", "torch", "lava"} <= set(registry.names("neurochip.backends"))
    assert "lava" in registry.names("neurochip.exporters")
    assert "mapped" in registry.names("neurochip.storage")
    assert registry.get("neurochip.backends", "numba") is NumbaBackend
    with pytest.raises(UserError, match=r"unknown backend 'nope'; available: .*numba.*torch"):
        registry.get("neurochip.backends", "nope")
    with pytest.raises(ValueError):
        registry.names("neurochip.nothing")


def test_backend_by_name():
    net = Network.create(*(lambda p: (p.arch, p.hyper, p.widths))(get_preset("digits")), seed=0)
    assert isinstance(make_backend(net), NumbaBackend)
    pytest.importorskip("torch")
    from reference.backend import TorchBackend
    assert isinstance(make_backend(net, "torch", device="cpu"), TorchBackend)


def test_storage_plugin_is_the_mapping_model():
    from mapping.resources import MAPPED
    from neurochip.budget import fit
    assert fit.storage_model("mapped") is MAPPED and fit.storage_model("fused") is fit.FUSED
    assert fit.storage_names()[:2] == ("fused", "mapped")

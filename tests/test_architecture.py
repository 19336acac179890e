"""The layout's rules, checked on the sources: no import circles (function-level imports
included), backends that see only the kernel, one analysis per solve, and kernels whose text
does not depend on the folder or the machine."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

import crnlang

PACKAGE = Path(crnlang.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    """Module -> the crnlang modules it imports anywhere in its source (``from . import x``
    names the submodule x when there is one, else the package)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[:len(package) - node.level + 1]
                                    + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            graph.add_edges_from((name, t) for t in targets if t in modules and t != name)
    return graph


def test_no_import_circles():
    cycles = [" -> ".join(c + c[:1]) for c in nx.simple_cycles(import_graph())]
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("layer, forbidden", [
    ("crnlang.runtime", ("crnlang", "crnlang.cli", "crnlang.dispatch", "crnlang.reference",
                         "crnlang.codegen")),
    ("crnlang.reference", ("crnlang", "crnlang.cli", "crnlang.dispatch", "crnlang.runtime",
                           "crnlang.codegen")),
    ("crnlang.codegen", ("crnlang", "crnlang.cli", "crnlang.dispatch", "crnlang.runtime",
                         "crnlang.reference")),
])
def test_backends_see_only_the_kernel(layer, forbidden):
    """Backends never import the package face, the CLI, the dispatcher or each other; the
    generator never imports what only the generated module links against."""
    bad = []
    for source, target in import_graph().edges:
        if source == layer or source.startswith(layer + "."):
            for f in forbidden:
                if target == f or (f != "crnlang" and target.startswith(f + ".")):
                    bad.append(f"{source} imports {target}")
    assert not bad, "\n".join(bad)


def test_solve_analyzes_once(monkeypatch):
    import crnlang.analysis.analyze as analysis_module

    calls = []
    real = analysis_module.analyze

    def counting(model, count_reachable=True):
        calls.append(count_reachable)
        return real(model, count_reachable=count_reachable)

    monkeypatch.setattr(analysis_module, "analyze", counting)
    text = "species X <= 20\n0 -> X @ 2\nX -> 0 @ 0.5\n@solve(t_end = 1, dt = 0.1)\n"
    for method in (None, "fsp", "ssa", "tdvp"):
        calls.clear()
        crnlang.solve(text, method=method, **({"t_end": 0.2} if method == "tdvp" else {}))
        assert calls == [False], (method, calls)      # once, without the reachable search


def test_kernel_text_is_the_same_in_every_folder(tmp_path):
    """The same model in two folders (and so with two source paths) compiles to the same bytes."""
    text = ("model twin\nspecies A <= 10, B <= 10\nA -> B @ 1\nB -> A @ 2\ninit A = 10\n"
            "@solve(t_end = 2, dt = 0.5)\n")
    sources = []
    for folder in ("one", "two"):
        path = tmp_path / folder / "m.crn"
        path.parent.mkdir()
        path.write_text(text)
        kernel = crnlang.compile(crnlang.load(path), cache_dir=tmp_path / folder / "cache")
        sources.append(Path(kernel.__file__).read_bytes())
        assert str(tmp_path) not in sources[-1].decode()
    assert sources[0] == sources[1]
    # the solver settings are not part of the kernel either
    other = crnlang.parse(text.replace("t_end = 2", "t_end = 7"))
    assert crnlang.emit(other).encode() == sources[0]


@pytest.mark.parametrize("row, words", [
    ("method", "METHODS"), ("integrator", "INTEGRATORS"), ("dtype", "DTYPES"),
    ("kind", "NETWORKS"), ("head", "HEADS"), ("proposal", "SAMPLINGS"),
])
def test_the_docs_list_each_vocabulary_as_defined(row, words):
    """docs/language.md's annotation table names exactly the words of crnlang/vocabulary.py."""
    import re

    from crnlang import vocabulary

    docs = (PACKAGE.parent / "docs" / "language.md").read_text(encoding="utf-8")
    match = re.search(rf"^\| `?{row}`? \| `([^`]*)` \|", docs, flags=re.M)
    assert match, f"no row '{row}' in docs/language.md"
    assert tuple(match.group(1).split()) == tuple(getattr(vocabulary, words))

"""The package's layering, checked on its source: no import from a lower layer to a higher one, no
cycle between subpackages, no cycle between two files (no file imports its importer, directly or
around a ring), and no import of ``cracksam.cli`` from outside ``cli/``.

Layers, lowest first (a module may import its own layer and the ones below):

0. ``errors``
1. ``config``, ``overrides``, ``inference_modes``, ``threads``, ``_files`` (atomic writes, hashing,
   PNG encoding), ``_telemetry`` (runtime telemetry off), ``progress_bar`` (the one rich progress
   bar): small helpers every layer uses, importing only errors
2. ``data``: files, datasets, transforms, input expansion
3. ``models``; ``measurement`` (geometry of a mask; no model involved)
4. ``inference``: the Predictor and its backends (PyTorch, ONNX Runtime, OpenVINO)
5. ``training``, ``evaluation``; ``inspection`` (reports built from measurements).  Above
   inference because they consume the Predictor: evaluation scores any runtime through it
   (``evaluate --model model_int8.xml``) and training distils from any runtime's teacher.
6. ``deployment``, ``service``, ``survey``: programs built on inference (exports, the runtime
   cache behind ``--runtime auto``, the HTTP service, the survey engines)
7. ``cli``: the entry points; nothing imports them

Every import counts, including those inside functions (a lazy import is still a dependency, and it
is how cycles hide), with one exception for the cycles between files: imports under
``if TYPE_CHECKING:`` are left out there, since they never run (they still count for the layers
and for the ``cli`` rule).  Importing ``pkg.mod`` also runs ``pkg/__init__.py``; that implicit
edge is not counted (a package that re-exports its modules would otherwise be in a cycle with each),
but ``from pkg import name`` of a name that is not a submodule is an edge to ``pkg/__init__.py``.
Imports made by ``importlib`` from a string are not seen.

Every module counts with the subpackage of its folder (no exceptions).  Known violations are listed
in ``ALLOWED`` and ``KNOWN_CYCLES`` with the reason; an entry that no longer occurs fails the test
too, so the lists only shrink.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import cracksam

SRC = Path(cracksam.__file__).parent

LAYERS: dict[str, int] = {
    "errors": 0,
    "config": 1, "overrides": 1, "inference_modes": 1, "threads": 1, "_files": 1, "_telemetry": 1,
    "progress_bar": 1,
    "data": 2,
    "models": 3, "measurement": 3,
    "inference": 4,
    "training": 5, "evaluation": 5, "inspection": 5,
    "deployment": 6, "service": 6, "survey": 6,
    "cli": 7,
    "weights": 0,  # package data (the bundled model), no code
}

# (importing module, imported module): known upward imports, each to be removed by the change named.
ALLOWED: dict[tuple[str, str], str] = {}

# Sets of files that import each other (sorted module names), each with the change that removes it.
# Empty since issue 29 took the last ones apart; a new cycle is to be broken, not listed.
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}


def _module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, src: Path) -> bool:
    """Whether dotted ``name`` is a file or package of the source tree rooted at ``src``."""
    where = src.parent / Path(*name.split("."))
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _under_type_checking(tree: ast.AST) -> set[int]:
    """ids of the nodes in the body of ``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:``."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _imports(path: Path, src: Path = SRC, runtime_only: bool = False) -> set[str]:
    """Modules of the package ``path`` imports (absolute names; relative imports resolved), at any
    depth; ``runtime_only`` leaves out those under ``if TYPE_CHECKING:``."""
    name = _module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _under_type_checking(tree) if runtime_only else set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from cracksam.models import zoo` imports the submodule cracksam.models.zoo; only a
            # name that is not a submodule is taken from the package's __init__.py
            submodules = {f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}", src)}
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(base)
    root = src.name
    return {m for m in found if m == root or m.startswith(root + ".")}


def _unit(module: str) -> str | None:
    """The subpackage (or top-level module) ``module`` belongs to: its folder, for every file."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (cracksam/__init__.py)


def _edges(src: Path = SRC) -> list[tuple[str, str]]:
    return sorted((_module_name(p, src), target) for p in src.rglob("*.py") for target in _imports(p, src))


def test_every_subpackage_has_a_layer():
    units = {_unit(_module_name(p)) for p in SRC.rglob("*.py")} - {None}
    assert units <= set(LAYERS), f"place these in LAYERS: {sorted(units - set(LAYERS))}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    violations = []
    for source, target in _edges():
        src_unit, dst_unit = _unit(source), _unit(target)
        if src_unit is None or dst_unit is None or src_unit == dst_unit:
            continue
        if LAYERS[src_unit] < LAYERS[dst_unit] and (source, target) not in ALLOWED:
            violations.append(f"{source} (layer {LAYERS[src_unit]}) imports {target} (layer {LAYERS[dst_unit]})")
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_allow_list_has_no_stale_entries():
    edges = set(_edges())
    stale = [pair for pair in ALLOWED if pair not in edges]
    assert not stale, f"no longer imported, remove from ALLOWED: {stale}"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_cycle_between_subpackages():
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in _edges():
        src_unit, dst_unit = _unit(source), _unit(target)
        if src_unit and dst_unit and src_unit != dst_unit and (source, target) not in ALLOWED:
            graph[src_unit].add(dst_unit)
    assert _cycle(graph) is None, f"import cycle between subpackages: {' -> '.join(_cycle(graph) or [])}"


def test_the_checks_catch_what_they_guard_against():
    """The detectors themselves: an upward edge and a cycle in a made-up graph are found."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    pipeline = SRC / "deployment" / "pipeline.py"
    assert "cracksam.data.inputs" in _imports(pipeline)  # lazy imports inside functions are seen
    assert "cracksam.models.zoo" in _imports(SRC / "models" / "__init__.py")  # `from pkg import module`


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of ``graph`` (Tarjan): nodes that reach one another."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _file_cycles(src: Path = SRC) -> set[tuple[str, ...]]:
    """Every set of two or more files that import one another, directly or around a ring (sorted
    module names); imports under ``if TYPE_CHECKING:`` left out."""
    graph = {_module_name(p, src): _imports(p, src, runtime_only=True) - {_module_name(p, src)}
             for p in src.rglob("*.py")}
    return {tuple(sorted(c)) for c in _components(graph) if len(c) > 1}


def _against(found: set[tuple[str, ...]], known: dict[tuple[str, ...], str]) -> tuple[list, list]:
    """(cycles not in ``known``, entries of ``known`` that no longer occur exactly)."""
    return sorted(found - set(known)), sorted(set(known) - found)


def _cli_imports_from_outside(edges: list[tuple[str, str]], root: str = "cracksam") -> list[str]:
    return [f"{source} imports {target}" for source, target in edges
            if (target == f"{root}.cli" or target.startswith(f"{root}.cli.")) and _unit(source) != "cli"]


def test_no_import_cycle_between_files():
    new, stale = _against(_file_cycles(), KNOWN_CYCLES)
    assert not new, "files that import one another:\n" + "\n".join(" <-> ".join(c) for c in new)
    assert not stale, f"no longer a cycle (or a different one now), remove or update in KNOWN_CYCLES: {stale}"


def test_nothing_outside_cli_imports_the_cli():
    outside = _cli_imports_from_outside(_edges())
    assert not outside, "imports of cracksam.cli from outside cli/:\n" + "\n".join(outside)


_SYNTHETIC = {
    "__init__.py": "",
    # a <-> b: one at module level, the other inside a function through a relative import
    "a.py": "from cracksam import b\n",
    "b.py": "def f():\n    from .a import thing\n    return thing\n",
    # a ring of three, each import written another way
    "ring/__init__.py": "from cracksam.ring.x import X\n",
    "ring/x.py": "import cracksam.ring.y\nX = 1\n",
    "ring/y.py": "from ..ring import z\n",
    "ring/z.py": "from . import x\n",
    # a name (not a submodule) taken from the package that imports this module: a cycle
    "pkgcycle/__init__.py": "from cracksam.pkgcycle.inner import VALUE\nOTHER = 2\n",
    "pkgcycle/inner.py": "from cracksam.pkgcycle import OTHER\nVALUE = 1\n",
    # a sibling module taken through the package name: no edge to the package, no cycle
    "plain/__init__.py": "from cracksam.plain.leaf import V\n",
    "plain/leaf.py": "from cracksam.plain import other_leaf\nV = other_leaf.W\n",
    "plain/other_leaf.py": "W = 1\n",
    # hints only (both spellings of TYPE_CHECKING): no cycle
    "hints.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cracksam.lone import L\n",
    "lone.py": ("import typing\nfrom cracksam import hints\n"
                "if typing.TYPE_CHECKING:\n    from cracksam.hints2 import H\nL = 1\n"),
    "hints2.py": "from cracksam.lone import L\nH = 1\n",
    # the command line: imported from outside (a violation, also from a file named cli.py outside
    # cli/) and from inside cli/ (allowed)
    "cli/__init__.py": "",
    "cli/main.py": "from cracksam import a\n",
    "cli/survey.py": "from cracksam.cli.main import a\n",
    "outside.py": "def g():\n    import cracksam.cli.main\n",
    "survey/__init__.py": "",
    "survey/cli.py": "from cracksam.cli import main\n",
}


def test_the_file_checks_find_what_they_guard_against(tmp_path):
    """The cycle and cli detectors on a made-up package: each kind of import, each kind of cycle."""
    src = tmp_path / "cracksam"
    for name, text in _SYNTHETIC.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    assert _file_cycles(src) == {
        ("cracksam.a", "cracksam.b"),
        ("cracksam.pkgcycle", "cracksam.pkgcycle.inner"),
        ("cracksam.ring.x", "cracksam.ring.y", "cracksam.ring.z"),
    }
    assert _imports(src / "hints.py", src) == {"cracksam.lone"}  # the layers still see hints
    assert _cli_imports_from_outside(_edges(src)) == ["cracksam.outside imports cracksam.cli.main",
                                                      "cracksam.survey.cli imports cracksam.cli.main"]
    found = {("m.a", "m.b"), ("m.c", "m.d")}
    assert _against(found, {("m.a", "m.b"): "", ("m.e", "m.f"): ""}) == ([("m.c", "m.d")], [("m.e", "m.f")])
    assert _against(found, {("m.a", "m.b"): "", ("m.c", "m.d"): ""}) == ([], [])

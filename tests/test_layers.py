"""The package's layering, checked on its source: no import from a lower layer to a higher one, no
cycle between subpackages.

Layers, lowest first (a module may import its own layer and the ones below):

0. ``errors``
1. ``config``, ``overrides``, ``inference_modes``, ``threads``, ``_files`` (atomic writes, hashing,
   PNG encoding): small helpers every layer uses, importing only errors
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
is how cycles hide).  A module filed under another subpackage than its folder is in ``MODULE_UNITS``.
Known violations are listed in ``ALLOWED`` with the reason; an entry that no
longer occurs fails the test too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import cracksam

SRC = Path(cracksam.__file__).parent

LAYERS: dict[str, int] = {
    "errors": 0,
    "config": 1, "overrides": 1, "inference_modes": 1, "threads": 1, "_files": 1,
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

# Modules counted with another subpackage than their folder's.  survey/cli.py is the typer glue of
# `cracksam predict --engine/--manifest/--table` (it reuses predict's output folder and plain report),
# so it sits with the command line, above the survey engine it drives.
MODULE_UNITS: dict[str, str] = {
    "cracksam.survey.cli": "cli",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports (absolute names; relative imports resolved), at any depth."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from cracksam.models import zoo` imports the submodule cracksam.models.zoo
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if (SRC.parent / Path(*f"{base}.{alias.name}".split("."))).with_suffix(".py").exists())
    return {m for m in found if m == "cracksam" or m.startswith("cracksam.")}


def _unit(module: str) -> str | None:
    if module in MODULE_UNITS:
        return MODULE_UNITS[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (cracksam/__init__.py)


def _edges() -> list[tuple[str, str]]:
    return sorted((_module_name(p), target) for p in SRC.rglob("*.py") for target in _imports(p))


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

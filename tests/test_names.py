"""One name, one meaning: no two modules of the package define the same public
function or class, and no module outside ``cli/`` is named after another subpackage (as
``inspection/survey.py`` was, beside the ``cracksam.survey`` package)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import cracksam

SRC = Path(cracksam.__file__).parent

# Names that every module of a kind defines on purpose, in the same meaning.
SAME_ROLE = {
    "register": "each cli/<command>.py registers its command on the app",
    "resolve_config": "each cli/<command>.py resolves its own config (defaults < file < env < flags)",
    "main": "process entry points: cracksam's (cli/main.py) and the Ray reaper's child process",
}


def _definitions(src: Path = SRC) -> dict[str, list[str]]:
    """Public top-level functions and classes -> the modules that define them."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(src.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            defines = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if defines and not node.name.startswith("_"):
                found[node.name].append(str(path.relative_to(src)))
    return found


def _named_after_a_subpackage(src: Path = SRC) -> list[str]:
    packages = {p.parent.name for p in src.glob("*/__init__.py")}
    return sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                  if p.stem in packages and p.parent.name != "cli" and p.parent != src / p.stem)


def test_each_public_name_has_one_definition():
    twice = {name: where for name, where in _definitions().items() if len(where) > 1}
    assert {name: where for name, where in twice.items() if name not in SAME_ROLE} == {}
    assert set(SAME_ROLE) <= set(twice), "a SAME_ROLE entry no longer occurs twice: remove it"


def test_no_module_outside_cli_is_named_after_a_subpackage():
    assert _named_after_a_subpackage() == []


def test_the_checks_see_what_they_look_for(tmp_path):
    (tmp_path / "survey").mkdir()
    (tmp_path / "survey" / "__init__.py").write_text("")
    (tmp_path / "inspection").mkdir()
    (tmp_path / "inspection" / "__init__.py").write_text("")
    (tmp_path / "inspection" / "survey.py").write_text("def read_mask():\n    pass\n\nclass _Private:\n    pass\n")
    (tmp_path / "data.py").write_text("def read_mask():\n    pass\n\nclass _Private:\n    pass\n")
    assert _named_after_a_subpackage(tmp_path) == ["inspection/survey.py"]
    assert dict(_definitions(tmp_path)) == {"read_mask": ["data.py", "inspection/survey.py"]}

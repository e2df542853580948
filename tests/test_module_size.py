"""Every module of the package stays under 350 lines (modules of one concern); a file
that grows past it is a sign it holds several and should be split."""

from __future__ import annotations

from pathlib import Path

import cracksam

SRC = Path(cracksam.__file__).parent
LIMIT = 350


def _too_long(root: Path, limit: int = LIMIT) -> dict[str, int]:
    sizes = {str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines()) for p in root.rglob("*.py")}
    return {name: n for name, n in sorted(sizes.items()) if n >= limit}


def test_every_module_is_under_350_lines():
    assert _too_long(SRC) == {}


def test_the_check_counts_lines(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * LIMIT, encoding="utf-8")
    (tmp_path / "short.py").write_text("x = 1\n" * (LIMIT - 1), encoding="utf-8")
    assert _too_long(tmp_path) == {"pkg/long.py": LIMIT}

"""One command (``make test`` = ``scripts/test.sh``) installs and runs every check:
lint, type check and every pytest pass; ``.ci/run`` calls exactly it.  The script is run here with a
stand-in ``python`` that records what it is asked to run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "test.sh"


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    log = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    fake.chmod(0o755)
    run = subprocess.run(["bash", str(SCRIPT), *args], env={**os.environ, "PYTHON": str(fake), **(env or {})},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return log.read_text().splitlines()


def _markers() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = text[text.index("markers = ["):]
    return re.findall(r'^\s*"(\w+):', block[:block.index("]")], re.M)


def test_the_script_installs_then_lints_type_checks_and_runs_every_pytest_pass(tmp_path):
    calls = _run(tmp_path)
    assert calls[0].startswith("-m pip install torch==") and calls[1] == '-m pip install -e .[test]'
    assert calls[2:4] == ["-m ruff check src tests benchmarks", "-m mypy src"]
    passes = [c for c in calls if c.startswith("-m pytest")]
    # The default pass (every test without a marker, pyproject addopts) in chunks of files, which together
    # are every test file, each once.
    chunks = [c.split()[2:] for c in passes if not c.startswith("-m pytest -m")]
    assert len(chunks) > 1 and all(chunks)
    files = [f for c in chunks for f in c]
    assert sorted(files) == sorted(f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py"))
    markers = _markers()
    marked = [c for c in passes if c.startswith("-m pytest -m")]
    expressions = [re.fullmatch(r'-m pytest -m "?([^"]+)"?', c).group(1) for c in marked]

    def selects(expression: str, marker: str) -> bool:  # a test marked only `marker`
        return eval(expression, {}, {m: m == marker for m in markers})  # noqa: S307 - our own marker names

    assert markers and all(any(selects(e, m) for e in expressions) for m in markers)


@pytest.mark.parametrize(("args", "env"), [(["--no-install"], {}), ([], {"CRACKSAM_TEST_INSTALL": "0"})])
def test_reruns_can_skip_the_install(tmp_path, args, env):
    calls = _run(tmp_path, *args, env=env)
    assert not [c for c in calls if "pip" in c] and calls[0] == "-m ruff check src tests benchmarks"


def test_a_failing_step_stops_the_script(tmp_path):
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\ncase "$*" in *ruff*) exit 1;; esac\necho "$*" >> "' + str(tmp_path / "log") + '"\n')
    fake.chmod(0o755)
    run = subprocess.run(["bash", str(SCRIPT), "--no-install"], env={**os.environ, "PYTHON": str(fake)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and not (tmp_path / "log").exists()


def test_ci_and_make_call_exactly_the_script():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert ci[-1] == "scripts/test.sh"
    assert not [line for line in ci if re.search(r"\b(pytest|ruff|mypy)\b|pip install -e", line)]
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:\n\t.*scripts/test\.sh$", make, re.M)

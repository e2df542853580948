"""The one progress bar (``cracksam.progress_bar``): its columns, that no other module builds a rich
``Progress``, and that ``--progress/--no-progress`` (and ``--json``) reach it."""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import cracksam
import cracksam.progress_bar
from cracksam.cli.main import main
from cracksam.progress_bar import progress_bar

from ._models import DarknessModel

SRC = Path(cracksam.__file__).parent


def _columns(bar) -> list[tuple[type, str | None]]:
    return [(type(c), getattr(c, "text_format", None)) for c in bar.columns]


def test_the_bar_has_the_columns_of_every_command():
    bar = progress_bar()
    assert _columns(bar) == [(TextColumn, "{task.description}"), (BarColumn, None), (MofNCompleteColumn, None),
                             (TimeRemainingColumn, None)]
    assert bar.live.transient and not bar.disable
    assert progress_bar(enabled=False).disable
    stream = progress_bar(rate=True)  # a video: frames/s instead of the time left
    assert _columns(stream)[3:] == [(TextColumn, "{task.fields[rate]}"), (TimeElapsedColumn, None)]
    assert _columns(stream)[:3] == _columns(bar)[:3]


def test_no_other_module_builds_a_rich_progress():
    """Killed by any module that builds its own bar (``Progress(...)``) or imports rich.progress."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "progress_bar.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "rich.progress":
                found.append(f"{path.relative_to(SRC)}:{node.lineno} imports rich.progress")
            elif isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name == "Progress":
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} builds a Progress")
    assert found == []


@pytest.fixture
def bars(monkeypatch) -> list[tuple[bool, bool]]:
    """Each progress bar the commands make, as (enabled, rate)."""
    made: list[tuple[bool, bool]] = []

    def spy(console=None, *, enabled=True, rate=False):
        made.append((enabled, rate))
        return progress_bar(console, enabled=False, rate=rate)  # drawn on no terminal in the tests

    monkeypatch.setattr(cracksam.progress_bar, "progress_bar", spy)
    monkeypatch.setattr("cracksam.evaluation.runner.progress_bar", spy)
    return made


def test_report_flags_reach_the_bar(tmp_path, bars):
    masks = tmp_path / "masks"
    masks.mkdir()
    mask = np.zeros((40, 60), np.uint8)
    mask[20, 5:55] = 255
    cv2.imwrite(str(masks / "a_mask.png"), mask)
    for i, flags in enumerate([[], ["--no-progress"], ["--progress", "--json"]]):
        assert main(["report", str(masks), "--out", str(tmp_path / f"r{i}"), *flags]) == 0
    assert bars == [(True, False), (False, False), (False, False)]


def test_predict_flags_reach_the_bar(tmp_path, bars):
    pytest.importorskip("pyarrow")
    from cracksam.deployment.export import export_onnx

    model = export_onnx(DarknessModel(64), tmp_path / "dark.onnx")
    photo = tmp_path / "road.png"
    cv2.imwrite(str(photo), np.full((48, 64, 3), 190, np.uint8))
    for i, flags in enumerate([["--progress"], ["--no-progress"], ["--table"], ["--table", "--no-progress"]]):
        assert main(["predict", str(photo), "--model", str(model), "--out", str(tmp_path / f"p{i}"), *flags,
                     "--threads", "1"]) == 0
    assert bars == [(True, False), (False, False), (True, False), (False, False)]  # plain, then survey mode


def test_stream_flags_reach_the_bar_with_its_rate(tmp_path, bars):
    from cracksam.deployment.export import export_onnx

    model = export_onnx(DarknessModel(64), tmp_path / "dark.onnx")
    video = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), 190, np.uint8))
    writer.release()
    for flag in ("--progress", "--no-progress"):
        assert main(["stream", str(video), "--model", str(model), flag, "--threads", "1"]) == 0
    assert bars == [(True, True), (False, True)]


def test_evaluate_and_the_teacher_pass_reach_the_bar(tmp_path, bars):
    import io

    from cracksam.data import Sample
    from cracksam.evaluation.runner import EvalModel, evaluate_samples
    from cracksam.training.teacher import TeacherCache, fill_cache

    (tmp_path / "images").mkdir()
    image = tmp_path / "images" / "a.png"
    cv2.imwrite(str(image), np.full((40, 56, 3), 200, np.uint8))
    samples = [Sample(stem="a", image=image, mask=image, dataset="d")]
    model = EvalModel("dark", DarknessModel(32), "none", 0, 0)
    for progress in (True, False):
        evaluate_samples(model, samples, "clean", "set", progress=progress)
    assert bars == [(True, False), (False, False)]

    class Teacher:
        name, precision, image_size = "t", "fp32", 32

        def run(self, x: np.ndarray) -> np.ndarray:
            return np.zeros((len(x), 2, 32, 32), np.float32)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    bars.clear()
    for i, (progress, stream) in enumerate([(True, Terminal()), (False, Terminal()), (True, io.StringIO())]):
        fill_cache(TeacherCache(tmp_path / f"c{i}", "t", 32), Teacher(), samples, progress=progress, stream=stream)
    assert bars == [(True, False), (False, False), (False, False)]  # a bar on a terminal only, else lines

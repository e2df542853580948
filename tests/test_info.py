"""Issue 27 point 12: ``info`` and ``export`` say "@ 448" only for models that resize the photo to
448 (CrackSAM, resize-mode networks); a native-resolution model runs the photo at its own size."""

from __future__ import annotations

import pytest

from cracksam.cli.main import main

NATIVE = "runs at the photo's own size"


@pytest.mark.parametrize("argv", [["info"], ["info", "-m", "unet_efficientnet_lite0"]])
def test_info_says_a_native_model_runs_at_the_photos_size(argv, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")  # one line per sentence
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert NATIVE in out and "trained on 448×448 crops" in out
    assert "@ 448" not in out


def test_info_keeps_at_448_for_cracksam_and_resize_models(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["info", "--backbone", "tiny", "--delta", "lora"]) == 0
    assert "CrackSAM tiny @ 448" in capsys.readouterr().out
    from cracksam.cli.options import how_it_runs

    assert how_it_runs("resize", 448) == "@ 448"
    assert "384×384 windows" in how_it_runs("tile", 384)

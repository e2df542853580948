"""CLI-wide behaviour: bad output paths never end in a traceback."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.data.synthetic import make_dataset
from cracksam.models import build_cracksam, save_delta


@pytest.fixture
def setup(tmp_path, tiny_config):
    data = make_dataset(tmp_path / "data", n=4, size=(64, 64))
    ckpt = save_delta(build_cracksam(tiny_config("lora")), tmp_path / "model")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return data, ckpt, blocker


def test_out_that_is_a_file_is_a_clear_error(setup, capsys):
    data, ckpt, blocker = setup
    image = str(next((data / "images").iterdir()))
    commands = [
        ["train", "--data", str(data), "--backbone", "tiny", "--image-size", "64", "--out", str(blocker)],
        ["evaluate", "--model", str(ckpt), "--allow-random-base", "--test", str(data), "--out", str(blocker)],
        ["predict", image, "--model", str(ckpt), "--allow-random-base", "--out", str(blocker)],
        ["export", "--model", str(ckpt), "--allow-random-base", "--out", str(blocker), "--targets", "onnx"],
        ["measure", str(next((data / "masks").iterdir())), "--out", str(blocker)],
    ]
    for argv in commands:
        assert main(argv) == 2, argv[0]
        err = capsys.readouterr().err
        assert "not a folder" in err and "Traceback" not in err, argv[0]
    assert blocker.read_text() == "not a folder"


def test_file_system_errors_become_one_line(monkeypatch, setup, capsys):
    data, ckpt, _ = setup
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", "summary.json")

    monkeypatch.setattr("cracksam._files.atomic_write_text", full_disk)
    image = data / "images" / "x.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    rc = main(["predict", str(image), "--model", str(ckpt), "--allow-random-base", "--out", str(data / "o"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "No space left on device" in err and "Traceback" not in err

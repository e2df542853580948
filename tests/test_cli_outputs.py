"""The commands' output folders and failed writes: a bad --out and a full disk are one error line
naming the folder or file (never a traceback), `predict` counts what it really wrote, and a refused
command leaves no output folder behind."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import cracksam._files as files_mod
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



def _enospc(path) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


def test_the_cli_error_line_names_the_file(tmp_path, monkeypatch, capsys):
    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    mask = tmp_path / "m.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(mask)
    monkeypatch.setattr(files_mod.os, "fsync", full)
    assert main(["measure", str(mask), "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(tmp_path / "o") in err and "Traceback" not in err


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        img = np.full((64, 64, 3), 200, np.uint8)
        img[30 + i : 34 + i, :] = 20
        Image.fromarray(img).save(folder / f"p{i}.png")
    return folder


def test_predict_counts_truthfully_when_some_writes_fail(photos, tmp_path, monkeypatch, capsys):
    real = files_mod.atomic_write_bytes

    def overlays_fill_the_disk(path, data):
        if str(path).endswith("_overlay.png"):
            raise _enospc(path)
        return real(path, data)

    monkeypatch.setattr(files_mod, "atomic_write_bytes", overlays_fill_the_disk)
    out = tmp_path / "out"
    assert main(["predict", str(photos), "--out", str(out), "--overlay", "--no-progress"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["failed"], summary["partial"], summary["files_written"]) == (0, 3, 3, 3)
    for row in summary["results"]:
        stem = Path(row["file"]).stem
        assert row["written"] == [str(out / f"{stem}_mask.png")]  # the mask is there and said to be
        assert (out / f"{stem}_mask.png").is_file()
        assert f"{stem}_overlay.png" in row["error"] and "No space left on device" in row["error"]
    err = capsys.readouterr().err
    assert "0 image(s) segmented, 3 failed (3 of them left some outputs), 3 file(s) written" in err


def test_predict_reports_its_work_when_the_summary_cannot_be_written(photos, tmp_path, monkeypatch, capsys):
    real = files_mod.atomic_write_bytes

    def summary_fills_the_disk(path, data):
        if Path(path).name == "summary.json":
            raise _enospc(path)
        return real(path, data)

    monkeypatch.setattr(files_mod, "atomic_write_bytes", summary_fills_the_disk)
    out = tmp_path / "out"
    assert main(["predict", str(photos), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "3 image(s) segmented, 0 failed, 3 file(s) written" in err
    assert f"cannot write {out / 'summary.json'}: No space left on device" in err
    assert len(list(out.glob("*_mask.png"))) == 3


# -- refused commands make no folder ------------------------------------------------------------------


def test_refused_commands_leave_no_output_folder(tmp_path, photos, capsys):
    out = tmp_path / "never"
    mask = tmp_path / "m.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(mask)
    refused = [
        ["export", "--out", str(out), "--opset", "5"],
        ["export", "--out", str(out), "--model", str(tmp_path / "missing")],
        ["evaluate", "--out", str(out), "--test", str(tmp_path / "no-such-dataset")],
        ["evaluate", "--out", str(out), "--model", str(tmp_path / "missing")],
        ["measure", str(mask), str(mask), "--image", str(mask), "--out", str(out)],
        ["predict", str(photos), "--out", str(out), "--model", str(tmp_path / "missing")],
        ["stream", str(tmp_path / "v.mp4"), "--frames-dir", str(out), "--model", str(tmp_path / "missing")],
    ]
    for argv in refused:
        assert main(argv) == 2, argv
        assert not out.exists(), argv
    assert "Traceback" not in capsys.readouterr().err

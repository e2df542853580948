"""``cracksam export`` and the runtime cache on a full disk: one line naming the
folder and saying "no space left", a non-zero exit, and no half-written file or temporary folder.

The disk is filled by patching the write that would meet it: ``os.fsync`` of the atomic writes
(ONNX files, parity.json: the real temp-file clean-up runs), or OpenVINO's ``save_model``, which
on a real full disk raises a C++ ``basic_ios::clear`` error without an errno (then the free space
of the folder, patched to 0, tells it apart)."""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import cracksam._files as files_mod  # noqa: E402
import cracksam.deployment.pipeline as pipeline  # noqa: E402
from cracksam.cli.main import main  # noqa: E402
from cracksam.deployment.export import disk_full  # noqa: E402
from cracksam.errors import ConfigError  # noqa: E402

from .test_runtime_cache import (  # noqa: E402,F401  (fixtures: the test network's architecture, a cache, a photo)
    _dark_conv_arch,
    _predict,
    _ran,
    _warnings,
    cache,
    conv_checkpoint,
    photo,
)

Usage = namedtuple("Usage", "total used free")


def _full_fsync(code: int = errno.ENOSPC):
    def fsync(_fd: int) -> None:
        raise OSError(code, "No space left on device" if code == errno.ENOSPC else "Disk quota exceeded")

    return fsync


def _no_free_space(monkeypatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: Usage(10 << 30, 10 << 30, 0))


def _fill_at_openvino_save(monkeypatch) -> None:
    """OpenVINO's save_model as on a full disk: part of the .bin written, then its C++ stream error."""
    ov = pytest.importorskip("openvino")

    def save_model(model, path, compress_to_fp16=True):
        Path(path).with_suffix(".bin").write_bytes(b"\0" * 4096)
        raise RuntimeError("Exception from src/core/src/pass/serialize.cpp:1\nbasic_ios::clear: iostream error")

    monkeypatch.setattr(ov, "save_model", save_model)
    _no_free_space(monkeypatch)


def _files(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, hidden ones included (temporary files start with '.')."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _export(ckpt: Path, out: Path, targets: str) -> int:
    return main(["export", "-m", str(ckpt), "--out", str(out), "--targets", targets, "--threads", "1"])


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    return line


def _fill_at_onnx_exporter(monkeypatch) -> None:
    """torch's exporter meets the full disk writing its own temporary file."""
    import importlib

    export_onnx = importlib.import_module("cracksam.deployment.export_onnx")  # the package exports a function

    def exporter(net, example, opset, dynamic_batch, tmp, dynamic):
        Path(tmp).write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_onnx, "_export_torchscript", exporter)


@pytest.mark.parametrize("case", ["onnx-enospc", "onnx-edquot", "onnx-exporter", "openvino-after-onnx"])
def test_export_onto_a_full_disk_says_so_in_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys, case):
    pytest.importorskip("openvino")
    ckpt = conv_checkpoint(tmp_path / "m")
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")  # a file of the user's, never touched
    if case == "openvino-after-onnx":  # model.onnx is written whole first, then the IR meets the full disk
        _fill_at_openvino_save(monkeypatch)
        targets = "onnx,openvino-fp16"
    elif case == "onnx-exporter":  # not taken for an exporter's failure (the next exporter is not tried)
        _fill_at_onnx_exporter(monkeypatch)
        targets = "onnx"
    else:  # the ONNX step (to a scratch folder: onnx is not a target) meets it
        monkeypatch.setattr(files_mod.os, "fsync", _full_fsync(errno.EDQUOT if case == "onnx-edquot" else errno.ENOSPC))
        targets = "openvino-fp16"
    assert _export(ckpt, out, targets) != 0
    line = _one_error_line(capsys.readouterr().err)
    assert f"{out}: no space left on the device" in line, line
    assert _files(out) == ["notes.txt"]  # no export without its parity check, no temporary file or folder


def test_a_full_disk_at_the_parity_report_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    ckpt = conv_checkpoint(tmp_path / "m")
    out = tmp_path / "export"
    real = pipeline.atomic_write_text

    def write_on_a_full_disk(path, text):
        monkeypatch.setattr(files_mod.os, "fsync", _full_fsync())  # the exports are written; now the disk is full
        real(path, text)

    monkeypatch.setattr(pipeline, "atomic_write_text", write_on_a_full_disk)
    assert _export(ckpt, out, "onnx") != 0
    line = _one_error_line(capsys.readouterr().err)
    assert f"{out}: no space left on the device" in line and "parity.json" in line
    assert _files(out) == ["model.onnx"]  # checked against PyTorch and whole; no parity.json, no temp file


def test_a_full_cache_disk_says_no_space_left_in_its_one_warning(tmp_path, cache, photo, monkeypatch,  # noqa: F811
                                                                   capsys):
    pytest.importorskip("openvino")
    ckpt = conv_checkpoint(tmp_path / "m")
    _fill_at_openvino_save(monkeypatch)
    out = tmp_path / "out"
    assert _predict(photo, ckpt, out, "auto") == 0
    (line,) = _warnings(capsys.readouterr().err)
    assert f"runtime cache {cache}" in line and "no space left on the device" in line and "running PyTorch" in line
    assert _ran(out)["runtime"] == "torch"
    assert list(cache.iterdir()) == []  # neither an entry nor its temporary folder


def test_only_a_full_disk_is_taken_for_one(tmp_path, monkeypatch):
    assert disk_full(OSError(errno.ENOSPC, "x"), tmp_path)
    wrapped = RuntimeError("ONNX export failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "quota")
    assert disk_full(wrapped, tmp_path)
    assert not disk_full(OSError(errno.EACCES, "denied"), tmp_path)
    assert not disk_full(RuntimeError("basic_ios::clear"), tmp_path)  # the disk has room: another fault
    _no_free_space(monkeypatch)
    assert disk_full(RuntimeError("basic_ios::clear"), tmp_path / "not" / "made" / "yet")
    assert not disk_full(ConfigError("a bad option"), tmp_path)  # our own errors say what went wrong
    assert not disk_full(OSError(errno.EACCES, "denied"), tmp_path)

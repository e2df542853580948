"""An INT8 export attached to its model folder (export --attach): kept only while its checksums and the
weights it was made from match, and then offered to --runtime auto by the runtime cache."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("onnx")
pytest.importorskip("openvino")
pytest.importorskip("nncf")

# NNCF's accuracy control imports nncf.torch; a training run later in the same process crashed (pyproject).
pytestmark = pytest.mark.own_process

from cracksam.cli.main import main  # noqa: E402
from cracksam.deployment.attached_int8 import FOLDER, RECORD, XML, attach_int8, attached_int8  # noqa: E402
from cracksam.deployment.runtime_cache import build_entry  # noqa: E402
from cracksam.errors import CrackSAMError  # noqa: E402
from cracksam.models import load_model  # noqa: E402
from tests.test_runtime_cache import ARCH, conv_checkpoint, photo  # noqa: E402,F401

PASSED = {"passed": True, "mask_iou": 0.99}


@pytest.fixture(autouse=True, scope="module")
def _dark_conv_arch():
    from cracksam.models.registry import unregister_model
    from tests.test_runtime_cache import ensure_dark_conv_arch

    ensure_dark_conv_arch()
    yield
    unregister_model(ARCH)


@pytest.fixture
def exported(tmp_path, photo):  # noqa: F811
    """A model folder and its openvino-int8 export on a synthetic photo, made by the CLI."""
    folder = conv_checkpoint(tmp_path / "model")
    out = tmp_path / "export"
    assert main(["export", "-m", str(folder), "--targets", "openvino-int8", "--calib", str(photo), "--out", str(out),
                 "--threads", "1"]) == 0
    return folder, out / "model_int8.xml"


def test_an_attached_export_is_found_while_every_checksum_matches(exported):
    folder, xml = exported
    path = attach_int8(folder, xml, PASSED)
    assert path == folder / FOLDER / XML and path.read_bytes() == xml.read_bytes()
    assert attached_int8(folder) == (path, None)
    record = json.loads((folder / FOLDER / RECORD).read_text())
    assert record["parity"] == PASSED and set(record["weights"]) == {"config.json", "weights.safetensors"}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary folder left


@pytest.mark.parametrize("damage, why", [
    (lambda f: (f / "weights.safetensors").write_bytes(b"retrained"), "made from other weights"),
    (lambda f: (f / FOLDER / "model_int8.bin").write_bytes(b"\0"), "does not match its checksum"),
    (lambda f: (f / FOLDER / XML).unlink(), "is missing"),
    (lambda f: (f / FOLDER / RECORD).write_text("{"), "unreadable"),
])
def test_a_stale_or_damaged_attachment_is_not_used_and_says_why(exported, damage, why):
    folder, xml = exported
    attach_int8(folder, xml, PASSED)
    damage(folder)
    path, problem = attached_int8(folder)
    assert path is None and why in problem


def test_without_an_attachment_there_is_nothing_to_say(exported):
    assert attached_int8(exported[0]) == (None, None) and attached_int8(None) == (None, None)


def test_only_a_passed_export_is_attached_and_only_to_a_model_folder(exported, tmp_path):
    folder, xml = exported
    with pytest.raises(CrackSAMError, match="did not pass its parity check"):
        attach_int8(folder, xml, {"passed": False})
    with pytest.raises(CrackSAMError, match="needs a model folder"):
        attach_int8(tmp_path / "export", xml, PASSED)
    assert not (folder / FOLDER).exists()


def test_attaching_again_replaces_the_earlier_attachment(exported):
    folder, xml = exported
    attach_int8(folder, xml, PASSED)
    attach_int8(folder, xml, {"passed": True, "mask_iou": 0.98})
    assert json.loads((folder / FOLDER / RECORD).read_text())["parity"]["mask_iou"] == 0.98
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", FOLDER, "weights.safetensors"]


def test_the_runtime_cache_offers_the_attached_export_and_says_why_not_when_stale(exported, tmp_path):
    folder, xml = exported
    plain = build_entry(load_model(folder).eval(), tmp_path / "plain", threads=1, model_dir=folder)
    assert "openvino-int8" not in {c["name"] for c in plain["candidates"]} and not plain["skipped"]
    attach_int8(folder, xml, PASSED)
    manifest = build_entry(load_model(folder).eval(), tmp_path / "cache", threads=1, model_dir=folder)
    (int8,) = [c for c in manifest["candidates"] if c["name"] == "openvino-int8"]
    assert int8["precision"] == "int8" and int8["passed"] == (int8["mask_iou"] >= 0.97)
    stale = tmp_path / "stale"
    shutil.copytree(folder, stale)
    (stale / "config.json").write_text((stale / "config.json").read_text() + " ")
    manifest = build_entry(load_model(stale, trust=True).eval(), tmp_path / "stale-cache", threads=1, model_dir=stale)
    assert "made from other weights" in manifest["skipped"]["openvino-int8"]
    assert "openvino-int8" not in {c["name"] for c in manifest["candidates"]}


def test_export_attach_puts_the_passed_int8_export_in_the_model_folder(exported, photo, capsys):  # noqa: F811
    folder, _ = exported
    out = folder.parent / "again"
    assert main(["export", "-m", str(folder), "--targets", "openvino-int8", "--calib", str(photo), "--out", str(out),
                 "--threads", "1", "--attach"]) == 0, capsys.readouterr().err
    assert attached_int8(folder) == (folder / FOLDER / XML, None)
    assert (folder / FOLDER / XML).read_bytes() == (out / "model_int8.xml").read_bytes()
    assert "attached model_int8.xml" in capsys.readouterr().err


def test_export_attach_needs_the_openvino_int8_target(exported, capsys):
    folder, _ = exported
    assert main(["export", "-m", str(folder), "--targets", "onnx", "--attach", "--out", str(folder.parent / "x")]) == 2
    assert "add openvino-int8 to --targets" in capsys.readouterr().err and not (folder / FOLDER).exists()


def test_the_attached_folder_is_as_readable_as_a_new_folder(exported):
    """mkdtemp makes 0700 folders; an installed package's int8/ must be readable by every user."""
    import os

    folder, xml = exported
    umask = os.umask(0o022)
    try:
        attach_int8(folder, xml, PASSED)
    finally:
        os.umask(umask)
    assert (folder / FOLDER).stat().st_mode & 0o777 == 0o755


def test_a_write_that_fails_part_way_leaves_no_attachment_and_says_so_in_one_line(exported, monkeypatch):
    import errno

    folder, xml = exported
    real = shutil.copyfile

    def full_disk(src, dst, *args, **kwargs):
        if str(src).endswith(".bin"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    with pytest.raises(CrackSAMError, match="cannot attach the INT8 export .*No space left"):
        attach_int8(folder, xml, PASSED)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.safetensors"]

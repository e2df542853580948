"""Issue 27 point 1: the base install brings the runtime ``--runtime auto`` picks (ONNX Runtime), and
where a runtime is missing the runtime line says which extra installs it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import cracksam.deployment.runtime_cache as rc
from cracksam.models.registry import unregister_model
from tests.test_runtime_cache import ARCH, conv_checkpoint, conv_segmodel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _unregister_test_network():
    """conv_segmodel registers a test network; the zoo and registry tests list every network."""
    yield
    unregister_model(ARCH)


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_base_install_brings_onnx_runtime_and_the_deploy_extra_the_rest():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = _names(project["dependencies"])
    # The exporter (torch.onnx needs onnx) and the runtime auto picks: predict is fast after `pip install .`.
    assert {"onnx", "onnxruntime"} <= base
    deploy = _names(project["optional-dependencies"]["deploy"])
    assert {"openvino", "nncf", "onnxruntime"} <= deploy  # the hint's extra gives every runtime
    assert not {"openvino", "nncf"} & base


def _hide(monkeypatch, *modules: str) -> None:
    # A None entry in sys.modules makes find_spec say "not found" and an import raise ImportError.
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_without_any_runtime_the_line_says_which_extra_installs_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CRACKSAM_CACHE", str(tmp_path / "cache"))
    _hide(monkeypatch, "onnxruntime", "openvino")
    backend, info = rc.select_backend(tmp_path, conv_segmodel(), "auto", threads=1)
    line = rc.describe_choice(info)
    assert backend.name == "torch" and "neither onnxruntime nor openvino is installed" in line
    assert "pip install 'cracksam[deploy]'" in line
    assert not (tmp_path / "cache").exists()  # nothing was exported


def test_with_onnxruntime_only_the_line_names_openvino_and_its_extra(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("CRACKSAM_CACHE", str(tmp_path / "cache"))
    _hide(monkeypatch, "openvino")
    ckpt = conv_checkpoint(tmp_path / "m")
    _, info = rc.select_backend(ckpt, conv_segmodel(), "auto", threads=1)
    line = rc.describe_choice(info)
    assert info["not_installed"] == ["openvino"]
    assert "openvino not installed: pip install 'cracksam[deploy]'" in line, line
    # The cache entry made without OpenVINO is not the one used once it is installed: the next run
    # exports again and can pick OpenVINO (the hint would otherwise never come true).
    without = rc.model_key(ckpt)
    monkeypatch.delitem(sys.modules, "openvino")
    if rc._found("openvino"):
        assert rc.model_key(ckpt) != without

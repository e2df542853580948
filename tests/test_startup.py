"""Start-up: ``--help``, ``--version``, ``info`` and ``measure`` import only what they use (``info`` and
``measure`` took ~7 s: torch and the networks for a count config.json records, skan's numba
compilation for a walk along a skeleton).  Each starts a fresh interpreter (``-m isolated``)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

# What --help and --version must not import.
HELP_HEAVY = ("torch", "segment_anything", "lightning", "torchvision")
# What info and measure must not import.
HEAVY = ("torch", "torchvision", "lightning", "segment_anything", "timm", "segmentation_models_pytorch", "skan",
         "numba", "onnx", "onnxruntime", "openvino")


def _modules_after(argv: list[str], heavy: tuple[str, ...] = HEAVY, timeout: int = 300) -> dict:
    """``cracksam argv`` in a fresh interpreter: its return code and which of ``heavy`` it imported."""
    code = (
        "import json, sys\n"
        "from cracksam.cli.main import main\n"
        f"rc = main({argv!r})\n"
        f"print(json.dumps({{'rc': rc, 'heavy': [m for m in {heavy!r} if m in sys.modules]}}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


# Own pytest process, as every test that starts interpreters (see the comment on the --help test).
@pytest.mark.isolated
def test_info_and_measure_import_no_heavy_module(tmp_path):
    mask = np.zeros((80, 120), np.uint8)
    cv2.line(mask, (5, 10), (110, 70), 255, 3)
    cv2.line(mask, (60, 5), (60, 75), 255, 2)
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    for argv in (["info"], ["info", "--json"], ["measure", str(tmp_path / "mask.png"), "-o", str(tmp_path / "m")]):
        assert _modules_after(argv) == {"rc": 0, "heavy": []}, argv
    assert (tmp_path / "m" / "mask_measure.json").is_file()


# Own pytest process: a subprocess started late in the long default process (after the ONNX /
# OpenVINO / training tests) crashed that process with SIGSEGV, while it passes on its own.
@pytest.mark.isolated
@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["predict", "--help"], ["train", "--help"]])
def test_help_and_version_import_no_heavy_module(argv):
    assert _modules_after(argv, HELP_HEAVY, timeout=120) == {"rc": 0, "heavy": []}

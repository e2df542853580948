"""Issue 27 point 10: ``cracksam info`` and ``cracksam measure`` import only what they use (they took
~7 s: torch and the networks for a count config.json records, skan's numba compilation for a walk
along a skeleton)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.errors import CheckpointError

HEAVY = ("torch", "torchvision", "lightning", "segment_anything", "timm", "segmentation_models_pytorch", "skan",
         "numba", "onnx", "onnxruntime", "openvino")


def _modules_after(argv: list[str]) -> dict:
    code = (
        "import json, sys\n"
        "from cracksam.cli.main import main\n"
        f"rc = main({argv!r})\n"
        f"print(json.dumps({{'rc': rc, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


# Own pytest process, as every test that starts interpreters (see test_cli_defaults.py).
@pytest.mark.isolated
def test_info_and_measure_import_no_heavy_module(tmp_path):
    mask = np.zeros((80, 120), np.uint8)
    cv2.line(mask, (5, 10), (110, 70), 255, 3)
    cv2.line(mask, (60, 5), (60, 75), 255, 2)
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    for argv in (["info"], ["info", "--json"], ["measure", str(tmp_path / "mask.png"), "-o", str(tmp_path / "m")]):
        assert _modules_after(argv) == {"rc": 0, "heavy": []}, argv
    assert (tmp_path / "m" / "mask_measure.json").is_file()


def test_info_from_config_json_counts_as_the_built_model(monkeypatch, capsys):
    assert main(["info", "--json"]) == 0
    recorded = json.loads(capsys.readouterr().out)
    monkeypatch.setattr("cracksam.cli.light_models.light_segmodel_meta", lambda *a: None)  # build the network
    assert main(["info", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert recorded["model"] == built["model"]
    assert recorded["total_parameters"] == built["total_parameters"] == built["trainable_parameters"]
    assert recorded["trainable_parameters"] == built["trainable_parameters"]


def test_info_without_torch_still_refuses_an_edited_config(tmp_path, capsys):
    from cracksam.cli.light_models import light_segmodel_meta
    from cracksam.models.default import default_model_path

    folder = shutil.copytree(default_model_path(), tmp_path / "m")
    meta = json.loads((folder / "config.json").read_text())
    meta["num_parameters"] += 1
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="config_sha256"):
        light_segmodel_meta(str(folder), trust=False)
    assert main(["info", "--model", str(folder)]) == 2
    assert "config_sha256" in capsys.readouterr().err


def test_the_light_reader_knows_the_checkpoint_format():
    from cracksam.cli import light_models
    from cracksam.models import io

    assert light_models._KNOWN_FORMAT == io.FORMAT_VERSION

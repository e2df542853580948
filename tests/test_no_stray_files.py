"""A ``cracksam predict`` run writes nothing outside ``--out`` and the documented
cache ($CRACKSAM_CACHE, default ~/.cache/cracksam): no ONNX Runtime device id and event database
(~/.cache/Microsoft/DeveloperTools), no OpenVINO telemetry (~/intel), no matplotlib font cache."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from cracksam.data.synthetic import synthetic_pair


def _stray(home: Path) -> list[str]:
    cache = home / ".cache" / "cracksam"
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if not (p == cache or cache in p.parents or p in cache.parents))


# Own pytest process: it starts a fresh interpreter, where the runtimes are imported after cracksam.
@pytest.mark.isolated
def test_predict_leaves_nothing_outside_out_and_the_cache(tmp_path):
    from cracksam.models import SegModelConfig, build_segmodel, save_trained

    model = save_trained(build_segmodel(SegModelConfig("unet_mobilenetv3_small", image_size=64)), tmp_path / "m")
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), synthetic_pair((90, 130), seed=1)[0])
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "CRACKSAM_", "ORT_", "OPENVINO_")) and k != "MPLCONFIGDIR"}
    env.update(HOME=str(home), OMP_NUM_THREADS="1")
    argv = ["predict", str(photo), "-m", str(model), "--out", str(tmp_path / "out"), "--overlay", "--report",
            "--no-progress", "--threads", "1"]  # --runtime auto: exports to ONNX (and OpenVINO) once, into the cache
    code = "import sys\nfrom cracksam.cli.main import main\nsys.exit(main())\n"  # main(): the program itself
    run = subprocess.run([sys.executable, "-c", code, *argv], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    (entry,) = (home / ".cache" / "cracksam" / "runtimes").iterdir()
    made = {c["runtime"] for c in json.loads((entry / "manifest.json").read_text())["candidates"]}
    assert "onnxruntime" in made  # ONNX Runtime ran (and OpenVINO's converter where it is installed)
    if importlib.util.find_spec("openvino") is not None:
        assert "openvino" in made
    assert _stray(home) == []

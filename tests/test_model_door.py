"""Opening a model for prediction: one door, :func:`cracksam.inference.predictor.open_predictor`.

Every command that predicts -- ``predict``, survey mode, ``stream``, ``serve``, ``evaluate`` -- and
the Python API (``Predictor.from_path``) open their model there; the commands that may export
(``--runtime auto``) hand it deployment's runtime chooser, ``evaluate`` scores what it is given.
One hashing of a model's files (:mod:`cracksam.models.identity`) is behind both the runtime cache's
key and the model id.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

import cracksam.inference.predictor as door
from cracksam.cli.main import main
from cracksam.data.synthetic import make_dataset
from cracksam.deployment import runtime_cache
from cracksam.inference.options import PredictOptions
from cracksam.inference.predictor import Predictor

from ._models import DarknessModel

pytest.importorskip("onnxruntime")
pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def dark_onnx(tmp_path_factory) -> Path:
    from cracksam.deployment.export import export_onnx

    return export_onnx(DarknessModel(64), tmp_path_factory.mktemp("model") / "dark.onnx")


@pytest.fixture
def opened(monkeypatch) -> list[tuple[str | None, object]]:
    """(model named, runtime chooser) of every model opened through the door."""
    real, seen = door.open_predictor, []

    def spy(options, choose_runtime=None, announce=None, **kwargs):
        seen.append((options.model, choose_runtime))
        return real(options, choose_runtime, announce, **kwargs)

    monkeypatch.setattr(door, "open_predictor", spy)
    return seen


def _photo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    img = np.full((40, 56, 3), 200, np.uint8)
    cv2.line(img, (0, 8), (55, 30), (20, 20, 20), 2)
    cv2.imwrite(str(folder / "road.png"), img)
    return folder / "road.png"


def _video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 32))
    for i in range(3):
        frame = np.full((32, 48, 3), 200, np.uint8)
        cv2.line(frame, (0, 5 + 5 * i), (47, 5 + 5 * i), (20, 20, 20), 2)
        writer.write(frame)
    writer.release()
    return path


def test_predict_survey_and_stream_open_their_model_through_the_door(tmp_path, dark_onnx, opened):
    photo = _photo(tmp_path / "photos")
    model = str(dark_onnx)
    assert main(["predict", str(photo), "-m", model, "--out", str(tmp_path / "p"), "--no-progress"]) == 0
    assert opened == [(model, runtime_cache.select_backend)]
    opened.clear()
    assert main(["predict", str(photo), "-m", model, "--out", str(tmp_path / "s"), "--table", "--no-progress"]) == 0
    assert opened == [(model, runtime_cache.select_backend)]  # the driver's, lent to the plain engine
    opened.clear()
    assert main(["stream", str(_video(tmp_path / "in.avi")), "-m", model, "--max-frames", "2",
                 "--no-progress"]) == 0
    assert opened == [(model, runtime_cache.select_backend)]


def test_the_survey_engine_opens_its_own_model_through_the_door(tmp_path, dark_onnx, opened):
    from cracksam.survey.engine import SurveyJob, run_survey
    from cracksam.survey.manifest import collect_inputs
    from cracksam.survey.outputs import ImageOptions

    photo = _photo(tmp_path / "photos")
    job = SurveyJob(PredictOptions(model=str(dark_onnx)), ImageOptions(out=str(tmp_path / "out"), model_id="m"),
                    collect_inputs([str(photo)], None, None))
    (tmp_path / "out").mkdir()
    assert run_survey(job).ok == 1
    assert opened == [(str(dark_onnx), runtime_cache.select_backend)]


def test_serve_opens_its_model_through_the_door(dark_onnx, opened):
    from cracksam.service.app import create_app
    from cracksam.service.server import ThreadedServer
    from cracksam.service.settings import ServiceSettings

    with ThreadedServer(create_app(ServiceSettings(model=str(dark_onnx)))) as server:
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/health").status_code != 200:
            assert time.monotonic() < deadline, "the service never loaded its model"
            time.sleep(0.05)
    assert opened == [(str(dark_onnx), runtime_cache.select_backend)]


def test_evaluate_and_the_python_api_open_their_model_through_the_door(tmp_path, dark_onnx, opened):
    from tests.test_runtime_cache import conv_checkpoint

    data = make_dataset(tmp_path / "data", n=2, size=(64, 64))
    ckpt = conv_checkpoint(tmp_path / "ckpt")
    try:
        for model in (str(dark_onnx), str(ckpt)):
            assert main(["evaluate", "-m", model, "--test", str(data), "--test-split", "all", "--conditions", "clean",
                         "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
        # evaluate scores what it is given: no runtime chooser (a checkpoint folder runs in PyTorch)
        assert opened == [(str(dark_onnx), None), (str(ckpt), None)]
        opened.clear()
        predictor = Predictor.from_path(ckpt)
        assert opened == [(str(ckpt), None)] and predictor.model_path == ckpt
    finally:
        from cracksam.models.registry import unregister_model
        from tests.test_runtime_cache import ARCH

        unregister_model(ARCH)


def test_predict_resolves_the_model_once(monkeypatch, tmp_path, dark_onnx):
    import cracksam.models.default as default

    real, asked = default.resolve_model_path, []

    def counting(path):
        asked.append(path)
        return real(path)

    monkeypatch.setattr(default, "resolve_model_path", counting)
    photo = _photo(tmp_path / "photos")
    assert main(["predict", str(photo), "-m", str(dark_onnx), "--out", str(tmp_path / "p"), "--no-progress"]) == 0
    assert asked == [str(dark_onnx)]  # by the door, not again by the command or the loaders
    predictor = door.open_predictor(PredictOptions(runtime="torch"))
    assert predictor.model_path == default.default_model_path()  # None: the bundled model, kept where it lies


def test_the_cache_key_and_the_model_id_hash_the_files_one_way(tmp_path, monkeypatch):
    import cracksam.deployment.runtime_cache as rc
    from cracksam.models import identity
    from cracksam.models.identity import model_id_for

    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "weights.bin").write_bytes(b"\x00" * 10)
    real, hashed = identity.update_model_digest, []

    def spy(digest, path):
        hashed.append(Path(path))
        return real(digest, path)

    monkeypatch.setattr(identity, "update_model_digest", spy)
    monkeypatch.setattr(rc, "update_model_digest", spy)
    key, mid = rc.model_key(folder), model_id_for({"card": 1}, folder)
    assert hashed == [folder, folder]
    # As before the two shared it: the card (for the id), then each file's name within the folder and bytes.
    expected = hashlib.sha256(b'{"card": 1}')
    for name, data in (("config.json", b"{}"), ("sub/weights.bin", b"\x00" * 10)):
        expected.update(name.encode())
        expected.update(data)
    assert mid == f"model-{expected.hexdigest()[:12]}"
    # Changing a file changes both.
    (folder / "sub" / "weights.bin").write_bytes(b"\x01" * 10)
    assert rc.model_key(folder) != key and model_id_for({"card": 1}, folder) != mid
    # A checkpoint named by its weights file: its bytes make the cache key too (they were left out).
    weights = folder / "sub" / "weights.bin"
    before = rc.model_key(weights)
    weights.write_bytes(b"\x02" * 10)
    assert rc.model_key(weights) != before

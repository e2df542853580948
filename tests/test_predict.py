"""Predictor (resize / tile; native in test_native_inference.py) and ``cracksam predict`` on awkward inputs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cracksam.cli.main import main
from cracksam.inference.backends import TorchBackend
from cracksam.inference.predictor import Predictor, tile_origins
from cracksam.models import build_cracksam, export_full, save_delta

from ._models import DarknessModel
from .test_cli_defaults import tiny_full  # noqa: F401  (the fixture: a tiny CrackSAM and a photo)


def _predictor(mode="resize", size=64, **kw) -> Predictor:
    return Predictor(TorchBackend(DarknessModel(size)), mode=mode, **kw)


def test_tile_origins_cover_the_axis():
    assert tile_origins(64, 64, 48) == [0]
    assert tile_origins(10, 64, 48) == [0]
    starts = tile_origins(1000, 64, 48)
    assert starts[0] == 0 and starts[-1] == 1000 - 64
    assert all(b - a <= 48 for a, b in zip(starts, starts[1:], strict=False))


def test_tile_reproduces_resize_at_the_input_size(tiny_config):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    model = build_cracksam(tiny_config("adapter+lora")).eval()
    backend = TorchBackend(model)
    a = Predictor(backend, mode="resize").logits([image])[0]
    b = Predictor(backend, mode="tile").logits([image])[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


class _Wave:
    """A backend whose logits are a smooth wave over its own output grid, whatever the input:
    how the logits are brought back to the image's size is all that varies."""

    name, precision, image_size, dynamic, multiple = "wave", "fp32", 64, True, 1

    def run(self, x: np.ndarray) -> np.ndarray:
        yy, xx = np.mgrid[0 : x.shape[2], 0 : x.shape[3]].astype(np.float32)
        crack = np.sin(yy / 3.0) + np.cos(xx / 4.0)
        return np.broadcast_to(np.stack([np.zeros_like(crack), crack]), (len(x), 2, *crack.shape)).copy()


def _bilinear(logits: np.ndarray, h: int, w: int) -> np.ndarray:
    """Independent reference: PyTorch's bilinear (half-pixel centres, as cv2.INTER_LINEAR)."""
    t = torch.nn.functional.interpolate(torch.from_numpy(logits)[None], size=(h, w), mode="bilinear",
                                        align_corners=False)
    return t[0].numpy()


def test_logits_are_resized_back_bilinearly():
    """Resize mode (64 px -> 200 x 300) and native mode at scale 0.5 bring the logits back to the
    image size bilinearly.  Mutant killed: ``tiling.resize_logits`` with nearest instead of linear
    interpolation (steps of up to ~0.5 in the logits)."""
    image = np.zeros((200, 300, 3), np.uint8)
    out = Predictor(_Wave(), mode="resize").logits([image])[0]
    np.testing.assert_allclose(out, _bilinear(_Wave().run(np.zeros((1, 3, 64, 64)))[0], 200, 300), atol=1e-4)
    out = Predictor(_Wave(), mode="native", scale=0.5).logits([image])[0]  # the network sees 100 x 150
    np.testing.assert_allclose(out, _bilinear(_Wave().run(np.zeros((1, 3, 100, 150)))[0], 200, 300), atol=1e-4)


def test_tile_finds_a_thin_crack_that_resize_loses():
    h, w = 600, 4000
    image = np.full((h, w, 3), 200, np.uint8)
    truth = np.zeros((h, w), np.uint8)
    cv2.line(truth, (0, 250), (w - 1, 350), 1, 2)  # 2 px wide, across the whole width
    image[truth > 0] = 10
    resized = _predictor("resize").predict_one(image)
    tiled = _predictor("tile", batch_size=64).predict_one(image)
    t = truth.astype(bool)
    recall = lambda m: (m & t).sum() / t.sum()  # noqa: E731
    assert recall(resized.mask()) < 0.1  # shrunk to 64 px the crack is gone
    assert recall(tiled.mask()) > 0.9
    assert (tiled.mask() & ~t).sum() < 0.2 * t.sum()  # and not by painting everything
    assert tiled.prob.shape == (h, w)


def test_small_and_odd_images_keep_their_size():
    p = _predictor("tile")
    for shape in [(1, 1, 3), (3, 5000, 3), (40, 10, 3), (64, 200, 3)]:
        img = np.zeros(shape, np.uint8)
        assert p.predict_one(img).prob.shape == shape[:2]
        assert _predictor("resize").predict_one(img).prob.shape == shape[:2]
    with pytest.raises(ValueError, match="RGB uint8"):
        p.predict_one(np.zeros((4, 4), np.uint8))


def test_batching_does_not_change_results():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (50 + 7 * i, 80, 3), dtype=np.uint8) for i in range(5)]
    one = _predictor(batch_size=1).logits(images)
    many = _predictor(batch_size=4).logits(images)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


# -- cracksam predict ---------------------------------------------------------------------------


def _crack_rgb(h=80, w=120) -> np.ndarray:
    img = np.full((h, w, 3), 210, np.uint8)
    cv2.line(img, (0, h // 3), (w - 1, 2 * h // 3), (15, 15, 15), 6)
    return img


def _write_awkward(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Files and the mask size each must get (None: a clear per-file error)."""
    folder.mkdir()
    rgb = _crack_rgb()
    expect: dict[str, tuple[int, int] | None] = {}

    def save(name, im, **kw):
        im.save(folder / name, **kw)

    save("gray.png", Image.fromarray(rgb[:, :, 0]).convert("L"))
    expect["gray"] = (80, 120)
    save("rgba.png", Image.fromarray(rgb).convert("RGBA"))
    expect["rgba"] = (80, 120)
    save("palette.bmp", Image.fromarray(rgb).convert("P"))
    expect["palette"] = (80, 120)
    save("deep16.png", Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257))
    expect["deep16"] = (80, 120)
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"))
    expect["cmyk"] = (80, 120)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display: the mask must follow the displayed orientation
    save("rotated.jpg", Image.fromarray(rgb), exif=exif)
    expect["rotated"] = (120, 80)
    save("webp.webp", Image.fromarray(rgb))
    expect["webp"] = (80, 120)
    save("tiff.tif", Image.fromarray(rgb))
    expect["tiff"] = (80, 120)
    save("one.png", Image.fromarray(np.zeros((1, 1, 3), np.uint8)))
    expect["one"] = (1, 1)
    save("wide.png", Image.fromarray(np.full((3, 3000, 3), 128, np.uint8)))
    expect["wide"] = (3, 3000)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    (folder / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    expect["truncated"] = None
    (folder / "empty.jpg").write_bytes(b"")
    expect["empty"] = None
    (folder / "notes.png").write_text("this is not an image")
    expect["notes"] = None
    save("huge.png", Image.fromarray(np.zeros((300, 400, 3), np.uint8)))
    expect["huge"] = None  # over the --max-pixels given in the test
    return expect


@pytest.fixture
def tiny_checkpoint(tmp_path, tiny_config):
    return save_delta(build_cracksam(tiny_config("lora")), tmp_path / "model")


def test_predict_cli_handles_awkward_inputs(tmp_path, tiny_checkpoint, capsys):
    expect = _write_awkward(tmp_path / "in")
    out = tmp_path / "out"
    rc = main(["predict", str(tmp_path / "in"), "--model", str(tiny_checkpoint), "--allow-random-base",
               "--out", str(out), "--max-pixels", "100000", "--overlay", "--prob", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1  # some files failed: reported, skipped, non-zero exit at the end
    summary = json.loads((out / "summary.json").read_text())
    for stem, size in expect.items():
        if size is None:
            assert stem in err, stem
            assert not (out / f"{stem}_mask.png").exists()
        else:
            mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
            assert mask is not None and mask.shape == size, stem
            assert set(np.unique(mask)) <= {0, 255}
            assert (out / f"{stem}_overlay.png").exists() and (out / f"{stem}_prob.png").exists()
    assert summary["images"] == sum(v is not None for v in expect.values())
    assert summary["failed"] == sum(v is None for v in expect.values())
    assert "pixel" in err.lower()  # the bomb guard names the problem
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no partial files


def test_predict_cli_finds_cracks_and_measures(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "road.png"), _crack_rgb(200, 300))
    full = export_full_darkness(tmp_path)
    rc = main(["predict", str(folder / "*.png"), "--model", str(full), "--out", str(tmp_path / "out"),
               "--measure", "--mm-per-px", "0.5", "--json", "--no-progress", "--mode", "tile"])
    assert rc == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed)
    row = summary["results"][0]
    assert row["crack_pixels"] > 0 and summary["predictor"]["mode"] == "tile"
    m = row["measurement"]
    assert m["mm_per_px"] == 0.5 and m["totals"]["n_cracks"] == 1
    assert m["totals"]["total_length_px"] == pytest.approx(np.hypot(299, 67), rel=0.1)
    assert (tmp_path / "out" / "road_measure.json").exists() and (tmp_path / "out" / "road_measure.png").exists()


def export_full_darkness(tmp_path: Path) -> Path:
    """An ONNX file of the darkness model: predict must accept exported models too."""
    from cracksam.deployment.export import export_onnx

    return export_onnx(DarknessModel(64), tmp_path / "dark.onnx")


def test_predict_cli_rejects_bad_arguments(tmp_path, tiny_checkpoint, capsys):
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), _crack_rgb())
    base = ["predict", str(img), "--model", str(tiny_checkpoint), "--allow-random-base", "--out", str(tmp_path / "o")]
    for extra, needle in [
        (["--mode", "zoom"], "mode"),
        (["--overlap", "1.5"], "overlap"),
        (["--threshold", "0"], "threshold"),
        (["--batch-size", "0"], "batch size"),
    ]:
        assert main(base + extra) == 2, extra
        assert needle in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nothing*.png"), "--model", str(tiny_checkpoint), "--allow-random-base",
                 "--out", str(tmp_path / "o")]) == 2  # nothing to segment: bad input, before the model loads
    assert "no file matches" in capsys.readouterr().err
    assert main(["predict", str(img), "--model", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.onnx" in capsys.readouterr().err
    # A full export (LoRA merged) predicts the same masks as the delta checkpoint it came from.
    from cracksam.models import load_model

    model = load_model(tiny_checkpoint, allow_random_base=True)
    full = export_full(model, tmp_path / "full")
    a = Predictor(TorchBackend(model)).predict_one(_crack_rgb())
    b = Predictor.from_path(full).predict_one(_crack_rgb())
    np.testing.assert_allclose(a.prob, b.prob, atol=1e-5)


def _no_model(monkeypatch) -> None:
    """Opening a model fails the test: the commands must refuse their inputs before they load one."""
    import cracksam.inference.predictor as door

    def refuse(*args, **kwargs):
        raise AssertionError("the model was opened for inputs that could not run")

    monkeypatch.setattr(door, "open_predictor", refuse)


def test_predict_on_nothing_to_segment_fails_before_the_model_loads(tmp_path, monkeypatch, capsys):
    _no_model(monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    out = tmp_path / "out"
    for inputs, needles in [([str(tmp_path / "no" / "such" / "dir")], ["dir: file not found"]),
                            ([str(empty)], ["empty: folder contains no image files"]),
                            ([str(tmp_path / "gone.jpg"), str(tmp_path / "*.png")],
                             ["gone.jpg: file not found", "no file matches"])]:
        assert main(["predict", *inputs, "--out", str(out), "--no-progress"]) == 2, inputs
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), lines
        assert all(n in lines[0] for n in needles), lines
        assert not out.exists()  # no summary.json, not even an empty folder


def test_predict_refuses_to_write_into_the_folder_of_its_photos(tmp_path, monkeypatch, capsys):
    """--out equal to the photo folder would replace the user's files there (a ground-truth
    001_mask.png) and feed the outputs back as photos next time: refused before the model loads."""
    _no_model(monkeypatch)
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "001.png"), np.full((32, 32, 3), 90, np.uint8))
    truth = np.zeros((32, 32), np.uint8)
    truth[10:20, 5] = 255
    cv2.imwrite(str(photos / "001_mask.png"), truth)
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    for inputs, out in [([str(photos)], photos), ([str(photos / "001.png")], photos / ".")]:
        assert main(["predict", *inputs, "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "is the folder of the input photos" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before


def test_ctrl_c_during_predict_still_writes_the_summary_of_what_was_done(tmp_path, tiny_checkpoint, monkeypatch,
                                                                        capsys):
    photos = tmp_path / "in"
    photos.mkdir()
    for i in range(4):
        cv2.imwrite(str(photos / f"{i:03d}.png"), _crack_rgb()[:, :, ::-1])
    real, calls = Predictor.predict_one, []

    def ctrl_c_on_the_third(self, image):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, image)

    monkeypatch.setattr(Predictor, "predict_one", ctrl_c_on_the_third)
    out = tmp_path / "out"
    rc = main(["predict", str(photos), "--model", str(tiny_checkpoint), "--allow-random-base", "--out", str(out),
               "--no-progress", "--report"])
    assert rc == 130
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["images"] == 2 and summary["not_run"] == 2
    assert [Path(r["file"]).name for r in summary["results"]] == ["000.png", "001.png"]
    assert sorted(p.name for p in out.glob("*_mask.png")) == ["000_mask.png", "001_mask.png"]
    assert "interrupted: 2 of 4 image(s) done" in capsys.readouterr().err


def test_measure_options_without_measure_are_refused(tiny_full, tmp_path, capsys):  # noqa: F811
    ckpt, image = tiny_full
    for extra in (["--mm-per-px", "0.2"], ["--min-length", "5"]):
        assert main(["predict", str(image), "-m", str(ckpt), "--out", str(tmp_path / "p"), *extra]) == 2
        assert "--measure" in capsys.readouterr().err

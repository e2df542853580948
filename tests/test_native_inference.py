"""Native-scale inference: sliding windows vs one whole-image pass, stride padding, ``scale``,
each model's own inference defaults (config, checkpoints, exports), and the --mode / --scale
options of predict, evaluate, serve and stream."""

from __future__ import annotations

import json
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import cracksam.inference.tiling as tiling
from cracksam.cli.main import main
from cracksam.errors import ConfigError, CrackSAMWarning
from cracksam.inference.backends import TorchBackend
from cracksam.inference.predictor import Predictor
from cracksam.models import SegModel, SegModelConfig, build_cracksam, save_delta, save_trained
from cracksam.models.segmodels import ArchSpec, register_architecture


@dataclass
class _Size:
    image_size: int = 64


class ConvStack(nn.Module):
    """Fixed random convolutions with zero padding: each output pixel depends on a 9×9 (``pool``
    1) neighbourhood, or with ``pool`` 8 on its 8×8 cell and the neighbouring cells (an
    encoder-like stride of 8), so a window that cuts the neighbourhood off gets it wrong."""

    def __init__(self, pool: int = 1, kernel: int = 5) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.config = _Size()
        self.pool = pool
        self.body = nn.Sequential(nn.Conv2d(3, 8, kernel, padding=kernel // 2), nn.Tanh(),
                                  nn.Conv2d(8, 2, kernel, padding=kernel // 2))
        self.dynamic_input, self.input_multiple = True, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / 255.0
        if self.pool > 1:
            x = nn.functional.avg_pool2d(x, self.pool)
        y = self.body(x)
        return nn.functional.interpolate(y, scale_factor=self.pool, mode="nearest") if self.pool > 1 else y


def _ones_weight(size):
    return np.ones(size if isinstance(size, tuple) else (size, size), np.float32)


@pytest.mark.parametrize("pool,kernel,shape,window,overlap,tol", [
    (1, 5, (250, 290), 96, 24, 0.02),
    (8, 3, (501, 547), 256, 77, 0.02),  # 77 px: the window starts must still fall on the stride-8 grid
])
def test_sliding_windows_match_one_whole_image_forward(monkeypatch, pool, kernel, shape, window, overlap, tol):
    """Hann-blended windows over an image larger than the window reproduce one forward pass over
    the whole image.  Mutant checked in the second half: blending weights replaced by ones
    (``tiling._hann_weight`` -> ones, a plain average) must exceed the tolerance -- with it the
    windows' wrong borders leak into the result (errors about 10x larger)."""
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    backend = TorchBackend(ConvStack(pool, kernel).eval())
    whole = Predictor(backend, mode="native").logits([image])[0]  # both sides <= 1024: one pass
    with torch.inference_mode():  # the whole-image pass is the network on the reflect-padded image
        padded = tiling.pad_to_multiple(image, pool)
        direct = backend.model(torch.from_numpy(padded).permute(2, 0, 1)[None].float())[0].numpy()
    np.testing.assert_allclose(whole, direct[:, : shape[0], : shape[1]], atol=1e-5)
    assert whole.shape == (2, *shape) and whole.std() > 0.02  # a non-trivial output

    def sliding() -> np.ndarray:
        p = Predictor(backend, mode="native", window=window, window_overlap=overlap)
        assert p.window < max(shape)
        return p.logits([image])[0]

    assert np.abs(sliding() - whole).max() < tol
    monkeypatch.setattr(tiling, "_hann_weight", _ones_weight)
    assert np.abs(sliding() - whole).max() > 2 * tol


class Recorder:
    """A backend that records the input shapes it sees and answers with a per-pixel function of
    the input (so a shifted or wrongly cropped output shows)."""

    name, precision = "recorder", "fp32"

    def __init__(self, image_size: int = 64, dynamic: bool = True, multiple: int = 32) -> None:
        self.image_size, self.dynamic, self.multiple = image_size, dynamic, multiple
        self.inputs: list[np.ndarray] = []

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.dynamic:
            assert x.shape[2] % self.multiple == 0 and x.shape[3] % self.multiple == 0, x.shape
        else:
            assert x.shape[2:] == (self.image_size, self.image_size), x.shape
        self.inputs.append(x.copy())
        crack = (100.0 - x.mean(axis=1, keepdims=True)) / 5.0
        return np.concatenate([np.zeros_like(crack), crack], axis=1)


def test_native_pads_to_the_stride_and_crops_back():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (321, 479, 3), dtype=np.uint8)
    rec = Recorder(multiple=32)
    logits = Predictor(rec, mode="native").logits([image])[0]
    assert [x.shape for x in rec.inputs] == [(1, 3, 352, 480)]  # one pass, padded up to multiples of 32
    assert logits.shape == (2, 321, 479)
    expected = (100.0 - image.astype(np.float32).mean(axis=2)) / 5.0
    np.testing.assert_allclose(logits[1], expected, atol=1e-4)  # cropped at the right place
    seen = rec.inputs[0][0].transpose(1, 2, 0)
    np.testing.assert_array_equal(seen[321, :479], image[319])  # reflected, not zeros or a copy of the edge
    # Images padded to the same size share a forward pass; their results stay apart.
    rec.inputs.clear()
    other = rng.integers(0, 256, (330, 470, 3), dtype=np.uint8)
    a, b = Predictor(rec, mode="native").logits([image, other])
    assert [x.shape for x in rec.inputs] == [(2, 3, 352, 480)]
    np.testing.assert_allclose(b[1], (100.0 - other.astype(np.float32).mean(axis=2)) / 5.0, atol=1e-4)
    # Above the window: windows of the window size, on the stride grid.
    rec.inputs.clear()
    windowed = Predictor(rec, mode="native", window=128).logits([image])[0]
    assert len(rec.inputs) > 1 and {x.shape[2:] for x in rec.inputs} == {(128, 128)}
    np.testing.assert_allclose(windowed, logits, atol=1e-4)  # a per-pixel model: windows change nothing
    rec.inputs.clear()
    strip = rng.integers(0, 256, (40, 700, 3), dtype=np.uint8)  # a long strip: windows as high as the strip
    out = Predictor(rec, mode="native", window=256).logits([strip])[0]
    # 704 px (the stride's multiple) in the fewest <= 256-px windows overlapping by >= 64 px: four of 224.
    assert [x.shape[2:] for x in rec.inputs] == [(64, 224)] and len(rec.inputs[0]) == 4
    assert out.shape == (2, 40, 700)
    np.testing.assert_allclose(out[1], (100.0 - strip.astype(np.float32).mean(axis=2)) / 5.0, atol=1e-4)
    # A fixed-shape backend in native mode gets S×S windows (today's tile mode).
    fixed = Recorder(image_size=64, dynamic=False)
    out = Predictor(fixed, mode="native", batch_size=64).logits([image])[0]
    assert out.shape == (2, 321, 479) and {x.shape[2:] for x in fixed.inputs} == {(64, 64)}
    np.testing.assert_allclose(out, Predictor(fixed, mode="tile").logits([image])[0], atol=1e-5)


def test_native_windows_spread_evenly_with_the_overlap_asked_for():
    """A 950x700 image in <= 512-px windows: 2 x 2 windows of 512 x 384 px with the default 64-px
    overlap (a fixed quarter-window stride ran 3 x 2 of 512 x 512); a 200-px overlap needs 3 x 2.
    An overlap of half the window or more, or not an integer, is refused by name."""
    image = np.random.default_rng(3).integers(0, 256, (700, 950, 3), dtype=np.uint8)
    rec = Recorder(multiple=32)
    p = Predictor(rec, mode="native", window=512, batch_size=16)
    assert p.window_overlap == 64 and p.describe()["window_overlap"] == 64
    out = p.logits([image])[0]
    assert [x.shape for x in rec.inputs] == [(4, 3, 384, 512)]  # 704 rows: 2 x 384; 960 cols: 2 x 512
    np.testing.assert_allclose(out[1], (100.0 - image.astype(np.float32).mean(axis=2)) / 5.0, atol=1e-4)
    rec.inputs.clear()
    Predictor(rec, mode="native", window=512, window_overlap=200, batch_size=16).logits([image])
    assert [x.shape for x in rec.inputs] == [(6, 3, 480, 480)]  # rows 2 x 480, cols 3 x 480
    assert "overlapping by 64 px" in p.inference_summary()
    assert Predictor(rec, mode="native", window=96).window_overlap == 24  # a quarter of a small window
    for bad in (256, -1, 1.5, True):
        with pytest.raises(ConfigError, match=r"window overlap must be an integer number of px in \[0, 256\)"):
            Predictor(rec, mode="native", window=512, window_overlap=bad)


def test_scale_changes_the_resolution_the_network_sees():
    image = np.full((400, 600, 3), 150, np.uint8)
    image[::4] = 255  # 1-px bright rows, one in four
    rec = Recorder(multiple=8)
    out = Predictor(rec, mode="native", scale=0.5).logits([image])[0]
    assert rec.inputs[-1].shape == (1, 3, 200, 304) and out.shape == (2, 400, 600)  # 300 padded to 304
    Predictor(rec, mode="native", scale=2.0, window=2048).logits([image])
    assert rec.inputs[-1].shape == (1, 3, 800, 1200)
    Predictor(rec, mode="native", scale=0.25).logits([image])
    seen = rec.inputs[-1][0, 0, :100, :150]
    assert np.ptp(seen) < 1 and abs(seen.mean() - (3 * 150 + 255) / 4) < 1  # area-averaged, not sampled
    fixed = Recorder(image_size=64, dynamic=False)
    Predictor(fixed, mode="tile", batch_size=1).logits([np.zeros((256, 256, 3), np.uint8)])
    full = len(fixed.inputs)
    fixed.inputs.clear()
    Predictor(fixed, mode="tile", scale=0.5, batch_size=1).logits([np.zeros((256, 256, 3), np.uint8)])
    assert (full, len(fixed.inputs)) == (25, 9)  # 64-px windows over 256 px, then over 128 px
    with pytest.raises(ConfigError, match="no effect in resize mode"):
        Predictor(rec, mode="resize", scale=0.5)
    for bad in (0, -1.0, float("nan"), float("inf"), 100.0):
        with pytest.raises(ConfigError, match="scale must be a number"):
            Predictor(rec, mode="native", scale=bad)


# -- a conventional network in the registry ---------------------------------------------------------


class _DarkNet(nn.Module):
    """On ImageNet-normalised input: dark pixels are cracks.  Insists on multiples of 8 as an
    encoder with stride 8 would."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] % 8 or x.shape[3] % 8:
            raise RuntimeError(f"input {tuple(x.shape)} is not a multiple of 8")
        crack = -x.mean(dim=1, keepdim=True) * self.gain - 2.0
        return torch.cat([torch.zeros_like(crack), crack], dim=1)


@pytest.fixture(scope="module")
def toy_arch():
    from cracksam.models import segmodels

    name = "test_toy_darkness"
    register_architecture(ArchSpec(name, lambda pretrained, size: _DarkNet(), "test only", multiple=8))
    yield name
    segmodels._ARCHS.pop(name, None)


def _line_image(h: int, w: int, width: int = 2) -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((h, w), np.uint8)
    cv2.line(truth, (0, h // 3), (w - 1, h // 2), 1, width)
    image = np.full((h, w, 3), 200, np.uint8)
    image[truth > 0] = 10
    return image, truth.astype(bool)


def test_a_thin_line_survives_native_scale_and_is_lost_by_resize(toy_arch):
    model = SegModel(SegModelConfig(arch=toy_arch, image_size=64)).eval()
    image, truth = _line_image(600, 900)
    native = Predictor(TorchBackend(model))  # the model's default: native
    assert native.mode == "native" and native.dynamic and native.multiple == 8
    mask = native.predict_one(image).mask()
    assert mask.shape == truth.shape
    assert (mask & truth).sum() > 0.95 * truth.sum() and (mask & ~truth).sum() < 0.1 * truth.sum()
    resized = Predictor(TorchBackend(model), mode="resize").predict_one(image).mask()
    assert (resized & truth).sum() < 0.1 * truth.sum()


def test_fixed_size_transformers_are_not_dynamic():
    """timm ViT / Swin encoders assert the input size they were built for: such SegModels must get
    S×S windows in native mode, convolutional ones the whole image."""
    from cracksam.models import build_segmodel

    for arch, dynamic in [("swin_t_upernet", False), ("vit_b_upernet", False), ("unet_mobilenetv3_small", True)]:
        model = build_segmodel(SegModelConfig(arch=arch, image_size=64), device="meta")
        assert (model.dynamic_input, model.input_multiple) == (dynamic, 32), arch


def test_model_configs_carry_inference_defaults(toy_arch, tmp_path, tiny_config):
    assert (SegModelConfig(arch=toy_arch).inference_mode, SegModelConfig(arch=toy_arch).inference_scale) == \
        ("native", 1.0)
    with pytest.raises(ConfigError, match="inference_mode"):
        SegModelConfig(arch=toy_arch, inference_mode="zoom")
    with pytest.raises(ConfigError, match="inference_scale"):
        SegModelConfig(arch=toy_arch, inference_scale=0.0)
    # A checkpoint written before the fields existed loads with the defaults.
    folder = save_trained(SegModel(SegModelConfig(arch=toy_arch, image_size=64, inference_mode="tile")),
                          tmp_path / "old")
    meta = json.loads((folder / "config.json").read_text())
    assert meta["model"].pop("inference_mode") == "tile" and meta["model"].pop("inference_scale") == 1.0
    del meta["config_sha256"]  # as old as that: no config checksum either, so it opens with trust
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.warns(CrackSAMWarning, match="unverified"):
        p = Predictor.from_path(folder, trust=True)
    assert (p.mode, p.scale, p.describe()["mode"], p.describe()["scale"]) == ("native", 1.0, "native", 1.0)
    # Saved defaults are used; arguments override them.
    folder = save_trained(SegModel(SegModelConfig(arch=toy_arch, image_size=64, inference_mode="tile",
                                                  inference_scale=0.5)), tmp_path / "new")
    assert (Predictor.from_path(folder).mode, Predictor.from_path(folder).scale) == ("tile", 0.5)
    p = Predictor.from_path(folder, mode="native", scale=2.0)
    assert (p.mode, p.scale) == ("native", 2.0)
    assert (Predictor.from_path(folder, mode="resize").scale) == 1.0  # the saved scale is for tile/native
    # The bundled default model (a student, config.json without the fields) runs natively.
    assert Predictor.from_path(None).mode == "native"
    # CrackSAM: resize, as in the paper; natively it is a fixed-shape model (S×S windows).
    cracksam = TorchBackend(build_cracksam(tiny_config("lora")))
    assert Predictor(cracksam).mode == "resize" and not cracksam.dynamic
    with pytest.raises(ConfigError, match="no effect in resize mode"):
        Predictor(cracksam, scale=0.5)
    card = Predictor(cracksam, mode="native").describe()
    assert (card["mode"], card["dynamic_shapes"], card["window"]) == ("native", False, 64)


def test_exports_carry_the_inference_defaults(toy_arch, tmp_path):
    from cracksam.deployment.export import export_onnx

    model = SegModel(SegModelConfig(arch=toy_arch, image_size=64, inference_mode="tile", inference_scale=0.5))
    p = Predictor.from_path(export_onnx(model, tmp_path / "toy.onnx"))
    assert (p.mode, p.scale, p.dynamic) == ("tile", 0.5, False)
    p = Predictor.from_path(export_onnx(SegModel(SegModelConfig(arch=toy_arch, image_size=64)), tmp_path / "n.onnx"))
    assert (p.mode, p.dynamic) == ("native", False)  # native on a fixed-shape graph: 64-px windows
    image, truth = _line_image(200, 300)
    assert (p.predict_one(image).mask() & truth).sum() > 0.9 * truth.sum()


# -- command line --------------------------------------------------------------------------------


@pytest.fixture
def toy_checkpoint(toy_arch, tmp_path):
    return save_trained(SegModel(SegModelConfig(arch=toy_arch, image_size=64)), tmp_path / "toy")


def test_predict_uses_the_model_default_and_records_it(toy_checkpoint, tmp_path, capsys):
    image, truth = _line_image(300, 500)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    for extra, mode, scale in [([], "native", 1.0), (["--mode", "resize"], "resize", 1.0),
                               (["--scale", "0.5"], "native", 0.5)]:
        out = tmp_path / f"out-{mode}-{scale}"
        assert main(["predict", str(tmp_path / "a.png"), "--model", str(toy_checkpoint), "--out", str(out),
                     "--no-progress", *extra]) == 0
        card = json.loads((out / "summary.json").read_text())["predictor"]
        assert (card["mode"], card["scale"]) == (mode, scale)
        assert f"inference: {mode}" in capsys.readouterr().err
    native = cv2.imread(str(tmp_path / "out-native-1.0" / "a_mask.png"), 0) > 0
    assert (native & truth).sum() > 0.9 * truth.sum()


def test_bad_mode_or_scale_is_a_clean_error_for_every_command(toy_checkpoint, tmp_path, tiny_config, capsys):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    ckpt = str(toy_checkpoint)
    commands = {
        "predict": ["predict", str(image), "--model", ckpt, "--out", str(tmp_path / "o")],
        "evaluate": ["evaluate", "--model", ckpt, "--test", str(tmp_path), "--out", str(tmp_path / "e")],
        "serve": ["serve", "--model", ckpt, "--port", "0"],
        "stream": ["stream", str(tmp_path / "none.mp4"), "--model", ckpt, "--out-video", str(tmp_path / "v.mp4")],
    }
    for name, argv in commands.items():
        for extra, needle in [(["--mode", "zoom"], "mode must be resize, tile or native"),
                              (["--scale", "0"], "scale must be a number"),
                              (["--scale", "-2"], "scale must be a number"),
                              (["--scale", "nan"], "scale must be a number"),
                              (["--scale", "many"], "--scale")]:
            assert main(argv + extra) == 2, (name, extra)
            err = capsys.readouterr().err
            assert needle in err and "Traceback" not in err, (name, extra, err)
    # A window overlap the window cannot hold: named, exit 2, nothing written.
    out = tmp_path / "wo"
    assert main(commands["predict"][:-1] + [str(out), "--window", "256", "--window-overlap", "200"]) == 2
    err = capsys.readouterr().err
    assert "window overlap must be an integer number of px in [0, 128)" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
    # A scale without a mode, on a model whose default is resize (CrackSAM), says what to do.
    cracksam = save_delta(build_cracksam(tiny_config("lora")), tmp_path / "cs")
    assert main(["predict", str(image), "--model", str(cracksam), "--allow-random-base", "--scale", "0.5",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no effect in resize mode" in err and "Traceback" not in err


def test_evaluate_scores_each_model_the_way_predict_runs_it(toy_checkpoint, tmp_path):
    from cracksam.evaluation.protocol import ProtocolConfig, load_eval_model, run_protocol

    root = tmp_path / "thin"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(3):
        image, truth = _line_image(240 + 40 * i, 400)
        cv2.imwrite(str(root / "images" / f"t{i}.png"), image)
        cv2.imwrite(str(root / "masks" / f"t{i}.png"), truth.astype(np.uint8) * 255)
    model = load_eval_model(toy_checkpoint)

    def iou(**kw):
        cfg = ProtocolConfig(test=[str(root)], test_split="all", conditions=["clean"], progress=False, **kw)
        summary = run_protocol([model], cfg, tmp_path / f"out-{len(kw)}-{kw.get('mode')}")
        results = json.loads((tmp_path / f"out-{len(kw)}-{kw.get('mode')}" / "results.json").read_text())
        return results[0]["dataset_level"]["iou"], results[0]["inference"], summary["inference"][model.name]

    score, used, card = iou()
    assert used == {"mode": "native", "scale": 1.0} and card["mode"] == "native" and score > 0.8
    score, used, _ = iou(mode="resize")
    assert used == {"mode": "resize", "scale": 1.0} and score < 0.3  # the 2-px lines vanish at 64 px
    with pytest.raises(ConfigError, match="scale must be a number"):
        ProtocolConfig(test=[str(root)], scale=-1.0)

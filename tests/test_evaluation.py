"""Evaluation protocol: original-size scoring, Table 7 files, blur sweep, visuals (with a colour key,
heat-maps of probability), the measurement report, CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cracksam.cli.main import main
from cracksam.data.synthetic import make_dataset
from cracksam.errors import ConfigError
from cracksam.evaluation.protocol import ProtocolConfig, run_protocol
from cracksam.evaluation.runner import EvalModel, evaluate_samples
from cracksam.inference.backends import TorchBackend
from cracksam.inference.predictor import Predictor
from cracksam.models import build_cracksam, save_delta

from ._models import DarknessModel


def _write_set(root: Path, sizes: list[tuple[int, int]], width: int = 10) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for i, (h, w) in enumerate(sizes):
        img = np.full((h, w, 3), 200, np.uint8)
        mask = np.zeros((h, w), np.uint8)
        cv2.line(mask, (0, h // 2), (w - 1, h // 2 + h // 8), 255, width)
        img[mask > 0] = 20
        cv2.imwrite(str(root / "images" / f"im{i}.png"), img)
        cv2.imwrite(str(root / "masks" / f"im{i}.png"), mask)
    return root


def test_scores_are_computed_on_original_pixels(tmp_path):
    sizes = [(120, 200), (90, 90), (64, 64), (150, 70)]
    root = _write_set(tmp_path / "set", sizes)
    from cracksam.data import load_split

    samples = load_split([root], "all")
    model = EvalModel("dark", DarknessModel(64), "none", 0, 0)
    r = evaluate_samples(model, samples, "clean", "set", progress=False)
    truth_pixels = sum(int((cv2.imread(str(s.mask), 0) > 0).sum()) for s in samples)
    d = r.dataset_level
    assert d["tp"] + d["fn"] == truth_pixels  # every original mask pixel counted once
    assert r.n_images == 4
    assert d["iou"] > 0.8  # thick dark line: the resize round trip only blurs its edges
    # Blur lowers the score of this predictor; a corruption is really applied.
    blurred = evaluate_samples(model, samples, "blur:25", "set", progress=False)
    assert blurred.dataset_level["iou"] < d["iou"]


def test_predictor_returns_original_size_maps():
    images = [np.zeros((37, 91, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)]
    preds = Predictor(TorchBackend(DarknessModel(64))).predict(images)
    assert preds[0].prob.shape == (37, 91) and preds[1].prob.shape == (64, 64)
    assert preds[0].prob.min() > 0.99 and preds[1].prob.max() < 0.01
    torch.testing.assert_close(
        torch.from_numpy(preds[0].prob), torch.sigmoid(torch.from_numpy(preds[0].crack_logit)), atol=1e-5, rtol=0
    )


def test_protocol_writes_table7_sweep_and_visuals(tmp_path):
    test_root = _write_set(tmp_path / "testset", [(96, 96)] * 10)
    unseen_root = _write_set(tmp_path / "unseen", [(80, 120)] * 3, width=6)
    models = [
        EvalModel("dark", DarknessModel(64), "none", 1_000, 10),
        EvalModel("dark32", DarknessModel(32), "x", 5, 5),
    ]
    cfg = ProtocolConfig(
        test=[str(test_root)],
        unseen=[str(unseen_root)],
        blur_kernels=[1, 9, 25],
        visualize=2,
        progress=False,
        test_split="all",
    )
    summary = run_protocol(models, cfg, tmp_path / "out")
    out = tmp_path / "out"
    header = summary["header"]
    assert header[:4] == ["model", "backbone", "total params (M)", "trainable params (M)"]
    assert header[4:] == ["test", "noisy 1 (dim)", "noisy 2 (blurry)", "unseen"]
    rows = list(csv.reader((out / "table.csv").open()))
    assert rows[0] == header and [r[0] for r in rows[1:]] == ["dark", "dark32"]
    doc = json.loads((out / "table.json").read_text())
    cell = doc["rows"][0]["cells"]["test"]
    assert cell["condition"] == "clean" and cell["n_images"] == 10
    assert float(rows[1][4]) == pytest.approx(cell["dataset_level"]["iou"], abs=1e-4)
    assert "| dark |" in (out / "table.md").read_text()
    sweep = json.loads((out / "blur_sweep.json").read_text())
    assert sweep["kernels"] == [1, 9, 25] and set(sweep["curves"]) == {"dark", "dark32"}
    assert sweep["curves"]["dark"][0] == pytest.approx(cell["dataset_level"]["iou"])  # k=1 is the clean image
    png = cv2.imread(str(out / "blur_sweep.png"))
    assert png is not None and png.shape[0] > 100
    overlays = sorted((out / "visuals" / "dark" / "testset" / "dim").glob("*_overlay.png"))
    heatmaps = sorted((out / "visuals" / "dark" / "testset" / "dim").glob("*_heatmap.png"))
    assert len(overlays) == 2 and len(heatmaps) == 2
    panel = cv2.imread(str(overlays[0]))
    # image | truth | prediction, above the colour key (one 20-px row at this width)
    assert panel.shape[0] == 96 + 20 and panel.shape[1] == 3 * 96 + 8


def test_evaluate_cli_on_a_checkpoint(tmp_path, tiny_config, capsys):
    root = _write_set(tmp_path / "set", [(70, 70)] * 6)
    ckpt = save_delta(build_cracksam(tiny_config("lora")), tmp_path / "run" / "best")
    rc = main(
        [
            "evaluate",
            "--model",
            str(ckpt),
            "--test",
            str(root),
            "--test-split",
            "all",
            "--allow-random-base",
            "--conditions",
            "clean,blur:5",
            "--out",
            str(tmp_path / "ev"),
            "--no-progress",
        ]
    )
    assert rc == 0
    doc = json.loads((tmp_path / "ev" / "table.json").read_text())
    assert doc["rows"][0]["model"] == "run" and doc["rows"][0]["backbone"] == "tiny"
    assert set(doc["rows"][0]["cells"]) == {"test", "blur:5"}
    capsys.readouterr()
    # Bad input: clear errors, exit code 2.
    for argv, needle in [
        (["--conditions", "foggy"], "foggy"),
        (["--blur-sweep", "4"], "odd"),
        (["--blur-sweep", "a,b"], "integers"),
        (["--reduction", "pixel"], "reduction"),
    ]:
        rc = main(
            [
                "evaluate",
                "--model",
                str(ckpt),
                "--test",
                str(root),
                "--allow-random-base",
                "--out",
                str(tmp_path / "ev2"),
                *argv,
            ]
        )
        assert rc == 2, argv
        assert needle in capsys.readouterr().err
    rc = main(["evaluate", "--model", str(tmp_path), "--test", str(root), "--out", str(tmp_path / "ev3")])
    assert rc == 2 and "not a CrackSAM checkpoint" in capsys.readouterr().err


def test_evaluation_report_compares_crack_measurements(tmp_path, capsys):
    root = _write_set(tmp_path / "set", [(120, 200)] * 3, width=8)
    from cracksam.data import load_split

    samples = load_split([root], "all")
    model = EvalModel("dark", DarknessModel(64), "none", 0, 0)
    r = evaluate_samples(model, samples, "clean", "set", progress=False, measure=True, mm_per_px=0.2)
    m = r.extra["measurement"]
    # The darkness model finds the drawn crack: one crack per image, about the right length and width.
    assert m["n_cracks_true"] == 3 and m["n_cracks_pred"] == 3
    assert abs(m["length_relative_error"]) < 0.1
    assert m["mean_width_abs_error_px"] < 2.0
    assert m["total_length_mm_true"] == pytest.approx(0.2 * m["total_length_px_true"])
    # Through the protocol: a measurement table beside Table 7.
    cfg = ProtocolConfig(test=[str(root)], test_split="all", conditions=["clean", "blur:25"], progress=False,
                         measure=True)
    summary = run_protocol([model], cfg, tmp_path / "out")
    rows = list(csv.reader((tmp_path / "out" / "measurement.csv").open()))
    assert rows[0][:3] == ["model", "dataset", "condition"] and len(rows) == 3
    assert summary["measurement"]
    with pytest.raises(ConfigError, match="mm-per-px"):
        ProtocolConfig(test=[str(root)], measure=True, mm_per_px=-1.0)


def test_pooled_test_sets_are_also_scored_one_by_one(tmp_path, capsys):
    """The combined test split gets a per-dataset breakdown from the same predictions, and a
    student checkpoint evaluates like a CrackSAM one, under the name given on the command line."""
    from cracksam.models import create, save_trained

    a = _write_set(tmp_path / "seta", [(64, 64)] * 4, width=8)
    b = _write_set(tmp_path / "setb", [(72, 96)] * 3, width=3)
    for f in (b / "images").glob("*.png"):  # dark blotches that are not cracks: false positives in set b only
        img = cv2.imread(str(f))
        img[5:20, 5:30] = 10
        cv2.imwrite(str(f), img)
    models = [EvalModel("dark", DarknessModel(64), "none", 1, 1)]
    cfg = ProtocolConfig(test=[str(a), str(b)], conditions=["clean"], progress=False, test_split="all")
    summary = run_protocol(models, cfg, tmp_path / "out")
    result = json.loads((tmp_path / "out" / "results.json").read_text())[0]
    per = result["per_dataset"]
    assert set(per) == {"seta", "setb"} and per["seta"]["n_images"] == 4 and per["setb"]["n_images"] == 3
    # Each set on its own, computed directly, gives the same scores as the breakdown.
    for name, root in (("seta", a), ("setb", b)):
        alone = run_protocol(models, ProtocolConfig(test=[str(root)], conditions=["clean"], progress=False,
                                                    test_split="all"), tmp_path / f"alone-{name}")
        cell = json.loads((tmp_path / f"alone-{name}" / "table.json").read_text())["rows"][0]["cells"]["test"]
        assert per[name]["dataset_level"]["iou"] == pytest.approx(cell["dataset_level"]["iou"])
        assert "per_dataset" not in alone
    assert per["seta"]["dataset_level"]["iou"] != pytest.approx(per["setb"]["dataset_level"]["iou"])
    text = (tmp_path / "out" / "per_dataset.md").read_text()
    assert summary["per_dataset"].endswith("per_dataset.md")
    assert "| dark | seta | test | 4 |" in text and "| dark | all (seta+setb) | test | 7 |" in text

    ckpt = save_trained(create("unet_mobilenetv3_small", image_size=64), tmp_path / "student")
    argv = ["evaluate", "-m", str(ckpt), "--name", "my student", "--test", str(a), "--test-split", "all",
            "--conditions", "clean", "--out", str(tmp_path / "ev"), "--no-progress"]
    assert main(argv) == 0
    row = json.loads((tmp_path / "ev" / "table.json").read_text())["rows"][0]
    assert row["model"] == "my student" and row["backbone"] == "unet_mobilenetv3_small"
    capsys.readouterr()
    assert main([*argv[:5], "--name", "two", *argv[5:]]) == 2
    assert "one --name per --model" in capsys.readouterr().err


def test_evaluate_prints_the_images_scored_per_set(tmp_path, capsys):
    """A line per set: the split and how many images; with an explicit --test-split test, a folder
    without split files says its test split is a seeded share of it, and how to score all of it
    (the default, auto, scores such a folder whole: tests/test_evaluate_splits.py)."""
    from cracksam.models import create, save_trained

    listed = _write_set(tmp_path / "seta", [(64, 64)] * 4, width=8)
    (listed / "train.txt").write_text("im0\nim1\n")
    (listed / "test.txt").write_text("im2\nim3\n")
    plain = _write_set(tmp_path / "setb", [(64, 64)] * 5, width=8)  # no split files
    unseen = _write_set(tmp_path / "setc", [(64, 64)] * 3, width=8)
    ckpt = save_trained(create("unet_mobilenetv3_small", image_size=64), tmp_path / "student")
    argv = ["evaluate", "-m", str(ckpt), "--test", str(listed), "--test", str(plain), "--unseen", str(unseen),
            "--test-split", "test", "--conditions", "clean", "--out", str(tmp_path / "ev"), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "scored: seta (--test): test split, 2 image(s)\n" in out
    assert "scored: setb (--test): test split, 1 of 5 image(s) (no split files: a 15% share" in out
    assert "--test-split all scores every image" in out
    assert "scored: setc (--unseen): all images, 3 image(s)\n" in out
    doc = json.loads((tmp_path / "ev" / "table.json").read_text())
    assert [(e["dataset"], e["images"]) for e in doc["scored"]] == [("seta", 2), ("setb", 1), ("setc", 3)]
    assert "(3 images)" in doc["caption"]
    # Scoring every image of the folder: the count says so, without the note.
    assert main([*argv[:3], "--test", str(plain), "--test-split", "all", "--conditions", "clean",
                 "--out", str(tmp_path / "all"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "scored: setb (--test): all images, 5 image(s)\n" in out and "no split files" not in out


def test_evaluate_overlays_carry_a_colour_key():
    from cracksam.evaluation.visualize import FN_COLOUR, FP_COLOUR, TP_COLOUR, TRUTH_COLOUR, comparison_panel

    image = np.full((40, 50, 3), 128, np.uint8)
    truth = np.zeros((40, 50), bool)
    pred = np.zeros((40, 50), bool)
    panel = comparison_panel(image, truth, pred)  # no crack at all: every colour is the key's
    assert panel.shape[0] > 40 and panel.shape[1] == 3 * 50 + 8
    key = panel[40:]
    for colour in (TRUTH_COLOUR, TP_COLOUR, FP_COLOUR, FN_COLOUR):
        assert (key == np.array(colour, np.uint8)).all(axis=2).sum() > 20, colour


def test_heatmaps_show_probability_on_a_fixed_scale(tmp_path, monkeypatch):
    from cracksam.evaluation import visualize
    from cracksam.inference.predictor import Prediction

    prob = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    seen = {}

    def spy(image, values, title=""):
        seen["values"] = values
        fig = visualize.heatmap_figure(image, values, title)
        seen["clim"] = fig.axes[1].images[0].get_clim()
        seen["title"] = fig.axes[1].get_title()
        return b"png"

    monkeypatch.setattr(visualize, "heatmap_png", spy)
    pred = Prediction(prob=prob, crack_logit=(prob - 0.5) * 40)
    visualize.save_visuals(tmp_path, "x", np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8), pred, 0.5)
    assert seen["values"] is prob and seen["clim"] == (0.0, 1.0) and seen["title"] == "crack probability"


def _cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip().strip("|"))


def test_measurement_table_is_valid_markdown(tmp_path):
    from cracksam.evaluation.protocol import ProtocolConfig, run_protocol
    from cracksam.evaluation.runner import EvalModel

    from ._models import DarknessModel

    root = make_dataset(tmp_path / "set", n=3, size=(96, 96))
    cfg = ProtocolConfig(test=[str(root)], test_split="all", conditions=["clean"], measure=True, progress=False)
    run_protocol([EvalModel("dark", DarknessModel(64), "none", 1, 1)], cfg, tmp_path / "ev")
    lines = [x for x in (tmp_path / "ev" / "measurement.md").read_text().splitlines() if x.startswith("|")]
    assert len(lines) >= 3
    assert len({len(_cells(line)) for line in lines}) == 1, lines


def test_a_validation_split_is_never_labelled_test(tmp_path):
    """Models are chosen on ``--test-split val``; its tables name the clean column "val", not the
    paper's "test", in table.* and per_dataset.md, while the noisy columns keep their names."""
    a = _write_set(tmp_path / "seta", [(64, 64)] * 4, width=8)
    b = _write_set(tmp_path / "setb", [(64, 64)] * 4, width=3)
    for root in (a, b):
        (root / "train.txt").write_text("im0\n")
        (root / "val.txt").write_text("im1\nim2\n")
        (root / "test.txt").write_text("im3\n")
    models = [EvalModel("dark", DarknessModel(64), "none", 1, 1)]
    cfg = ProtocolConfig(test=[str(a), str(b)], conditions=["clean", "dim"], progress=False, test_split="val")
    summary = run_protocol(models, cfg, tmp_path / "out")
    assert summary["header"][4:] == ["val", "noisy 1 (dim)"]
    cell = json.loads((tmp_path / "out" / "table.json").read_text())["rows"][0]["cells"]["val"]
    assert cell["condition"] == "clean" and cell["n_images"] == 4
    text = (tmp_path / "out" / "per_dataset.md").read_text()
    assert "| dark | seta | val | 2 |" in text and "| dark | seta | noisy 1 (dim) | 2 |" in text
    assert "| test |" not in text


def test_a_network_trained_with_an_encoder_delta_reports_what_training_changed(tmp_path):
    """Saved with its LoRA folded in, the network has as many tensors as a whole one; the table's
    trainable count is the record training wrote (LoRA factors, decoder, head), not every parameter."""
    from cracksam.evaluation.protocol import load_eval_model
    from cracksam.models import SegModel, SegModelConfig, save_trained

    net = SegModel(SegModelConfig(arch="unet_mobilenetv3_small", image_size=64)).eval()
    total = sum(p.numel() for p in net.parameters())
    plain = load_eval_model(save_trained(net, tmp_path / "plain"))
    lora = load_eval_model(save_trained(net, tmp_path / "lora", extra={"encoder_delta": {
        "kind": "lora", "trainable_parameters": 1234}}))
    assert (plain.total_params, plain.trainable_params) == (total, total)
    assert (lora.total_params, lora.trainable_params) == (total, 1234)

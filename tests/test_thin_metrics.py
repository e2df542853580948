"""Tolerance F1, ODS/OIS and clDice: hand-computed values on small drawings, the distance-transform
definition on random maps, and the keys of an evaluation pass.

Each test names a mutant of ``thin_metrics.py`` that it was seen to kill."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from cracksam.evaluation.metrics import BinaryMetrics
from cracksam.evaluation.thin_metrics import ThinMetrics, cldice_counts, cldice_from_counts, tolerance_counts

from ._models import DarknessModel


def _line(rows: int | list[int], cols: range, shape: tuple[int, int] = (30, 30)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[np.ix_(np.atleast_1d(rows), np.asarray(cols))] = True
    return m


def _score(pred: np.ndarray, truth: np.ndarray, tol: float, reduction: str = "dataset") -> dict[str, float]:
    m = ThinMetrics(tol=tol, thresholds=[0.5])
    m.update(pred, truth)
    return m.compute(reduction)  # type: ignore[arg-type]


def test_line_shifted_by_one_pixel_is_right_within_the_tolerance() -> None:
    """A 1-px line predicted one row off: strict IoU 0, F1 1 within 1 or 2 px, 0 with none.

    Mutant killed: ``<=`` -> ``<`` in ``disk_footprint`` (the distance is exactly 1: F1@1 would be 0)."""
    truth, pred = _line(10, range(5, 25)), _line(11, range(5, 25))
    strict = BinaryMetrics()
    strict.update(pred, truth)
    assert strict.compute()["iou"] == 0.0
    for tol in (2, 1):
        s = _score(pred, truth, tol)
        assert s[f"f1_tol{tol}"] == s[f"precision_tol{tol}"] == s[f"recall_tol{tol}"] == 1.0
    assert _score(pred, truth, 0)["f1_tol0"] == 0.0


def test_line_shifted_by_three_pixels_misses_at_two() -> None:
    """Three rows off: nothing within 2 px (F1@2 = 0), everything within 3 px (F1@3 = 1).

    Mutant killed: footprint radius ``floor(tol) - 1`` (F1@3 = 0)."""
    truth, pred = _line(10, range(5, 25)), _line(13, range(5, 25))
    assert _score(pred, truth, 2)["f1_tol2"] == 0.0
    assert _score(pred, truth, 3)["f1_tol3"] == 1.0


def test_half_missing_line_has_recall_one_half() -> None:
    """Truth: columns 5..24 (20 px); prediction: columns 5..12 (8 px), all on the line, so
    precision 1.  Within 2 px of the prediction lie truth columns 5..14: 10 of 20, recall 0.5;
    F1 = 2 * 1 * 0.5 / 1.5 = 2/3.

    Mutants killed: precision and recall swapped; ``reach = p`` (recall without tolerance: 8/20)."""
    s = _score(_line(10, range(5, 13)), _line(10, range(5, 25)), 2)
    assert s["precision_tol2"] == 1.0
    assert s["recall_tol2"] == pytest.approx(0.5)
    assert s["f1_tol2"] == pytest.approx(2 / 3)


def _edt_counts(prob: np.ndarray, truth: np.ndarray, tol: float, th: np.ndarray) -> np.ndarray:
    """The definition, one Euclidean distance transform per threshold (slow, obviously right)."""
    far = np.full(truth.shape, np.inf)
    d_truth = ndimage.distance_transform_edt(~truth) if truth.any() else far
    rows = []
    for t in th:
        pred = prob >= t
        d_pred = ndimage.distance_transform_edt(~pred) if pred.any() else far
        rows.append([(pred & (d_truth <= tol)).sum(), pred.sum(), (truth & (d_pred <= tol)).sum(), truth.sum()])
    return np.array(rows)


@pytest.mark.parametrize("tol", [0, 1, 1.5, 2, 3])
def test_sweep_counts_match_the_distance_transform_definition(tol: float) -> None:
    """One max filter + binning gives, at every threshold, the counts of the EDT definition;
    probabilities equal to a threshold count as crack (``p >= t``), also at the image border.

    Mutants killed: ``side="left"`` in ``_count_ge`` (ties dropped); ``above[1:]`` -> ``above[:-1]``;
    ``reach`` taken from the truth instead of the probabilities; tolerance ``<`` instead of ``<=``;
    a footprint condition ``<= (tol + 1)^2``."""
    rng = np.random.default_rng(int(10 * tol))
    th = np.arange(1, 10) / 10
    for _ in range(3):
        prob = rng.integers(0, 11, (23, 31)) / 10 * (rng.random((23, 31)) < 0.3)  # exact ties with th
        truth = rng.random((23, 31)) < 0.1
        np.testing.assert_array_equal(tolerance_counts(prob, truth, tol, th), _edt_counts(prob, truth, tol, th))


def test_empty_images_follow_the_zero_over_zero_rules() -> None:
    """Empty truth and prediction: 1; crack missed: 0; false alarm on a clean image: 0 -- per image
    and pooled (pooled over the three: no matched pixel at all, so 0).

    Mutant killed: ``empty`` tested on ``total_pred`` alone (the missed crack would score 1)."""
    empty, line = np.zeros((30, 30), bool), _line(10, range(5, 25))
    for pred, truth, want in ((empty, empty, 1.0), (empty, line, 0.0), (line, empty, 0.0)):
        s = _score(pred, truth, 2, "image")
        assert s["f1_tol2"] == s["precision_tol2"] == s["recall_tol2"] == s["cldice"] == want
        assert s["ois_f1"] == want
    m = ThinMetrics(thresholds=[0.5])
    for pred, truth in ((empty, empty), (empty, line), (line, empty)):
        m.update(pred, truth)
    assert m.compute("image")["f1_tol2"] == pytest.approx(1 / 3)
    assert m.compute("dataset")["f1_tol2"] == 0.0


def test_ods_and_ois_pick_different_thresholds() -> None:
    """Two images, sweep thresholds 0.3 and 0.7, isolated pixels 6 px apart (no tolerance overlap).

    * A: 4 true pixels at p = 0.8, 4 false alarms at p = 0.5.  t=0.3: P 4/8, R 1, F1 2/3;
      t=0.7: F1 1.  Best 1.
    * B: 4 true pixels at p = 0.5.  t=0.3: F1 1; t=0.7: nothing predicted, F1 0.  Best 1.

    OIS = (1 + 1) / 2 = 1.  ODS pools: t=0.3: P = 8/12, R = 8/8, F1 = 0.8; t=0.7: P = 4/4,
    R = 4/8, F1 = 2/3; so ODS = 0.8 at 0.3 (a per-image mean would give 5/6 at 0.3).

    Mutants killed: ODS as the best mean of per-image F1 (5/6); OIS from each image's mean F1 over
    the sweep instead of its best; argmax -> argmin."""
    a_prob, b_prob, a_true, b_true = (np.zeros((30, 30)) for _ in range(4))
    for k in range(4):
        a_true[4, 4 + 6 * k] = b_true[4, 4 + 6 * k] = 1
        a_prob[4, 4 + 6 * k], b_prob[4, 4 + 6 * k] = 0.8, 0.5
        a_prob[20, 4 + 6 * k] = 0.5
    m = ThinMetrics(thresholds=[0.3, 0.7])
    m.update(a_prob, a_true)
    m.update(b_prob, b_true)
    d, i = m.compute("dataset"), m.compute("image")
    assert d["ods_f1"] == pytest.approx(0.8) and d["ods_threshold"] == 0.3
    assert i["ois_f1"] == pytest.approx(1.0)
    np.testing.assert_allclose(m.per_image()["best_f1"], [1.0, 1.0])
    # At 0.5 (the headline threshold) A has its false alarms and B is found: pooled P 8/12, R 1.
    assert d["f1_tol2"] == pytest.approx(0.8)


def _tee() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1-px T: bar row 5, columns 2..12 (11 px), stem column 7, rows 6..12 (7 px); 1-px lines are
    their own skeletons."""
    bar = _line(5, range(2, 13), (16, 16))
    stem = _line(list(range(6, 13)), range(7, 8), (16, 16))
    return bar | stem, bar, stem


def test_cldice_of_a_tee_with_its_stem_missing() -> None:
    """Prediction = the bar only.  Tprec = |S(bar) & T| / |S(bar)| = 11/11 = 1; Tsens =
    |S(T) & bar| / |S(T)| = 11/18; clDice = 2 (11/18) / (1 + 11/18) = 22/29.  Identical masks: 1.

    Mutant killed: Tprec and Tsens swapped (the components below); skeletons not taken (the
    thick-band case: 5-row band inside a 7-row one has Tprec 1 only through the skeleton)."""
    tee, bar, _ = _tee()
    c = cldice_counts(bar, tee)
    np.testing.assert_array_equal(c, [11, 11, 11, 18])
    s = {k: float(v) for k, v in cldice_from_counts(c).items()}
    assert s["tprec"] == 1.0
    assert s["tsens"] == pytest.approx(11 / 18) and s["cldice"] == pytest.approx(22 / 29)
    got = _score(bar, tee, 2)
    assert got["cldice"] == pytest.approx(22 / 29) and got["cldice_tsens"] == pytest.approx(11 / 18)
    assert _score(tee, tee, 2)["cldice"] == 1.0
    # A band 2 rows thicker than the truth on each side: strict precision 3/7, clDice 1.
    truth, pred = _line([9, 10, 11], range(3, 27)), _line(list(range(7, 14)), range(3, 27))
    assert _score(pred, truth, 2)["cldice_tprec"] == 1.0


def test_select_slices_without_recounting() -> None:
    """``select`` gives the scores of accumulating the kept images alone (the per-dataset breakdown).

    Mutant killed: ``select`` ignoring ``keep`` for the sweep counts (ODS of all images)."""
    rng = np.random.default_rng(3)
    images = [(rng.random((20, 20)), rng.random((20, 20)) < 0.2) for _ in range(5)]
    keep = [True, False, True, True, False]
    full, alone = ThinMetrics(thresholds=9), ThinMetrics(thresholds=9)
    for (p, t), k in zip(images, keep, strict=True):
        full.update(p, t)
        if k:
            alone.update(p, t)
    for r in ("dataset", "image"):
        assert full.select(keep).compute(r) == alone.compute(r)  # type: ignore[arg-type]
    assert full.select(keep).compute()["ods_f1"] != full.compute()["ods_f1"]


def _write(root: Path, gray: int, dark_rows: slice) -> Path:
    """One 64 x 64 image (the model's size, so resizing is the identity): truth rows 31..33,
    columns 8..55; the drawn rows get ``gray`` (DarknessModel: p = sigmoid((100 - gray) / 5))."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    img = np.full((64, 64, 3), 200, np.uint8)
    img[dark_rows, 8:56] = gray
    mask = np.zeros((64, 64), np.uint8)
    mask[31:34, 8:56] = 255
    cv2.imwrite(str(root / "images" / "im0.png"), img)
    cv2.imwrite(str(root / "masks" / "im0.png"), mask)
    return root


def test_evaluation_pass_reports_thin_metrics(tmp_path: Path) -> None:
    """Through ``evaluate_samples``: set a predicts rows 30..34 at p ~ 1 (a 1-px halo around the
    3-row truth); set b has a faint crack, p = sigmoid(-1) = 0.269 on the truth exactly.

    At 0.5: a gives 240 predicted px, all within 1 px of the truth, all 144 true px found; b gives
    nothing.  Pooled: P@2 = 240/240 = 1, R@2 = 144/288, F1@2 = 2/3 (strict IoU 144/384).  Per
    image: F1 1 and 0, mean 1/2.  clDice: S(a-pred) lies on rows 31..32, inside the truth, S(truth)
    inside a's prediction; b finds none of its equally long skeleton: pooled 2/3, per image 1/2.
    Sweep: at t <= 0.26 b is found exactly, so ODS = 1 at t = 0.01 and OIS = 1.

    Mutants killed: thin metrics left out of ``image_level`` / ``per_dataset``; the sweep counted
    with the pass's 0.5 threshold (ODS 2/3)."""
    from cracksam.data import load_split
    from cracksam.evaluation.protocol import _per_dataset_table
    from cracksam.evaluation.runner import EvalModel, evaluate_samples

    a = _write(tmp_path / "a", 20, slice(30, 35))
    b = _write(tmp_path / "b", 105, slice(31, 34))
    model = EvalModel("dark", DarknessModel(64), "none", 0, 0)
    r = evaluate_samples(model, load_split([a, b], "all"), "clean", "a+b", progress=False)
    d, i = r.dataset_level, r.image_level
    assert d["iou"] == pytest.approx(144 / 384)  # the strict headline is unchanged
    assert (d["precision_tol2"], d["recall_tol2"]) == (1.0, 0.5) and d["f1_tol2"] == pytest.approx(2 / 3)
    assert d["cldice"] == pytest.approx(2 / 3) and i["cldice"] == pytest.approx(0.5)
    assert d["ods_f1"] == 1.0 and d["ods_threshold"] == 0.01 and i["ois_f1"] == 1.0
    assert i["f1_tol2"] == pytest.approx(0.5) and "ods_f1" not in i and "ois_f1" not in d
    per = r.extra["per_dataset"]
    assert per["a"]["dataset_level"]["f1_tol2"] == 1.0 and per["b"]["dataset_level"]["f1_tol2"] == 0.0
    assert per["b"]["dataset_level"]["ods_f1"] == 1.0 and per["b"]["image_level"]["cldice"] == 0.0
    table = _per_dataset_table([r], "dataset")
    # Set a: strict P 144/240, R 1, F1 0.75, IoU 0.6; F1@2px 1; clDice 1.
    assert "| F1@2px | clDice |" in table
    assert "| dark | a | test | 1 | 0.6000 | 1.0000 | 0.7500 | 0.6000 | 1.0000 | 1.0000 |" in table

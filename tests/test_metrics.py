"""BinaryMetrics against scikit-learn on random masks, with the empty-image rules."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, jaccard_score, precision_score, recall_score

from cracksam.evaluation import BinaryMetrics
from cracksam.evaluation.metrics import metrics_from_counts

SKLEARN = {"precision": precision_score, "recall": recall_score, "f1": f1_score, "iou": jaccard_score}


def _batch(seed: int = 0, n: int = 10, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and targets; images 0-2 are: empty truth, empty prediction, both empty."""
    rng = np.random.default_rng(seed)
    prob = rng.random((n, size, size))
    target = rng.random((n, size, size)) < rng.uniform(0.05, 0.4, (n, 1, 1))
    target[0] = False  # empty truth, some prediction
    prob[1] = prob[1] * 0.49  # empty prediction, some truth
    prob[2] = prob[2] * 0.49  # both empty
    target[2] = False
    return prob, target


def _sk(name: str, truth: np.ndarray, pred: np.ndarray, zero_division: float) -> float:
    return float(SKLEARN[name](truth.ravel(), pred.ravel(), zero_division=zero_division))


@pytest.mark.parametrize("empty_score", [1.0, 0.0])
def test_image_reduction_matches_sklearn(empty_score: float) -> None:
    prob, target = _batch()
    metrics = BinaryMetrics(empty_score=empty_score)
    for p, t in zip(prob, target, strict=True):
        metrics.update(p, t)
    got = metrics.compute("image")
    pred = prob >= 0.5
    assert got["n_images"] == len(prob)
    for name in SKLEARN:
        per_image = []
        for p, t in zip(pred, target, strict=True):
            both_empty = not p.any() and not t.any()
            per_image.append(_sk(name, t, p, empty_score if both_empty else 0.0))
        assert got[name] == pytest.approx(np.mean(per_image), abs=1e-12), name


def test_dataset_reduction_matches_sklearn() -> None:
    prob, target = _batch(seed=1)
    metrics = BinaryMetrics()
    metrics.update_batch(prob, target)
    got = metrics.compute("dataset")
    pred = prob >= 0.5
    for name in SKLEARN:
        assert got[name] == pytest.approx(_sk(name, target, pred, 0.0), abs=1e-12), name
    assert got["tp"] == np.count_nonzero(pred & target)
    assert got["fp"] == np.count_nonzero(pred & ~target)
    assert got["fn"] == np.count_nonzero(~pred & target)
    assert got["n_images"] == len(prob)


def test_empty_image_rules() -> None:
    empty = np.zeros((8, 8), bool)
    some = empty.copy()
    some[2:4, 2:5] = True

    both = BinaryMetrics()
    both.update(empty, empty)
    assert both.compute("image") == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "iou": 1.0, "n_images": 1}
    assert both.compute("dataset")["iou"] == 1.0  # nothing anywhere, nothing predicted

    missed = BinaryMetrics()
    missed.update(empty, some)  # empty prediction, cracks in the truth: precision 0/0 -> 0
    for reduction in ("image", "dataset"):
        values = missed.compute(reduction)
        assert [values[k] for k in ("precision", "recall", "f1", "iou")] == [0.0, 0.0, 0.0, 0.0]

    hallucinated = BinaryMetrics()
    hallucinated.update(some, empty)  # prediction on a crack-free image: recall 0/0 -> 0
    values = hallucinated.compute("image")
    assert [values[k] for k in ("precision", "recall", "f1", "iou")] == [0.0, 0.0, 0.0, 0.0]

    # the empty image contributes empty_score to the image mean but nothing to the dataset sums
    mixed = BinaryMetrics()
    mixed.update(empty, empty)
    mixed.update(some, some)
    mixed.update(empty, some)
    assert mixed.compute("image")["iou"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert mixed.compute("dataset")["iou"] == pytest.approx(0.5)


def test_no_images_gives_nan() -> None:
    values = BinaryMetrics().compute("image")
    assert np.isnan(values["f1"]) and values["n_images"] == 0


def test_threshold_is_inclusive_and_configurable() -> None:
    target = np.array([[1, 1, 0, 0]], dtype=np.uint8)
    prob = np.array([[0.5, 0.7, 0.5, 0.2]])
    m = BinaryMetrics()  # 0.5 >= 0.5 -> crack
    m.update(prob, target)
    assert (m.compute()["tp"], m.compute()["fp"], m.compute()["fn"]) == (2, 1, 0)
    m = BinaryMetrics(threshold=0.6)
    m.update(prob, target)
    assert (m.compute()["tp"], m.compute()["fp"], m.compute()["fn"]) == (1, 0, 1)


def test_boolean_and_integer_predictions_are_used_as_masks() -> None:
    target = np.array([[True, False, True]])
    m = BinaryMetrics(threshold=0.9)  # the threshold does not apply to masks
    m.update(np.array([[True, True, False]]), target)
    m.update(np.array([[255, 0, 1]], dtype=np.uint8), target)
    tp, fp, fn = m.counts()
    assert tp.tolist() == [1, 2] and fp.tolist() == [1, 0] and fn.tolist() == [1, 0]


def test_bad_inputs() -> None:
    m = BinaryMetrics()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.update(np.array([[-2.0, 3.0]]), np.array([[0, 1]]))  # logits, not probabilities
    with pytest.raises(ValueError, match="shape"):
        m.update(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError):
        m.compute("pixel")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        BinaryMetrics(threshold=1.5)


def test_torch_and_numpy_agree() -> None:
    torch = pytest.importorskip("torch")
    prob, target = _batch(seed=2)
    ref = BinaryMetrics()
    ref.update_batch(prob, target)
    for reduction in ("dataset", "image"):
        a = BinaryMetrics()
        for p, t in zip(prob, target, strict=True):
            a.update(torch.from_numpy(p).float(), torch.from_numpy(t))
        b = BinaryMetrics()
        b.update_batch(torch.from_numpy(prob), torch.from_numpy(target.astype(np.float32)))
        c = BinaryMetrics()
        c.update_batch(torch.from_numpy(prob >= 0.5), target)  # bool tensor + numpy target
        expected = ref.compute(reduction)
        for other in (a, b, c):
            got = other.compute(reduction)
            assert got.keys() == expected.keys()
            for key in expected:
                assert got[key] == pytest.approx(expected[key], abs=1e-6), (reduction, key)


def test_metrics_from_counts_is_elementwise() -> None:
    out = metrics_from_counts(np.array([0, 3, 0]), np.array([0, 1, 2]), np.array([0, 2, 0]))
    assert out["iou"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert out["f1"][1] == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))


def test_select_keeps_the_counts_of_the_chosen_images():
    m = BinaryMetrics()
    truths = [np.eye(4, dtype=bool), np.ones((4, 4), bool), np.zeros((4, 4), bool)]
    preds = [np.eye(4, dtype=bool), np.zeros((4, 4), bool), np.ones((4, 4), bool)]
    for p, t in zip(preds, truths, strict=True):
        m.update(p, t)
    sub = m.select([True, False, True])
    direct = BinaryMetrics()
    for i in (0, 2):
        direct.update(preds[i], truths[i])
    assert len(sub) == 2 and sub.compute("dataset") == direct.compute("dataset")
    assert sub.compute("image") == direct.compute("image")
    with pytest.raises(ValueError, match="one value per image"):
        m.select([True, False])

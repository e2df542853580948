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


def test_metrics_from_counts_broadcasts_a_scalar_against_arrays() -> None:
    """One count given as a number, the others per image: the scores are per image.  Mutants
    killed: ``np.broadcast(num, den)`` with ``den`` dropped (the output sized like the scalar
    numerator)."""
    out = metrics_from_counts(2, np.array([0, 2, 6]), np.array([2, 0, 0]))
    assert out["precision"].tolist() == pytest.approx([1.0, 0.5, 0.25])
    assert out["recall"].tolist() == pytest.approx([0.5, 1.0, 1.0])
    assert out["iou"].tolist() == pytest.approx([0.5, 0.5, 0.25])


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


# -- edges found by mutation testing (scripts/mutation.sh metrics) -----------------------------------


def test_probability_range_is_checked_at_both_ends_inclusively() -> None:
    """0 and 1 are valid probabilities; anything below 0 or above 1 is refused, with the hint."""
    m = BinaryMetrics()
    m.update(np.array([[0.0, 1.0]]), np.array([[0, 1]]))  # the ends themselves are fine
    assert (m.compute()["tp"], m.compute()["fp"]) == (1, 0)
    hint = (r"^probabilities must lie in \[0, 1\], got values in \[{}, {}\] "
            r"\(pass sigmoid\(logits\), or a boolean prediction\)$")
    for lo, hi in [(-0.1, 0.5), (0.2, 1.5), (-0.5, 0.9)]:
        with pytest.raises(ValueError, match=hint.format(lo, hi)):
            m.update(np.array([[lo, hi]]), np.array([[0, 1]]))


def test_every_float_width_and_integer_labels_other_than_one() -> None:
    """float32 probabilities are thresholded like float64; integer masks with labels such as 2
    count as crack wherever nonzero (in the target too, not bitwise)."""
    target = np.array([[2, 2, 0, 0]], dtype=np.uint8)
    for dtype in (np.float16, np.float32, np.float64):
        m = BinaryMetrics()
        m.update(np.array([[0.5, 0.2, 0.9, 0.1]], dtype=dtype), target)
        assert m.counts()[0].tolist() == [1] and m.counts()[1].tolist() == [1] and m.counts()[2].tolist() == [1]
    with pytest.raises(TypeError, match="^unsupported prediction dtype <U1$"):
        BinaryMetrics().update(np.array([["a"]]), np.array([[1]]))


def test_tensors_from_a_model_are_counted_on_the_torch_path() -> None:
    """Tensors that require grad (straight from a network), a parameter (a torch *sub*module type),
    and numpy mixed with torch either way: all counted as the numpy reference."""
    torch = pytest.importorskip("torch")
    from cracksam.evaluation.metrics import _is_torch, binary_counts

    prob, target = _batch(seed=3, n=3, size=8)
    prob[0, 0, 0] = 0.5  # exactly the threshold: crack
    ref = binary_counts(prob, target)  # the default threshold is 0.5, inclusive:
    assert ref[0].tolist() == ((prob >= 0.5) & target).sum(axis=(1, 2)).tolist()
    assert ref[1].tolist() == ((prob >= 0.5) & ~target).sum(axis=(1, 2)).tolist()
    assert _is_torch(torch.nn.Parameter(torch.zeros(1))) and not _is_torch(prob)
    live = torch.from_numpy(prob).requires_grad_(True)
    label = torch.from_numpy(target.astype(np.float32)).requires_grad_(True)
    for p, t in [(live, target), (prob, label), (live, label), (torch.nn.Parameter(torch.from_numpy(prob)), target)]:
        got = binary_counts(p, t)
        assert all(g.dtype == np.int64 for g in got)
        assert [g.tolist() for g in got] == [r.tolist() for r in ref]
        m = BinaryMetrics()
        m.update(p[0], t[0])
        m.update_batch(p, t)
        assert m.counts()[0].tolist() == [ref[0][0], *ref[0].tolist()]
    ints = torch.tensor([[0, 1, 255, 0]], dtype=torch.uint8)  # an integer mask tensor: nonzero = crack
    counts = binary_counts(ints, np.array([[0, 1, 1, 1]]))
    assert [c.tolist() for c in counts] == [[2], [0], [1]]
    with pytest.raises(ValueError, match=r"^prediction shape \(2, 3\) != target shape \(2, 4\)$"):
        binary_counts(torch.zeros(2, 3), torch.zeros(2, 4))


def test_counts_and_rules_at_small_numbers() -> None:
    """A denominator of exactly 1, and TP + FN = FP (not an empty image)."""
    one = metrics_from_counts(1, 0, 0)
    assert [float(one[k]) for k in ("precision", "recall", "f1", "iou")] == [1.0, 1.0, 1.0, 1.0]
    out = metrics_from_counts(1, 2, 1, empty_score=0.5)
    assert float(out["iou"]) == pytest.approx(0.25) and float(out["precision"]) == pytest.approx(1 / 3)
    empty = BinaryMetrics()
    assert empty.counts()[0].dtype == np.int64 and empty.counts()[0].shape == (0,)
    for reduction in ("dataset", "image"):
        values = empty.compute(reduction)
        assert all(np.isnan(values[k]) for k in ("precision", "recall", "f1", "iou")) and values["n_images"] == 0
    zero = BinaryMetrics(empty_score=0.0)
    zero.update(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    assert zero.compute("dataset")["iou"] == 0.0 and zero.compute("image")["iou"] == 0.0
    with pytest.raises(ValueError, match=r"^reduction must be 'dataset' or 'image', got 'pixel'$"):
        zero.compute("pixel")  # type: ignore[arg-type]


def test_constructor_and_batch_axis_checks() -> None:
    for threshold in (0.0, 1.0):
        assert BinaryMetrics(threshold=threshold).threshold == threshold
    with pytest.raises(ValueError, match=r"^threshold must lie in \[0, 1\], got 1.5$"):
        BinaryMetrics(threshold=1.5)
    with pytest.raises(ValueError, match=r"^empty_score must lie in \[0, 1\], got 1.5$"):
        BinaryMetrics(empty_score=1.5)
    m = BinaryMetrics()
    m.update_batch(np.array([0.7, 0.2]), np.array([1, 1]))  # a batch of two one-pixel images
    assert len(m) == 2 and m.counts()[0].tolist() == [1, 0] and m.counts()[0].dtype == np.int64
    with pytest.raises(ValueError, match=r"^update_batch needs an array with a batch axis \(B x H x W\)$"):
        m.update_batch(np.array(0.5), np.array(1))


def test_select_and_per_image_keep_the_settings() -> None:
    m = BinaryMetrics(threshold=0.3, empty_score=0.0)
    m.update(np.zeros((2, 2)), np.zeros((2, 2), bool))  # empty image: scores 0 here
    m.update(np.full((2, 2), 0.4), np.eye(2, dtype=bool))  # 0.4 >= 0.3: all crack
    m.update(np.zeros((2, 2)), np.ones((2, 2), bool))
    sub = m.select([1, 1, 0])  # 0/1 as well as booleans
    assert (sub.threshold, sub.empty_score, len(sub)) == (0.3, 0.0, 2)
    assert sub.compute("image")["iou"] == pytest.approx((0.0 + 0.5) / 2)
    per = m.per_image()
    assert per["tp"].tolist() == [0, 2, 0] and per["fp"].tolist() == [0, 2, 0] and per["fn"].tolist() == [0, 0, 4]
    assert per["iou"].tolist() == pytest.approx([0.0, 0.5, 0.0])
    assert per["precision"].tolist() == pytest.approx([0.0, 0.5, 0.0])
    assert per["recall"].tolist() == pytest.approx([0.0, 1.0, 0.0])

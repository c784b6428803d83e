"""Metrics of docs/metrics.md#metrics checked against values worked out by hand on tiny, written-out inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import roc_auc_score

from partnb.data.schema import JETCLASS_CLASSES, PAPER_COLUMN_ORDER
from partnb.metrics import (
    JETCLASS_SIGNAL_EFFICIENCY,
    accuracy,
    auc_binary,
    auc_ovo,
    auc_ovr,
    binary_discriminant,
    binary_rejections,
    confusion_matrix,
    evaluate,
    jetclass_rejections,
    pairwise_auc_matrix,
    rejection,
    rejection_point,
    softmax,
)

# --------------------------------------------------------------------------- 3-class example
# Seven jets, classes 0/1/2 with 3/2/2 jets (unbalanced on purpose: with equal class sizes
# the ovo and ovr means coincide). Exact ties (same float literal) are intended.
LABELS3 = np.array([0, 0, 1, 1, 2, 2, 0])
SCORES3 = np.array([
    [0.60, 0.30, 0.10],  # j0, class 0, argmax 0
    [0.30, 0.30, 0.40],  # j1, class 0, argmax 2
    [0.20, 0.50, 0.30],  # j2, class 1, argmax 1
    [0.65, 0.30, 0.05],  # j3, class 1, argmax 0
    [0.10, 0.20, 0.70],  # j4, class 2, argmax 2
    [0.45, 0.20, 0.35],  # j5, class 2, argmax 0
    [0.50, 0.10, 0.40],  # j6, class 0, argmax 0
])


def _pairs_auc(pos, neg):
    """AUC as the fraction of correctly ordered (positive, negative) pairs, ties 1/2."""
    won = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return won / (len(pos) * len(neg))


def test_accuracy_by_hand():
    # correct: j0, j2, j4, j6 -> 4 of 7
    assert accuracy(LABELS3, SCORES3) == pytest.approx(4 / 7)
    assert accuracy([0, 1], [[0.2, 0.8], [0.1, 0.9]]) == pytest.approx(0.5)


def test_binary_auc_counts_ordered_pairs():
    # class 0 positive: s0 of positives 0.9, 0.6, 0.4; negatives 0.6, 0.3, 0.2, 0.1
    # 0.9 beats 4; 0.6 ties one (0.5) and beats 3; 0.4 loses to 0.6, beats 3 -> 10.5 / 12
    s0 = np.array([0.9, 0.6, 0.4, 0.6, 0.3, 0.2, 0.1])
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    scores = np.column_stack([s0, 1 - s0])
    assert _pairs_auc([0.9, 0.6, 0.4], [0.6, 0.3, 0.2, 0.1]) == pytest.approx(10.5 / 12)
    assert auc_binary(labels, scores) == pytest.approx(10.5 / 12)
    assert auc_ovo(labels, scores) == pytest.approx(10.5 / 12)  # binary: same number
    # class 0 must be the positive class: swapping labels gives 1 - AUC
    assert auc_binary(1 - labels, scores) == pytest.approx(1 - 10.5 / 12)


def test_auc_ovo_hand_and_till_by_hand():
    # A(a|b): AUC of column a, class a positive, jets of classes a or b only.
    # (0,1): A(0|1) = 3/6, A(1|0) = 5/6  -> 2/3
    # (0,2): A(0|2) = 5/6, A(2|0) = 4/6  -> 3/4
    # (1,2): A(1|2) = 1,   A(2|1) = 1    -> 1
    # M = (2/3 + 3/4 + 1) / 3 = 29/36
    col = SCORES3
    c = {k: np.flatnonzero(LABELS3 == k) for k in range(3)}
    assert _pairs_auc(col[c[0], 0], col[c[1], 0]) == pytest.approx(3 / 6)
    assert _pairs_auc(col[c[1], 1], col[c[0], 1]) == pytest.approx(5 / 6)
    assert _pairs_auc(col[c[0], 0], col[c[2], 0]) == pytest.approx(5 / 6)
    assert _pairs_auc(col[c[2], 2], col[c[0], 2]) == pytest.approx(4 / 6)
    assert auc_ovo(LABELS3, SCORES3) == pytest.approx(29 / 36)


def test_auc_ovr_is_mean_of_one_vs_rest_by_hand():
    # class 0: 8/12, class 1: 9/10, class 2: 8/10 -> mean 71/90
    assert auc_ovr(LABELS3, SCORES3) == pytest.approx(71 / 90)
    assert auc_ovr(LABELS3, SCORES3) != pytest.approx(auc_ovo(LABELS3, SCORES3))
    one_hot = np.eye(3)[LABELS3]
    assert auc_ovr(LABELS3, SCORES3) == pytest.approx(
        roc_auc_score(one_hot, SCORES3, average="macro", multi_class="ovo")
    )


def test_auc_ovr_equals_sklearn_one_hot_random():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, 300)
    scores = rng.dirichlet(np.ones(5), 300)
    expected = roc_auc_score(np.eye(5)[labels], scores, average="macro")
    assert auc_ovr(labels, scores) == pytest.approx(expected, rel=1e-12)


def test_auc_absent_class_is_nan():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([[0.5, 0.3, 0.2]] * 4)
    assert math.isnan(auc_ovo(labels, scores))
    assert math.isnan(auc_ovr(labels, scores))
    assert math.isnan(auc_binary([0, 0], [[0.4, 0.6], [0.7, 0.3]]))


def test_pairwise_auc_matrix_by_hand():
    r = pairwise_auc_matrix(LABELS3, SCORES3)
    assert r.shape == (3, 3)
    assert np.all(np.isnan(np.diag(r)))
    # R[0,1]: s1/(s0+s1), class 1 positive: pos 0.714, 0.316; neg 0.333, 0.5, 0.167 -> 4/6
    assert r[0, 1] == pytest.approx(2 / 3)
    assert r[1, 0] == pytest.approx(2 / 3)
    # R[1,2]: s2/(s1+s2), class 2 positive: pos 0.778, 0.636; neg 0.375, 0.143 -> 1
    assert r[1, 2] == pytest.approx(1.0)
    assert np.allclose(r, r.T, equal_nan=True)
    r2 = pairwise_auc_matrix([0, 0, 1], SCORES3[:3])
    assert math.isnan(r2[0, 2]) and math.isnan(r2[2, 1])
    assert not math.isnan(r2[0, 1])


def test_confusion_matrix_by_hand():
    expected = np.array([
        [2 / 3, 0, 1 / 3],  # class 0: predicted 0, 2, 0
        [1 / 2, 1 / 2, 0],  # class 1: predicted 1, 0
        [1 / 2, 0, 1 / 2],  # class 2: predicted 2, 0
    ])
    assert np.allclose(confusion_matrix(LABELS3, SCORES3), expected)
    counts = confusion_matrix(LABELS3, SCORES3, normalize=None)
    assert counts.tolist() == [[2, 0, 1], [1, 1, 0], [1, 0, 1]]
    for norm in ("true", "pred", "all"):
        sk = sk_confusion_matrix(LABELS3, SCORES3.argmax(1), labels=[0, 1, 2], normalize=norm)
        assert np.allclose(confusion_matrix(LABELS3, SCORES3, normalize=norm), sk)
    # an absent class gives an all-zero row (as sklearn)
    assert np.all(confusion_matrix([0, 1], SCORES3[[0, 2]])[2] == 0)
    with pytest.raises(ValueError, match="normalize"):
        confusion_matrix(LABELS3, SCORES3, normalize="rows")


def test_binary_discriminant_by_hand():
    # docs/metrics.md#background-rejection: p_s / (p_s + p_b), 0.5 where both are exactly 0,
    # and no floor: a tiny non-zero sum keeps its exact ratio (a 1e-12 floor would give 1e-3)
    scores = np.array([[0.5, 0.3, 0.2], [0.0, 0.0, 1.0], [1e-15, 3e-15, 1.0], [0.0, 0.4, 0.6]])
    np.testing.assert_allclose(binary_discriminant(scores, 1, 0), [0.3 / 0.8, 0.5, 0.75, 1.0], rtol=1e-15)
    np.testing.assert_allclose(binary_discriminant(scores, 0, 1), [0.5 / 0.8, 0.5, 0.25, 0.0], rtol=1e-15)


def test_roc_curves_use_the_rejection_discriminant():
    # partnb.analysis.performance draws its ROC from the same discriminant as the rejection.
    # Signal (class 1) jets at s = 0.9, 0.6, 0.4, 0.3; QCD jets: two with p_1 = p_0 = 0 (s = 0.5
    # by the definition, 0 with a floored denominator), one at 0.35, one at 0.2. At 75 % signal
    # efficiency (cut s >= 0.4) the two zero-score QCD jets pass: FPR 2/4 (0 if they were at 0).
    from partnb.analysis.performance import roc_curves

    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    p1 = np.array([0.9, 0.6, 0.4, 0.3, 0.0, 0.0, 0.35, 0.2])
    p0 = np.array([0.1, 0.4, 0.6, 0.7, 0.0, 0.0, 0.65, 0.8])
    scores = np.column_stack([p0, p1, 1 - p0 - p1])
    tpr, fpr = roc_curves(labels, scores, ["QCD", "X", "Y"], "jetclass")["X"]
    for eff, want_fpr in ((0.5, 0.0), (0.75, 0.5), (1.0, 0.75)):
        point = rejection_point(labels, scores, 1, 0, efficiency=eff)
        idx = int(np.argmin(np.abs(tpr - eff)))
        assert (tpr[idx], fpr[idx]) == (point.tpr, point.fpr) == (eff, want_fpr)


def test_softmax_stable_float64():
    p = softmax(np.array([[0.0, math.log(3.0)], [1e4, 1e4 + math.log(3.0)]], dtype=np.float32))
    assert p.dtype == np.float64
    assert np.allclose(p[0], [0.25, 0.75])
    assert np.allclose(p[1], [0.25, 0.75], atol=1e-3)  # float32 input loses digits of 1e4
    q = softmax([[-1e5, 0.0, 1e5]])
    assert np.all(np.isfinite(q)) and q[0].tolist() == [0.0, 0.0, 1.0]


# --------------------------------------------------------------------------- rejection by hand
# Signal X = class 1, background QCD = class 0, a third class that must be ignored.
# Rows are [p_QCD, p_X, p_other]; the discriminant s = p_X / (p_X + p_QCD) is written on the
# right. Raw p_X would order the jets differently, so the ratio really matters.
REJ_LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 2, 2])
REJ_SCORES = np.array([
    [0.05, 0.45, 0.50],  # signal  s = 0.9
    [0.10, 0.40, 0.50],  # signal  s = 0.8
    [0.20, 0.30, 0.50],  # signal  s = 0.6
    [0.70, 0.30, 0.00],  # signal  s = 0.3
    [0.03, 0.07, 0.90],  # QCD     s = 0.7
    [0.25, 0.25, 0.50],  # QCD     s = 0.5
    [0.60, 0.40, 0.00],  # QCD     s = 0.4
    [0.40, 0.10, 0.50],  # QCD     s = 0.2
    [0.90, 0.10, 0.00],  # QCD     s = 0.1
    [0.00, 0.99, 0.01],  # class 2 (excluded; would be s = 1)
    [0.01, 0.90, 0.09],  # class 2 (excluded)
])
# (TP, FP) per distinct threshold 0.9, 0.8, ..., 0.1:
#   (1,0) (2,0) (2,1) (3,1) (3,2) (3,3) (4,3) (4,4) (4,5)
# drop_intermediate removes the collinear points (3,2) [thr 0.5] and (4,4) [thr 0.2];
# roc_curve prepends (0,0). Kept (TPR, FPR), in threshold order:
#   (0,0) (.25,0) (.5,0) (.5,.2) (.75,.2) (.75,.6) (1,.6) (1,1)


@pytest.mark.parametrize(
    ("efficiency", "expected", "tpr", "fpr"),
    [
        (0.5, math.inf, 0.5, 0.0),   # exact TPR .5 twice: argmin takes the first, FPR 0 -> inf
        (0.3, math.inf, 0.25, 0.0),  # nearest TPR .25 at FPR 0 -> inf
        (0.7, 5.0, 0.75, 0.2),       # nearest TPR .75 (first of two) -> 1/0.2
        (0.875, 5.0, 0.75, 0.2),     # equidistant from .75 and 1: argmin picks the first
                                     # (higher threshold, lower FPR) -> 5, not 1/0.6
        (0.99, 1 / 0.6, 1.0, 0.6),   # nearest TPR 1 (first of two) -> 1/0.6
    ],
)
def test_rejection_by_hand(efficiency, expected, tpr, fpr):
    value = rejection(REJ_LABELS, REJ_SCORES, 1, 0, efficiency=efficiency)
    assert value == pytest.approx(expected)
    point = rejection_point(REJ_LABELS, REJ_SCORES, 1, efficiency=efficiency)
    assert (point.tpr, point.fpr) == (pytest.approx(tpr), pytest.approx(fpr))
    assert point.n_background == 5 and point.n_signal == 4
    assert point.n_false_positive == round(fpr * 5)


def test_rejection_uncertainty_and_absent_classes():
    p = rejection_point(REJ_LABELS, REJ_SCORES, 1, efficiency=0.99)
    assert p.n_false_positive == 3
    assert p.uncertainty == pytest.approx((1 / 0.6) / math.sqrt(3))
    p0 = rejection_point(REJ_LABELS, REJ_SCORES, 1, efficiency=0.5)
    assert p0.rejection == math.inf and math.isnan(p0.uncertainty)
    # no QCD jets / no signal jets -> nan, not an exception
    assert math.isnan(rejection(REJ_LABELS[:4], REJ_SCORES[:4], 1, efficiency=0.5))
    assert math.isnan(rejection(REJ_LABELS[4:], REJ_SCORES[4:], 1, efficiency=0.5))


def _brute_force_rejection(truth, s, eps):
    """Thresholds at every distinct score (s >= t selected), sklearn's collinear-point drop,
    the (0, 0) start point, then the first argmin of |TPR - eps|."""
    thr = np.unique(s)[::-1]
    tps = np.array([np.count_nonzero(truth & (s >= t)) for t in thr])
    fps = np.array([np.count_nonzero(~truth & (s >= t)) for t in thr])
    keep = [0]
    for i in range(1, len(thr) - 1):
        bent_f = fps[i + 1] - 2 * fps[i] + fps[i - 1] != 0
        bent_t = tps[i + 1] - 2 * tps[i] + tps[i - 1] != 0
        if bent_f or bent_t:
            keep.append(i)
    if len(thr) > 1:
        keep.append(len(thr) - 1)
    tpr = np.r_[0, tps[keep]] / truth.sum()
    fpr = np.r_[0, fps[keep]] / (~truth).sum()
    dist = np.abs(tpr - eps)
    best = min(range(len(dist)), key=lambda i: (dist[i], i))
    return math.inf if fpr[best] == 0 else 1 / fpr[best]


@pytest.mark.parametrize("seed", range(6))
def test_rejection_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 120
    labels = rng.integers(0, 4, n)
    scores = rng.dirichlet(np.ones(4), n)
    if seed % 2:  # coarse scores -> many tied discriminant values
        scores = np.round(scores, 1) + 1e-3
    signal = 1 + seed % 3
    keep = (labels == 0) | (labels == signal)
    s = scores[keep, signal] / (scores[keep, signal] + scores[keep, 0])
    truth = labels[keep] == signal
    for eps in (0.3, 0.5, 0.8, 0.99, 0.995):
        got = rejection(labels, scores, signal, 0, efficiency=eps)
        assert got == pytest.approx(_brute_force_rejection(truth, s, eps)), eps


# --------------------------------------------------------------------------- JetClass / binary

QCD_S = [0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25]
# (s of the higher, s of the lower signal jet) per class; Rej = 8 / #(QCD with s >= cut)
# where cut = higher jet at eff 0.5 and lower jet at eff 0.99 / 0.995 (TPR 0.5 / 1).
SIGNAL_S = {
    "Hbb": (0.9, 0.1),    # 8/1
    "Hcc": (0.8, 0.1),    # 8/2
    "Hgg": (0.7, 0.1),    # 8/3
    "H4q": (0.6, 0.1),    # 8/4
    "Hqql": (0.98, 0.5),  # eff 0.99: 8/5  (at eff 0.5 it would be inf)
    "Tbqq": (0.98, 0.1),  # inf
    "Tbl": (0.98, 0.3),   # eff 0.995: 8/7 (at eff 0.5 it would be inf)
    "Wqq": (0.4, 0.1),    # 8/6
    "Zqq": (0.3, 0.1),    # 8/7
}
# (A pair like (0.2, 0.1), both below every QCD jet, would NOT give 8/8: the TPR-0.5 point
# then sits inside a vertical ROC run and drop_intermediate removes it; TPR 0 and 1 are then
# equally near and argmin takes the first TPR-0 point, (0, 0) -> inf.)
EXPECTED_JC = {
    "Hbb": 8.0, "Hcc": 4.0, "Hgg": 8 / 3, "H4q": 2.0, "Hqql": 1.6, "Tbqq": math.inf,
    "Tbl": 8 / 7, "Wqq": 4 / 3, "Zqq": 8 / 7,
}


def _jetclass_sample():
    rows, labels = [], []
    for q in QCD_S:  # every s_X = q: row [1-q, q, ..., q], then normalised (s is scale-free)
        row = np.r_[1 - q, np.full(9, q)]
        rows.append(row / row.sum())
        labels.append(0)
    for name, pair in SIGNAL_S.items():
        idx = JETCLASS_CLASSES.index(name)
        for s in pair:
            row = np.zeros(10)
            row[0], row[idx] = 1 - s, s
            rows.append(row)
            labels.append(idx)
    return np.array(labels), np.array(rows)


def test_jetclass_efficiencies_and_order():
    assert tuple(JETCLASS_SIGNAL_EFFICIENCY) == (
        "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Tbqq", "Tbl", "Wqq", "Zqq"
    ) == PAPER_COLUMN_ORDER
    assert JETCLASS_SIGNAL_EFFICIENCY == {
        "Hbb": 0.5, "Hcc": 0.5, "Hgg": 0.5, "H4q": 0.5, "Hqql": 0.99, "Tbqq": 0.5,
        "Tbl": 0.995, "Wqq": 0.5, "Zqq": 0.5,
    }


def test_jetclass_rejections_by_hand():
    labels, scores = _jetclass_sample()
    rej = jetclass_rejections(labels, scores)
    assert list(rej) == list(PAPER_COLUMN_ORDER)
    for name, value in EXPECTED_JC.items():
        assert rej[name] == pytest.approx(value), name


def test_jetclass_absent_class_gives_nan():
    labels, scores = _jetclass_sample()
    keep = labels != JETCLASS_CLASSES.index("Hgg")
    rej = jetclass_rejections(labels[keep], scores[keep])
    assert math.isnan(rej["Hgg"])
    assert rej["Wqq"] == pytest.approx(4 / 3)
    no_qcd = labels != 0
    assert all(math.isnan(v) for v in jetclass_rejections(labels[no_qcd], scores[no_qcd]).values())


# Ten top jets (class 0) and four QCD jets (class 1); the discriminant is the class-0 score.
BIN_S0 = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.87, 0.72, 0.3, 0.1])
BIN_LABELS = np.array([0] * 10 + [1] * 4)
BIN_SCORES = np.column_stack([BIN_S0, 1 - BIN_S0])


def test_binary_rejections_by_hand():
    # (TP, FP) per threshold: (1,0) (2,0) (2,1) (3,1) (4,1) (5,1) (5,2) (6,2) ... (10,2) (10,3)
    # (10,4). drop_intermediate removes (3,1), (4,1), (6..9,2), (10,3): kept (TPR, FPR) =
    # (0,0) (.1,0) (.2,0) (.2,.25) (.5,.25) (.5,.5) (1,.5) (1,1).
    # 50 %: exact TPR .5 first at FPR .25 -> 4.
    # 30 %: the exact point (.3, .25) was dropped; nearest kept TPR is .2 and its first point
    #       has FPR 0 -> inf (without drop_intermediate the answer would be 4).
    rej = binary_rejections(BIN_LABELS, BIN_SCORES)
    assert list(rej) == ["50%", "30%"]
    assert rej["50%"] == pytest.approx(4.0)
    assert rej["30%"] == math.inf
    assert binary_rejections(BIN_LABELS, BIN_SCORES, efficiencies=(0.995,)) == {
        "99.5%": pytest.approx(2.0)
    }
    # binary AUC by pair counting on the same jets
    assert auc_binary(BIN_LABELS, BIN_SCORES) == pytest.approx(
        _pairs_auc(BIN_S0[:10], BIN_S0[10:])
    )


# --------------------------------------------------------------------------- evaluate

COMMON_KEYS = {
    "dataset", "classes", "n_jets", "accuracy", "auc", "rejection", "signal_efficiency",
    "rejection_uncertainty", "n_false_positive", "n_background",
}


def test_evaluate_jetclass_keys_and_values():
    labels, scores = _jetclass_sample()
    rng = np.random.default_rng(0)
    scores = 0.999 * scores + 0.001 * rng.dirichlet(np.ones(10), len(labels))  # no zeros
    out = evaluate(labels, np.log(scores), "jetclass")
    assert set(out) == COMMON_KEYS | {"auc_ovo", "auc_ovr"}
    assert out["n_jets"] == len(labels) and out["n_background"] == 8
    assert out["auc"] == out["auc_ovo"] == pytest.approx(auc_ovo(labels, scores))
    assert out["auc_ovr"] == pytest.approx(auc_ovr(labels, scores))
    assert out["accuracy"] == pytest.approx(accuracy(labels, scores))
    assert list(out["rejection"]) == list(PAPER_COLUMN_ORDER)
    assert out["signal_efficiency"] == JETCLASS_SIGNAL_EFFICIENCY
    assert out["rejection"] == pytest.approx(jetclass_rejections(labels, scores))
    json.loads(json.dumps(out))  # plain Python values (inf/nan as Infinity/NaN)
    same = evaluate(labels, scores, "jetclass", from_logits=False)
    assert same["auc_ovr"] == pytest.approx(out["auc_ovr"])


def test_evaluate_binary_keys_and_values():
    logits = np.log(BIN_SCORES)
    out = evaluate(BIN_LABELS, logits, "toplandscape")
    assert set(out) == COMMON_KEYS
    assert out["classes"] == ["top", "QCD"]
    assert out["rejection"] == {"50%": pytest.approx(4.0), "30%": math.inf}
    assert out["signal_efficiency"] == {"50%": 0.5, "30%": 0.3}
    assert out["n_background"] == 4 and out["n_false_positive"] == {"50%": 1, "30%": 0}
    assert out["rejection_uncertainty"]["50%"] == pytest.approx(4.0)
    assert math.isnan(out["rejection_uncertainty"]["30%"])
    assert out["accuracy"] == pytest.approx(12 / 14)  # QCD jets 0.87 and 0.72 called top
    assert out["auc"] == pytest.approx(auc_binary(BIN_LABELS, BIN_SCORES))
    json.dumps(out)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        ([0.0, 1.0], [[0.5, 0.5], [0.5, 0.5]], "integer"),
        ([True, False], [[0.5, 0.5], [0.5, 0.5]], "integer"),
        ([[0, 1]], [[0.5, 0.5], [0.5, 0.5]], "1-D"),
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], r"\[0, 2\)"),
        ([0, -1], [[0.5, 0.5], [0.5, 0.5]], r"\[0, 2\)"),
        ([0, 1], [0.5, 0.5], "2-D"),
        ([0, 1], [[1.0], [1.0]], "at least 2"),
        ([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]], "rows"),
        ([0, 1], [[np.nan, 0.5], [0.5, 0.5]], "finite"),
        ([0, 1], [[np.inf, 0.5], [0.5, 0.5]], "finite"),
        ([], np.zeros((0, 2)), "no jets"),
        ([0, 1], [["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_validation_errors(labels, scores, match):
    with pytest.raises(ValueError, match=match):
        accuracy(labels, scores)


def test_validation_errors_specific():
    with pytest.raises(ValueError, match="differ"):
        rejection(REJ_LABELS, REJ_SCORES, 0, 0, efficiency=0.5)
    with pytest.raises(ValueError, match="signal"):
        rejection(REJ_LABELS, REJ_SCORES, 3, efficiency=0.5)
    with pytest.raises(ValueError, match="efficiency"):
        rejection(REJ_LABELS, REJ_SCORES, 1, efficiency=1.5)
    with pytest.raises(ValueError, match="sum to 1"):
        auc_ovo(LABELS3, SCORES3 * 2)
    with pytest.raises(ValueError, match="unknown dataset"):
        evaluate(LABELS3, SCORES3, "jetnet")
    with pytest.raises(ValueError, match="10 classes"):
        evaluate(LABELS3, SCORES3, "jetclass")
    with pytest.raises(ValueError, match="10 columns"):
        jetclass_rejections(LABELS3, SCORES3)
    with pytest.raises(ValueError, match="2 score columns"):
        binary_rejections(LABELS3, SCORES3)
    with pytest.raises(ValueError, match="logits must be finite"):
        evaluate([0, 1], [[np.nan, 0.0], [0.0, 0.0]], "quarkgluon")

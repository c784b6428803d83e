"""Classification metrics of the ParT tables, defined exactly as docs/metrics.md#metrics (and docs/pitfalls.md#pitfall-11-auc-and-rejection-details).

Companion to arXiv 2512.00210 ("Why Is Attention Sparse in Particle Transformer?") and
Wang et al., ML4PS@NeurIPS 2024 ("Interpreting Transformers for Jet Tagging"); the
conventions follow the code behind their tables:

* :func:`accuracy` -- fraction of jets whose argmax score is the label (weaver
  ``evaluate_classification``).
* :func:`auc_ovo` -- "weaver flavour" AUC: ``roc_auc_score(label index, softmax scores,
  multi_class="ovo")``, the macro one-vs-one AUC of Hand & Till (2001).
* :func:`auc_ovr` -- "Wang et al. flavour" AUC: their call ``roc_auc_score(one-hot labels,
  scores, average="macro", multi_class="ovo")`` makes sklearn switch to multilabel mode and
  ignore ``multi_class``; the result is the mean of the per-class one-vs-rest binary AUCs
  (docs/metrics.md#auc-wang-et-al-flavour, docs/pitfalls.md#pitfall-11-auc-and-rejection-details). Implemented here explicitly as that mean.
* :func:`pairwise_auc_matrix`, :func:`confusion_matrix` -- the extra matrices weaver logs.
* :func:`rejection` -- background rejection 1/FPR at the ROC point whose TPR is nearest to
  the target signal efficiency (EPT ``backgroundRejection.ipynb``, matching the ParT paper):
  discriminant ``p_X / (p_X + p_QCD)`` on jets of truth X or QCD, ROC from
  ``sklearn.metrics.roc_curve`` with its default ``drop_intermediate=True``,
  ``idx = argmin |TPR - eps|`` (``np.argmin`` takes the *first* minimum, i.e. the point with
  the higher threshold / lower TPR and FPR when two points are equally near),
  ``Rej = 1 / FPR[idx]`` and ``inf`` when that FPR is 0.
* :func:`jetclass_rejections` -- the nine Rej columns in the papers' order
  (:data:`partnb.data.schema.PAPER_COLUMN_ORDER`) at :data:`JETCLASS_SIGNAL_EFFICIENCY`.
* :func:`binary_rejections` -- TopLandscape / QuarkGluon: Rej at 50 % and 30 % signal
  efficiency with class 0 (top / quark) as signal and the class-0 score as discriminant.
* :func:`evaluate` -- everything above for one dataset as one JSON-able dict.

Which AUC flavour the papers' "AUC" columns use is not stated (docs/analyses.md#open-questions), so
:func:`evaluate` reports both for multi-class data.

All functions take integer class indices ``labels`` (shape ``(N,)``, values in
``[0, n_classes)``) and per-class ``scores`` (shape ``(N, n_classes)``, finite); anything else
raises ``ValueError`` naming the problem. Scores are expected to be softmax probabilities
(:func:`softmax` turns logits into them, in float64).

Conventions for data that cannot define a metric (e.g. a single JetClass file holds one
class only): an AUC or rejection that needs a class absent from ``labels`` is ``nan``
(no exception, no warning). Infinite rejections (FPR = 0) are ``inf``; ``json.dumps`` writes
``inf`` / ``nan`` as ``Infinity`` / ``NaN``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from partnb.data.schema import DATASETS, JETCLASS_CLASSES, PAPER_COLUMN_ORDER

__all__ = [
    "BINARY_SIGNAL_EFFICIENCIES",
    "JETCLASS_SIGNAL_EFFICIENCY",
    "PAIRWISE_EPS",
    "RejectionPoint",
    "accuracy",
    "auc_binary",
    "auc_ovo",
    "auc_ovr",
    "binary_discriminant",
    "binary_rejections",
    "confusion_matrix",
    "evaluate",
    "jetclass_rejections",
    "pairwise_auc_matrix",
    "rejection",
    "rejection_point",
    "softmax",
]

#: Signal efficiency at which each JetClass rejection is quoted (docs/metrics.md#background-rejection), in table order.
JETCLASS_SIGNAL_EFFICIENCY: dict[str, float] = {
    "Hbb": 0.5,
    "Hcc": 0.5,
    "Hgg": 0.5,
    "H4q": 0.5,
    "Hqql": 0.99,
    "Tbqq": 0.5,
    "Tbl": 0.995,
    "Wqq": 0.5,
    "Zqq": 0.5,
}
assert tuple(JETCLASS_SIGNAL_EFFICIENCY) == PAPER_COLUMN_ORDER

#: Signal efficiencies of the TopLandscape / QuarkGluon tables (ParT paper convention).
BINARY_SIGNAL_EFFICIENCIES: tuple[float, ...] = (0.5, 0.3)

#: Floor of the denominator of the pairwise discriminant of :func:`pairwise_auc_matrix`.
PAIRWISE_EPS = 1e-6

_QCD_INDEX = JETCLASS_CLASSES.index("QCD")


# --------------------------------------------------------------------------- validation


def _as_labels(labels: Any) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("no jets: labels are empty")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _as_scores(scores: Any, name: str = "scores") -> np.ndarray:
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (jets, classes), got shape {arr.shape}")
    if arr.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 class columns, got {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, found {bad} NaN/inf entries")
    return arr


def _check(labels: Any, scores: Any, name: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``labels`` (int64) and ``scores`` (float64)."""
    lab = _as_labels(labels)
    sc = _as_scores(scores, name)
    if sc.shape[0] != lab.shape[0]:
        raise ValueError(
            f"{name} has {sc.shape[0]} rows but labels has {lab.shape[0]} entries"
        )
    n_classes = sc.shape[1]
    if lab.min() < 0 or lab.max() >= n_classes:
        raise ValueError(
            f"labels must lie in [0, {n_classes}) for {n_classes} score columns, "
            f"found values in [{lab.min()}, {lab.max()}]"
        )
    return lab, sc


def _check_class(index: Any, n_classes: int, what: str) -> int:
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise ValueError(f"{what} must be an integer class index, got {index!r}")
    if not 0 <= int(index) < n_classes:
        raise ValueError(f"{what} = {index} is outside [0, {n_classes})")
    return int(index)


def _check_efficiency(efficiency: Any) -> float:
    eff = float(efficiency)
    if not (math.isfinite(eff) and 0.0 <= eff <= 1.0):
        raise ValueError(f"efficiency must lie in [0, 1], got {efficiency!r}")
    return eff


def _rows_sum_to_one(scores: np.ndarray, what: str) -> None:
    # Same tolerance as sklearn's check in multi-class roc_auc_score (np.allclose defaults).
    if not np.allclose(scores.sum(axis=1), 1.0):
        raise ValueError(
            f"{what} needs probabilities whose rows sum to 1 (use softmax() or "
            "evaluate(..., from_logits=True))"
        )


# --------------------------------------------------------------------------- basics


def softmax(logits: Any) -> np.ndarray:
    """Numerically stable softmax over the last axis, computed in float64.

    Args:
        logits: array ``(N, n_classes)`` of finite logits (any float dtype).

    Returns:
        float64 array of the same shape whose rows sum to 1. The row maximum is
        subtracted before ``exp``, so logits of any magnitude are safe; classes more than
        ~745 below the row maximum underflow to exactly 0.
    """
    z = _as_scores(logits, "logits")
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def accuracy(labels: Any, scores: Any) -> float:
    """Fraction of jets with ``argmax(scores) == label`` (docs/metrics.md#accuracy).

    Args:
        labels: integer class indices, shape ``(N,)``.
        scores: per-class scores or logits, shape ``(N, n_classes)`` (argmax is the same).

    Returns:
        Accuracy in ``[0, 1]``. Ties in the scores go to the lowest class index (``argmax``).
    """
    lab, sc = _check(labels, scores)
    return float(np.mean(np.argmax(sc, axis=1) == lab))


def binary_discriminant(scores: Any, signal: int, background: int) -> np.ndarray:
    """The discriminant of docs/metrics.md#background-rejection: ``p_signal / (p_signal +
    p_background)``, and 0.5 where both are exactly 0 (no floor on the denominator, so a
    tiny but non-zero sum keeps its exact ratio).

    The one definition every ROC and rejection of partnb uses (:func:`rejection_point`,
    :func:`auc_binary`, :func:`partnb.analysis.performance.roc_curves`).

    Args:
        scores: per-class probabilities, shape ``(N, n_classes)``.
        signal: score column of the signal class.
        background: score column of the background class.

    Returns:
        float64 array ``(N,)`` in ``[0, 1]`` for non-negative scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    num = scores[:, signal]
    den = num + scores[:, background]
    out = np.full(num.shape, 0.5)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Binary ROC AUC; ``nan`` when only one class is present."""
    if truth.all() or not truth.any():
        return math.nan
    return float(roc_auc_score(truth, score))


def auc_binary(labels: Any, scores: Any) -> float:
    """AUC of a two-class problem with class 0 (top / quark) as positive (docs/metrics.md#binary-datasets).

    The discriminant is the softmax-normalised class-0 score ``s0 / (s0 + s1)``, which is
    ``s0`` itself for softmax outputs.

    Args:
        labels: class indices in ``{0, 1}``, shape ``(N,)``.
        scores: shape ``(N, 2)``.

    Returns:
        The AUC (ties count 1/2), or ``nan`` when one of the classes is absent.
    """
    lab, sc = _check(labels, scores)
    if sc.shape[1] != 2:
        raise ValueError(f"auc_binary needs 2 score columns, got {sc.shape[1]}")
    return _auc(lab == 0, binary_discriminant(sc, 0, 1))


def auc_ovo(labels: Any, scores: Any) -> float:
    """Weaver-flavour AUC: macro one-vs-one (Hand & Till), docs/metrics.md#auc-weaver-flavour.

    Multi-class: ``sklearn.metrics.roc_auc_score(labels, scores, multi_class="ovo")``, i.e.
    the mean over unordered class pairs ``{a, b}`` of ``(A(a|b) + A(b|a)) / 2``, where
    ``A(a|b)`` is the AUC of score column ``a`` separating class ``a`` (positive) from class
    ``b`` using only jets of those two classes. Two classes: :func:`auc_binary`.

    Args:
        labels: integer class indices, shape ``(N,)``.
        scores: softmax probabilities, shape ``(N, n_classes)``; for more than two classes
            the rows must sum to 1 (sklearn's requirement).

    Returns:
        The AUC, or ``nan`` when any class is absent from ``labels`` (sklearn would raise).
    """
    lab, sc = _check(labels, scores)
    if sc.shape[1] == 2:
        return auc_binary(lab, sc)
    _rows_sum_to_one(sc, "auc_ovo")
    if np.unique(lab).size != sc.shape[1]:
        return math.nan
    return float(roc_auc_score(lab, sc, multi_class="ovo", labels=np.arange(sc.shape[1])))


def auc_ovr(labels: Any, scores: Any) -> float:
    """Wang et al.-flavour AUC: mean of the per-class one-vs-rest binary AUCs (docs/metrics.md#auc-wang-et-al-flavour).

    Class ``c``'s AUC uses score column ``c`` as discriminant and ``label == c`` as positive,
    over all jets. This equals ``roc_auc_score(one_hot(labels), scores, average="macro")``,
    which is what the EPT code computes (docs/pitfalls.md#pitfall-11-auc-and-rejection-details).

    Args:
        labels: integer class indices, shape ``(N,)``.
        scores: per-class scores, shape ``(N, n_classes)``.

    Returns:
        The mean AUC, or ``nan`` when any class is absent from ``labels``.
    """
    lab, sc = _check(labels, scores)
    aucs = [_auc(lab == c, sc[:, c]) for c in range(sc.shape[1])]
    return float(np.mean(aucs))  # nan propagates from an absent class


def pairwise_auc_matrix(labels: Any, scores: Any) -> np.ndarray:
    """Pairwise AUC matrix weaver logs next to the ovo AUC (docs/metrics.md#auc-weaver-flavour).

    ``R[i, j]`` is the AUC of ``s_j / max(s_i + s_j, 1e-6)`` on jets whose class is ``i``
    or ``j``, with class ``j`` positive. Weaver fills only ``i < j`` (zeros elsewhere); here
    every off-diagonal entry is computed (``R[j, i] == R[i, j]`` up to the 1e-6 floor) and
    the diagonal is ``nan``.

    Args:
        labels: integer class indices, shape ``(N,)``.
        scores: per-class scores, shape ``(N, n_classes)``.

    Returns:
        float64 array ``(n_classes, n_classes)``; entries involving an absent class are ``nan``.
    """
    lab, sc = _check(labels, scores)
    n = sc.shape[1]
    out = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            keep = (lab == i) | (lab == j)
            si, sj = sc[keep, i], sc[keep, j]
            out[i, j] = _auc(lab[keep] == j, sj / np.maximum(si + sj, PAIRWISE_EPS))
    return out


def confusion_matrix(labels: Any, scores: Any, normalize: str | None = "true") -> np.ndarray:
    """Confusion matrix of truth (rows) vs argmax prediction (columns), as weaver logs it.

    Args:
        labels: integer class indices, shape ``(N,)``.
        scores: per-class scores, shape ``(N, n_classes)``.
        normalize: ``"true"`` (rows sum to 1, weaver's choice), ``"pred"`` (columns sum to
            1), ``"all"`` (entries sum to 1) or ``None`` (counts), as in sklearn.

    Returns:
        float64 array ``(n_classes, n_classes)`` (int64 for ``normalize=None``). Like sklearn,
        a row / column with no jets is all zeros.
    """
    lab, sc = _check(labels, scores)
    if normalize not in ("true", "pred", "all", None):
        raise ValueError(f"normalize must be 'true', 'pred', 'all' or None, got {normalize!r}")
    n = sc.shape[1]
    pred = np.argmax(sc, axis=1)
    counts = np.bincount(lab * n + pred, minlength=n * n).reshape(n, n)
    if normalize is None:
        return counts
    cm = counts.astype(np.float64)
    if normalize == "true":
        den = cm.sum(axis=1, keepdims=True)
    elif normalize == "pred":
        den = cm.sum(axis=0, keepdims=True)
    else:
        den = np.full((1, 1), cm.sum())
    return np.divide(cm, den, out=np.zeros_like(cm), where=den > 0)


# --------------------------------------------------------------------------- rejection


class RejectionPoint(NamedTuple):
    """The ROC point chosen by :func:`rejection_point` and its statistics."""

    #: ``1 / fpr`` (``inf`` when fpr = 0, ``nan`` when signal or background is absent)
    rejection: float
    #: target signal efficiency
    efficiency: float
    #: TPR and FPR of the chosen ROC point
    tpr: float
    fpr: float
    #: discriminant threshold of the point (jets with ``s >= threshold`` are selected)
    threshold: float
    #: background jets passing the threshold (``k = fpr * n_background``)
    n_false_positive: int
    n_background: int
    n_signal: int
    #: ``rejection / sqrt(k)``: binomial (Poisson, k << N) error of ``k`` only;
    #: ``nan`` when k = 0 or the rejection is undefined
    uncertainty: float


def rejection_point(
    labels: Any, scores: Any, signal: int, background: int = _QCD_INDEX, *, efficiency: float
) -> RejectionPoint:
    """ROC point and rejection for ``signal`` vs ``background`` (docs/metrics.md#background-rejection), with statistics.

    Steps, exactly as the EPT notebook: keep jets whose truth is ``signal`` or
    ``background``; discriminant ``s = p_signal / (p_signal + p_background)`` (0.5 if both
    are exactly 0); ``fpr, tpr, thr = roc_curve(truth == signal, s)`` with sklearn's default
    ``drop_intermediate=True`` (which also prepends the point (0, 0) at threshold ``inf``);
    ``idx = argmin |tpr - efficiency|`` -- ``np.argmin`` returns the first minimum, so of two
    equally near points the one with the lower TPR (higher threshold, lower FPR, higher
    rejection) wins; ``rejection = 1 / fpr[idx]``, ``inf`` if ``fpr[idx] == 0``.

    The uncertainty treats the number ``k`` of background jets passing the cut as the only
    random quantity: FPR = k / N_bkg with relative error ``sqrt((1 - FPR) / k) ~ 1 / sqrt(k)``
    for FPR << 1 (the ``1 / sqrt(k)`` form is used; the fluctuation of the working point
    from the finite signal sample is neglected). Rej ~ 1e4 needs >= 1e5-1e6 background jets
    for a meaningful value (docs/pitfalls.md#pitfall-11-auc-and-rejection-details).

    Args:
        labels: integer class indices, shape ``(N,)``.
        scores: per-class probabilities, shape ``(N, n_classes)``.
        signal: class index of the signal (positive) class.
        background: class index of the background (default 0 = QCD for JetClass).
        efficiency: target signal efficiency in ``[0, 1]``.

    Returns:
        A :class:`RejectionPoint`; all of its float fields are ``nan`` when the signal or the
        background class is absent from ``labels``.
    """
    lab, sc = _check(labels, scores)
    n_classes = sc.shape[1]
    sig = _check_class(signal, n_classes, "signal")
    bkg = _check_class(background, n_classes, "background")
    if sig == bkg:
        raise ValueError(f"signal and background must differ, both are {sig}")
    eff = _check_efficiency(efficiency)
    keep = (lab == sig) | (lab == bkg)
    truth = lab[keep] == sig
    n_sig = int(np.count_nonzero(truth))
    n_bkg = int(truth.size - n_sig)
    if n_sig == 0 or n_bkg == 0:
        nan = math.nan
        return RejectionPoint(nan, eff, nan, nan, nan, 0, n_bkg, n_sig, nan)
    disc = binary_discriminant(sc[keep], sig, bkg)
    fpr, tpr, thr = roc_curve(truth, disc, drop_intermediate=True)
    idx = int(np.argmin(np.abs(tpr - eff)))
    f = float(fpr[idx])
    k = int(round(f * n_bkg))
    rej = math.inf if f == 0.0 else 1.0 / f
    unc = rej / math.sqrt(k) if k > 0 else math.nan
    return RejectionPoint(rej, eff, float(tpr[idx]), f, float(thr[idx]), k, n_bkg, n_sig, unc)


def rejection(
    labels: Any, scores: Any, signal: int, background: int = _QCD_INDEX, *, efficiency: float
) -> float:
    """Background rejection ``1 / FPR`` at the ROC point nearest to ``efficiency`` (docs/metrics.md#background-rejection).

    See :func:`rejection_point` for the exact procedure and tie rule.

    Args:
        labels: integer class indices, shape ``(N,)``.
        scores: per-class probabilities, shape ``(N, n_classes)``.
        signal: class index of the signal (positive) class.
        background: class index of the background (default 0 = QCD).
        efficiency: target signal efficiency in ``[0, 1]`` (keyword-only).

    Returns:
        The rejection; ``inf`` when the chosen FPR is 0, ``nan`` when the signal or the
        background class is absent from ``labels``.
    """
    return rejection_point(labels, scores, signal, background, efficiency=efficiency).rejection


def _jetclass_points(labels: Any, scores: Any) -> dict[str, RejectionPoint]:
    lab, sc = _check(labels, scores)
    if sc.shape[1] != len(JETCLASS_CLASSES):
        raise ValueError(
            f"JetClass scores need {len(JETCLASS_CLASSES)} columns, got {sc.shape[1]}"
        )
    return {
        name: rejection_point(
            lab, sc, JETCLASS_CLASSES.index(name), _QCD_INDEX, efficiency=eff
        )
        for name, eff in JETCLASS_SIGNAL_EFFICIENCY.items()
    }


def jetclass_rejections(labels: Any, scores: Any) -> dict[str, float]:
    """The nine JetClass rejection columns of the papers' tables (docs/metrics.md#background-rejection).

    Args:
        labels: JetClass class indices (order :data:`partnb.data.schema.JETCLASS_CLASSES`).
        scores: softmax probabilities, shape ``(N, 10)``.

    Returns:
        ``{name: Rej}`` in :data:`partnb.data.schema.PAPER_COLUMN_ORDER` (Hbb, Hcc, Hgg, H4q,
        Hqql, Tbqq, Tbl, Wqq, Zqq), each vs QCD at :data:`JETCLASS_SIGNAL_EFFICIENCY`. A class
        absent from ``labels`` (or no QCD jets at all) gives ``nan`` for that column.
    """
    return {name: p.rejection for name, p in _jetclass_points(labels, scores).items()}


def _efficiency_key(efficiency: float) -> str:
    return f"{100 * efficiency:g}%"


def _binary_points(
    labels: Any, scores: Any, efficiencies: Sequence[float]
) -> dict[str, RejectionPoint]:
    lab, sc = _check(labels, scores)
    if sc.shape[1] != 2:
        raise ValueError(f"binary rejections need 2 score columns, got {sc.shape[1]}")
    effs = [_check_efficiency(e) for e in efficiencies]
    return {_efficiency_key(e): rejection_point(lab, sc, 0, 1, efficiency=e) for e in effs}


def binary_rejections(
    labels: Any, scores: Any, efficiencies: Sequence[float] = BINARY_SIGNAL_EFFICIENCIES
) -> dict[str, float]:
    """TopLandscape / QuarkGluon rejections (docs/metrics.md#binary-datasets, ParT paper convention).

    Signal is class 0 (top / quark), background class 1; the discriminant is the
    softmax-normalised class-0 score ``s0 / (s0 + s1)``; the point is chosen as in
    :func:`rejection_point`.

    Args:
        labels: class indices in ``{0, 1}``, shape ``(N,)``.
        scores: shape ``(N, 2)``.
        efficiencies: signal efficiencies, default ``(0.5, 0.3)``.

    Returns:
        ``{"50%": Rej, "30%": Rej}`` (keys ``f"{100 * eff:g}%"``, in the given order).
    """
    return {k: p.rejection for k, p in _binary_points(labels, scores, efficiencies).items()}


# --------------------------------------------------------------------------- evaluate


def evaluate(
    labels: Any, logits_or_scores: Any, dataset: str, *, from_logits: bool = True
) -> dict[str, Any]:
    """All table metrics of one dataset as one JSON-able dict (docs/metrics.md#metrics).

    Args:
        labels: integer class indices (weaver order), shape ``(N,)``.
        logits_or_scores: network outputs, shape ``(N, n_classes)``.
        dataset: a key of :data:`partnb.data.schema.DATASETS` (``"jetclass"``,
            ``"toplandscape"``, ``"quarkgluon"``).
        from_logits: if True (default) apply :func:`softmax` (float64) first; else the
            input must already be probabilities.

    Returns:
        A dict of plain Python values with keys ``dataset``, ``classes``, ``n_jets``,
        ``accuracy``, ``auc`` (= ``auc_ovo`` for multi-class, :func:`auc_binary` for two
        classes), ``rejection``, ``signal_efficiency``, ``rejection_uncertainty``
        (``Rej / sqrt(k)``, see :func:`rejection_point`), ``n_false_positive`` (``k``) and
        ``n_background`` (number of background jets: QCD for JetClass, class 1 for binary).
        Multi-class adds ``auc_ovo`` and ``auc_ovr``; its rejection dicts are keyed by class
        name in paper column order, the binary ones by ``"50%"`` / ``"30%"``. Values may be
        ``inf`` / ``nan`` (see the module docstring).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}")
    classes = DATASETS[dataset].classes
    lab, raw = _check(labels, logits_or_scores, "logits" if from_logits else "scores")
    if raw.shape[1] != len(classes):
        raise ValueError(
            f"dataset {dataset!r} has {len(classes)} classes but the scores have "
            f"{raw.shape[1]} columns"
        )
    scores = softmax(raw) if from_logits else raw

    out: dict[str, Any] = {
        "dataset": dataset,
        "classes": list(classes),
        "n_jets": int(lab.size),
        "accuracy": accuracy(lab, scores),
    }
    if len(classes) == 2:
        out["auc"] = auc_binary(lab, scores)
        points = _binary_points(lab, scores, BINARY_SIGNAL_EFFICIENCIES)
        n_background = int(np.count_nonzero(lab == 1))
    else:
        ovo = auc_ovo(lab, scores)
        out["auc"] = ovo
        out["auc_ovo"] = ovo
        out["auc_ovr"] = auc_ovr(lab, scores)
        points = _jetclass_points(lab, scores)
        n_background = int(np.count_nonzero(lab == _QCD_INDEX))
    out["rejection"] = {k: p.rejection for k, p in points.items()}
    out["signal_efficiency"] = {k: p.efficiency for k, p in points.items()}
    out["rejection_uncertainty"] = {k: p.uncertainty for k, p in points.items()}
    out["n_false_positive"] = {k: p.n_false_positive for k, p in points.items()}
    out["n_background"] = n_background
    return out

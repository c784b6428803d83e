"""The zero-U ablation table (docs/analyses.md#zero-u-ablation).

:func:`ablation_rows` evaluates the trained model, U := 0 (``Intervention(zero_u=True)``), the
literal ablation (PairEmbed parameters zeroed, :func:`~partnb.model.part.zero_pair_embed_params`),
the control the paper lacks, A := 0 with U kept (``Intervention(zero_a=True)``), and ParT-plain,
each with accuracy, both AUC flavours and the rejections of
docs/metrics.md#background-rejection; :func:`ablation_verdict` words what the two ablations
together say, from the measured numbers and stated thresholds. :func:`metrics_row` is the one
row format of this table and of the top-k table (:mod:`partnb.analysis.topk`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["COLLAPSE_THRESHOLD", "SIMILAR_COLLAPSE", "ablation_rows", "ablation_verdict",
           "metrics_row", "published_row"]

#: An ablation "collapses" the tagger when it loses at least this fraction of the
#: above-chance accuracy (used by :func:`ablation_verdict`).
COLLAPSE_THRESHOLD = 0.5
#: Two ablations collapse the tagger "as much" when their relative losses differ by less.
SIMILAR_COLLAPSE = 0.15


# --- zero-U ablation (docs/analyses.md#zero-u-ablation) ------------------------------------------------------------


def _bootstrap_error(fn, labels: np.ndarray, scores: np.ndarray, n: int = 20, seed: int = 0) -> float:
    """Standard deviation of ``fn(labels, scores)`` over ``n`` bootstrap resamples of jets."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(labels), len(labels))
        values.append(fn(labels[idx], scores[idx]))
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


def metrics_row(model_name: str, intervention: str, labels: np.ndarray, logits: np.ndarray,
                dataset: str, bootstrap: int = 20) -> dict:
    """One row of the ablation / top-k tables: accuracy (binomial error), AUC (bootstrap
    error), both AUC flavours for multi-class data, rejections (docs/metrics.md#background-rejection) with their errors."""
    from partnb.metrics import auc_ovo, evaluate, softmax

    result = evaluate(labels, logits, dataset)
    scores = softmax(logits)
    acc = result["accuracy"]
    row = {"model": model_name, "intervention": intervention, "n_jets": result["n_jets"],
           "accuracy": acc, "accuracy_err": math.sqrt(acc * (1 - acc) / result["n_jets"]),
           "auc": result["auc"], "auc_err": _bootstrap_error(auc_ovo, np.asarray(labels), scores,
                                                           bootstrap)}
    if "auc_ovr" in result:
        row["auc_ovo"] = result["auc_ovo"]
        row["auc_ovr"] = result["auc_ovr"]
    row.update({f"rej_{k}": v for k, v in result["rejection"].items()})
    row.update({f"rej_err_{k}": v for k, v in result["rejection_uncertainty"].items()})
    return row


def published_row(model_name: str, published: dict) -> dict:
    """A published row in the layout of :func:`metrics_row` (missing numbers are None)."""
    row = {"model": model_name, "intervention": published.get("source", "published"),
           "n_jets": None, "accuracy": published.get("accuracy"), "accuracy_err": None,
           "auc": published.get("auc"), "auc_err": None}
    row.update({f"rej_{k}": v for k, v in published.get("rejection", {}).items()})
    return row


def ablation_rows(model, inputs, dataset: str, *, batch_size: int = 100, plain_model=None,
                  published: Sequence[tuple[str, dict]] = (), progress: bool = False) -> list[dict]:
    """The zero-U ablation table (docs/analyses.md#zero-u-ablation) plus the A := 0 control and ParT-plain.

    Args:
        model: the trained ParT (with pair embedding).
        inputs: :class:`~partnb.data.features.JetInputs` (labels needed).
        dataset: ``"jetclass"``, ``"toplandscape"`` or ``"quarkgluon"`` (metric layout).
        batch_size: jets per forward pass.
        plain_model: the separately trained ParT-plain model, or None (row left out).
        published: (row name, published numbers) rows appended as they are.
        progress: tqdm bar over the models.

    Returns:
        rows with ``model``, ``intervention``, accuracy, AUC(s), rejections and errors.
    """
    from tqdm.auto import tqdm

    from partnb.model.factory import predict
    from partnb.model.part import Intervention, zero_pair_embed_params

    runs = [("trained", "none", model, None),
            ("trained", "zero_u (U:=0)", model, Intervention(zero_u=True)),
            ("trained", "zero_u (params zeroed)", zero_pair_embed_params(model), None),
            ("trained", "zero_a (A:=0, U kept)", model, Intervention(zero_a=True))]
    if plain_model is not None:
        runs.append(("plain", "none (trained without U)", plain_model, None))
    rows = []
    for name, what, net, iv in tqdm(runs, disable=not progress, desc="ablation", leave=False):
        logits = predict(net, inputs, batch_size=batch_size, intervention=iv)
        rows.append(metrics_row(name, what, inputs.label, logits, dataset))
    rows += [published_row(name, values) for name, values in published]
    return rows


def ablation_verdict(rows: Sequence[dict], labels: np.ndarray) -> dict:
    """What removing U and removing A together say, from the measured accuracies.

    The relative collapse of an ablation is the fraction of the above-chance accuracy it
    loses, c = (acc_trained - acc) / (acc_trained - acc_chance), with acc_chance the frequency
    of the most common class. A collapse is c >= :data:`COLLAPSE_THRESHOLD`; two collapses are
    "as large" when |c_A - c_U| < :data:`SIMILAR_COLLAPSE`.

    Returns:
        dict with the accuracies, c_U, c_A, the verdict (``"co-adaptation"``,
        ``"U dominates"``, ``"A dominates"``, ``"no collapse"``) and a sentence.
    """
    acc = {r["intervention"]: r["accuracy"] for r in rows if r["model"] == "trained"}
    trained, zero_u, zero_a = acc["none"], acc["zero_u (U:=0)"], acc["zero_a (A:=0, U kept)"]
    chance = float(np.bincount(np.asarray(labels)).max() / len(labels))
    span = trained - chance
    c_u = (trained - zero_u) / span if span > 0 else math.nan
    c_a = (trained - zero_a) / span if span > 0 else math.nan
    numbers = (f"accuracy {trained:.3f} trained, {zero_u:.3f} with U := 0, {zero_a:.3f} with "
               f"A := 0 (chance {chance:.3f}); relative collapse c_U = {c_u:.2f}, c_A = {c_a:.2f}")
    rule = (f"(collapse: c >= {COLLAPSE_THRESHOLD}; 'as much': |c_A - c_U| < {SIMILAR_COLLAPSE})")
    if not span > 0:
        verdict, text = "no collapse", "the trained model is not above chance: nothing to ablate"
    elif c_u >= COLLAPSE_THRESHOLD and abs(c_a - c_u) < SIMILAR_COLLAPSE:
        verdict = "co-adaptation"
        text = ("removing A collapses the tagger as much as removing U: the zero-U collapse shows "
                "that the network was trained to need both terms (co-adaptation), not that U "
                "dominates")
    elif c_u >= COLLAPSE_THRESHOLD and c_u - c_a >= SIMILAR_COLLAPSE:
        verdict = "U dominates"
        text = "removing U costs clearly more than removing A: U carries more of the decision"
    elif c_a >= COLLAPSE_THRESHOLD and c_a - c_u >= SIMILAR_COLLAPSE:
        verdict = "A dominates"
        text = "removing A costs clearly more than removing U: A carries more of the decision"
    else:
        verdict = "no collapse"
        if c_u - c_a >= SIMILAR_COLLAPSE:
            compared = "removing U costs clearly more than removing A"
        elif c_a - c_u >= SIMILAR_COLLAPSE:
            compared = "removing A costs clearly more than removing U"
        else:
            compared = "removing either costs about as much"
        text = f"neither ablation collapses the tagger at this scale; {compared}"
    return {"accuracy_trained": trained, "accuracy_zero_u": zero_u, "accuracy_zero_a": zero_a,
            "accuracy_chance": chance, "collapse_u": c_u, "collapse_a": c_a, "verdict": verdict,
            "sentence": f"{numbers}: {text} {rule}."}

"""Tagging performance in the papers' layout: metrics table rows and ROC curves."""

from __future__ import annotations

import numpy as np

from partnb.metrics import binary_discriminant

__all__ = ["metrics_rows", "roc_curves", "roc_rows", "model_size_rows"]


def metrics_rows(result: dict, dataset: str, published: dict | None = None, label: str = "partnb") -> list[dict]:
    """One row per model: accuracy, AUC, then the rejections in the papers' column order
    (JetClass: Hbb ... Zqq; binary: Rej at 50 % and 30 %)."""
    rows = [{"model": label, "n_jets": result["n_jets"], "accuracy": result["accuracy"],
             "auc": result["auc"], **{f"rej_{k}": v for k, v in result["rejection"].items()}}]
    if dataset != "toplandscape" and dataset != "quarkgluon":
        rows[0]["auc_ovr"] = result.get("auc_ovr")
    if published:
        rows.append({"model": published["source"], "n_jets": None, "accuracy": published["accuracy"],
                     "auc": published["auc"],
                     **{f"rej_{k}": v for k, v in published["rejection"].items()}})
    return rows


def roc_curves(labels: np.ndarray, scores: np.ndarray, classes, dataset: str) -> dict:
    """Signal efficiency vs background rejection per signal class against QCD (JetClass),
    or class 0 against class 1 (binary), with the discriminant of docs/metrics.md#background-rejection
    (:func:`partnb.metrics.binary_discriminant`, the one the rejections use)."""
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels)
    out = {}
    if len(classes) == 2:
        pairs = [(0, 1)]
    else:
        pairs = [(c, 0) for c in range(1, len(classes))]
    for sig, bkg in pairs:
        sel = (labels == sig) | (labels == bkg)
        if not (np.any(labels[sel] == sig) and np.any(labels[sel] == bkg)):
            continue
        fpr, tpr, _ = roc_curve(labels[sel] == sig, binary_discriminant(scores[sel], sig, bkg))
        out[classes[sig]] = (tpr, fpr)
    return out


def roc_rows(curves: dict, n_points: int = 200) -> list[dict]:
    """ROC curves resampled at ``n_points`` signal efficiencies, as table rows."""
    rows = []
    grid = np.linspace(0.01, 1.0, n_points)
    for name, (tpr, fpr) in curves.items():
        f = np.interp(grid, tpr, fpr)
        for e, b in zip(grid, f, strict=True):
            rows.append({"class": name, "signal_efficiency": float(e), "background_efficiency": float(b),
                         "rejection": float(1 / b) if b > 0 else float("inf")})
    return rows


def model_size_rows(benchmark: dict, n_train: int, epochs: int, log: list[dict] | None = None) -> list[dict]:
    """Why the CPU default is the size it is: per model size measured in
    ``benchmarks/model.json`` (official ParT at P = 128, the CPU default at P = 64), the
    training and inference rates and the time the params' training budget (``n_train`` jets
    x ``epochs``) would take at that rate; with the training ``log`` of the default model,
    its measured time too."""
    rows = []
    by_config: dict[str, dict] = {}
    for r in benchmark.get("throughput", []):
        row = by_config.setdefault(r["config"], {
            "config": r["config"], "P": r["P"], "embed_dims": "x".join(map(str, r["embed_dims"])),
            "pair_embed_dims": "x".join(map(str, r["pair_embed_dims"])),
            "num_layers": r["num_layers"], "num_heads": r["num_heads"]})
        row[f"{r['mode']}_jets_per_s"] = r.get("partnb_jets_per_s")
    threads = benchmark.get("machine", {}).get("threads")
    for row in by_config.values():
        rate = row.get("train_jets_per_s")
        row["threads"] = threads
        row["projected_training_minutes"] = (n_train * epochs / rate / 60) if rate else None
        rows.append(row)
    if log:
        seconds = sum(float(r["seconds"]) for r in log)
        rows.append({"config": "this model (training log)", "train_jets_per_s":
                     round(n_train * len(log) / seconds, 1) if seconds else None,
                     "measured_training_minutes": seconds / 60})
    return rows

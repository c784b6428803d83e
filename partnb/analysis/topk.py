"""Top-k attention at inference (Wang et al., ML4PS 2024, Table 1; docs/analyses.md#top-k-attention).

Per particle block, head and query row only the k largest logits L = A + U over the real
keys are kept (the others −∞) before the softmax; k = 1 is hard attention, k >= n leaves a row
unchanged. The trained model is evaluated, without retraining, for each k of a list, with
accuracy, AUC and the rejections of docs/metrics.md#background-rejection, and the inference speed of each pass is measured
(jets/s). ``"all"`` means no intervention: the model's fused attention path, the baseline of
the timing; the explicit (unfused) path without restriction is timed as well, so the cost of
the explicit path and that of the top-k selection can be told apart. Whether the class-attention
blocks are restricted too is not stated in the paper (docs/analyses.md#open-questions): a parameter, default not.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from partnb.analysis.ablation import metrics_row

__all__ = ["TOPK_VALUES", "parse_k", "published_topk_rows", "topk_evaluation"]

#: The k of Wang et al. Table 1; "all" is their k = 128 (no restriction).
TOPK_VALUES = (1, 2, 3, 4, 6, 10, 20, 30, "all")


def parse_k(values: Sequence[int | str]) -> list[int | str]:
    """Validated list of k: positive integers or ``"all"``."""
    out: list[int | str] = []
    for k in values:
        if k == "all":
            out.append("all")
        elif isinstance(k, int | np.integer) and not isinstance(k, bool) and k >= 1:
            out.append(int(k))
        else:
            raise ValueError(f"k must be a positive integer or 'all', got {k!r}")
    return out


def _timed_logits(model, inputs, batch_size: int, intervention) -> tuple[np.ndarray, float]:
    from partnb.model.factory import predict

    start = time.perf_counter()
    logits = predict(model, inputs, batch_size=batch_size, intervention=intervention)
    return logits, time.perf_counter() - start


def topk_evaluation(model, inputs, dataset: str, k_values: Sequence[int | str] = TOPK_VALUES, *,
                    batch_size: int = 100, restrict_class_blocks: bool = False,
                    progress: bool = False) -> tuple[list[dict], list[dict]]:
    """Metrics and inference speed of the trained model under top-k attention (docs/analyses.md#top-k-attention).

    Args:
        model: the trained ParT.
        inputs: :class:`~partnb.data.features.JetInputs` with labels.
        dataset: metric layout (``"jetclass"``, ``"toplandscape"``, ``"quarkgluon"``).
        k_values: the k to run (positive integers, ``"all"`` = no intervention).
        batch_size: jets per forward pass.
        restrict_class_blocks: also restrict the class-attention blocks (``topk_cls``).
        progress: tqdm bar over k.

    Returns:
        (metric rows, timing rows). Metric rows: ``source`` = "partnb", ``k``, accuracy (with
        binomial error), AUC (bootstrap error), both AUC flavours for JetClass, rejections
        with errors. Timing rows: ``k``, attention path, seconds, jets/s, speed relative to
        the fused path, torch threads; plus a row for the explicit path without restriction.
    """
    from tqdm.auto import tqdm

    from partnb.model.part import Intervention

    k_values = parse_k(k_values)
    # warm-up: the trimmer's first 5 calls are untrimmed (docs/model.md#sequence-trimmer) and first calls are slow
    warm = inputs.take(np.arange(min(len(inputs), 6)))
    _timed_logits(model, warm, 1, None)
    threads = torch.get_num_threads()
    rows, timing = [], []
    for k in tqdm(k_values, disable=not progress, desc="top-k", leave=False):
        iv = None if k == "all" else Intervention(topk=k, topk_cls=restrict_class_blocks)
        logits, seconds = _timed_logits(model, inputs, batch_size, iv)
        row = metrics_row("partnb", "none" if iv is None else f"topk={k}", inputs.label, logits,
                          dataset)
        del row["model"], row["intervention"]
        rows.append({"source": "partnb", "k": k, **row})
        timing.append({"k": k, "path": "fused (SDPA)" if iv is None else "explicit + top-k",
                       "seconds": seconds, "jets_per_s": len(inputs) / seconds})
    # explicit path without restriction: k = P >= n for every jet leaves every row unchanged
    length = inputs.features.shape[-1]
    _, seconds = _timed_logits(model, inputs, batch_size, Intervention(topk=length))
    timing.append({"k": f"explicit (k={length})", "path": "explicit, no restriction",
                   "seconds": seconds, "jets_per_s": len(inputs) / seconds})
    fused = next((t["jets_per_s"] for t in timing if t["path"].startswith("fused")), None)
    for t in timing:
        t["relative_to_fused"] = t["jets_per_s"] / fused if fused else None
        t["threads"] = threads
        t["n_jets"] = len(inputs)
    return rows, timing


def published_topk_rows(published: dict, k_values: Sequence[int | str] = TOPK_VALUES) -> list[dict]:
    """Wang et al.'s Table 1 rows (``source`` = "paper") for the k of ``k_values`` they have."""
    out = []
    for k in parse_k(k_values):
        values = published["rows"].get(k)
        if values is None:
            continue
        out.append({"source": "paper", "k": k, "n_jets": None, "accuracy": values["accuracy"],
                    "accuracy_err": None, "auc": values["auc"], "auc_err": None,
                    **{f"rej_{c}": v for c, v in values["rejection"].items()}})
    return out

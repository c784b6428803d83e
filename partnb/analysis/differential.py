"""Differential attention against ParT's softmax (notebook 12, docs/analyses.md#differential-attention).

The differential variants (docs/model.md#differential-attention) weight the values with
P = P₁ − λ·P₂, a difference of two softmax maps: rows sum to 1 − λ and entries can be
negative. Notebook 12 compares, on the same test jets, the params' own model with every
variant file ``params/variants/<name>_*.yaml`` whose attention is ``differential`` or
``differential_u`` and which differs from the params in nothing else but the model's size
(:data:`SIZE_KEYS`, for the variant at the softmax model's parameter count).

What this module adds to :func:`~partnb.analysis.variants.variant_row` (tagger, zero-U
accuracy, sparsity, D/N, head fractions, speed):

* :func:`n_weights`: the model's trainable weights;
* :class:`SignedWeights`: per particle block, the distribution of the signed weights over
  (real query, real key) pairs, the fraction of negative entries and the negative mass per
  row, the row sums (1 − λ) and λ itself, with jackknife errors over jet groups;
* the accuracy with A := 0 (the query–key terms off, U kept) beside the one with U := 0;
* :func:`differential_verdict`: is the differential attention sparser, does it need U less,
  and what does it give at the softmax model's parameter count.

How "binary" reads a signed map: the fraction of rows whose largest weight is ≥ 0.8 and the
median row maximum use the weights as they are (a row's largest weight is positive, since
the row sums to 1 − λ ≥ 0); the exact-zero fraction and the entry histogram of
:class:`~partnb.analysis.sparsity.AttentionSparsity` count a negative weight as zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from partnb.model.part import DIFFERENTIAL

from .sparsity import BINARY_ROW_THRESHOLD, ROWS_MAX_COLUMNS, jackknife_ratio
from .stream import pair_layout

__all__ = ["DIFFERENTIAL", "SIZE_KEYS", "WEIGHT_EDGES", "SignedWeights", "n_weights",
           "differential_variants", "differential_row", "differential_verdict"]

#: params keys a notebook-12 variant may change besides the attention: the model's size
SIZE_KEYS = ("model.embed_dims", "model.pair_embed_dims")
#: edges of the signed-weight histogram: width 0.01 from −1 to 1 (P₁ − λ·P₂ ∈ [−1, 1])
WEIGHT_EDGES = np.round(np.linspace(-1.0, 1.0, 201), 10)
#: bins of WEIGHT_EDGES per unit of weight (the bin of w is floor((w + 1) · 100))
_BINS_PER_UNIT = round(1.0 / (WEIGHT_EDGES[1] - WEIGHT_EDGES[0]))
#: two numbers differ when they are further apart than this many combined errors
DIFFER_BY = 2.0


def n_weights(model) -> int:
    """Trainable weights of ``model`` (what "parameter count" means in notebook 12)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def differential_variants(params):
    """The differential variants of ``params`` (:func:`~partnb.analysis.variants.compare_variants`
    with ``attentions=DIFFERENTIAL`` and ``allow=SIZE_KEYS``): ([(name, params)] with the
    params' own model first, [{file, reason}] left out). A variant whose size differs from
    the params' gets its weight count in its name ("differential, 344k weights")."""
    from .variants import compare_variants, variant_files

    return compare_variants(params, variant_files(params), attentions=DIFFERENTIAL,
                            allow=SIZE_KEYS, weights_in_name=True)


class SignedWeights:
    """Stream consumer (:func:`~partnb.analysis.stream.stream_attention`, capture ``"P"``):
    the signed attention weights of every particle block over (real query, real key) pairs.

    Per block: a histogram of the weights on :data:`WEIGHT_EDGES` (everything outside
    clipped into the end bins; a softmax map fills only [0, 1]), and per jet group
    (jet index mod ``groups``) the entries, negative entries, rows, the sum of the negative
    weights and of the row sums, and rows whose largest weight is ≥ 0.8; and λ of the block
    (the same for every jet; NaN for a model without one).
    """

    def __init__(self, num_layers: int, *, groups: int = 20) -> None:
        self.L, self.K = num_layers, groups
        self.hist = np.zeros((num_layers, len(WEIGHT_EDGES) - 1), np.int64)
        # entries, negative entries, rows, rows with max >= 0.8
        self.counts = np.zeros((num_layers, groups, 4), np.int64)
        # sum of negative weights, sum of row sums (over rows)
        self.sums = np.zeros((num_layers, groups, 2), np.float64)
        self.lam = np.full(num_layers, math.nan)

    def update(self, key, record: dict, batch) -> None:
        if not isinstance(key, int) or "P" not in record:
            return
        P = record["P"]
        B, H = P.shape[:2]
        layout = pair_layout(record, batch, H)
        if not len(layout):
            return
        values = layout.gather(P).to(torch.float64)  # (H·m,), head by head, jet by jet
        bins = ((values - WEIGHT_EDGES[0]) * _BINS_PER_UNIT).floor().clamp_(0, len(WEIGHT_EDGES) - 2)
        bins = bins.to(torch.int64)
        self.hist[key] += torch.bincount(bins, minlength=len(WEIGHT_EDGES) - 1).numpy()
        group = torch.as_tensor(np.asarray(batch.index) % self.K)
        pair_group = group[layout.jet].repeat(H)  # (H·m,) the group of each entry
        K = self.K
        self.counts[key, :, 0] += torch.bincount(pair_group, minlength=K).numpy()
        neg = values < 0
        self.counts[key, :, 1] += torch.bincount(pair_group[neg], minlength=K).numpy()
        self.sums[key, :, 0] += torch.bincount(pair_group, weights=values.clamp(max=0.0),
                                               minlength=K).numpy()
        # rows: real queries of real jets; row sum and max over real keys
        real = ~record["padding_mask"]  # (B, P)
        padded_key = ~real[:, None, None, :]
        row_sum = P.masked_fill(padded_key, 0.0).sum(dim=-1, dtype=torch.float64)  # (B, H, P)
        row_max = P.masked_fill(padded_key, -math.inf).amax(dim=-1)
        rows = real[:, None, :].expand(B, H, real.shape[1])
        row_group = group[:, None, None].expand(B, H, real.shape[1])[rows]
        self.counts[key, :, 2] += torch.bincount(row_group, minlength=K).numpy()
        self.counts[key, :, 3] += torch.bincount(row_group[row_max[rows] >= BINARY_ROW_THRESHOLD],
                                                 minlength=K).numpy()
        self.sums[key, :, 1] += torch.bincount(row_group, weights=row_sum[rows],
                                               minlength=K).numpy()
        if "lambda" in record:
            self.lam[key] = float(record["lambda"])

    def block_rows(self, model: str = "model") -> list[dict]:
        """One row per particle block and one for all blocks ("all"): entries, the fraction
        of negative entries, the mean negative mass per row (Σ_j min(P_ij, 0)), the mean row
        sum, the fraction of rows with max ≥ 0.8 (jackknife errors) and λ."""
        out = []
        for layer in [*range(self.L), None]:
            sel = slice(None) if layer is None else slice(layer, layer + 1)
            c = self.counts[sel].sum(axis=0)  # (K, 4)
            s = self.sums[sel].sum(axis=0)    # (K, 2)
            row = {"model": model, "layer": "all" if layer is None else layer,
                   "entries": int(c[:, 0].sum()), "rows": int(c[:, 2].sum())}
            row["frac_negative"], row["frac_negative_err"] = jackknife_ratio(c[:, 1], c[:, 0])
            row["negative_mass_per_row"], row["negative_mass_per_row_err"] = jackknife_ratio(s[:, 0], c[:, 2])
            row["mean_row_sum"], row["mean_row_sum_err"] = jackknife_ratio(s[:, 1], c[:, 2])
            key = ROWS_MAX_COLUMNS[0]
            row[key], row[key + "_err"] = jackknife_ratio(c[:, 3], c[:, 2])
            if layer is not None:
                row["lambda"] = float(self.lam[layer])
            else:  # the mean over blocks; NaN for a model without λ
                row["lambda"] = float(np.nanmean(self.lam)) if np.isfinite(self.lam).any() else math.nan
            out.append(row)
        return out

    def histogram_rows(self, model: str = "model") -> list[dict]:
        """Every bin of the signed-weight histogram, all blocks together: model, lower and
        upper edge, entries, and the fraction of the model's entries in the bin."""
        total = self.hist.sum(axis=0)
        n = max(int(total.sum()), 1)
        return [{"model": model, "lo": float(WEIGHT_EDGES[i]), "hi": float(WEIGHT_EDGES[i + 1]),
                 "entries": int(total[i]), "fraction": float(total[i] / n)}
                for i in range(len(total))]

    def rows(self, model: str = "model") -> list[dict]:
        """The consumer table: :meth:`block_rows`."""
        return self.block_rows(model)


def differential_row(name: str, model, inputs, *, dataset: str, classes: Sequence[str],
                     batch_size: int = 100, **kw) -> tuple[dict, SignedWeights]:
    """:func:`~partnb.analysis.variants.variant_row` of one model, plus its weight count, its
    accuracy with A := 0 and what :class:`SignedWeights` measures over all blocks (fraction of
    negative entries, negative mass per row, mean row sum, mean λ). ``kw`` go to
    ``variant_row``. Returns (row, the SignedWeights consumer, for the per-block table and
    the histogram)."""
    from partnb.model.factory import predict
    from partnb.model.part import Intervention

    from .variants import variant_row

    signed = SignedWeights(len(model.blocks))
    row = variant_row(name, model, inputs, dataset=dataset, classes=classes,
                      batch_size=batch_size, extra_consumers=[signed], **kw)
    labels = np.asarray(inputs.label)
    zero_a = predict(model, inputs, batch_size=batch_size, intervention=Intervention(zero_a=True))
    acc = float((zero_a.argmax(axis=1) == labels).mean())
    row["accuracy_zero_a"] = acc
    row["accuracy_zero_a_err"] = math.sqrt(acc * (1 - acc) / len(labels))
    row["zero_a_drop"] = row["accuracy"] - acc
    row["n_weights"] = n_weights(model)
    row["attention"] = model.config["attention"]
    total = signed.block_rows(name)[-1]
    for key in ("frac_negative", "negative_mass_per_row", "mean_row_sum"):
        row[key], row[key + "_err"] = total[key], total[key + "_err"]
    row["lambda_mean"] = total["lambda"]
    return row, signed


def _compare(a: float, a_err: float, b: float, b_err: float) -> tuple[float, float, int]:
    """(b − a, combined error, −1 / 0 / +1: lower, the same, higher within DIFFER_BY errors)."""
    err = math.hypot(a_err, b_err)
    delta = b - a
    if not math.isfinite(delta) or not err or abs(delta) < DIFFER_BY * err:
        return delta, err, 0
    return delta, err, 1 if delta > 0 else -1


def differential_verdict(rows: Sequence[dict]) -> dict:
    """The computed answers of notebook 12 from :func:`differential_row` rows (the first is
    the params' own model, the others differential variants).

    Per variant, against the first row: the accuracy change, whether its attention is
    sparser (rows with max ≥ 0.8 and median row maximum), whether it needs U less (its
    zero-U drop against the base's), the weight counts; and ``sentence``. Two numbers
    differ when they are more than :data:`DIFFER_BY` combined errors apart (binomial errors
    of the accuracies; the zero-U drops take the errors of both accuracies, conservatively
    as if independent)."""
    binary = ROWS_MAX_COLUMNS[0]
    if not rows:
        return {"n_variants": 0, "sentence": "No model is trained: nothing to compare."}
    base = rows[0]
    out: dict = {"base": base["model"], "base_weights": base["n_weights"],
                 "n_variants": len(rows) - 1, "variants": {}}
    if len(rows) == 1:
        return out | {"sentence": f"Only {base['model']} is trained ({base['n_weights']:,} "
                                  "weights): no differential variant to compare with yet."}
    word = {-1: "lower", 0: "the same", 1: "higher"}

    def drop_err(r):
        return math.hypot(r["accuracy_err"], r["accuracy_zero_u_err"])

    parts = []
    for r in rows[1:]:
        acc = _compare(base["accuracy"], base["accuracy_err"], r["accuracy"], r["accuracy_err"])
        sparse = _compare(base[binary], base[binary + "_err"], r[binary], r[binary + "_err"])
        drop = _compare(base["zero_u_drop"], drop_err(base), r["zero_u_drop"], drop_err(r))
        v = {"n_weights": r["n_weights"], "weights_ratio": r["n_weights"] / base["n_weights"],
             "accuracy_change": acc[0], "accuracy_error": acc[1], "accuracy": word[acc[2]],
             "same_accuracy": acc[2] == 0,
             binary: r[binary], "binary_change": sparse[0], "binary_error": sparse[1],
             "sparser": sparse[2] > 0, "median_row_max": r["median_row_max"],
             "zero_u_drop": r["zero_u_drop"], "zero_u_drop_change": drop[0],
             "zero_u_drop_error": drop[1], "needs_u_less": drop[2] < 0,
             "needs_u_more": drop[2] > 0, "frac_negative": r.get("frac_negative", math.nan),
             "lambda_mean": r.get("lambda_mean", math.nan)}
        out["variants"][r["model"]] = v
        u_words = ("less" if v["needs_u_less"] else "more" if v["needs_u_more"] else "as much")
        parts.append(
            f"{r['model']} ({r['n_weights']:,} weights, {v['weights_ratio']:.2f}×): accuracy "
            f"{r['accuracy']:.3f} ({acc[0]:+.3f} ± {acc[1]:.3f}, {word[acc[2]]}); rows with "
            f"max ≥ 0.8 {r[binary]:.2%} against {base[binary]:.2%} ("
            + ("sparser" if sparse[2] > 0 else "less sparse" if sparse[2] < 0 else "the same")
            + f"), median row maximum {r['median_row_max']:.3f} against {base['median_row_max']:.3f}; "
            f"U := 0 costs {r['zero_u_drop']:.3f} against {base['zero_u_drop']:.3f}: it needs U "
            f"{u_words}; {r.get('frac_negative', math.nan):.1%} of its weights are negative "
            f"(mean λ {r.get('lambda_mean', math.nan):.3f})")
    out["any_sparser"] = any(v["sparser"] for v in out["variants"].values())
    out["any_needs_u_less"] = any(v["needs_u_less"] for v in out["variants"].values())
    out["sentence"] = (f"Against {base['model']} ({base['n_weights']:,} weights, accuracy "
                       f"{base['accuracy']:.3f}): " + "; ".join(parts)
                       + f". (Differ: more than {DIFFER_BY:g} combined statistical errors; the "
                       "seed-to-seed spread of a training is not in them.)")
    return out

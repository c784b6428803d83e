"""What the interaction term U does: zero-U ablation, interaction-dependent computation, U itself.

Companion to arXiv 2512.00210 ("Why Is Attention Sparse in Particle Transformer?"):

* :func:`ablation_rows` -- the zero-U ablation table (docs/analyses.md#zero-u-ablation): the trained model, U := 0
  (``Intervention(zero_u=True)``), the literal ablation (PairEmbed parameters zeroed,
  :func:`~partnb.model.part.zero_pair_embed_params`), the control the paper lacks, A := 0 with
  U kept (``Intervention(zero_a=True)``), and ParT-plain, each with accuracy, both AUC
  flavours and the rejections of docs/metrics.md#background-rejection; :func:`ablation_verdict` words what the two
  ablations together say, from the measured numbers and stated thresholds.
* :class:`InteractionCounter` -- the interaction-dependent and non-binary computations and
  their correlation (docs/analyses.md#interaction-dependent-and-non-binary-computation): per unit of computation (jet, layer, head, real query i),
  D = [argmax_j (A + U)_ij != argmax_j A_ij] (real keys j, ties to the lowest index) and
  N = [max_j W_ij < 0.8]; rates, token coverages, the phi coefficient of D and N, and the
  Pearson correlation of the per-token counts, each with a jackknife error over jet groups.
* :func:`interaction_metrics` -- the counter run on float32 and float64 pair features in
  lockstep (docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise), with the fraction of argmax decisions that flip.
* :class:`UStructure` -- the distribution of U over real pairs, self pairs (diagonal)
  against the others, per head: does U suppress self-attention?
* :class:`RowVariation` -- per layer and head, how much of each attention row's variation
  over the real keys comes from A and how much from U (paired std over keys).

Every consumer streams (``update(key, record, batch)`` of :mod:`partnb.analysis.stream`):
only counters and fixed-size histograms are kept, so memory is flat in the number of jets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from partnb.analysis.sparsity import BINARY_ROW_THRESHOLD
from partnb.analysis.stream import Scratch, pair_layout, real_queries, stream_attention
from partnb.model.part import padding_bias

__all__ = [
    "COLLAPSE_THRESHOLD",
    "NON_BINARY_THRESHOLD",
    "SIMILAR_COLLAPSE",
    "U_EDGES",
    "as_coded_interaction_metrics",
    "as_coded_rows",
    "as_coded_sentence",
    "InteractionCounter",
    "RowVariation",
    "UStructure",
    "ablation_rows",
    "ablation_verdict",
    "argmax_decisions",
    "interaction_metrics",
    "interaction_rows",
    "metrics_row",
    "published_row",
]

#: A row is non-binary when its largest attention weight is below this (docs/analyses.md#interaction-dependent-and-non-binary-computation):
#: the binary-row threshold of :mod:`partnb.analysis.sparsity`, defined there.
NON_BINARY_THRESHOLD = BINARY_ROW_THRESHOLD
#: An ablation "collapses" the tagger when it loses at least this fraction of the
#: above-chance accuracy (used by :func:`ablation_verdict`).
COLLAPSE_THRESHOLD = 0.5
#: Two ablations collapse the tagger "as much" when their relative losses differ by less.
SIMILAR_COLLAPSE = 0.15
#: Histogram edges of U: fine near 0 (GELU's minimum is -0.17), coarser above.
U_EDGES = np.unique(np.concatenate([np.linspace(-0.2, 0.2, 401), np.linspace(0.2, 5.0, 481),
                                    np.linspace(5.0, 50.0, 451)]))
_GROUPS = 10  # jackknife groups of jets (jet index modulo _GROUPS)
#: Fine bins of U for the histogram: 0.001 wide from U_EDGES[0] to U_EDGES[-1] (every edge of
#: U_EDGES is one of theirs), found by arithmetic and summed into U_EDGES afterwards
_FINE_STEP = 0.001
_N_FINE = int(round((U_EDGES[-1] - U_EDGES[0]) / _FINE_STEP))
_FINE_STARTS = np.round((U_EDGES[:-1] - U_EDGES[0]) / _FINE_STEP).astype(np.int64)


def _fine_u_bins(u: Tensor, work: Tensor, codes: Tensor) -> Tensor:
    """int32 fine bin of each U (values outside the range go to the end bins) into ``codes``."""
    torch.add(torch.tensor(-U_EDGES[0] / _FINE_STEP, dtype=u.dtype), u, alpha=1 / _FINE_STEP,
              out=work)
    return codes.copy_(work.clamp_(0, _N_FINE - 1))


def _fine_u_hist(u: Tensor, heads: int, work: Tensor, codes: Tensor) -> Tensor:
    """(heads, fine bins) counts of U values ordered head by head (equal counts per head);
    ``work`` and ``codes`` are buffers of the same length."""
    fine = _fine_u_bins(u, work, codes)
    fine.view(heads, -1).add_(torch.arange(heads, dtype=torch.int32)[:, None] * _N_FINE)
    return torch.bincount(fine, minlength=heads * _N_FINE).reshape(heads, _N_FINE)


def _count(flags: Tensor) -> Tensor:
    """Number of True along the last axis of a bool tensor, int32."""
    return flags.view(torch.uint8).sum(dim=-1, dtype=torch.int32)


def _coarse_u_hist(fine: np.ndarray) -> np.ndarray:
    """Counts in the U_EDGES bins (last axis) from fine-bin counts."""
    return np.add.reduceat(fine, _FINE_STARTS, axis=-1).astype(float)


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


# --- interaction-dependent and non-binary computation (docs/analyses.md#interaction-dependent-and-non-binary-computation) ---------------------------


def argmax_decisions(a: Tensor, u: Tensor, weights: Tensor, padding_mask: Tensor,
                     threshold: float = NON_BINARY_THRESHOLD) -> dict[str, Tensor]:
    """Per computation (b, h, i): the argmax keys and the D and N indicators (docs/analyses.md#interaction-dependent-and-non-binary-computation).

    Args:
        a, u, weights: (B, H, P, P) A, U and the post-softmax weights W of one block.
        padding_mask: (B, P) True = padded particle.
        threshold: N = max_j W_ij < threshold.

    Returns:
        ``argmax_l`` and ``argmax_a`` (B, H, P) long (argmax over real keys; ties go to the
        lowest index), ``D``, ``N`` (B, H, P) bool, zero on padded queries, and ``real``
        (B, 1, P) bool.
    """
    keys = padding_mask[:, None, None, :]
    real = (~padding_mask)[:, None, :]
    # torch.argmax returns the first maximal index: ties -> lowest j
    argmax_l = (a + u).masked_fill(keys, -math.inf).argmax(dim=-1)
    argmax_a = a.masked_fill(keys, -math.inf).argmax(dim=-1)
    d = (argmax_l != argmax_a) & real
    n = (weights.masked_fill(keys, 0.0).amax(dim=-1) < threshold) & real
    return {"argmax_l": argmax_l, "argmax_a": argmax_a, "D": d, "N": n, "real": real}


class InteractionCounter:
    """Streaming counts of docs/analyses.md#interaction-dependent-and-non-binary-computation over the particle blocks (class blocks excluded).

    Per jet group g (jet index modulo 10, for the jackknife) it keeps: computations, ΣD, ΣN,
    ΣDN; tokens, tokens with D = 1 somewhere (coverage), tokens with N = 1 somewhere; and the
    sums of the per-token counts x = Σ_{ℓ,h} D, y = Σ_{ℓ,h} N (x, y, xy, x², y²) for the
    alternative PCC reading. A token's counts are complete after the last block of a batch;
    they are folded in by ``update_logits`` (called by ``stream_attention`` after each batch).

    Args:
        threshold: N = max_j W < threshold.
        keep_decisions: keep the last batch's per-block decisions (for the float32 vs float64
            comparison of :func:`interaction_metrics`).
        variant: ``"correct"`` counts the attention the forward pass computes; ``"as_coded"``
            counts D′ and N′ of the papers' capture (docs/analyses.md#the-capture-bug-of-the-papers-scripts):
            A′ from the second attention call on the module's own output and W′ =
            softmax(A′ + U + M), over the same real queries and keys (stream with
            ``as_coded=True``).
    """

    _FIELDS = ("computations", "D", "N", "DN", "tokens", "cover_D", "cover_N",
               "x", "y", "xy", "xx", "yy")

    def __init__(self, threshold: float = NON_BINARY_THRESHOLD, keep_decisions: bool = False,
                 variant: str = "correct") -> None:
        if variant not in ("correct", "as_coded"):
            raise ValueError(f"variant must be 'correct' or 'as_coded', got {variant!r}")
        self.variant = variant
        self._first: dict | None = None
        self.threshold = threshold
        self.keep_decisions = keep_decisions
        self.stats = {name: np.zeros(_GROUPS) for name in self._FIELDS}
        self.decisions: dict[int, dict[str, Tensor]] = {}
        self._tokens: tuple[Tensor, Tensor, Tensor, np.ndarray] | None = None
        self.n_jets = 0
        self._scratch = Scratch()

    def update(self, key, record: dict[str, Tensor], batch) -> None:
        if not isinstance(key, int):
            return
        if "A_as_coded" in record:  # the second record of a block, when streamed as coded
            if self.variant != "as_coded":
                return
            first, self._first = self._first, None
            record = {"A": record["A_as_coded"], "P": record["P_as_coded"], "U": first["U"],
                      "padding_mask": first["padding_mask"]}
        elif self.variant == "as_coded":
            self._first = record  # U and the mask for the as-coded record that follows
            if "U" not in record:
                raise ValueError("interaction metrics need U: the model has no pair embedding")
            return
        if "U" not in record:
            raise ValueError("interaction metrics need U: the model has no pair embedding")
        dec = self._decisions(record)
        d, n, real = dec["D"], dec["N"], dec["real"]
        group = np.asarray(batch.index) % _GROUPS
        heads = d.shape[1]
        for name, value in (("computations", real.sum(dim=(1, 2)) * heads),
                            ("D", d.sum(dim=(1, 2))), ("N", n.sum(dim=(1, 2))),
                            ("DN", (d & n).sum(dim=(1, 2)))):
            np.add.at(self.stats[name], group, value.double().numpy())
        if self._tokens is None:
            self._tokens = (torch.zeros(real.shape[0], real.shape[-1]),
                            torch.zeros(real.shape[0], real.shape[-1]), real[:, 0], group)
        x, y, _, _ = self._tokens
        x += d.sum(dim=1)
        y += n.sum(dim=1)
        if self.keep_decisions:
            self.decisions[key] = dec

    def _decisions(self, record: dict[str, Tensor]) -> dict[str, Tensor]:
        """:func:`argmax_decisions` of one block, without its two argmax calls (argmax is
        ~15× slower than max on CPU): where the maxima over the real keys of A + U and of A
        are both unique, D = 0 exactly when one key attains both; the rare rows with a tie
        get the argmaxes themselves (ties go to the lowest index). Uses the probe's L
        (= A + U, −∞ on padded keys) when it was captured, and the exact zeros of W on
        padded keys. ``argmax_l`` is computed only with ``keep_decisions``."""
        a, weights, padding = record["A"], record["P"], record["padding_mask"]
        P = a.shape[-1]
        real = (~padding)[:, None, :]
        minus_inf = padding_bias(padding, a.dtype)
        logits = record.get("L")
        if logits is None:
            logits = (a + record["U"]).add_(minus_inf)
        size = a.numel()
        masked_a = torch.add(a, minus_inf, out=self._scratch("a", size, a.dtype).view(a.shape))
        at_max_a = torch.eq(masked_a, masked_a.amax(dim=-1, keepdim=True),
                            out=self._scratch("max_a", size, torch.bool).view(a.shape))
        at_max_l = torch.eq(logits, logits.amax(dim=-1, keepdim=True),
                            out=self._scratch("max_l", size, torch.bool).view(a.shape))
        # counts over keys as uint8 sums into int32 (bool reductions are several times slower)
        tied = (_count(at_max_a) > 1) | (_count(at_max_l) > 1)
        tied &= real
        d = (_count(at_max_a.logical_and_(at_max_l)) == 0) & real
        rows = torch.nonzero(tied.reshape(-1))[:, 0]
        if rows.numel():
            first_a = masked_a.reshape(-1, P).index_select(0, rows).argmax(dim=-1)
            first_l = logits.reshape(-1, P).index_select(0, rows).argmax(dim=-1)
            d.view(-1)[rows] = first_a != first_l
        n = (weights.amax(dim=-1) < self.threshold) & real
        out = {"D": d, "N": n, "real": real}
        if self.keep_decisions:
            out["argmax_l"] = logits.argmax(dim=-1)
        return out

    def update_logits(self, logits: Tensor, batch) -> None:
        """Fold the finished batch's per-token counts in."""
        self.flush()
        self.n_jets += len(batch.index)

    def flush(self) -> None:
        if self._tokens is None:
            return
        x, y, real, group = self._tokens
        realf = real.double()
        x, y = x.double() * realf, y.double() * realf
        for name, value in (("tokens", realf), ("cover_D", (x > 0).double()),
                            ("cover_N", (y > 0).double()), ("x", x), ("y", y), ("xy", x * y),
                            ("xx", x * x), ("yy", y * y)):
            np.add.at(self.stats[name], group, value.sum(dim=1).numpy())
        self._tokens = None

    @staticmethod
    def _metrics(s: dict[str, float]) -> dict[str, float]:
        def ratio(a, b):
            return a / b if b > 0 else math.nan

        n, d, nn, dn = s["computations"], s["D"], s["N"], s["DN"]
        phi_den = math.sqrt(max(d * (n - d) * nn * (n - nn), 0.0))
        t = s["tokens"]
        tok_den = math.sqrt(max((t * s["xx"] - s["x"] ** 2) * (t * s["yy"] - s["y"] ** 2), 0.0))
        return {"rate_D": ratio(d, n), "coverage_D": ratio(s["cover_D"], t),
                "rate_N": ratio(nn, n), "coverage_N": ratio(s["cover_N"], t),
                "pcc_phi": ratio(n * dn - d * nn, phi_den),
                "pcc_token_counts": ratio(t * s["xy"] - s["x"] * s["y"], tok_den)}

    def result(self) -> dict[str, float]:
        """Rates, coverages and both PCC readings, each with a jackknife error
        (``<name>_err``, delete-one-group over 10 interleaved jet groups), and the counts."""
        self.flush()
        total = {k: float(v.sum()) for k, v in self.stats.items()}
        out = self._metrics(total)
        used = [g for g in range(_GROUPS) if self.stats["tokens"][g] > 0]
        errors = {}
        if len(used) > 1:
            loo = [self._metrics({k: total[k] - float(v[g]) for k, v in self.stats.items()})
                   for g in used]
            m = len(used)
            for name in out:
                vals = np.array([r[name] for r in loo])
                errors[name] = float(math.sqrt((m - 1) / m * np.sum((vals - vals.mean()) ** 2)))
        out.update({f"{k}_err": errors.get(k, math.nan) for k in list(out)})
        out.update({"n_jets": self.n_jets, "n_tokens": int(total["tokens"]),
                    "n_computations": int(total["computations"])})
        return out


def interaction_metrics(model, inputs, *, batch_size: int = 100, compare_float64: bool = True,
                        consumers: Sequence[object] = (), progress: bool = False) -> dict:
    """The metrics of docs/analyses.md#interaction-dependent-and-non-binary-computation on float32 pair features and (optionally) float64 ones, in lockstep.

    Each batch runs through :func:`~partnb.analysis.stream.stream_attention` twice (pair
    features computed in float32, then in float64 and cast, docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise), so that every
    argmax decision can be compared between the two without storing more than one batch.

    Args:
        model: ParT with pair embedding.
        inputs: :class:`~partnb.data.features.JetInputs`.
        batch_size: jets per forward pass.
        compare_float64: also run the float64 pass and count flips.
        consumers: further consumers fed by the float32 pass (e.g. :class:`UStructure`).
        progress: tqdm bar over batches.

    Returns:
        ``{"float32": result, "float64": result or None, "flips": {...}}``; flips hold the
        fractions of computations whose argmax_j(A+U), D or N differ between the passes.
    """
    from tqdm.auto import tqdm

    c32 = InteractionCounter(keep_decisions=compare_float64)
    c64 = InteractionCounter(keep_decisions=True) if compare_float64 else None
    flips = {"argmax": 0.0, "D": 0.0, "N": 0.0, "computations": 0.0}
    starts = range(0, len(inputs), batch_size)
    for start in tqdm(starts, disable=not progress, desc="interaction", unit="batch", leave=False):
        chunk = inputs.take(np.arange(start, min(start + batch_size, len(inputs))))
        stream_attention(model, chunk, [c32, *consumers], batch_size=batch_size,
                         capture=("A", "U", "L", "P"))
        if c64 is None:
            continue
        stream_attention(model, chunk, [c64], batch_size=batch_size, capture=("A", "U", "L", "P"),
                         vectors_dtype=torch.float64)
        for key, full32 in c32.decisions.items():
            # the trimmer's first calls are untrimmed: crop both passes to the shorter length
            length = min(full32["real"].shape[-1], c64.decisions[key]["real"].shape[-1])
            d32 = {k: v[..., :length] for k, v in full32.items()}
            d64 = {k: v[..., :length] for k, v in c64.decisions[key].items()}
            real = d32["real"]
            flips["computations"] += float(real.sum()) * d32["D"].shape[1]
            flips["argmax"] += float(((d32["argmax_l"] != d64["argmax_l"]) & real).sum())
            flips["D"] += float((d32["D"] != d64["D"]).sum())
            flips["N"] += float((d32["N"] != d64["N"]).sum())
        c32.decisions.clear()
        c64.decisions.clear()
    total = flips.pop("computations")
    fractions = {f"flip_{k}": (v / total if total else math.nan) for k, v in flips.items()}
    return {"float32": c32.result(), "float64": c64.result() if c64 else None, "flips": fractions}


def interaction_rows(results: Sequence[tuple[str, dict]], published: dict | None = None) -> list[dict]:
    """Table rows of :func:`interaction_metrics` results: one per (model, precision), the
    flip fractions on the float32 row of each model that has a float64 pass, and the paper row."""
    names = ("rate_D", "coverage_D", "rate_N", "coverage_N", "pcc_phi", "pcc_token_counts")
    rows = []
    for model_name, res in results:
        for precision in ("float32", "float64"):
            r = res.get(precision)
            if r is None:
                continue
            row = {"model": model_name, "pair_features": precision, "n_jets": r["n_jets"],
                   "n_computations": r["n_computations"]}
            for name in names:
                row[name] = r[name]
                row[f"{name}_err"] = r[f"{name}_err"]
            if res.get("float64") is not None:
                row.update(res["flips"])
            rows.append(row)
    if published:
        rows.append({"model": published["source"], "pair_features": "?", "n_jets": None,
                     "n_computations": None, **{k: published.get(k) for k in names}})
    return rows


def as_coded_interaction_metrics(model, inputs, *, batch_size: int = 100,
                                 progress: bool = False) -> dict[str, dict]:
    """D, N and both PCC readings of the correct capture and of the papers' as-coded one
    (D′ = argmax(A′ + U) ≠ argmax A′, N′ = max W′ < 0.8 with W′ = softmax(A′ + U + M); the
    same real queries and keys), from one streamed pass: ``{"correct": result, "as_coded":
    result}`` as :meth:`InteractionCounter.result`."""
    correct, coded = InteractionCounter(), InteractionCounter(variant="as_coded")
    stream_attention(model, inputs, [correct, coded], batch_size=batch_size,
                     capture=("A", "U", "L", "P"), as_coded=True, progress=progress,
                     desc="as coded")
    return {"correct": correct.result(), "as_coded": coded.result()}


_PCC_NAMES = ("rate_D", "coverage_D", "rate_N", "coverage_N", "pcc_phi", "pcc_token_counts")


def as_coded_rows(results: dict[str, dict], published: dict | None = None) -> list[dict]:
    """One row per reading (correct, as coded) and the paper's row, with errors."""
    rows = []
    for reading, r in results.items():
        row = {"reading": reading, "n_jets": r["n_jets"], "n_computations": r["n_computations"]}
        for name in _PCC_NAMES:
            row[name], row[f"{name}_err"] = r[name], r[f"{name}_err"]
        rows.append(row)
    if published:
        rows.append({"reading": published["source"], "n_jets": None, "n_computations": None,
                     **{k: published.get(k) for k in _PCC_NAMES}})
    return rows


def as_coded_sentence(results: dict[str, dict], published: dict) -> dict:
    """Which of the paper's numbers the as-coded reading lies closer to than the correct one,
    per metric: "closer" or "farther" when the two readings differ by more than two combined
    jackknife errors, else "unchanged"; as a sentence and per metric."""
    groups: dict[str, list[str]] = {"closer": [], "farther": [], "unchanged": []}
    detail = {}
    for name in _PCC_NAMES:
        paper = published.get(name)
        if paper is None or not np.isfinite(paper):
            continue
        c, a = results["correct"][name], results["as_coded"][name]
        err = math.hypot(results["correct"].get(f"{name}_err", 0.0) or 0.0,
                         results["as_coded"].get(f"{name}_err", 0.0) or 0.0)
        if not (np.isfinite(c) and np.isfinite(a)) or abs(a - c) <= 2 * err:
            change = "unchanged"
        else:
            change = "closer" if abs(a - paper) < abs(c - paper) else "farther"
        detail[name] = {"paper": paper, "correct": c, "as_coded": a, "change": change}
        groups[change].append(f"{name} ({c:.3g} → {a:.3g}; paper {paper:.3g})")
    text = {k: ", ".join(v) if v else "none" for k, v in groups.items()}
    sentence = (f"Counted on the papers' as-coded capture, these numbers move towards the paper: "
                f"{text['closer']}; away from it: {text['farther']}; unchanged within two "
                f"errors: {text['unchanged']}.")
    return {"sentence": sentence, "metrics": detail}


# --- the structure of U --------------------------------------------------------------------


class UStructure:
    """Distribution of U over real pairs, diagonal (self pairs) vs off-diagonal, per head.

    U is the same for every particle block (docs/model.md#pair-embedding-u), so only block ``layer`` is read.
    Kept per head: histograms on :data:`U_EDGES` (values outside clipped into the end bins),
    count, sum and sum of squares of U for diagonal and off-diagonal pairs, and the self
    rank of each real row with n >= 2: (#{j != i: U_ij < U_ii} + ½ #{j != i: U_ij = U_ii}) /
    (n - 1), 0 when the self pair has the row's lowest U, ½ by chance.
    """

    def __init__(self, layer: int = 0) -> None:
        self.layer = layer
        self.edges = U_EDGES
        self._scratch = Scratch()
        self.hist: dict[str, np.ndarray] | None = None
        self.sums: dict[str, np.ndarray] | None = None

    def _init(self, heads: int) -> None:
        bins = len(self.edges) - 1
        self.hist = {k: np.zeros((heads, bins)) for k in ("diag", "offdiag")}
        self.sums = {k: np.zeros(heads) for k in
                     ("n_diag", "s_diag", "ss_diag", "n_offdiag", "s_offdiag", "ss_offdiag",
                      "rows", "rank", "rank2", "self_lowest", "min", "max")}
        self.sums["min"][:] = np.inf
        self.sums["max"][:] = -np.inf

    def update(self, key, record: dict[str, Tensor], batch) -> None:
        if key != self.layer or "U" not in record:
            return
        u = record["U"].float()
        B, heads, P, _ = u.shape
        if self.hist is None:
            self._init(heads)
        key_real = (~record["padding_mask"])[:, None, None, :]  # (B, 1, 1, P)
        query_real = key_real[:, :, 0]  # (B, 1, P)
        # histogram per head of all real pairs (fine 0.001 bins, summed into U_EDGES at the
        # end) and of the diagonal; off-diagonal = all − diagonal. The layout orders the
        # gathered pairs head by head: (H, m).
        layout = pair_layout(record, batch, heads)
        M = len(layout)
        vals = layout.gather(u, out=self._scratch("u", M))
        work = self._scratch("work", M)
        all_pairs = _fine_u_hist(vals, heads, work, self._scratch("codes", M, torch.int32))
        diag = torch.diagonal(u, dim1=-2, dim2=-1)  # (B, H, P)
        rows_real = query_real.expand(B, heads, P)
        diag_real = diag.transpose(0, 1)[rows_real.transpose(0, 1)]  # head by head
        on_diag = _fine_u_hist(diag_real, heads, torch.empty_like(diag_real),
                               torch.empty(diag_real.shape, dtype=torch.int32))
        self.hist["diag"] += _coarse_u_hist(on_diag.numpy())
        self.hist["offdiag"] += _coarse_u_hist((all_pairs - on_diag).numpy())
        # sums and extremes per head
        per_head = vals.view(heads, -1)
        s_all = per_head.sum(dim=-1).double()
        ss_all = torch.mul(vals, vals, out=work).view(heads, -1).sum(dim=-1).double()
        d = diag_real.view(heads, -1).double()
        s_diag, ss_diag = d.sum(dim=-1), (d * d).sum(dim=-1)
        n_diag, n_all = d.shape[1], per_head.shape[1]
        for name, n, total, squares in (("diag", n_diag, s_diag, ss_diag),
                                        ("offdiag", n_all - n_diag, s_all - s_diag,
                                         ss_all - ss_diag)):
            self.sums[f"n_{name}"] += n
            self.sums[f"s_{name}"] += total.numpy()
            self.sums[f"ss_{name}"] += squares.numpy()
        if n_all:
            self.sums["min"] = np.minimum(self.sums["min"], per_head.amin(dim=-1).double().numpy())
            self.sums["max"] = np.maximum(self.sums["max"], per_head.amax(dim=-1).double().numpy())
        # self rank: real keys j != i below / tied with U_ii, on real rows with n >= 2
        cmp = self._scratch("cmp", u.numel(), torch.bool).view(u.shape)
        below = _count(torch.lt(u, diag[..., None], out=cmp).logical_and_(key_real)).double()
        ties = _count(torch.eq(u, diag[..., None], out=cmp).logical_and_(key_real)).double() - 1
        n_other = key_real.sum(-1).double() - 1  # (B, 1, 1)
        rows = ((n_other > 0) & query_real).expand(B, heads, P)
        rank = (below + 0.5 * ties) / n_other.clamp(min=1)
        self.sums["rows"] += rows.sum(dim=(0, 2)).double().numpy()
        self.sums["rank"] += (rank * rows).sum(dim=(0, 2)).numpy()
        self.sums["rank2"] += (rank * rank * rows).sum(dim=(0, 2)).numpy()
        self.sums["self_lowest"] += ((below == 0) & (ties == 0) & rows).sum(dim=(0, 2)).double().numpy()

    def _median(self, hist: np.ndarray) -> float:
        cum = np.cumsum(hist)
        if cum[-1] == 0:
            return math.nan
        i = int(np.searchsorted(cum, cum[-1] / 2))
        before = cum[i - 1] if i else 0.0
        frac = (cum[-1] / 2 - before) / hist[i] if hist[i] else 0.5
        return float(self.edges[i] + frac * (self.edges[i + 1] - self.edges[i]))

    def rows(self) -> list[dict]:
        """Per head (and ``"all"``): count, mean, std error, median of U on the diagonal and
        off it, their difference, the mean self rank and the fraction of rows whose self pair
        has the strictly lowest U."""
        if self.hist is None:
            raise ValueError("no U was seen (ParT-plain model, or no particle block recorded)")
        out = []
        heads = len(self.sums["rows"])
        for h in [*range(heads), "all"]:
            sel = slice(None) if h == "all" else slice(h, h + 1)
            s = {k: float(v[sel].sum()) for k, v in self.sums.items() if k not in ("min", "max")}
            row = {"head": h}
            for name in ("diag", "offdiag"):
                n = s[f"n_{name}"]
                mean = s[f"s_{name}"] / n if n else math.nan
                var = max(s[f"ss_{name}"] / n - mean * mean, 0.0) if n else math.nan
                row.update({f"n_{name}": int(n), f"mean_{name}": mean,
                            f"mean_{name}_err": math.sqrt(var / n) if n else math.nan,
                            f"median_{name}": self._median(self.hist[name][sel].sum(axis=0))})
            row["mean_diag_minus_offdiag"] = row["mean_diag"] - row["mean_offdiag"]
            rows = s["rows"]
            rank = s["rank"] / rows if rows else math.nan
            row["self_rank_mean"] = rank
            row["self_rank_mean_err"] = (math.sqrt(max(s["rank2"] / rows - rank * rank, 0.0) / rows)
                                         if rows else math.nan)
            row["frac_self_lowest"] = s["self_lowest"] / rows if rows else math.nan
            row["u_min"] = float(self.sums["min"][sel].min())
            row["u_max"] = float(self.sums["max"][sel].max())
            out.append(row)
        return out

    def distribution_rows(self) -> list[dict]:
        """Density of U over real pairs (all heads) per bin, diagonal and off-diagonal."""
        if self.hist is None:
            raise ValueError("no U was seen")
        widths = np.diff(self.edges)
        out = []
        dens = {}
        for name in ("diag", "offdiag"):
            h = self.hist[name].sum(axis=0)
            dens[name] = h / (h.sum() * widths) if h.sum() else np.zeros_like(h)
        for i in range(len(widths)):
            out.append({"u_low": float(self.edges[i]), "u_high": float(self.edges[i + 1]),
                        "density_diag": float(dens["diag"][i]),
                        "density_offdiag": float(dens["offdiag"][i])})
        return out


class RowVariation:
    """How much of each attention row's variation over the real keys comes from A and U.

    Per particle block ℓ, head h and real query i of a jet with n >= 2: std_j A_ij,
    std_j U_ij and std_j (A + U)_ij over the real keys j (population std, self included);
    kept as sums over rows (and squares, for errors) and the count of rows where
    std U > std A.
    """

    def __init__(self) -> None:
        self.sums: dict[tuple[int, int], np.ndarray] = {}
        self._batch = None
        self._u_centred: Tensor | None = None
        self._var_u: Tensor | None = None
        self._scratch = Scratch()

    def update(self, key, record: dict[str, Tensor], batch) -> None:
        if not isinstance(key, int) or "U" not in record:
            return
        a, u = record["A"].float(), record["U"].float()
        B, H, P, _ = a.shape
        keys = (~record["padding_mask"])[:, None, None, :]  # (B, 1, 1, P)
        n = keys.sum(-1).float()  # (B, 1, 1)
        rows = (real_queries(record) & (n >= 2)).expand(B, H, P)
        keys = keys.to(a.dtype)
        count = n.clamp(min=1)[..., None]  # (B, 1, 1, 1)
        if batch is not self._batch:  # U is the same for every block of a batch: centre it once
            self._batch = batch
            self._u_centred = _centred(u, keys, count, self._scratch("u", u.numel()).view(u.shape))
            self._var_u = _mean_square(self._u_centred, count, self._work(u))
        a_centred = _centred(a, keys, count, self._work(a))
        # var(A + U) = var A + var U + 2 cov(A, U): one product instead of a third centring
        cov = torch.mul(a_centred, self._u_centred, out=self._scratch("product", a.numel())
                        .view(a.shape)).sum(-1).double().div_(count[..., 0].double())
        var_a = _mean_square(a_centred, count, a_centred)
        std = {"A": var_a.sqrt(), "U": self._var_u.sqrt(),
               "L": (var_a + self._var_u + 2 * cov).clamp_(min=0).sqrt_()}
        sel = rows.double()
        acc = [rows.sum(dim=(0, 2)).double()]
        acc += [(std[k] * sel).sum(dim=(0, 2)) for k in ("A", "U", "L")]
        acc += [(std[k] * std[k] * sel).sum(dim=(0, 2)) for k in ("A", "U", "L")]
        acc += [((std["U"] > std["A"]) & rows).sum(dim=(0, 2)).double()]
        acc = torch.stack(acc, dim=1).numpy()  # (H, 8)
        for h in range(H):
            self.sums[(key, h)] = self.sums.get((key, h), 0) + acc[h]

    def _work(self, like: Tensor) -> Tensor:
        return self._scratch("x", like.numel(), like.dtype).view(like.shape)


    def rows(self) -> list[dict]:
        """Per (layer, head) and per layer (head ``"all"``): mean row std of A, U, A + U with
        standard errors, their ratio U/A, and the fraction of rows with std U > std A."""
        if not self.sums:
            raise ValueError("no particle block with U was seen")
        out = []
        layers = sorted({k[0] for k in self.sums})
        heads = sorted({k[1] for k in self.sums})
        for layer in layers:
            for h in [*heads, "all"]:
                hs = heads if h == "all" else [h]
                s = sum(self.sums[(layer, x)] for x in hs)
                rows = s[0]
                row = {"layer": layer, "head": h, "n_rows": int(rows)}
                for i, name in enumerate(("A", "U", "A_plus_U")):
                    mean = s[1 + i] / rows if rows else math.nan
                    var = max(s[4 + i] / rows - mean * mean, 0.0) if rows else math.nan
                    row[f"mean_std_{name}"] = mean
                    row[f"mean_std_{name}_err"] = math.sqrt(var / rows) if rows else math.nan
                row["ratio_std_U_over_A"] = (row["mean_std_U"] / row["mean_std_A"]
                                             if row["mean_std_A"] else math.nan)
                row["frac_rows_U_varies_more"] = s[7] / rows if rows else math.nan
                out.append(row)
        return out


def _centred(x: Tensor, keys: Tensor, count: Tensor, out: Tensor) -> Tensor:
    """``out`` = (x − its mean over the real keys of each row) on real keys, 0 on padded ones;
    ``keys`` the (B, 1, 1, P) 0/1 real-key mask, ``count`` the real keys per jet (≥ 1)."""
    torch.mul(x, keys, out=out)
    return out.sub_(out.sum(-1, keepdim=True).div_(count)).mul_(keys)


def _mean_square(centred: Tensor, count: Tensor, out: Tensor) -> Tensor:
    """Population variance per row, (B, H, P) float64, from :func:`_centred` values (``out``
    may be ``centred`` itself, which is then overwritten)."""
    return torch.mul(centred, centred, out=out).sum(-1).double().div_(count[..., 0].double())

"""Interaction-dependent and non-binary computation (docs/analyses.md#interaction-dependent-and-non-binary-computation).

* :class:`InteractionCounter` -- per unit of computation (jet, layer, head, real query i),
  D = [argmax_j (A + U)_ij != argmax_j A_ij] (real keys j, ties to the lowest index) and
  N = [max_j W_ij < 0.8]; rates, token coverages, the phi coefficient of D and N, and the
  Pearson correlation of the per-token counts, each with a jackknife error over jet groups.
* :func:`interaction_metrics` -- the counter run on float32 and float64 pair features in
  lockstep (docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise), with the fraction of argmax decisions that flip.
* :func:`as_coded_interaction_metrics` -- the same counts on the papers' as-coded capture
  (docs/analyses.md#the-capture-bug-of-the-papers-scripts), with :func:`as_coded_rows` and
  :func:`as_coded_sentence` beside the published numbers.

The ablation table lives in :mod:`partnb.analysis.ablation`, the structure of U in
:mod:`partnb.analysis.u_structure`. The counter streams: memory is flat in the number of jets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from partnb.analysis.sparsity import BINARY_ROW_THRESHOLD
from partnb.analysis.stream import Scratch, count_true, stream_attention
from partnb.model.part import padding_bias

__all__ = ["NON_BINARY_THRESHOLD", "InteractionCounter", "argmax_decisions",
           "as_coded_interaction_metrics", "as_coded_rows", "as_coded_sentence",
           "interaction_metrics", "interaction_rows"]

#: A row is non-binary when its largest attention weight is below this (docs/analyses.md#interaction-dependent-and-non-binary-computation):
#: the binary-row threshold of :mod:`partnb.analysis.sparsity`, defined there.
NON_BINARY_THRESHOLD = BINARY_ROW_THRESHOLD
_GROUPS = 10  # jackknife groups of jets (jet index modulo _GROUPS)




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
        tied = (count_true(at_max_a) > 1) | (count_true(at_max_l) > 1)
        tied &= real
        d = (count_true(at_max_a.logical_and_(at_max_l)) == 0) & real
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

    def empty_like(self) -> InteractionCounter:
        """A fresh counter with the same settings (for one shard of a pass)."""
        return InteractionCounter(self.threshold, self.keep_decisions, self.variant)

    def merge(self, other: InteractionCounter) -> InteractionCounter:
        """Add ``other``'s counts (the pass over other jets) to this one, in place; returns
        self. Every count is a sum per jet group (jet index mod 10: global indices under
        sharding, docs/cluster.md#sharded-analysis), so rates, coverages, both PCC readings
        and their jackknife errors are those of one pass. The kept decisions of the last
        batch are per-batch scratch and are not merged.

        Raises:
            ValueError: ``other`` has another threshold or variant."""
        from partnb.analysis.shard import require_same

        require_same(self, other, {"threshold": "threshold", "variant": "variant"})
        self.flush()
        other.flush()
        for name in self._FIELDS:
            self.stats[name] = self.stats[name] + other.stats[name]
        self.n_jets += other.n_jets
        return self

    def __getstate__(self) -> dict:
        """What crosses processes: the counts (call :meth:`flush` first), not the last
        batch's tensors."""
        return {**self.__dict__, "_first": None, "decisions": {}, "_scratch": Scratch()}

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

    def rows(self) -> list[dict[str, float]]:
        """The consumer table (:class:`~partnb.analysis.stream.Consumer`): one row,
        :meth:`result`."""
        return [self.result()]

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
                        consumers: Sequence[object] = (), progress: bool = False,
                        scheduler: str | None = None, shards: int | None = None) -> dict:
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
        progress: tqdm bar over batches (one process only).
        scheduler, shards: run over shards of the jets (:func:`partnb.analysis.shard.run_sharded`;
            default: what ``analysis.scheduler`` / ``analysis.shards`` gave the model,
            :func:`partnb.analysis.shard.engine_of`); the counters, flips and ``consumers``
            are merged in shard order.

    Returns:
        ``{"float32": result, "float64": result or None, "flips": {...}}``; flips hold the
        fractions of computations whose argmax_j(A+U), D or N differ between the passes.
    """
    from partnb.analysis.shard import engine_of, merge_all, run_sharded, sharded

    scheduler, shards = engine_of(model, scheduler, shards)
    if not sharded(scheduler, shards):
        c32, c64, flips, _ = _interaction_pass(model, inputs, 0, batch_size, compare_float64,
                                               consumers, progress)
    else:
        templates = [c.empty_like() for c in consumers]
        parts = run_sharded(_interaction_shard, model, inputs, batch_size, compare_float64,
                            templates, batch_size=batch_size, scheduler=scheduler, shards=shards,
                            calls_per_batch=2 if compare_float64 else 1)
        c32, c64, flips, _ = parts[0]
        for more in parts[1:]:
            c32.merge(more[0])
            if c64 is not None:
                c64.merge(more[1])
            flips = {k: v + more[2][k] for k, v in flips.items()}
        merge_all([list(consumers)] + [list(part[3]) for part in parts])
    total = flips.pop("computations")
    fractions = {f"flip_{k}": (v / total if total else math.nan) for k, v in flips.items()}
    return {"float32": c32.result(), "float64": c64.result() if c64 else None, "flips": fractions}


def _interaction_pass(model, inputs, offset: int, batch_size: int, compare_float64: bool,
                      consumers: Sequence[object], progress: bool = False):
    """The lockstep float32 / float64 passes of :func:`interaction_metrics` over ``inputs``,
    jets ``offset`` … of the whole inputs: (counter float32, counter float64 or None, flip
    counts, consumers)."""
    from tqdm.auto import tqdm

    c32 = InteractionCounter(keep_decisions=compare_float64)
    c64 = InteractionCounter(keep_decisions=True) if compare_float64 else None
    flips = {"argmax": 0.0, "D": 0.0, "N": 0.0, "computations": 0.0}
    starts = range(0, len(inputs), batch_size)
    for start in tqdm(starts, disable=not progress, desc="interaction", unit="batch", leave=False):
        chunk = inputs.take(np.arange(start, min(start + batch_size, len(inputs))))
        stream_attention(model, chunk, [c32, *consumers], batch_size=batch_size,
                         capture=("A", "U", "L", "P"), index_offset=offset + start)
        if c64 is None:
            continue
        stream_attention(model, chunk, [c64], batch_size=batch_size, capture=("A", "U", "L", "P"),
                         vectors_dtype=torch.float64, index_offset=offset + start)
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
    for counter in (c32, c64):
        if counter is not None:
            counter.flush()
    return c32, c64, flips, list(consumers)


def _interaction_shard(model, inputs, offset: int, batch_size: int, compare_float64: bool,
                       templates: Sequence[object]):
    """One shard of :func:`interaction_metrics` (a task of
    :func:`partnb.analysis.shard.run_sharded`), into fresh consumers like ``templates``."""
    return _interaction_pass(model, inputs, offset, batch_size, compare_float64,
                             [t.empty_like() for t in templates])


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
                                 progress: bool = False, scheduler: str | None = None,
                                 shards: int | None = None) -> dict[str, dict]:
    """D, N and both PCC readings of the correct capture and of the papers' as-coded one
    (D′ = argmax(A′ + U) ≠ argmax A′, N′ = max W′ < 0.8 with W′ = softmax(A′ + U + M); the
    same real queries and keys), from one streamed pass: ``{"correct": result, "as_coded":
    result}`` as :meth:`InteractionCounter.result`. ``scheduler``, ``shards``: as
    :func:`interaction_metrics`."""
    from partnb.analysis.shard import engine_of, stream_sharded

    scheduler, shards = engine_of(model, scheduler, shards)
    correct, coded = InteractionCounter(), InteractionCounter(variant="as_coded")
    stream_sharded(model, inputs, [correct, coded], scheduler=scheduler, shards=shards,
                   batch_size=batch_size, capture=("A", "U", "L", "P"), as_coded=True,
                   progress=progress, desc="as coded")
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

"""How sparse ("binary") is post-softmax attention? Streaming histograms and counters (docs/analyses.md#attention-distribution, docs/analyses.md#binary-fractions, docs/analyses.md#attention-heat-maps).

The sparse-attention paper (arXiv 2512.00210) and Wang et al. (ML4PS 2024, Fig. 1 left) show
the distribution of the post-softmax weights W of all particle blocks and heads in 20 linear
bins on [0, 1] with a log y axis. Two things change that picture (docs/analyses.md#the-capture-bug-of-the-papers-scripts, docs/analyses.md#attention-distribution, docs/pitfalls.md#pitfall-4-padding-must-be-masked-and-excluded):

* **correct** — W of the normal forward pass, query *and* key real particles only (i, j < n);
* **as coded** — what the papers' scripts histogram: the second-call weights
  W' = softmax(A' + U + M), A' recomputed from the attention module's own output, over every
  entry of the P × P map: padded keys (exact zeros) and padded query rows (normal-looking
  weights) included. Their P is the untrimmed ``max_particles`` (128 for the official
  inputs), so the analysis runs the model with the sequence trimmer switched off
  (:func:`untrimmed`), which makes the as-coded histograms include padding up to the params'
  ``max_particles``; the correct variant does not depend on P.

A histogram alone does not say "binary": :class:`AttentionSparsity` also counts the fraction of
entries above 0.99, the fraction of query rows whose largest weight is ≥ 0.8 and ≥ 0.95 and the
median row maximum, beside the same numbers for uniform attention over the n real particles
(every weight 1/n). Everything is accumulated per batch (memory independent of the number of
jets); probabilities are counts / total count. The papers instead normalise per batch of 2000
jets and average the batches' probability vectors; the per-batch average over *our* batches
(``analysis.batch_size`` jets) is kept beside it (column ``probability_batch_avg``).

Statistical errors: jets are split into ``groups`` groups by index (jet index mod groups) and a
delete-one-group jackknife of each ratio gives its error — rows of one jet are correlated, so
a binomial error over rows would be optimistic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from partnb.analysis.stream import Scratch, pair_layout

__all__ = [
    "ABOVE_COLUMN",
    "BINARY_ROW_THRESHOLD",
    "ENTRY_THRESHOLD",
    "HEATMAP_CLASS",
    "LINEAR_EDGES",
    "LOG_EDGES",
    "ROWS_MAX_COLUMNS",
    "ROW_MAX_EDGES",
    "ROW_THRESHOLDS",
    "VARIANTS",
    "AttentionSparsity",
    "attention_heatmaps",
    "attention_sparsity",
    "bin_index",
    "heatmap_jet",
    "heatmap_rows",
    "jackknife_ratio",
    "median_from_histogram",
    "rows_max_column",
    "untrimmed",
]

#: The papers' binning: 20 equal bins on [0, 1]; numpy convention, the last bin is closed
#: (docs/pitfalls.md#pitfall-15-numpy-histogram-edges: weights exactly 1 land in [0.95, 1], exact zeros in [0, 0.05)).
LINEAR_EDGES = np.linspace(0.0, 1.0, 21, dtype=np.float32)
#: Log bins: [0, 1e-8) (exact zeros and underflow), then 4 bins per decade up to 1 (closed).
LOG_EDGES = np.concatenate(([0.0], np.logspace(-8, 0, 33))).astype(np.float32)
#: Fine bins of the row maximum (median resolution 0.001).
ROW_MAX_EDGES = np.linspace(0.0, 1.0, 1001, dtype=np.float32)
#: The two readings of "the attention distribution".
VARIANTS = ("correct", "as_coded")
#: Threshold of the entry fraction ``frac_above_0.99`` (W > ENTRY_THRESHOLD).
ENTRY_THRESHOLD = 0.99
#: Row-maximum thresholds of the binary fractions (docs/analyses.md#binary-fractions): the
#: fraction of real query rows whose largest weight is >= each. Defined here only; every table,
#: plot and counter of partnb takes them (and their column names, :func:`rows_max_column`) from here.
ROW_THRESHOLDS = (0.8, 0.95)
#: The row threshold of "binary" attention: a row is binary at max W >= it and non-binary (N of
#: docs/analyses.md#interaction-dependent-and-non-binary-computation) below it.
BINARY_ROW_THRESHOLD = ROW_THRESHOLDS[0]


def rows_max_column(threshold: float = BINARY_ROW_THRESHOLD, prefix: str = "frac_") -> str:
    """Table column of the fraction of query rows with largest weight >= ``threshold``.

    ``rows_max_column()`` is ``"frac_rows_max_ge_0.8"`` (the sparsity and comparison tables);
    ``prefix=""`` gives the emergence and scaling tables' ``"rows_max_ge_0.8"``,
    ``prefix="uniform_frac_"`` the uniform-attention reference. Append ``"_err"`` for the
    jackknife error column."""
    return f"{prefix}rows_max_ge_{threshold:g}"


#: The two row-fraction columns of the sparsity tables, in ROW_THRESHOLDS order
#: (``frac_rows_max_ge_0.8``, ``frac_rows_max_ge_0.95``).
ROWS_MAX_COLUMNS = tuple(rows_max_column(t) for t in ROW_THRESHOLDS)
#: Column of the fraction of entries above ENTRY_THRESHOLD (``frac_above_0.99``).
ABOVE_COLUMN = f"frac_above_{ENTRY_THRESHOLD:g}"


def bin_index(values: Tensor, edges: np.ndarray) -> Tensor:
    """Bin of each value for ``edges`` with np.histogram's convention (bins [e_k, e_k+1),
    the last bin closed). Values must lie in [edges[0], edges[-1]]."""
    inner = torch.as_tensor(edges[1:-1], dtype=values.dtype)
    return torch.bucketize(values.contiguous(), inner, right=True)


def median_from_histogram(counts: np.ndarray, edges: np.ndarray, q: float = 0.5) -> float:
    """Quantile ``q`` of a histogram, linear interpolation inside the bin (resolution = bin
    width). NaN for an empty histogram."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return float("nan")
    cum = np.cumsum(counts)
    k = int(np.searchsorted(cum, q * total, side="left"))
    k = min(k, len(counts) - 1)
    before = cum[k] - counts[k]
    frac = (q * total - before) / counts[k] if counts[k] > 0 else 0.0
    lo, hi = float(edges[k]), float(edges[k + 1])
    if not np.isfinite(hi):
        return lo
    return lo + frac * (hi - lo)


def jackknife_ratio(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Ratio Σnum/Σden and its delete-one-group jackknife error (groups = first axis).

    Groups with den = 0 are left out; fewer than two groups give error NaN."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    keep = den > 0
    num, den = num[keep], den[keep]
    if den.sum() <= 0:
        return float("nan"), float("nan")
    ratio = num.sum() / den.sum()
    g = len(den)
    if g < 2:
        return float(ratio), float("nan")
    loo = (num.sum() - num) / (den.sum() - den)
    err = np.sqrt((g - 1) / g * np.sum((loo - loo.mean()) ** 2))
    return float(ratio), float(err)


@contextlib.contextmanager
def untrimmed(model) -> Iterator[object]:
    """Switch the model's sequence trimmer off inside the block (P = ``max_particles``,
    as the reference scripts' histograms; docs/model.md#sequence-trimmer, docs/analyses.md#attention-distribution). Lossless for real particles."""
    trimmer = getattr(model, "trimmer", None)
    previous = None if trimmer is None else trimmer.enabled
    if trimmer is not None:
        trimmer.enabled = False
    try:
        yield model
    finally:
        if trimmer is not None:
            trimmer.enabled = previous


#: Entry codes c = ceil(100 w) (0: w = 0 exactly; 100: w > 0.99); code c > 0 lies in linear
#: bin (c − 1) // 5, code 0 in the first: bins (k/20, (k+1)/20], so an entry exactly on an
#: inner edge k/20 goes to the lower bin, unlike np.histogram — immaterial for softmax
#: outputs, while exact zeros and exact ones land where numpy puts them (docs/pitfalls.md#pitfall-15-numpy-histogram-edges).
_CODES = 101
assert ENTRY_THRESHOLD == (_CODES - 2) / (_CODES - 1), "code 100 must mean w > ENTRY_THRESHOLD"
_LOG_SHIFT = torch.tensor(33.0)  # log bin of w: floor(4 log10 w + 33), clamped to [0, 32]
_CODE_TO_LINEAR = torch.zeros(_CODES, len(LINEAR_EDGES) - 1, dtype=torch.long)
_CODE_TO_LINEAR[torch.arange(_CODES), (torch.arange(_CODES) - 1).clamp(min=0) // 5] = 1

# counters per (class, group, layer, head), last axis (_ROWS_T0, _ROWS_T1: real rows with
# max W >= ROW_THRESHOLDS[0], [1]):
_ENTRIES, _ABOVE, _ZERO, _ROWS, _ROWS_T0, _ROWS_T1 = range(6)
_N_COUNTERS = 6
# uniform attention over n >= 2 real keys has weights 1/n <= 1/2: it passes a threshold above
# 1/2 only for n = 1, which is what the uniform_* columns count (``uniform_single``)
assert min(ENTRY_THRESHOLD, *ROW_THRESHOLDS) > 0.5, "uniform_* columns count n = 1 jets only"


class AttentionSparsity:
    """Streaming consumer (for :func:`~partnb.analysis.stream.stream_attention`) of the
    post-softmax attention of the particle blocks, correct and as coded (docs/analyses.md#attention-distribution).

    Feed it a pass with ``capture=("P",)`` (and ``as_coded=True`` for the as-coded variant),
    ideally inside :func:`untrimmed` so the as-coded maps span ``max_particles``.

    Args:
        num_layers, num_heads: of the model's particle blocks.
        classes: class names of the dataset (label index order).
        groups: jet groups of the jackknife errors.
    """

    def __init__(self, num_layers: int, num_heads: int, classes: Sequence[str], *,
                 groups: int = 20) -> None:
        self.L, self.H, self.classes, self.K = num_layers, num_heads, list(classes), groups
        C = len(self.classes)
        shape = (C, num_layers, num_heads)
        self.linear = {v: np.zeros((*shape, len(LINEAR_EDGES) - 1), np.int64) for v in VARIANTS}
        self.log = {v: np.zeros((*shape, len(LOG_EDGES) - 1), np.int64) for v in VARIANTS}
        self.row_max = {v: np.zeros((*shape, len(ROW_MAX_EDGES) - 1), np.int64) for v in VARIANTS}
        self.counters = {v: np.zeros((C, groups, num_layers, num_heads, _N_COUNTERS), np.int64)
                         for v in VARIANTS}
        #: sum over batches of each batch's linear-bin probability vector (the papers'
        #: normalisation), per layer and for all layers together
        self.batch_prob_layer = {v: np.zeros((num_layers, len(LINEAR_EDGES) - 1)) for v in VARIANTS}
        self.batch_prob_all = {v: np.zeros(len(LINEAR_EDGES) - 1) for v in VARIANTS}
        self._batch_counts = {v: np.zeros((num_layers, len(LINEAR_EDGES) - 1)) for v in VARIANTS}
        self.n_batches = {v: 0 for v in VARIANTS}
        #: largest |Σ_j W_ij − 1| over real rows and real keys, per variant (for the
        #: differential attention variants about λ: their rows sum to 1 − λ)
        self.max_row_sum_error = {v: 0.0 for v in VARIANTS}
        #: histogrammed entries with W < 0, per variant: only the differential attention
        #: variants have them; they are binned as 0 (docs/model.md#probes-of-the-variants)
        self.negative_entries = {v: 0 for v in VARIANTS}
        #: per class and group: jets, real rows and real entries (Σ n, Σ n²), uniform-attention
        #: counters, and the histogram of the uniform row maximum 1/n
        self.jets = np.zeros((C, groups), np.int64)
        self.rows_real = np.zeros((C, groups), np.int64)
        self.entries_real = np.zeros((C, groups), np.int64)
        self.entries_padded_p = np.zeros((C, groups), np.int64)  # Σ P² (as-coded map size)
        self.uniform_single = np.zeros((C, groups), np.int64)  # jets with n = 1
        self.uniform_row_max = np.zeros((C, len(ROW_MAX_EDGES) - 1), np.int64)
        self._padding: dict[int, Tensor] = {}
        self._scratch = Scratch()
        self._seen: dict[str, set] = {v: set() for v in VARIANTS}
        self._current = None

    # --- streaming ---------------------------------------------------------------------------

    def update(self, key, record: dict[str, Tensor], batch) -> None:
        if not isinstance(key, int):
            return
        if self._current is not batch:
            self._new_batch(batch)
        if "padding_mask" in record:
            self._padding[key] = record["padding_mask"]
        if "P" in record:
            self._add("correct", key, record["P"].float(), self._padding[key], batch, real_only=True)
        if "P_as_coded" in record:
            self._add("as_coded", key, record["P_as_coded"].float(), self._padding[key], batch,
                      real_only=False)

    def _new_batch(self, batch) -> None:
        self._flush_batch()
        self._current = batch
        self._padding = {}
        label = np.asarray(batch.label)
        group = np.asarray(batch.index) % self.K
        n = np.asarray(batch.n).astype(np.int64)
        P = batch.inputs.mask.shape[-1]
        np.add.at(self.jets, (label, group), 1)
        np.add.at(self.rows_real, (label, group), n)
        np.add.at(self.entries_real, (label, group), n * n)
        np.add.at(self.entries_padded_p, (label, group), P * P)
        np.add.at(self.uniform_single, (label, group), (n == 1).astype(np.int64))
        inv = torch.as_tensor(1.0 / np.maximum(n, 1), dtype=torch.float32)
        idx = label * (len(ROW_MAX_EDGES) - 1) + bin_index(inv, ROW_MAX_EDGES).numpy()
        np.add.at(self.uniform_row_max.reshape(-1), idx, n)

    def _flush_batch(self) -> None:
        for v in VARIANTS:
            if v in self._seen and self._seen[v]:
                counts = self._batch_counts[v]
                with np.errstate(invalid="ignore", divide="ignore"):
                    per_layer = counts / counts.sum(axis=1, keepdims=True)
                self.batch_prob_layer[v] += np.nan_to_num(per_layer)
                self.batch_prob_all[v] += counts.sum(axis=0) / counts.sum()
                self.n_batches[v] += 1
            self._batch_counts[v][:] = 0
            self._seen[v] = set()

    def finish(self) -> AttentionSparsity:
        """Close the last batch (called by the summaries; idempotent)."""
        self._flush_batch()
        self._current = None
        return self

    def _add(self, variant: str, layer: int, w: Tensor, padding: Tensor, batch, *,
             real_only: bool) -> None:
        B, H, Pq, Pk = w.shape
        C, K = len(self.classes), self.K
        label = torch.as_tensor(np.asarray(batch.label), dtype=torch.long)
        group = np.asarray(batch.index) % K
        real = ~padding  # (B, P)
        n = real.sum(dim=1)
        has = n > 0  # jets with n = 0 give NaN rows (docs/pitfalls.md#pitfall-4-padding-must-be-masked-and-excluded): skipped
        # every entry that counts, gathered once: codes c = ceil(100 w) per (jet, head) give
        # the linear bins, exact zeros and w > 0.99; codes of log10 w give the log bins
        layout = pair_layout({"padding_mask": padding}, batch, H, real_only=real_only)
        M = len(layout)
        values = layout.gather(w, out=self._scratch("w", M))
        negative = int((values < 0).sum()) if M and bool(values.amin() < 0) else 0
        if negative:  # a signed (differential) map: its negative weights count as 0 here
            self.negative_entries[variant] += negative
            values.clamp_(min=0)
        work, codes = self._scratch("work", M), self._scratch("codes", M, torch.int32)
        torch.mul(values, _CODES - 1, out=work)
        codes.copy_(work.ceil_()).add_(layout.offsets(_CODES))  # softmax: 0 <= w <= 1
        per_code = torch.bincount(codes, minlength=B * H * _CODES).reshape(B, H, _CODES)
        torch.log10(values, out=work)
        torch.add(_LOG_SHIFT, work, alpha=4, out=work)  # 4 bins per decade from 1e-8
        codes.copy_(work.clamp_(0, len(LOG_EDGES) - 2)).add_(layout.offsets(len(LOG_EDGES) - 1))
        per_log = torch.bincount(codes, minlength=B * H * (len(LOG_EDGES) - 1))
        # per class and head: index_add over the jets' labels
        per_linear = per_code.reshape(B * H, _CODES) @ _CODE_TO_LINEAR  # (B*H, 20)
        for hist, counts in ((self.linear[variant], per_linear), (self.log[variant], per_log)):
            torch.from_numpy(hist[:, layer]).index_add_(0, label, counts.reshape(B, H, -1))
        self._batch_counts[variant][layer] += per_linear.sum(dim=0).numpy()
        self._seen[variant].add(layer)
        # rows: maximum over the keys (padded keys hold exact zeros: softmax of −∞)
        row_max = w.amax(dim=-1)  # (B, H, P)
        row_ok = real[:, None, :].expand(B, H, Pq) if real_only else has[:, None, None].expand(B, H, Pq)
        nbr = len(ROW_MAX_EDGES) - 1
        row_bin = (row_max * nbr).floor_().clamp_(0, nbr - 1).long()
        row_index = (label[:, None, None] * H + torch.arange(H)[None, :, None]) * nbr + row_bin
        counts = torch.bincount(row_index[row_ok], minlength=C * H * nbr)
        self.row_max[variant][:, layer] += counts.reshape(C, H, nbr).numpy()
        # row sums over real keys, on real rows (padded keys have weight exactly 0)
        row_sum = w.sum(dim=-1).masked_fill(~real[:, None, :], 1.0)
        if row_sum.numel():
            err = float((row_sum.double() - 1).abs().max())
            self.max_row_sum_error[variant] = max(self.max_row_sum_error[variant], err)
        # counters per (class, group, head) of this layer
        per_jet = torch.stack([
            per_code.sum(dim=-1),
            per_code[..., _CODES - 1],  # ceil(100 w) = 100: w > 0.99
            per_code[..., 0],  # ceil(100 w) = 0: w = 0 exactly
            row_ok.sum(dim=2),
            ((row_max >= ROW_THRESHOLDS[0]) & row_ok).sum(dim=2),
            ((row_max >= ROW_THRESHOLDS[1]) & row_ok).sum(dim=2),
        ], dim=-1).numpy()  # (B, H, 6)
        cg = self.counters[variant][:, :, layer]  # (C, K, H, 6) view
        np.add.at(cg, (label.numpy(), group), per_jet)

    # --- sharded passes (partnb.analysis.shard) -----------------------------------------------

    def empty_like(self) -> AttentionSparsity:
        """A fresh accumulator with the same settings (for one shard of a pass)."""
        return AttentionSparsity(self.L, self.H, self.classes, groups=self.K)

    def merge(self, other: AttentionSparsity) -> AttentionSparsity:
        """Add ``other``'s counts (the pass over other jets) to this one, in place; returns
        self. Histograms, counters and the sums over batches add; the largest row-sum error
        is the larger of the two. The per-batch average (``probability_batch_avg``) is that
        of one pass when the two passes cut the jets into the same batches, which shards
        starting at a batch boundary do (docs/cluster.md#sharded-analysis).

        Raises:
            ValueError: ``other`` has other layers, heads, classes or jackknife groups."""
        from partnb.analysis.shard import require_same

        require_same(self, other, {"num_layers": "L", "num_heads": "H", "classes": "classes",
                                   "groups": "K"})
        self.finish()
        other.finish()
        for name in ("linear", "log", "row_max", "counters", "batch_prob_layer",
                     "batch_prob_all", "n_batches", "negative_entries"):
            mine, theirs = getattr(self, name), getattr(other, name)
            for v in VARIANTS:
                mine[v] = mine[v] + theirs[v]
        for v in VARIANTS:
            self.max_row_sum_error[v] = max(self.max_row_sum_error[v], other.max_row_sum_error[v])
        for name in ("jets", "rows_real", "entries_real", "entries_padded_p", "uniform_single",
                     "uniform_row_max"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def __getstate__(self) -> dict:
        """What crosses processes: everything but the work buffers (and, once
        :meth:`finish` closed the last batch, its padding masks)."""
        state = {**self.__dict__, "_scratch": Scratch()}
        if self._current is None:
            state["_padding"] = {}
        return state

    # --- results -----------------------------------------------------------------------------

    def _class_slice(self, cls: str | None):
        return slice(None) if cls is None else self.classes.index(cls)

    def _sel_counters(self, variant: str, layer: int | None, cls: str | None,
                      head: int | None = None) -> np.ndarray:
        """Counters (groups, 6) summed over the selected classes, layers, heads."""
        c = self.counters[variant]
        c = c[self._class_slice(cls)]
        if cls is not None:
            c = c[None]
        c = c.sum(axis=0)  # (K, L, H, 6)
        c = c if layer is None else c[:, layer:layer + 1]
        c = c if head is None else c[:, :, head:head + 1]
        return c.sum(axis=(1, 2))

    def _sel_hist(self, hist: np.ndarray, layer: int | None, cls: str | None,
                  head: int | None = None) -> np.ndarray:
        h = hist[self._class_slice(cls)]
        if cls is not None:
            h = h[None]
        h = h.sum(axis=0)
        h = h if layer is None else h[layer:layer + 1]
        h = h if head is None else h[:, head:head + 1]
        return h.sum(axis=(0, 1))

    def rows(self, model: str = "model") -> list[dict]:
        """The consumer table (:class:`~partnb.analysis.stream.Consumer`):
        :meth:`summary_rows`."""
        return self.summary_rows(model)

    def summary_row(self, variant: str, layer: int | None = None, cls: str | None = None,
                    head: int | None = None) -> dict:
        """Fractions (with jackknife errors), median row maximum and the uniform reference
        for one selection (None = all layers / classes / heads).

        ``frac_real_pairs`` is the share of the histogrammed entries that are (real query, real
        key) pairs: 1 for the correct variant, Σn² / ΣP² as coded. The ``uniform_*`` columns
        are uniform attention over the n real particles (weights 1/n, real rows), the same for
        both variants; ``max_row_sum_error`` is the largest |Σ_j W_ij − 1| over real rows."""
        self.finish()
        c = self._sel_counters(variant, layer, cls, head)
        cs = self._class_slice(cls)
        jets = self.jets[cs].reshape(-1, self.K).sum(axis=0)
        row = {"n_jets": int(jets.sum()), "n_entries": int(c[:, _ENTRIES].sum()),
               "n_rows": int(c[:, _ROWS].sum())}
        for name, num, den in ((ABOVE_COLUMN, _ABOVE, _ENTRIES),
                               ("frac_exact_zero", _ZERO, _ENTRIES),
                               (ROWS_MAX_COLUMNS[0], _ROWS_T0, _ROWS),
                               (ROWS_MAX_COLUMNS[1], _ROWS_T1, _ROWS)):
            value, err = jackknife_ratio(c[:, num], c[:, den])
            row[name], row[name + "_err"] = value, err
        row["median_row_max"] = float(median_from_histogram(
            self._sel_hist(self.row_max[variant], layer, cls, head), ROW_MAX_EDGES))
        # fraction of the histogrammed entries that are (real query, real key) pairs
        real_entries = self.entries_real[cs].sum()
        row["frac_real_pairs"] = float(real_entries * self._n_sel(layer, head) / max(row["n_entries"], 1))
        # uniform attention over the n real particles: weights 1/n, row maximum 1/n
        single = self.uniform_single[cs].sum()
        row["uniform_" + ABOVE_COLUMN] = float(single / max(real_entries, 1))
        row[rows_max_column(prefix="uniform_frac_")] = float(single / max(self.rows_real[cs].sum(), 1))
        row["uniform_median_row_max"] = float(median_from_histogram(
            self.uniform_row_max[cs].reshape(-1, len(ROW_MAX_EDGES) - 1).sum(axis=0), ROW_MAX_EDGES))
        row["max_row_sum_error"] = self.max_row_sum_error[variant]
        return row

    def _n_sel(self, layer, head) -> int:
        return (self.L if layer is None else 1) * (self.H if head is None else 1)

    def summary_rows(self, model: str, *, per_class: bool = False) -> list[dict]:
        """Rows (model, variant, layer, class) for all layers and each layer; with
        ``per_class`` one row per class (all layers) instead."""
        rows = []
        for variant in VARIANTS:
            if not self.counters[variant].any():
                continue
            if per_class:
                sel = [("all", None, name) for name in self.classes
                       if self.jets[self.classes.index(name)].sum()]
            else:
                sel = [("all", None, None)] + [(str(k), k, None) for k in range(self.L)]
            for layer_name, layer, cls in sel:
                rows.append({"model": model, "variant": variant, "layer": layer_name,
                             "class": cls or "all", **self.summary_row(variant, layer, cls)})
        return rows

    def per_head_rows(self, model: str) -> list[dict]:
        """One row per (variant, layer, head), all classes."""
        rows = []
        for variant in VARIANTS:
            if not self.counters[variant].any():
                continue
            for layer in range(self.L):
                for head in range(self.H):
                    r = self.summary_row(variant, layer, None, head)
                    rows.append({"model": model, "variant": variant, "layer": layer, "head": head,
                                 **{k: r[k] for k in ("n_rows", ABOVE_COLUMN, *ROWS_MAX_COLUMNS,
                                                      "median_row_max")}})
        return rows

    def histogram_rows(self, model: str, *, classes: Sequence[str] = ()) -> list[dict]:
        """Bin edges and probabilities (counts / total), linear and log bins, per variant and
        layer ("all" and each), plus all layers of each of ``classes``."""
        self.finish()
        rows = []
        for variant in VARIANTS:
            if not self.counters[variant].any():
                continue
            sel = [("all", None, None)] + [(str(k), k, None) for k in range(self.L)]
            sel += [("all", None, c) for c in classes if self.jets[self.classes.index(c)].sum()]
            for layer_name, layer, cls in sel:
                for binning, hist, edges in (("linear20", self.linear[variant], LINEAR_EDGES),
                                             ("log", self.log[variant], LOG_EDGES)):
                    counts = self._sel_hist(hist, layer, cls)
                    prob = counts / max(counts.sum(), 1)
                    if binning == "linear20" and cls is None and self.n_batches[variant]:
                        acc = (self.batch_prob_all[variant] if layer is None
                               else self.batch_prob_layer[variant][layer])
                        batch_avg = acc / acc.sum()
                    else:  # only for the papers' binning of all classes
                        batch_avg = [None] * len(counts)
                    for k in range(len(counts)):
                        rows.append({"model": model, "variant": variant, "layer": layer_name,
                                     "class": cls or "all", "binning": binning,
                                     "bin_lo": float(edges[k]), "bin_hi": float(edges[k + 1]),
                                     "count": int(counts[k]), "probability": float(prob[k]),
                                     "probability_batch_avg": None if batch_avg[k] is None
                                     else float(batch_avg[k])})
        return rows


def heatmap_jet(inputs, class_index: int, *, max_particles: int = 30, min_particles: int = 8) -> int:
    """Index (in ``inputs``) of a readable example jet of a class for the heat map: the first
    jet of the class whose n is closest to the class median, capped at ``max_particles`` (a
    readable map; the docs/analyses.md#attention-heat-maps example has n = 14) and at least ``min_particles`` when possible."""
    from partnb.analysis.stream import AnalysisError

    pick = np.flatnonzero(np.asarray(inputs.label) == class_index)
    if not len(pick):
        raise AnalysisError(f"no jet of class index {class_index} for the heat map")
    n = np.asarray(inputs.n_particles)[pick]
    target = max(min(int(np.median(n)), max_particles), min(min_particles, int(n.max())))
    return int(pick[np.argmin(np.abs(n - target))])


def attention_heatmaps(model, inputs, jet: int, *, layer: int = -1) -> dict[str, np.ndarray]:
    """Post-softmax attention of one jet and one particle block, every head, cut to the
    jet's n real particles (docs/analyses.md#attention-heat-maps): ``{"correct": W (H, n, n), "as_coded": W' (H, n, n)}``,
    rows = query, columns = key (pT-ordered). ``layer`` may be negative (-1 = last block)."""
    from partnb.model.part import AttentionProbe

    num_layers = len(model.blocks)
    layer = layer % num_layers
    probe = AttentionProbe(layers=[layer], capture=("P",), as_coded=True, store=True)
    idx = np.array([jet])
    n = int(inputs.n_particles[jet])
    model.eval()
    with torch.no_grad(), untrimmed(model):
        model(torch.as_tensor(inputs.features[idx]), torch.as_tensor(inputs.vectors[idx]),
              torch.as_tensor(inputs.mask[idx]), probe=probe)
    rec = probe.records[layer]
    return {"correct": rec["P"][0, :, :n, :n].float().numpy(),
            "as_coded": rec["P_as_coded"][0, :, :n, :n].float().numpy()}


def heatmap_rows(maps: dict[str, np.ndarray], head: int, *, model: str, jet: int,
                 layer: int) -> list[dict]:
    """Long-format table (variant, query, key, weight) of one head's heat maps."""
    rows = []
    for variant, m in maps.items():
        w = m[head]
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                rows.append({"model": model, "variant": variant, "jet": jet, "layer": layer,
                             "head": head, "query": i, "key": j, "weight": float(w[i, j])})
    return rows


#: The class whose jets the heat maps show per dataset (the papers' t→bqq' for JetClass, top
#: for TopLandscape, quark for Quark-Gluon).
HEATMAP_CLASS = {"jetclass": "Tbqq", "toplandscape": "top", "quarkgluon": "quark"}


def attention_sparsity(model, inputs, classes: Sequence[str], *, batch_size: int = 100,
                       groups: int = 20, progress: bool = False, desc: str = "attention",
                       scheduler: str | None = None, shards: int | None = None
                       ) -> AttentionSparsity:
    """One streamed pass of ``model`` over ``inputs`` with the trimmer off, recording W and
    the as-coded W' of every particle block (docs/analyses.md#attention-distribution). Returns the filled accumulator.

    ``scheduler``, ``shards``: run the pass over shards of the jets on a Dask cluster (or
    under ``torchrun``) and merge them (:func:`partnb.analysis.shard.stream_sharded`); default
    what ``analysis.scheduler`` / ``analysis.shards`` gave the model
    (:func:`partnb.analysis.shard.engine_of`), else one pass here."""
    from partnb.analysis.shard import engine_of, stream_sharded

    scheduler, shards = engine_of(model, scheduler, shards)
    acc = AttentionSparsity(len(model.blocks), model.config["num_heads"], classes, groups=groups)
    with untrimmed(model):
        stream_sharded(model, inputs, [acc], scheduler=scheduler, shards=shards,
                       batch_size=batch_size, capture=("P",), as_coded=True, progress=progress,
                       desc=desc)
    return acc.finish()

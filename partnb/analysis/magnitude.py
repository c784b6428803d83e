"""Pre-softmax magnitudes: is the interaction term U larger than the attention term A? (docs/analyses.md#magnitude-ratio-of-a-and-u)

The sparse-attention paper (arXiv 2512.00210) histograms |A|/|U| in decade bins and reports a
peak at 10⁴–10⁵ on JetClass. Two readings:

* **correct** — r = |A^ℓ_hij| / |U_hij| paired element by element over real query and key
  particles (i, j < n), every particle block ℓ and head h (U is the same for all blocks, so
  each U value enters L times). Pairs with U = 0 exactly are excluded and counted.
* **as coded** — the reference scripts (TLG ``get_remade_*_PSS.py``): A' from the buggy second
  attention call (docs/analyses.md#the-capture-bug-of-the-papers-scripts) and U + M, both (B, H, P, P) per block at the untrimmed
  P = ``max_particles``; both stacks flattened (block-major), the non-finite values dropped
  from each separately (only the −∞ of padded keys in U + M), both cut to the shorter length,
  entries with |U| > 0 kept, ratio |A'|/|U|. After the first padded key the two arrays are no
  longer aligned element by element, and the cut keeps only the first L·H·P·Σn entries of
  the A' stack (the first blocks). :class:`UnpairedAsCodedRatio` reproduces this per batch
  without holding the stack: the k-th kept entry of U + M is the (k mod F)-th finite entry of
  one block's U + M (F of them), since U is the same for every block.

Everything is streamed into fixed log10 bins (resolution :data:`LOG10_STEP` dex; the quoted
medians and quantiles are read off these histograms, linearly interpolated in log10). Jackknife
errors over ``groups`` groups: jets (index mod groups) for the correct variant, batches for the
as-coded one (its pairing mixes the jets of a batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from partnb.analysis.sparsity import jackknife_ratio, median_from_histogram
from partnb.analysis.stream import Scratch, pair_layout

__all__ = [
    "DECADE_EDGES",
    "LOG10_EDGES",
    "LOG10_STEP",
    "MagnitudeRatio",
    "decade_labels",
    "magnitude_ratio",
    "ratio_peak_statement",
]

#: The papers' decade bins of the ratio, {0, 1, 10, …, 10⁶, ∞}.
DECADE_EDGES = np.array([0.0, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, np.inf])
#: Width of the log10 bins (the resolution of the quoted medians and quantiles), in dex.
LOG10_STEP = 0.05
#: log10 bin edges of r, |A| and |U|: −∞ (underflow: 0 and below 10⁻¹²), −12 … 8, +∞.
LOG10_EDGES = np.concatenate(([-np.inf], np.arange(-12.0, 8.0 + LOG10_STEP / 2, LOG10_STEP),
                              [np.inf]))
QUANTILES = (0.1, 0.5, 0.9)
_N_PAIRS, _U_ZERO, _N_RATIO, _LT_1, _GT_1E4, _NONFINITE = range(6)


def decade_labels(edges: Sequence[float] = DECADE_EDGES) -> list[str]:
    """Category labels of the decade bins ("0–1", "1–10", …, "10^6–inf")."""
    def name(x):
        if x == 0:
            return "0"
        if not np.isfinite(x):
            return "inf"
        return {1.0: "1", 10.0: "10"}.get(float(x), f"10^{int(round(np.log10(x)))}")
    return [f"{name(a)}–{name(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]


#: Number of log10 bins; bin of log10 x = clamp(floor(log10 x / step − edge₁ / step) + 1):
#: arithmetic instead of a search over the 402 edges (values within ~10⁻⁶ dex of an edge may
#: land in the neighbouring bin: float32 logs).
N_BINS = len(LOG10_EDGES) - 1
_SCALE = 1.0 / LOG10_STEP
_SHIFT = 1.0 - LOG10_EDGES[1] / LOG10_STEP
#: first log10 bin of each inner decade edge (1, 10, …, 10⁶): the decade histogram is a sum of
#: log10 bins, and r < 1 / r ≥ 10⁴ are the bins below / from those edges
_DECADE_START = [int(round(np.log10(e) * _SCALE + _SHIFT)) for e in DECADE_EDGES[1:-1]]
_BIN_ONE, _BIN_1E4 = _DECADE_START[0], _DECADE_START[4]


def _log_codes(log10x: Tensor, work: Tensor, codes: Tensor) -> Tensor:
    """int32 bins in :data:`LOG10_EDGES` of the values whose log10 is ``log10x`` (−∞, i.e.
    zeros, go to the underflow bin); ``work`` (float) and ``codes`` (int32) are outputs of the
    same length."""
    torch.add(torch.tensor(_SHIFT, dtype=log10x.dtype), log10x, alpha=_SCALE, out=work)
    return codes.copy_(work.clamp_(0, N_BINS - 1))  # non-negative: truncation = floor


def _decades(hist: np.ndarray) -> np.ndarray:
    """Decade-bin counts (last axis) from log10-bin counts."""
    return np.add.reduceat(hist, [0, *_DECADE_START], axis=-1)


class MagnitudeRatio:
    """Streaming consumer of A, U (and A') of the particle blocks (docs/analyses.md#magnitude-ratio-of-a-and-u).

    Feed it a pass with ``capture=("A", "U")`` (and ``as_coded=True`` plus
    :func:`~partnb.analysis.sparsity.untrimmed` for the as-coded variant).

    Attributes (per variant ``"correct"`` / ``"as_coded"``):
        ratio_log10: (groups, L, bins) counts of log10 r.
        ratio_decades: (groups, L, 8) counts in the decade bins (sums of log10 bins).
        abs_a, abs_u: (L, bins) counts of log10 |A| and log10 |U| of the pairs used
            (the correct variant: all real pairs; as coded: the kept, unaligned entries).
        counters: (groups, L, 6): pairs, U = 0, ratios, r < 1, r ≥ 10⁴, non-finite dropped.
    """

    def __init__(self, num_layers: int, *, groups: int = 20) -> None:
        self.L, self.K = num_layers, groups
        variants = ("correct", "as_coded")
        self.ratio_log10 = {v: np.zeros((groups, num_layers, N_BINS), np.int64) for v in variants}
        self.abs_a = {v: np.zeros((num_layers, N_BINS), np.int64) for v in variants}
        self.abs_u = {v: np.zeros((num_layers, N_BINS), np.int64) for v in variants}
        self.counters = {v: np.zeros((groups, num_layers, 6), np.int64) for v in variants}
        self.n_jets = 0
        self.n_batches = 0
        self._batch = None
        self._batch_group = 0
        self._u_plus_m: tuple[Tensor, Tensor] | None = None  # (U, padding) of the batch (as coded)
        self._u_finite: Tensor | None = None  # finite entries of one block's U + M (as coded)
        self._pairs: dict | None = None  # the batch's real pairs: layout, log10 |U|, offsets
        self._scratch = Scratch()

    @property
    def ratio_decades(self) -> dict[str, np.ndarray]:
        return {v: _decades(h) for v, h in self.ratio_log10.items()}

    def update(self, key, record: dict[str, Tensor], batch) -> None:
        if not isinstance(key, int):
            return
        if batch is not self._batch:
            self._batch = batch
            self._u_plus_m = self._u_finite = self._pairs = None
            self.n_jets += len(batch.index)
            self.n_batches += 1
            # the as-coded jackknife group of the batch: its position among the batches of
            # the whole inputs (Batch.number, global under sharding), else its count here
            number = getattr(batch, "number", None)
            self._batch_group = (self.n_batches if number is None else number + 1) % self.K
        if "A" in record and "U" in record:
            self._correct(key, record, batch)
        if "A_as_coded" in record:
            if self._u_plus_m is None:
                raise ValueError("the as-coded ratio needs U: capture ('A', 'U') as well")
            self._as_coded(key, record["A_as_coded"])

    def _correct(self, layer: int, record: dict[str, Tensor], batch) -> None:
        a, u, padding = record["A"], record["U"], record["padding_mask"]
        B, H, P, _ = a.shape
        # only the real pairs enter: gathered with the batch's layout, and |U| (the same tensor
        # for every block of a forward call) logged and binned once per batch
        if self._pairs is None:
            layout = pair_layout(record, batch, H)
            group = torch.as_tensor(np.asarray(batch.index) % self.K, dtype=torch.int32)
            self._pairs = {"layout": layout,
                           **self._u_terms(layout.gather(u.float()).abs_(), group[layout.jet])}
            self._u_plus_m = (u, padding)
        pairs = self._pairs
        layout = pairs["layout"]
        M = len(layout)
        log_a = self._scratch("log_a", M)
        torch.log10(layout.gather(a.float(), out=self._scratch("abs_a", M)).abs_(), out=log_a)
        self._fill("correct", layer, log_a, pairs)
        # U + M of the as-coded reading: padded keys −∞ dropped, padded query rows kept
        padded_keys = int(padding.sum()) * H * P
        self.counters["as_coded"][self._batch_group, layer, _NONFINITE] += padded_keys

    def _u_terms(self, abs_u: Tensor, group: Tensor) -> dict:
        """What the ratio needs of |U|, once per batch: log10 |U| (0 where U = 0), the
        histogram offsets of each pair (its jackknife group's; a trash range for U = 0), the
        histogram of log10 |U| and the per-group counts of pairs and of U = 0.

        Args:
            abs_u: (M,) |U| of the pairs, head by head (M = H·m).
            group: (m,) int32 jackknife group of each pair of one head.
        """
        zero = abs_u == 0
        log_u = torch.log10(abs_u)
        M = log_u.numel()
        codes = _log_codes(log_u, self._scratch("work", M), self._scratch("codes", M, torch.int32))
        hist_u = torch.bincount(codes, minlength=N_BINS).numpy()
        log_u.masked_fill_(zero, 0.0)
        heads = M // max(len(group), 1)
        offsets = (group * N_BINS).expand(heads, -1).reshape(M).masked_fill(zero, self.K * N_BINS)
        zeros = zero.reshape(heads, -1).view(torch.uint8).sum(dim=0, dtype=torch.int32)
        return {"log_u": log_u, "offsets": offsets, "hist_u": hist_u,
                "pairs": torch.bincount(group, minlength=self.K).numpy() * heads,
                "u_zero": torch.bincount(group, weights=zeros.double(),
                                         minlength=self.K).numpy().astype(np.int64)}

    def _as_coded(self, layer: int, a_prime: Tensor) -> None:
        if self._u_finite is None:
            u, padding = self._u_plus_m
            B, H, P, _ = u.shape
            keys = (~padding)[:, None, None, :].expand(B, H, P, P).reshape(-1)
            self._u_finite = u.reshape(-1).index_select(0, torch.nonzero(keys)[:, 0]).float()
        a_flat = a_prime.float().reshape(-1)
        S, F = a_flat.numel(), self._u_finite.numel()
        start, stop = layer * S, min((layer + 1) * S, self.L * F)
        if stop <= start:
            return
        k = torch.arange(start, stop)
        log_a = torch.log10(a_flat[k - layer * S].abs())
        group = torch.full((len(k),), self._batch_group, dtype=torch.int32)
        terms = self._u_terms(self._u_finite[k % F].abs(), group)
        self._fill("as_coded", layer, log_a, terms)

    def _fill(self, variant: str, layer: int, log_a: Tensor, terms: dict) -> None:
        """Add the pairs of one block to the histograms and counters of ``layer``: ``log_a``
        log10 |A| per pair, ``terms`` from :meth:`_u_terms`."""
        K, M = self.K, log_a.numel()
        work, codes = self._scratch("work", M), self._scratch("codes", M, torch.int32)
        self.abs_a[variant][layer] += torch.bincount(_log_codes(log_a, work, codes),
                                                     minlength=N_BINS).numpy()
        self.abs_u[variant][layer] += terms["hist_u"]
        # log10 r = log10 |A| − log10 |U|; pairs with U = 0 go to the trash range
        _log_codes(torch.sub(log_a, terms["log_u"], out=self._scratch("log_r", M)), work, codes)
        codes.add_(terms["offsets"])
        hist = torch.bincount(codes, minlength=(K + 1) * N_BINS)[:K * N_BINS].reshape(K, N_BINS)
        hist = hist.numpy()
        self.ratio_log10[variant][:, layer] += hist
        c = self.counters[variant][:, layer]
        c[:, _N_PAIRS] += terms["pairs"]
        c[:, _U_ZERO] += terms["u_zero"]
        c[:, _N_RATIO] += terms["pairs"] - terms["u_zero"]
        c[:, _LT_1] += hist[:, :_BIN_ONE].sum(axis=1)
        c[:, _GT_1E4] += hist[:, _BIN_1E4:].sum(axis=1)

    # --- sharded passes (partnb.analysis.shard) -----------------------------------------------

    def empty_like(self) -> MagnitudeRatio:
        """A fresh accumulator with the same settings (for one shard of a pass)."""
        return MagnitudeRatio(self.L, groups=self.K)

    def merge(self, other: MagnitudeRatio) -> MagnitudeRatio:
        """Add ``other``'s histograms and counters (the pass over other jets) to this one, in
        place; returns self. The as-coded ratio pairs the entries of one batch, so the two
        passes must cut the jets into the batches of one pass, as shards starting at a batch
        boundary do; their jackknife groups (jets by index, as-coded batches by
        ``Batch.number``) are then those of one pass (docs/cluster.md#sharded-analysis).

        Raises:
            ValueError: ``other`` has other layers or jackknife groups."""
        from partnb.analysis.shard import require_same

        require_same(self, other, {"num_layers": "L", "groups": "K"})
        for name in ("ratio_log10", "abs_a", "abs_u", "counters"):
            mine, theirs = getattr(self, name), getattr(other, name)
            for v in mine:
                mine[v] = mine[v] + theirs[v]
        self.n_jets += other.n_jets
        self.n_batches += other.n_batches
        return self

    def __getstate__(self) -> dict:
        """What crosses processes: the accumulators, not the last batch's tensors."""
        return {**self.__dict__, "_batch": None, "_u_plus_m": None, "_u_finite": None,
                "_pairs": None, "_scratch": Scratch()}

    # --- results -----------------------------------------------------------------------------

    def _layers(self):
        return [("all", slice(None))] + [(str(k), slice(k, k + 1)) for k in range(self.L)]

    def rows(self, model: str = "model") -> list[dict]:
        """The consumer table (:class:`~partnb.analysis.stream.Consumer`):
        :meth:`summary_rows`."""
        return self.summary_rows(model)

    def summary_rows(self, model: str) -> list[dict]:
        """Per variant and layer ("all" and each): median r and quantiles (log10-binned,
        interpolated), fractions r < 1 and r ≥ 10⁴ (column ``frac_ratio_gt_1e4``) with jackknife errors, U = 0 count, medians
        of |A| and |U|."""
        rows = []
        for variant in self.counters:
            if not self.counters[variant][..., _N_PAIRS].any():
                continue
            for name, sl in self._layers():
                c = self.counters[variant][:, sl].sum(axis=1)  # (K, 6)
                hist_g = self.ratio_log10[variant][:, sl].sum(axis=1)  # (K, bins)
                hist = hist_g.sum(axis=0)
                row = {"model": model, "variant": variant, "layer": name, "n_jets": self.n_jets,
                       "n_pairs": int(c[:, _N_PAIRS].sum()), "n_u_zero": int(c[:, _U_ZERO].sum()),
                       "n_ratio": int(c[:, _N_RATIO].sum())}
                row["frac_u_zero"], row["frac_u_zero_err"] = jackknife_ratio(c[:, _U_ZERO], c[:, _N_PAIRS])
                for q in QUANTILES:
                    row[f"q{int(q * 100):02d}_ratio"] = _quantile10(hist, q)
                row["median_ratio_err"] = _jackknife_quantile(hist_g, 0.5)
                row["frac_ratio_lt_1"], row["frac_ratio_lt_1_err"] = jackknife_ratio(
                    c[:, _LT_1], c[:, _N_RATIO])
                row["frac_ratio_gt_1e4"], row["frac_ratio_gt_1e4_err"] = jackknife_ratio(
                    c[:, _GT_1E4], c[:, _N_RATIO])
                row["median_abs_a"] = _quantile10(self.abs_a[variant][sl].sum(axis=0), 0.5)
                row["median_abs_u"] = _quantile10(self.abs_u[variant][sl].sum(axis=0), 0.5)
                row["n_nonfinite_dropped"] = int(c[:, _NONFINITE].sum())
                row["quantile_resolution_dex"] = LOG10_STEP
                rows.append(row)
        return rows

    def ratio_histogram_rows(self, model: str) -> list[dict]:
        """The decade bins (probability = counts / total) and the log10 r histogram, per
        variant and layer."""
        rows = []
        labels = decade_labels()
        for variant in self.counters:
            if not self.counters[variant][..., _N_PAIRS].any():
                continue
            for name, sl in self._layers():
                dec = self.ratio_decades[variant][:, sl].sum(axis=(0, 1))
                for k, lab in enumerate(labels):
                    rows.append({"model": model, "variant": variant, "layer": name,
                                 "binning": "decade", "bin": lab, "bin_lo": DECADE_EDGES[k],
                                 "bin_hi": DECADE_EDGES[k + 1], "count": int(dec[k]),
                                 "probability": float(dec[k] / max(dec.sum(), 1))})
                if name != "all":
                    continue
                rows += _log_rows(self.ratio_log10[variant].sum(axis=(0, 1)),
                                  {"model": model, "variant": variant, "layer": name,
                                   "binning": "log10_ratio"})
        return rows

    def magnitude_rows(self, model: str) -> list[dict]:
        """log10-binned distributions of |A| and |U| (all layers), per variant."""
        rows = []
        for variant in self.counters:
            if not self.counters[variant][..., _N_PAIRS].any():
                continue
            for quantity, hist in (("abs_A", self.abs_a[variant]), ("abs_U", self.abs_u[variant])):
                rows += _log_rows(hist.sum(axis=0), {"model": model, "variant": variant,
                                                     "quantity": quantity, "binning": "log10"})
        return rows


def _log_rows(counts: np.ndarray, base: dict) -> list[dict]:
    """Every log10 bin of :data:`LOG10_EDGES` as a row, empty ones with count 0, so the table's
    shape is fixed by the binning, not by which tail bins a sample happens to fill (the
    underflow bin holds exact zeros: bin_lo = −inf)."""
    total = max(counts.sum(), 1)
    return [{**base, "bin": "", "bin_lo": float(LOG10_EDGES[k]), "bin_hi": float(LOG10_EDGES[k + 1]),
             "count": int(counts[k]), "probability": float(counts[k] / total)}
            for k in range(len(counts))]


def _quantile10(counts: np.ndarray, q: float) -> float:
    """Quantile of the quantity whose log10 is histogrammed in :data:`LOG10_EDGES`."""
    edges = LOG10_EDGES.copy()
    edges[0], edges[-1] = edges[1] - LOG10_STEP, edges[-2] + LOG10_STEP  # finite end bins
    value = median_from_histogram(counts, edges, q)
    return float(10.0 ** value) if np.isfinite(value) else float("nan")


def _jackknife_quantile(hist_g: np.ndarray, q: float) -> float:
    """Delete-one-group jackknife error of a quantile from per-group histograms."""
    keep = hist_g.sum(axis=1) > 0
    hist_g = hist_g[keep]
    g = len(hist_g)
    if g < 2:
        return float("nan")
    total = hist_g.sum(axis=0)
    loo = np.array([_quantile10(total - h, q) for h in hist_g])
    return float(np.sqrt((g - 1) / g * np.sum((loo - loo.mean()) ** 2)))


def ratio_peak_statement(rows: Sequence[dict], *, model: str = "trained") -> str:
    """The verdict on the papers' 10⁴–10⁵ peak, computed from
    :meth:`MagnitudeRatio.ratio_histogram_rows` rows (all blocks): per variant, the decade bin
    holding most of r and the share of r ≥ 10⁴; the peak "reproduces" for a variant when its
    most populated decade bin is 10⁴–10⁵."""
    parts, verdicts = [], []
    for variant in ("correct", "as_coded"):
        dec = [r for r in rows if r["model"] == model and r["variant"] == variant
               and r["layer"] == "all" and r["binning"] == "decade"]
        if not dec:
            continue
        top = max(dec, key=lambda r: r["probability"])
        high = sum(r["probability"] for r in dec if r["bin_lo"] >= 1e4)
        parts.append(f"{variant}: most of r in {top['bin']} ({top['probability']:.1%}), "
                     f"r ≥ 10^4 in {100 * high:.2g} %")
        verdicts.append(top["bin_lo"] == 1e4)
    verdict = ("reproduces" if all(verdicts) else
               "reproduces only for part of the readings" if any(verdicts) else
               "does not reproduce")
    return f"{model} model — " + "; ".join(parts) + f". The papers' 10^4–10^5 peak {verdict}."


def magnitude_ratio(model, inputs, *, batch_size: int = 100, groups: int = 20,
                    progress: bool = False, desc: str = "|A|/|U|", scheduler: str | None = None,
                    shards: int | None = None) -> MagnitudeRatio:
    """One streamed pass of ``model`` over ``inputs`` with the trimmer off (P =
    ``max_particles``, as the reference scripts), recording A, U and the as-coded A' of every
    particle block (docs/analyses.md#magnitude-ratio-of-a-and-u). Returns the filled accumulator.

    ``scheduler``, ``shards``: as :func:`partnb.analysis.sparsity.attention_sparsity`."""
    from partnb.analysis.shard import engine_of, stream_sharded
    from partnb.analysis.sparsity import untrimmed

    scheduler, shards = engine_of(model, scheduler, shards)
    acc = MagnitudeRatio(len(model.blocks), groups=groups)
    with untrimmed(model):
        stream_sharded(model, inputs, [acc], scheduler=scheduler, shards=shards,
                       batch_size=batch_size, capture=("A", "U"), as_coded=True,
                       progress=progress, desc=desc)
    return acc

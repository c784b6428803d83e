"""What U itself looks like: its distribution over real pairs and how much of each row's
variation it carries.

* :class:`UStructure` -- the distribution of U over real pairs, self pairs (diagonal)
  against the others, per head: does U suppress self-attention?
* :class:`RowVariation` -- per layer and head, how much of each attention row's variation
  over the real keys comes from A and how much from U (paired std over keys).

Both stream (``update(key, record, batch)`` of :mod:`partnb.analysis.stream`): only
fixed-size histograms and sums are kept.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from partnb.analysis.stream import Scratch, count_true, pair_layout, real_queries

__all__ = ["U_EDGES", "RowVariation", "UStructure"]

#: Histogram edges of U: fine near 0 (GELU's minimum is -0.17), coarser above.
U_EDGES = np.unique(np.concatenate([np.linspace(-0.2, 0.2, 401), np.linspace(0.2, 5.0, 481),
                                    np.linspace(5.0, 50.0, 451)]))
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



def _coarse_u_hist(fine: np.ndarray) -> np.ndarray:
    """Counts in the U_EDGES bins (last axis) from fine-bin counts."""
    return np.add.reduceat(fine, _FINE_STARTS, axis=-1).astype(float)



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
        below = count_true(torch.lt(u, diag[..., None], out=cmp).logical_and_(key_real)).double()
        ties = count_true(torch.eq(u, diag[..., None], out=cmp).logical_and_(key_real)).double() - 1
        n_other = key_real.sum(-1).double() - 1  # (B, 1, 1)
        rows = ((n_other > 0) & query_real).expand(B, heads, P)
        rank = (below + 0.5 * ties) / n_other.clamp(min=1)
        self.sums["rows"] += rows.sum(dim=(0, 2)).double().numpy()
        self.sums["rank"] += (rank * rows).sum(dim=(0, 2)).numpy()
        self.sums["rank2"] += (rank * rank * rows).sum(dim=(0, 2)).numpy()
        self.sums["self_lowest"] += ((below == 0) & (ties == 0) & rows).sum(dim=(0, 2)).double().numpy()

    def empty_like(self) -> UStructure:
        """A fresh accumulator with the same settings (for one shard of a pass)."""
        return UStructure(self.layer)

    def merge(self, other: UStructure) -> UStructure:
        """Add ``other``'s histograms and sums (the pass over other jets) to this one, in
        place; returns self. The extremes merge as the smaller minimum and the larger
        maximum; an accumulator that saw no U adds nothing.

        Raises:
            ValueError: ``other`` reads another block, or U with another number of heads."""
        from partnb.analysis.shard import require_same

        require_same(self, other, {"layer": "layer", "U_EDGES": "edges"})
        if other.hist is None:
            return self
        if self.hist is None:
            self._init(len(other.sums["rows"]))
        require_same(self, other, {"heads": "_heads"})
        for name in self.hist:
            self.hist[name] = self.hist[name] + other.hist[name]
        for name in self.sums:
            combine = {"min": np.minimum, "max": np.maximum}.get(name, np.add)
            self.sums[name] = combine(self.sums[name], other.sums[name])
        return self

    @property
    def _heads(self) -> int | None:
        return None if self.sums is None else len(self.sums["rows"])

    def __getstate__(self) -> dict:
        """What crosses processes: everything but the work buffers."""
        return {**self.__dict__, "_scratch": Scratch()}

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

    def empty_like(self) -> RowVariation:
        """A fresh accumulator (for one shard of a pass)."""
        return RowVariation()

    def merge(self, other: RowVariation) -> RowVariation:
        """Add ``other``'s sums (the pass over other jets) to this one, per (layer, head), in
        place; returns self.

        Raises:
            ValueError: ``other`` is not a RowVariation."""
        from partnb.analysis.shard import require_same

        require_same(self, other, {})
        for key, value in other.sums.items():
            self.sums[key] = self.sums.get(key, 0) + value
        return self

    def __getstate__(self) -> dict:
        """What crosses processes: the sums, not the last batch's tensors."""
        return {**self.__dict__, "_batch": None, "_u_centred": None, "_var_u": None,
                "_scratch": Scratch()}

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

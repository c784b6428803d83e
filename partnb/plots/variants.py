"""Figure of notebook 11: accuracy against sparsity for one ParT trained with each attention
variant (docs/analyses.md#emergent-against-explicit-sparsity). Takes the rows of
``11_variants.csv``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from partnb.analysis.sparsity import ROWS_MAX_COLUMNS

__all__ = ["accuracy_vs_sparsity"]

#: the rows-with-max >= 0.8 axis is logarithmic; a variant with none sits at this floor
_FLOOR = 1e-4


def accuracy_vs_sparsity(rows: Sequence[Mapping], *, title: str = ""):
    """Two panels, one marker per variant with its errors: accuracy against the fraction of
    rows with max ≥ 0.8 (log axis) and against the median row maximum (the uniform
    attention's median row maximum as a dotted line)."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    binary = ROWS_MAX_COLUMNS[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for k, row in enumerate(rows):
        colour = f"C{k}"
        x = max(row[binary], _FLOOR)
        for ax, xv, xe in ((axes[0], x, row[binary + "_err"]),
                           (axes[1], row["median_row_max"], None)):
            # each marker carries its name beside it, so the legend keeps only the reference line
            ax.errorbar(xv, row["accuracy"], yerr=row["accuracy_err"], xerr=xe, fmt="o",
                        color=colour, capsize=3)
            ax.annotate(row["model"], (xv, row["accuracy"]), textcoords="offset points",
                        xytext=(5, 5), fontsize=8, color=colour)
    axes[0].set_xscale("log")
    # room on the right for the names; major labels only (minor ones overlapped over a decade)
    xs = np.array([max(r[binary], _FLOOR) for r in rows], dtype=float)
    axes[0].set_xlim(xs.min() / 2, xs.max() * 6)
    axes[0].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[1].set_xlim(0, min(1.0, max(r["median_row_max"] for r in rows) * 1.35))
    axes[0].set_xlabel(f"rows with max W ≥ 0.8 (floor {_FLOOR:g})")
    axes[0].set_ylabel("accuracy")
    uniform = [r["uniform_median_row_max"] for r in rows if np.isfinite(r["uniform_median_row_max"])]
    if uniform:
        axes[1].axvline(uniform[0], ls=":", color="grey", label="uniform attention")
        axes[1].legend(fontsize=8, loc="upper right")
    axes[1].set_xlabel("median row maximum of W")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

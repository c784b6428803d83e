"""Figures of notebook 12: differential attention against ParT's softmax
(docs/analyses.md#differential-attention). They take the rows of the notebook's tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["signed_weights", "ablation_bars"]


def signed_weights(hist_rows: Sequence[Mapping], block_rows: Sequence[Mapping], *, title: str = ""):
    """Left: the distribution of the signed attention weights over (real query, real key)
    pairs, all particle blocks, one step line per model (fraction of entries per bin of
    width 0.01, log axis). Right: λ per particle block of the differential models (the
    weight of the subtracted map; rows sum to 1 − λ)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    models = list(dict.fromkeys(r["model"] for r in hist_rows))
    for k, model in enumerate(models):
        rows = [r for r in hist_rows if r["model"] == model]
        edges = np.array([r["lo"] for r in rows] + [rows[-1]["hi"]])
        frac = np.array([r["fraction"] for r in rows])
        axes[0].stairs(np.where(frac > 0, frac, np.nan), edges, color=f"C{k}", label=model)
    axes[0].axvline(0.0, color="grey", lw=0.8)
    filled = [r["lo"] for r in hist_rows if r["entries"]]
    axes[0].set_xlim(min(min(filled, default=0.0), 0.0) - 0.05, 1.02)
    axes[0].set_yscale("log")
    axes[0].set_xlabel(r"attention weight W (real pairs; differential: $P_1 - \lambda P_2$)")
    axes[0].set_ylabel("fraction of entries per 0.01")
    axes[0].legend(fontsize=8)
    shown = False
    for k, model in enumerate(models):
        rows = [r for r in block_rows if r["model"] == model and r["layer"] != "all"
                and np.isfinite(r["lambda"])]
        if rows:
            axes[1].plot([r["layer"] for r in rows], [r["lambda"] for r in rows], "o-",
                         color=f"C{k}", label=model)
            shown = True
    blocks = sorted({r["layer"] for r in block_rows if r["layer"] != "all"})
    axes[1].set_xticks(blocks)
    axes[1].set_xlabel("particle block")
    axes[1].set_ylabel("λ")
    axes[1].set_ylim(0, 1.05)
    if shown:
        axes[1].legend(fontsize=8)
    else:
        axes[1].text(0.5, 0.5, "no differential model trained", ha="center", va="center",
                     transform=axes[1].transAxes, color="grey")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def ablation_bars(rows: Sequence[Mapping], *, title: str = ""):
    """Accuracy of each model as trained, with U := 0 and with A := 0 (binomial errors):
    grouped bars, one group per model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 2.2 * len(rows) + 1.5), 4.0))
    kinds = (("accuracy", "as trained"), ("accuracy_zero_u", "U := 0"), ("accuracy_zero_a", "A := 0"))
    width = 0.8 / len(kinds)
    x = np.arange(len(rows))
    for k, (key, label) in enumerate(kinds):
        ax.bar(x + (k - 1) * width, [r[key] for r in rows], width,
               yerr=[r[key + "_err"] for r in rows], capsize=3, color=f"C{k}", label=label)
    ax.set_xticks(x, [r["model"] for r in rows], fontsize=8)
    low = min(min(r[key] for key, _ in kinds) for r in rows) if rows else 0.0
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig

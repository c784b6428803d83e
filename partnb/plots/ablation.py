"""Figures of notebooks 06 (zero-U ablation, the structure of U) and 07 (top-k attention).

One function per figure kind; each takes the rows of the table saved beside the figure and
returns the figure (docs/analyses.md#zero-u-ablation, docs/analyses.md#interaction-dependent-and-non-binary-computation, docs/analyses.md#top-k-attention).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ablation_bars", "row_variation", "topk_accuracy", "u_distribution"]


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def ablation_bars(rows: Sequence[dict], title: str | None = None):
    """Accuracy and AUC of every row of the ablation table as horizontal bars (published
    rows hatched), with the statistical errors of ours."""
    import matplotlib.pyplot as plt

    labels = [f"{r['model']}: {r['intervention']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(rows) + 1.8), sharey=True)
    y = np.arange(len(rows))
    for ax, metric in zip(axes, ("accuracy", "auc"), strict=True):
        vals = np.array([_num(r.get(metric)) for r in rows])
        errs = np.array([_num(r.get(f"{metric}_err")) for r in rows])
        published = np.array([r.get("n_jets") in (None, "") for r in rows])
        colors = ["#bbbbbb" if p else "#3f7fbf" for p in published]
        bars = ax.barh(y, np.nan_to_num(vals), xerr=np.where(np.isfinite(errs), errs, 0),
                       color=colors, edgecolor="black")
        for bar, p in zip(bars, published, strict=True):
            if p:
                bar.set_hatch("//")
        for yi, v in zip(y, vals, strict=True):
            if np.isfinite(v):
                ax.text(v, yi, f" {v:.3f}", va="center", fontsize=8)
        ax.set_xlabel(metric.upper() if metric == "auc" else "accuracy")
        ax.set_xlim(0, 1.15)
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def u_distribution(dist_rows: Sequence[dict], title: str | None = None):
    """Density of U over real pairs: self pairs (diagonal) against the other pairs, log y."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    edges = np.array([r["u_low"] for r in dist_rows] + [dist_rows[-1]["u_high"]])
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, label, color in (("offdiag", "pairs i ≠ j", "#3f7fbf"),
                               ("diag", "self pairs i = j", "#d62728")):
        dens = np.array([r[f"density_{name}"] for r in dist_rows])
        hep.histplot(dens, edges, ax=ax, label=label, color=color, lw=1.4)
    used = np.flatnonzero([r["density_diag"] + r["density_offdiag"] > 0 for r in dist_rows])
    if len(used):
        ax.set_xlim(edges[used[0]], edges[used[-1] + 1])
    ax.set_yscale("log")
    ax.set_xlabel("U (interaction term, all heads)")
    ax.set_ylabel("density")
    ax.legend()
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def row_variation(rows: Sequence[dict], title: str | None = None):
    """Left: per layer, the mean over rows of std_j A, std_j U and std_j (A + U) (real keys).
    Right: heat map of log10(std U / std A) per layer and head, annotated with the ratio
    (seaborn)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    per_layer = [r for r in rows if str(r["head"]) == "all"]
    layers = [int(r["layer"]) for r in per_layer]
    fig, (ax, axh) = plt.subplots(1, 2, figsize=(11, 4.4))
    for name, label, color in (("A", "std$_j$ A", "#3f7fbf"), ("U", "std$_j$ U", "#d62728"),
                               ("A_plus_U", "std$_j$ (A+U)", "black")):
        ax.errorbar(layers, [_num(r[f"mean_std_{name}"]) for r in per_layer],
                    yerr=[_num(r[f"mean_std_{name}_err"]) for r in per_layer], marker="o",
                    label=label, color=color, capsize=3)
    ax.set_xticks(layers)
    ax.set_xlabel("particle block")
    ax.set_ylabel("mean over rows of the std over real keys")
    ax.legend()
    heads = sorted({int(r["head"]) for r in rows if str(r["head"]) != "all"})
    grid = np.full((len(layers), len(heads)), np.nan)
    for r in rows:
        if str(r["head"]) != "all":
            grid[layers.index(int(r["layer"])), heads.index(int(r["head"]))] = _num(
                r["ratio_std_U_over_A"])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log10(grid)
    sns.heatmap(log_ratio, ax=axh, annot=grid if len(heads) <= 8 else False, fmt=".2g",
                cmap="coolwarm", center=0.0, xticklabels=heads, yticklabels=layers,
                cbar_kws={"label": "log$_{10}$(std U / std A)"})
    axh.set_xlabel("head")
    axh.set_ylabel("particle block")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def topk_accuracy(rows: Sequence[dict], title: str | None = None):
    """Accuracy and AUC against k (log x; "all" drawn right of the largest k), ours with
    statistical errors and, where given, the paper's."""
    import matplotlib.pyplot as plt

    ks = sorted({int(r["k"]) for r in rows if str(r["k"]) != "all"})
    x_all = (max(ks) if ks else 1) * 3

    def xpos(k):
        return x_all if str(k) == "all" else int(k)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, metric in zip(axes, ("accuracy", "auc"), strict=True):
        for source, style in (("partnb", dict(color="#3f7fbf", marker="o", label="ours")),
                              ("paper", dict(color="black", marker="s", ls="--",
                                             label="Wang et al. Table 1"))):
            sel = sorted((r for r in rows if r["source"] == source), key=lambda r: xpos(r["k"]))
            if not sel:
                continue
            err = [_num(r.get(f"{metric}_err")) for r in sel]
            ax.errorbar([xpos(r["k"]) for r in sel], [_num(r[metric]) for r in sel],
                        yerr=np.nan_to_num(err), capsize=3, **style)
        ax.set_xscale("log")
        ticks = [*ks, x_all]
        ax.set_xticks(ticks, [str(k) for k in ks] + ["all"])
        ax.minorticks_off()
        ax.set_xlabel("k (keys kept per attention row)")
        ax.set_ylabel(metric.upper() if metric == "auc" else "accuracy")
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig

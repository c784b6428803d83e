"""Figures of the cross-dataset comparison (notebook 08): one function per figure kind."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from partnb.analysis.sparsity import ROW_THRESHOLDS, ROWS_MAX_COLUMNS

__all__ = ["attention_distributions", "binary_fractions", "ratio_distributions",
           "interaction_summary"]

#: one colour per dataset, the same in every comparison figure
DATASET_COLORS = {"jetclass": "tab:blue", "toplandscape": "tab:orange", "quarkgluon": "tab:green"}


def _color(dataset: str, k: int) -> str:
    return DATASET_COLORS.get(dataset, f"C{k + 3}")


def _datasets(rows: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(r["dataset"] for r in rows))


def attention_distributions(rows: Sequence[dict], *, title: str | None = None):
    """Log-binned post-softmax attention (real pairs) per dataset: trained solid,
    random-init dashed; probability per bin, log-log."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    fig, ax = plt.subplots(figsize=(7, 4.8))
    for k, dataset in enumerate(_datasets(rows)):
        for model, style in (("trained", "-"), ("random_init", "--")):
            sel = [r for r in rows if r["dataset"] == dataset and r["model"] == model and r["bin_lo"] > 0]
            if not sel:
                continue
            edges = np.array([r["bin_lo"] for r in sel] + [sel[-1]["bin_hi"]])
            hep.histplot(np.array([r["probability"] for r in sel]), edges, ax=ax, ls=style,
                         color=_color(dataset, k), label=f"{dataset} ({model.replace('_', ' ')})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("attention weight (real query and key)")
    ax.set_ylabel("probability per bin")
    ax.legend(loc="lower left")
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def binary_fractions(rows: Sequence[dict], *, title: str | None = None):
    """Fractions of query rows with max weight >= 0.8 and >= 0.95 per dataset, trained vs
    random init, with their statistical errors."""
    import matplotlib.pyplot as plt

    datasets = _datasets(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    width = 0.38
    for ax, col, threshold in zip(axes, ROWS_MAX_COLUMNS, ROW_THRESHOLDS, strict=True):
        for j, model in enumerate(("trained", "random_init")):
            vals, errs = [], []
            for d in datasets:
                r = next((r for r in rows if r["dataset"] == d and r["model"] == model), None)
                vals.append(np.nan if r is None else r[col])
                errs.append(0.0 if r is None else r.get(f"{col}_err", 0.0))
            x = np.arange(len(datasets)) + (j - 0.5) * width
            ax.bar(x, vals, width, yerr=errs, label=model.replace("_", " "),
                   color=[_color(d, k) for k, d in enumerate(datasets)],
                   alpha=1.0 if model == "trained" else 0.4, edgecolor="black")
        ax.set_xticks(np.arange(len(datasets)), datasets)
        ax.set_yscale("log")
        ax.set_title(f"rows with max weight $\\geq$ {threshold:g}", fontsize=11)
    axes[0].set_ylabel("fraction of query rows")
    axes[0].legend()
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


def ratio_distributions(rows: Sequence[dict], *, title: str | None = None):
    """log10 |A|/|U| over real pairs per dataset (trained, paired element by element), with
    the papers' reported peak region 10^4-10^5 shaded."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    fig, ax = plt.subplots(figsize=(7, 4.8))
    for k, dataset in enumerate(_datasets(rows)):
        sel = sorted((r for r in rows if r["dataset"] == dataset and np.isfinite(r["bin_lo"])),
                     key=lambda r: r["bin_lo"])
        filled = [i for i, r in enumerate(sel) if r["probability"] > 0]  # every bin is a row:
        sel = sel[filled[0]:filled[-1] + 1] if filled else []  # draw the filled span only
        if not sel:
            continue
        edges = np.array([r["bin_lo"] for r in sel] + [sel[-1]["bin_hi"]])
        probs = np.array([r["probability"] for r in sel])
        if not np.allclose(edges[1:-1], [r["bin_hi"] for r in sel[:-1]]):  # sparse rows: draw points
            ax.step([r["bin_lo"] for r in sel], probs, where="post", color=_color(dataset, k),
                    label=dataset)
        else:
            hep.histplot(probs, edges, ax=ax, color=_color(dataset, k), label=dataset)
    ax.axvspan(4, 5, color="grey", alpha=0.2, label="papers' peak (10$^4$-10$^5$)")
    ax.set_xlabel(r"$\log_{10}(|A|/|U|)$")
    ax.set_ylabel("probability per bin")
    ax.set_yscale("log")
    ax.legend()
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def interaction_summary(rows: Sequence[dict], published: dict | None = None, *,
                        title: str | None = None):
    """Interaction-dependent (D) and non-binary (N) rates and token coverages per dataset,
    with the paper's JetClass values as markers."""
    import matplotlib.pyplot as plt

    keys = ("rate_D", "coverage_D", "rate_N", "coverage_N")
    datasets = _datasets(rows)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(len(datasets), 1)
    for k, d in enumerate(datasets):
        r = next(r for r in rows if r["dataset"] == d)
        x = np.arange(len(keys)) + (k - (len(datasets) - 1) / 2) * width
        ax.bar(x, [r.get(c, np.nan) for c in keys], width, color=_color(d, k), label=d,
               edgecolor="black")
    if published:
        ax.plot(np.arange(len(keys)), [published.get(c, np.nan) for c in keys], "k*", ms=12,
                label="paper (JetClass)")
    ax.set_xticks(np.arange(len(keys)), ["D rate", "D coverage", "N rate", "N coverage"])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=11)
    return fig

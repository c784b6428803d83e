"""Figures of the attention analyses (notebooks 03 and 04; docs/analyses.md#attention-distribution, docs/analyses.md#magnitude-ratio-of-a-and-u, docs/analyses.md#attention-heat-maps).

One function per figure kind; each takes the rows of the table saved next to the figure
(:mod:`partnb.analysis.sparsity`, :mod:`partnb.analysis.magnitude`) and returns the figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from partnb.analysis.sparsity import ROW_THRESHOLDS, ROWS_MAX_COLUMNS, rows_max_column

__all__ = [
    "attention_distribution",
    "attention_heatmap_pair",
    "binary_fractions_per_layer",
    "binary_fractions_per_class",
    "magnitude_distributions",
    "per_head_map",
    "ratio_decades",
    "ratio_log10",
    "ratio_per_layer",
]

#: Line style of each (model, variant).
_STYLE = {
    ("trained", "correct"): dict(color="C0", ls="-"),
    ("trained", "as_coded"): dict(color="C1", ls="--"),
    ("random_init", "correct"): dict(color="C2", ls="-"),
    ("random_init", "as_coded"): dict(color="C3", ls="--"),
}
_LABEL = {"correct": "correct (real i, j)", "as_coded": "as coded (W', padding)",
          "trained": "trained", "random_init": "random init"}


def _label(model: str, variant: str) -> str:
    return f"{_LABEL.get(model, model)}, {_LABEL.get(variant, variant)}"


def _select(rows, **where):
    return [r for r in rows if all(str(r.get(k)) == str(v) for k, v in where.items())]


def attention_distribution(hist_rows: Sequence[dict], *, layer: str = "all", cls: str = "all",
                           title: str | None = None):
    """Post-softmax attention distributions, log y: the papers' 20 linear bins (left) and log
    bins (right; the first bin [0, 10⁻⁸) drawn at 10⁻⁹), one line per model and variant."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for (model, variant), style in _STYLE.items():
        for ax, binning in zip(axes, ("linear20", "log"), strict=True):
            sel = _select(hist_rows, model=model, variant=variant, layer=layer, **{"class": cls},
                          binning=binning)
            if not sel:
                continue
            edges = np.array([sel[0]["bin_lo"]] + [r["bin_hi"] for r in sel], float)
            prob = np.array([r["probability"] for r in sel], float)
            if binning == "log":
                edges[0] = 1e-9
            hep.histplot(prob, edges, ax=ax, label=_label(model, variant), lw=1.4, **style)
    axes[0].set_xlabel("Attention Score")
    axes[0].set_xlim(0, 1)
    axes[1].set_xlabel("Attention Score (first bin: < 1e-8)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylabel("Probability")
    axes[1].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def binary_fractions_per_layer(summary_rows: Sequence[dict], *, title: str | None = None):
    """Per layer: fraction of query rows with max weight ≥ 0.8 / ≥ 0.95 (jackknife errors) and
    the median row maximum, with uniform attention (1/n) as reference."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    cols = (*ROWS_MAX_COLUMNS, "median_row_max")
    for (model, variant), style in _STYLE.items():
        sel = [r for r in _select(summary_rows, model=model, variant=variant) if r["layer"] != "all"]
        if not sel:
            continue
        x = np.array([int(r["layer"]) for r in sel])
        for ax, col in zip(axes, cols, strict=True):
            y = np.array([float(r[col]) for r in sel])
            err = np.array([float(r.get(col + "_err", 0.0)) for r in sel])
            ax.errorbar(x, y, yerr=err, marker="o", capsize=2, label=_label(model, variant),
                        color=style["color"], ls=style["ls"])
    ref = summary_rows[0]
    axes[0].axhline(float(ref[rows_max_column(prefix="uniform_frac_")]), color="k", lw=0.8, ls=":",
                    label="uniform 1/n")
    axes[2].axhline(float(ref["uniform_median_row_max"]), color="k", lw=0.8, ls=":",
                    label="uniform 1/n")
    for ax, col in zip(axes, (*(f"rows with max ≥ {t:g}" for t in ROW_THRESHOLDS), "median row max"),
                       strict=True):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("particle block")
        ax.set_ylabel(col)
        ax.set_ylim(bottom=0)
    axes[2].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def per_head_map(per_head_rows: Sequence[dict], column: str = ROWS_MAX_COLUMNS[0], *,
                 title: str | None = None):
    """Seaborn heat maps block × head of ``column``, one panel per model and variant."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    keys = [k for k in _STYLE if _select(per_head_rows, model=k[0], variant=k[1])]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.8), squeeze=False)
    vmax = max(float(r[column]) for r in per_head_rows) or 1.0
    for ax, (model, variant) in zip(axes[0], keys, strict=True):
        sel = _select(per_head_rows, model=model, variant=variant)
        layers = sorted({int(r["layer"]) for r in sel})
        heads = sorted({int(r["head"]) for r in sel})
        grid = np.full((len(layers), len(heads)), np.nan)
        for r in sel:
            grid[int(r["layer"]), int(r["head"])] = float(r[column])
        sns.heatmap(grid, ax=ax, vmin=0, vmax=vmax, cmap="viridis", annot=len(heads) <= 8,
                    fmt=".2f", annot_kws={"fontsize": 6}, cbar=ax is axes[0][-1])
        ax.invert_yaxis()
        ax.set_xlabel("head")
        ax.set_ylabel("particle block")
        ax.set_title(_label(model, variant), fontsize=9)
    fig.suptitle(title or column)
    fig.tight_layout()
    return fig


def binary_fractions_per_class(per_class_rows: Sequence[dict], *, title: str | None = None):
    """Per class (all blocks): fraction of rows with max ≥ 0.8 and ≥ 0.95 (bars, jackknife
    errors), one bar per model and variant."""
    import matplotlib.pyplot as plt

    classes = list(dict.fromkeys(r["class"] for r in per_class_rows))
    keys = [k for k in _STYLE if _select(per_class_rows, model=k[0], variant=k[1])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / max(len(keys), 1)
    x = np.arange(len(classes))
    for ax, col, threshold in zip(axes, ROWS_MAX_COLUMNS, ROW_THRESHOLDS, strict=True):
        for k, (model, variant) in enumerate(keys):
            sel = {r["class"]: r for r in _select(per_class_rows, model=model, variant=variant)}
            y = [float(sel[c][col]) if c in sel else np.nan for c in classes]
            e = [float(sel[c][col + "_err"]) if c in sel else 0 for c in classes]
            ax.bar(x + (k - (len(keys) - 1) / 2) * width, y, width, yerr=e, capsize=2,
                   color=_STYLE[(model, variant)]["color"], label=_label(model, variant))
        ax.set_xticks(x, classes, rotation=45)
        ax.set_ylabel(f"rows with max ≥ {threshold:g}")
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def attention_heatmap_pair(maps: dict[str, np.ndarray], head: int, *, title: str):
    """One jet, one block, one head: correct W and as-coded W' side by side (docs/analyses.md#attention-heat-maps: rows =
    query, columns = key, origin lower, viridis, colorbar, integer ticks every 5)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MultipleLocator

    fig, axes = plt.subplots(1, len(maps), figsize=(5.6 * len(maps), 4.8), squeeze=False)
    for ax, (variant, m) in zip(axes[0], maps.items(), strict=True):
        im = ax.imshow(m[head], origin="lower", cmap="viridis", aspect="equal")
        fig.colorbar(im, ax=ax, label="Attention Weight", fraction=0.046)
        ax.xaxis.set_major_locator(MultipleLocator(5))
        ax.yaxis.set_major_locator(MultipleLocator(5))
        ax.set_xlabel("Particle Index (key)")
        ax.set_ylabel("Particle Index (query)")
        ax.set_title(_LABEL.get(variant, variant), fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def ratio_decades(hist_rows: Sequence[dict], *, title: str | None = None):
    """The papers' decade bar chart of |A|/|U| (log y), one bar per model and variant."""
    import matplotlib.pyplot as plt

    keys = [k for k in _STYLE if _select(hist_rows, model=k[0], variant=k[1], binning="decade")]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = [r["bin"] for r in _select(hist_rows, model=keys[0][0], variant=keys[0][1],
                                        binning="decade", layer="all")]
    x = np.arange(len(labels))
    width = 0.8 / len(keys)
    for k, (model, variant) in enumerate(keys):
        sel = _select(hist_rows, model=model, variant=variant, binning="decade", layer="all")
        ax.bar(x + (k - (len(keys) - 1) / 2) * width, [float(r["probability"]) for r in sel], width,
               color=_STYLE[(model, variant)]["color"], label=_label(model, variant))
    ax.set_xticks(x, labels, rotation=30)
    ax.set_yscale("log")
    ax.set_xlabel("Magnitude of Attn. Score/Inter. Score")
    ax.set_ylabel("Probability")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _filled_span(rows: Sequence[dict]) -> list[dict]:
    """The rows from the first to the last bin with a non-zero count (tables hold every bin
    of their fixed binning; the empty tails would only stretch the axis)."""
    filled = [k for k, r in enumerate(rows) if float(r["probability"]) > 0]
    return list(rows[filled[0]:filled[-1] + 1]) if filled else []


def _step_per_dex(ax, rows: Sequence[dict], **style) -> bool:
    """Draw log10-binned rows (finite bins only) as a probability density per dex; False if
    there is nothing to draw."""
    rows = _filled_span([r for r in rows
                         if np.isfinite(float(r["bin_lo"])) and np.isfinite(float(r["bin_hi"]))])
    if not rows:
        return False
    centres = np.array([(float(r["bin_lo"]) + float(r["bin_hi"])) / 2 for r in rows])
    width = np.array([float(r["bin_hi"]) - float(r["bin_lo"]) for r in rows])
    ax.step(centres, np.array([float(r["probability"]) for r in rows]) / width, where="mid", **style)
    return True


def ratio_log10(hist_rows: Sequence[dict], *, title: str | None = None):
    """Histograms of log10 |A|/|U| (all blocks), one line per model and variant."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (model, variant), style in _STYLE.items():
        _step_per_dex(ax, _select(hist_rows, model=model, variant=variant, binning="log10_ratio"),
                      label=_label(model, variant), color=style["color"], ls=style["ls"])
    ax.axvspan(4, 5, color="grey", alpha=0.2, label="papers' peak 10^4–10^5")
    ax.set_xlabel(r"$\log_{10} |A| / |U|$")
    ax.set_ylabel("probability density per dex")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def magnitude_distributions(mag_rows: Sequence[dict], summary_rows: Sequence[dict], *,
                            title: str | None = None):
    """Distributions of log10 |A| and log10 |U| (all blocks) with their medians (dotted)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, quantity in zip(axes, ("abs_A", "abs_U"), strict=True):
        for (model, variant), style in _STYLE.items():
            if not _step_per_dex(ax, _select(mag_rows, model=model, variant=variant, quantity=quantity),
                                 label=_label(model, variant), color=style["color"], ls=style["ls"]):
                continue
            med = _select(summary_rows, model=model, variant=variant, layer="all")
            if med:
                col = "median_abs_a" if quantity == "abs_A" else "median_abs_u"
                ax.axvline(np.log10(float(med[0][col])), color=style["color"], ls=":", lw=1)
        ax.set_xlabel(r"$\log_{10} |A|$" if quantity == "abs_A" else r"$\log_{10} |U|$")
        ax.set_yscale("log")
    axes[0].set_ylabel("probability density per dex")
    axes[1].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def ratio_per_layer(summary_rows: Sequence[dict], *, title: str | None = None):
    """Median |A|/|U| per block with its 10–90 % band (log y), per model and variant."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, ((model, variant), style) in enumerate(_STYLE.items()):
        sel = [r for r in _select(summary_rows, model=model, variant=variant) if r["layer"] != "all"]
        if not sel:
            continue
        x = np.array([int(r["layer"]) for r in sel]) + (k - 1.5) * 0.06
        med = np.array([float(r["q50_ratio"]) for r in sel])
        lo = med - np.array([float(r["q10_ratio"]) for r in sel])
        hi = np.array([float(r["q90_ratio"]) for r in sel]) - med
        ax.errorbar(x, med, yerr=[lo, hi], marker="o", capsize=3, color=style["color"],
                    ls=style["ls"], label=_label(model, variant) + " (median, 10–90 %)")
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("particle block")
    ax.set_ylabel("|A| / |U|")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig

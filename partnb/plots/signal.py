"""Figures of notebook 13: per-class distributions of per-jet attention statistics and the
AUCs of classifiers on them (docs/analyses.md#attention-statistics-as-a-jet-tagger).

One function per figure kind; each takes the rows of the table saved beside the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["FEATURE_LABELS", "INPUT_LABELS", "auc_bars", "feature_distributions"]

#: Axis labels of the per-jet features (averaged over particle blocks and heads).
FEATURE_LABELS = {
    "row_max_mean": "mean row maximum of W",
    "frac_rows_max_ge_0.8": "fraction of rows with max W ≥ 0.8",
    "entropy": "mean row entropy / ln n",
    "rate_D": "interaction-dependent rate D",
    "intersubjet_N2": "inter-subjet fraction (2 kT subjets)",
    "intersubjet_N3": "inter-subjet fraction (3 kT subjets)",
    "intersubjet_N4": "inter-subjet fraction (4 kT subjets)",
    "lepton_fraction": "lepton attention fraction",
    "jet_mass": "jet mass [GeV]",
    "jet_multiplicity": "particles in the jet",
    "mass": "mass of the particles the model sees [GeV]",
    "multiplicity": "particles the model sees",
}
#: Legend labels of the classifier's input sets (partnb.analysis.attention_features.INPUT_SETS).
INPUT_LABELS = {
    "attention": "attention",
    "attention_per_head": "attention, per head",
    "mass_multiplicity": "mass + multiplicity",
    "attention_mass_multiplicity": "attention + mass + multiplicity",
    "random_attention": "never-trained attention",
    "random_attention_mass_multiplicity": "never-trained attention + mass + mult.",
    "attention_lepton": "attention + lepton fraction (truth PID)",
}


def feature_distributions(rows: Sequence[Mapping], *, background: str, ncols: int = 3,
                          title: str | None = None):
    """Normalised per-class histograms of each feature (one panel per feature) from
    :func:`partnb.analysis.attention_features.feature_histogram_rows`: the background class
    filled grey, every signal class a step line. Returns the figure."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    features: dict[str, dict[str, list]] = {}
    for r in rows:
        features.setdefault(r["feature"], {}).setdefault(r["class"], []).append(r)
    ncols = max(1, min(ncols, len(features)))
    nrows = max(1, int(np.ceil(len(features) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, (feature, by_class) in zip(axes.flat, features.items(), strict=False):
        signal_index = 0
        for name, group in by_class.items():
            edges = np.array([g["bin_lo"] for g in group] + [group[-1]["bin_hi"]], dtype=float)
            density = np.array([g["density"] for g in group], dtype=float)
            if name == background:
                hep.histplot(density, edges, ax=ax, histtype="fill", color="0.8", label=name)
            else:
                hep.histplot(density, edges, ax=ax, color=colors(signal_index % 10), lw=1.3, label=name)
                signal_index += 1
        ax.set_xlabel(FEATURE_LABELS.get(feature, feature), fontsize=9)
        ax.set_ylabel("density", fontsize=9)
        ax.set_ylim(bottom=0)
    for ax in list(axes.flat)[len(features):]:
        ax.set_visible(False)
    if features:
        n_classes = len(next(iter(features.values())))
        axes.flat[0].legend(fontsize=7, ncol=2 if n_classes > 4 else 1)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def auc_bars(rows: Sequence[Mapping], *, title: str | None = None):
    """AUC of each input set per task (bars with bootstrap errors) and the tagger's own AUC
    on the same evaluation jets (black bar across the group), from
    :func:`partnb.analysis.attention_features.classifier_rows`; tasks that were not
    evaluated are named on the axis without bars. Returns the figure."""
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    inputs = [k for k in INPUT_LABELS if any(r["inputs"] == k for r in rows)]
    width = 0.8 / max(1, len(inputs))
    fig, ax = plt.subplots(figsize=(max(6.4, 1.3 * len(tasks) + 2.5), 4.8))
    colors = {"attention": "#3f7fbf", "attention_per_head": "#9ecae1", "mass_multiplicity": "#999999",
              "attention_mass_multiplicity": "#2ca02c", "random_attention": "#ff7f0e",
              "random_attention_mass_multiplicity": "#fdd0a2", "attention_lepton": "#9467bd"}
    for k, name in enumerate(inputs):
        x, y, e = [], [], []
        for t, task in enumerate(tasks):
            r = next((r for r in rows if r["task"] == task and r["inputs"] == name), None)
            if r is None or not np.isfinite(float(r["auc"])):
                continue
            x.append(t - 0.4 + width * (k + 0.5))
            y.append(float(r["auc"]))
            err = float(r.get("auc_err", np.nan))
            e.append(err if np.isfinite(err) else 0.0)
        ax.bar(x, np.array(y) - 0.5, width, bottom=0.5, yerr=e, color=colors.get(name),
               edgecolor="black", lw=0.5, label=INPUT_LABELS[name], error_kw={"lw": 0.8})
    label = "tagger (ParT output)"
    for t, task in enumerate(tasks):
        tagger = [float(r["tagger_auc"]) for r in rows if r["task"] == task
                  and np.isfinite(float(r.get("tagger_auc", np.nan)))]
        if tagger:
            ax.hlines(tagger[0], t - 0.45, t + 0.45, color="black", lw=2, label=label)
            label = None
    ax.axhline(0.5, color="0.5", lw=0.8, ls="--")
    ax.set_xticks(range(len(tasks)), tasks, rotation=30 if len(tasks) > 3 else 0, ha="right"
                  if len(tasks) > 3 else "center", fontsize=9)
    ax.set_ylim(0.4, 1.0)
    ax.set_ylabel("AUC on the evaluation half")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig

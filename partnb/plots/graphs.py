"""η–φ attention graphs with kT subjets (docs/analyses.md#eta-phi-attention-graphs) and the attention-fraction histograms
(docs/analyses.md#lepton-attention-fraction, docs/analyses.md#inter-subjet-attention-fraction) of notebook 05."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["PID_MARKERS", "eta_phi_attention_graph", "eta_phi_attention_grid", "fraction_histograms"]

#: Marker per PID code of :data:`partnb.analysis.substructure.PID_CODES` (docs/analyses.md#eta-phi-attention-graphs): charged
#: hadron ^, neutral hadron v, photon o, electron P (plus), muon X, other/unknown o.
PID_MARKERS = {-1: "o", 0: "o", 1: "^", 2: "v", 3: "o", 4: "P", 5: "X"}
_PID_NAMES = {1: "charged hadron", 2: "neutral hadron", 3: "photon", 4: "electron", 5: "muon"}


def _subjet_colors(subjet: np.ndarray) -> dict[int, tuple]:
    """'spring' colour at rank/len(unique)·0.7 of each subjet index (docs/analyses.md#eta-phi-attention-graphs)."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("spring")
    unique = sorted(set(int(s) for s in subjet))
    return {s: cmap(rank / len(unique) * 0.7) for rank, s in enumerate(unique)}


def eta_phi_attention_graph(ax, graph, weights: np.ndarray, *, title: str | None = None,
                            min_alpha: float = 0.02, legend: bool = True):
    """Draw one head's attention of one jet in the (Δη, Δφ) plane on ``ax`` (docs/analyses.md#eta-phi-attention-graphs).

    A line for every ordered pair i ≠ j with weight > 0, black, alpha = weight min-max
    normalised over the head's n×n matrix (diagonal included); solid with width alpha within
    a subjet, dashed (0, (2, 2)) with width 1.3·alpha between subjets. Lines with alpha below
    ``min_alpha`` are not drawn (invisible anyway; the tables hold every pair). Particles:
    colour by subjet, marker by PID, transparency max(0.5, min-max ln pT).

    Args:
        graph: a :class:`~partnb.analysis.substructure.GraphJet`.
        weights: (n, n) weights of one head (rows = query).

    Returns:
        a ScalarMappable spanning the head's min…max weight (for a grey colorbar).
    """
    import matplotlib as mpl
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    w = np.asarray(weights, dtype=np.float64)
    lo, hi = float(w.min()), float(w.max())
    alpha = (w - lo) / (hi - lo) if hi > lo else np.zeros_like(w)
    i, j = np.nonzero((w > 0) & (alpha >= min_alpha) & ~np.eye(len(w), dtype=bool))
    same = graph.subjet[i] == graph.subjet[j]
    xy = np.stack([np.stack([graph.deta[i], graph.dphi[i]], -1),
                   np.stack([graph.deta[j], graph.dphi[j]], -1)], axis=1)
    for sel, style, scale in ((same, "solid", 1.0), (~same, (0, (2, 2)), 1.3)):
        if sel.any():
            a = alpha[i[sel], j[sel]]
            colors = np.zeros((len(a), 4))
            colors[:, 3] = a
            # rasterized: thousands of segments would make a PDF of several MB
            ax.add_collection(LineCollection(xy[sel], colors=colors, linewidths=scale * a,
                                             linestyles=style, zorder=1, rasterized=True))
    lpt = graph.log_pt
    span = lpt.max() - lpt.min()
    p_alpha = np.maximum(0.5, (lpt - lpt.min()) / span if span > 0 else np.ones_like(lpt))
    colors = _subjet_colors(graph.subjet)
    face = np.array([colors[int(s)] for s in graph.subjet], dtype=float).reshape(-1, 4)
    face[:, 3] = p_alpha
    markers = np.array([PID_MARKERS.get(int(p), "o") for p in graph.pid])
    for marker in np.unique(markers):
        sel = markers == marker
        ax.scatter(graph.deta[sel], graph.dphi[sel], s=90, marker=marker, c=face[sel],
                   edgecolors="black", linewidths=1.0, zorder=2)
    ax.set_xlabel(r"$\Delta\eta$")
    ax.set_ylabel(r"$\Delta\phi$")
    pad = 0.05
    ax.set_xlim(graph.deta.min() - pad, graph.deta.max() + pad)
    ax.set_ylim(graph.dphi.min() - pad, graph.dphi.max() + pad)
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        handles = [Line2D([], [], marker="o", ls="", color=c, markeredgecolor="black",
                          label="unmatched" if s < 0 else f"subjet {s}") for s, c in colors.items()]
        pids = sorted(set(int(p) for p in graph.pid) & set(_PID_NAMES))
        handles += [Line2D([], [], marker=PID_MARKERS[p], ls="", color="white", markeredgecolor="black",
                           label=_PID_NAMES[p]) for p in pids]
        ax.legend(handles=handles, fontsize=6, loc="best", framealpha=0.6)
    sm = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(lo, hi), cmap="gray_r")
    return sm


def eta_phi_attention_grid(graph, variant: str = "W", *, jet_label: str = "", ncols: int = 4,
                           min_alpha: float = 0.02, note: str = ""):
    """All heads of the last block of one jet, one panel per head titled "Layer l - Head h",
    each with its grey colorbar "Attention Weight" (docs/analyses.md#eta-phi-attention-graphs). Returns the figure."""
    import matplotlib.pyplot as plt

    maps = graph.weights[variant]
    heads = len(maps)
    nrows = int(np.ceil(heads / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.0 * nrows), squeeze=False)
    for h, ax in enumerate(axes.flat):
        if h >= heads:
            ax.set_visible(False)
            continue
        sm = eta_phi_attention_graph(ax, graph, maps[h], title=f"Layer {graph.layer + 1} - Head {h + 1}",
                                     min_alpha=min_alpha, legend=h == 0)
        cbar = fig.colorbar(sm, ax=ax, fraction=0.046, pad=0.02)
        cbar.set_label("Attention Weight", fontsize=8)
        cbar.ax.tick_params(labelsize=7)
    what = "W = softmax(A + U)" if variant == "W" else "softmax over real keys of A (no U; TLG)"
    fig.suptitle(f"{jet_label} jet (n = {graph.n}): {what}{note}", fontsize=12, x=0.5, ha="center")
    fig.tight_layout()
    return fig


def fraction_histograms(rows: Sequence[Mapping], *, panel_by: Sequence[str], xlabel: str,
                        titles: Mapping[tuple, str] | None = None, ncols: int = 2,
                        labels: Mapping[str, str] | None = None):
    """Step histograms (density, log y, x in [0, 1]) of attention fractions (docs/analyses.md#lepton-attention-fraction, docs/analyses.md#inter-subjet-attention-fraction) from a
    histogram table (rows with ``bin_lo``, ``bin_hi``, ``density_<model>``), one panel per
    distinct value of the ``panel_by`` columns. Returns the figure."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    labels = dict(labels or {})
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(r[c] for c in panel_by), []).append(r)
    ncols = min(ncols, len(groups))
    nrows = int(np.ceil(len(groups) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.4 * ncols, 4.0 * nrows), squeeze=False)
    styles = {"trained": ("C0", "-"), "random_init": ("C1", "-"), "uniform": ("0.4", "--")}
    for ax, (key, group) in zip(axes.flat, groups.items(), strict=False):
        edges = np.array([r["bin_lo"] for r in group] + [group[-1]["bin_hi"]], dtype=float)
        models = [c[len("density_"):] for c in group[0] if c.startswith("density_")]
        for name in models:
            color, ls = styles.get(name, (None, "-"))
            hep.histplot(np.array([r[f"density_{name}"] for r in group], dtype=float), edges, ax=ax,
                         label=labels.get(name, name), color=color, ls=ls, lw=1.4)
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel(xlabel, fontsize=10)
        ax.set_ylabel("Probability Density")
        ax.set_title((titles or {}).get(key, " ".join(map(str, key))), fontsize=11)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig

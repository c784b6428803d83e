"""Figure functions: one function per figure kind, in mplhep's style."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["use_style", "class_histogram_grid", "detector_overlay"]


def use_style() -> None:
    """mplhep's ROOT-like style with a moderate default size for notebooks and papers."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    plt.style.use(hep.style.ROOT)
    plt.rcParams.update({"figure.figsize": (6.4, 4.8), "font.size": 11, "axes.labelsize": 12,
                         "legend.fontsize": 8, "xtick.labelsize": 10, "ytick.labelsize": 10})


def class_histogram_grid(h, variables: Sequence[str] | None = None, *, ncols: int = 2,
                         logy: Sequence[str] = (), title: str | None = None):
    """Normalised per-class step histograms of ``variables`` of a ``ClassHistograms``, one
    panel each. Returns the figure."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    variables = list(variables or h.edges)
    nrows = int(np.ceil(len(variables) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.9 * nrows), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, var in zip(axes.flat, variables, strict=False):
        dens = h.density(var)
        for c, name in enumerate(h.classes):
            if h.entries[var][c] == 0:
                continue
            hep.histplot(dens[c], h.edges[var], ax=ax, label=name, color=colors(c % 10), lw=1.3)
        ax.set_xlabel(h.labels.get(var, var))
        ax.set_ylabel("density")
        if var in logy:
            ax.set_yscale("log")
        ax.set_xlim(h.edges[var][0], h.edges[var][-1])
    for ax in list(axes.flat)[len(variables):]:
        ax.set_visible(False)
    axes.flat[0].legend(ncol=2 if len(h.classes) > 4 else 1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def detector_overlay(samples: dict, variables: Sequence[str], *, real: dict | None = None,
                     title: str | None = None):
    """One panel per variable: each class's normalised histogram at particle level (dashed)
    and through the detector emulation (solid), same colour per class; ``real`` maps
    class -> the real dataset's mean of the first variable, drawn as a tick on its axis."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    fig, axes = plt.subplots(1, len(variables), figsize=(5.2 * len(variables), 4.0), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, var in zip(axes.flat, variables, strict=True):
        for (mode, h), style in zip(samples.items(), ("--", "-"), strict=True):
            dens = h.density(var)
            for c, name in enumerate(h.classes):
                if h.entries[var][c]:
                    hep.histplot(dens[c], h.edges[var], ax=ax, color=colors(c % 10), lw=1.2, ls=style,
                                 label=f"{name} ({mode})" if len(h.classes) <= 3 else None)
        ax.set_xlabel(h.labels.get(var, var))
        ax.set_ylabel("density")
        ax.set_xlim(h.edges[var][0], h.edges[var][-1])
    first = next(iter(samples.values()))
    for c, name in enumerate(first.classes):
        if real and name in real:
            axes.flat[0].axvline(real[name], color=colors(c % 10), lw=0.8, ls=":")
    if len(first.classes) > 3:  # one legend entry per class and one per mode
        from matplotlib.lines import Line2D
        handles = [Line2D([], [], color=colors(c % 10), label=n) for c, n in enumerate(first.classes)]
        handles += [Line2D([], [], color="k", ls=s, label=m) for m, s in zip(samples, ("--", "-"), strict=True)]
        axes.flat[0].legend(handles=handles, ncol=2, fontsize=7)
    else:
        axes.flat[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves(log_rows):
    """Loss and accuracy per epoch (train and validation) from a training log."""
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in log_rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(epochs, [r["train_loss"] for r in log_rows], "o-", label="train")
    a.plot(epochs, [r["val_loss"] for r in log_rows], "s-", label="validation")
    a.set_xlabel("epoch")
    a.set_ylabel("cross-entropy")
    a.legend()
    b.plot(epochs, [r["train_accuracy"] for r in log_rows], "o-", label="train")
    b.plot(epochs, [r["val_accuracy"] for r in log_rows], "s-", label="validation")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    fig.tight_layout()
    return fig


def roc_curves(curves: dict, title: str | None = None):
    """Background rejection vs signal efficiency, log y, one line per signal class."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for name, (tpr, fpr) in curves.items():
        ok = fpr > 0
        ax.plot(tpr[ok], 1 / fpr[ok], label=name, lw=1.3)
    ax.set_yscale("log")
    ax.set_xlabel("signal efficiency")
    ax.set_ylabel("background rejection")
    ax.set_xlim(0, 1)
    ax.legend(ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig

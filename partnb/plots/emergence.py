"""Figures of notebook 09: attention statistics against the optimiser step."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..analysis.emergence import BINARY_COLUMN, STRICT_COLUMN

__all__ = ["extrapolation_plot", "knob_panels", "runs_compared", "sparsity_over_training"]

_CORRECT, _CODED = "#1f77b4", "#d62728"


def _steps(rows: Sequence[dict]) -> np.ndarray:
    # step 0 (initialisation) is drawn at 1 on the log axis
    return np.maximum(np.array([r["step"] for r in rows], float), 1.0)


def _col(rows: Sequence[dict], name: str) -> np.ndarray:
    return np.array([np.nan if r.get(name) in (None, "") else float(r[name]) for r in rows])


def _pair(ax, rows, name: str, label: str, *, err: bool = False, logy: bool = False,
          style: str = "o-") -> None:
    x = _steps(rows)
    for suffix, color, what in (("", _CORRECT, "correct"), ("_as_coded", _CODED, "as coded")):
        y = _col(rows, name + suffix)
        if np.all(np.isnan(y)):
            continue
        ax.plot(x, y, style, ms=3, lw=1.2, color=color, label=f"{label}, {what}")
        if err:
            e = _col(rows, name + "_err" + suffix)
            if not np.all(np.isnan(e)):
                ax.fill_between(x, y - e, y + e, color=color, alpha=0.2, lw=0)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")


def sparsity_over_training(rows: Sequence[dict], epoch_rows: Sequence[dict] = (), *,
                           steps_per_epoch: int | None = None, title: str | None = None):
    """Six panels against the optimiser step (log axis; step 0 drawn at 1): binary-row
    fractions, median row maximum and entropy, top-two logit gap, magnitudes, D and N rates,
    and accuracy (probe set at every point, validation per epoch), each for the correct
    attention and the papers' as-coded capture."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.2))
    a = axes.flat
    _pair(a[0], rows, BINARY_COLUMN, "max ≥ 0.8", err=True)
    x = _steps(rows)
    for suffix, color in (("", _CORRECT), ("_as_coded", _CODED)):
        y = _col(rows, STRICT_COLUMN + suffix)
        if not np.all(np.isnan(y)):
            a[0].plot(x, y, "s--", ms=3, lw=1, color=color, label="max ≥ 0.95" + (", as coded" if suffix else ", correct"))
    a[0].set_ylabel("fraction of rows")
    a[0].legend()
    _pair(a[1], rows, "median_row_max", "median row max")
    _pair(a[1], rows, "mean_norm_entropy", "entropy / ln n", style="s--")
    a[1].set_ylabel("row statistic")
    a[1].legend()
    _pair(a[2], rows, "median_logit_gap", "median top-two gap")
    a[2].axhline(np.log(4 * 49), color="grey", ls=":", lw=1, label="gap for max 0.8 over 50 keys")
    a[2].set_ylabel("logit gap")
    a[2].legend()
    for name, style, label in (("median_abs_A", "o-", "|A|"), ("median_abs_A_as_coded", "o--", "|A'| as coded"),
                               ("median_abs_U", "s-", "|U|")):
        y = _col(rows, name)
        a[3].plot(x, y, style, ms=3, lw=1.2, label=f"median {label}")
    a[3].set_xscale("log")
    a[3].set_yscale("log")
    a[3].set_ylabel("magnitude")
    a[3].legend()
    _pair(a[4], rows, "D_rate", "D", err=True)
    _pair(a[4], rows, "N_rate", "N", err=True, style="s--")
    a[4].set_ylabel("rate")
    a[4].legend()
    a[5].plot(x, _col(rows, "probe_accuracy"), "o-", ms=3, lw=1.2, color="k", label="probe set")
    if epoch_rows and steps_per_epoch:
        ex = np.array([r["epoch"] for r in epoch_rows], float) * steps_per_epoch
        a[5].plot(ex, [r["val_accuracy"] for r in epoch_rows], "s-", ms=4, lw=1, color="grey",
                  label="validation (epoch ends)")
    a[5].set_xscale("log")
    a[5].set_ylabel("accuracy")
    a[5].legend()
    for ax in a:
        ax.set_xlabel("optimiser step (0 drawn at 1)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def runs_compared(runs: dict, *, title: str | None = None):
    """Runs of one dataset side by side against the optimiser step: the rows with max >= 0.8
    (band: jackknife error), the medians of |A| and |U|, and the probe accuracy.

    Args:
        runs: label -> monitor-log rows (:func:`partnb.analysis.emergence.load_monitor_log`).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, rows), color in zip(runs.items(), colors, strict=False):
        x = _steps(rows)
        y, e = _col(rows, BINARY_COLUMN), _col(rows, BINARY_COLUMN + "_err")
        axes[0].plot(x, y, "o-", ms=3, lw=1.2, color=color, label=label)
        axes[0].fill_between(x, y - e, y + e, color=color, alpha=0.2, lw=0)
        axes[1].plot(x, _col(rows, "median_abs_A"), "o-", ms=3, lw=1.2, color=color,
                     label=f"|A|, {label}")
        axes[1].plot(x, _col(rows, "median_abs_U"), "s--", ms=3, lw=1.0, color=color,
                     label=f"|U|, {label}")
        axes[2].plot(x, _col(rows, "probe_accuracy"), "o-", ms=3, lw=1.2, color=color, label=label)
    for ax, ylabel in zip(axes, ("rows with max weight ≥ 0.8", "median over real pairs",
                                 "probe accuracy"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("optimiser step (0 drawn at 1)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    axes[1].set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


#: x-axis names of the grid's knobs (the epochs knob is drawn against its optimiser steps)
KNOB_LABELS = {"train_jets": "training jets", "epochs": "optimiser steps (epochs knob)",
               "width": "embedding width d", "classes": "classes", "padding": "training padding",
               "detector": "detector", "weight_decay": "weight decay",
               "weight_decay_mode": "weight decay mode"}


def knob_panels(series_by_knob: dict, metric_label: str, *, title: str | None = None):
    """One panel per knob: ``metric`` against the knob's value (error bars: probe-set jackknife
    and seed spread in quadrature). ``series_by_knob``: knob -> list of {x, y, err}."""
    import matplotlib
    import matplotlib.pyplot as plt

    knobs = [k for k, s in series_by_knob.items() if s]
    fig, axes = plt.subplots(1, max(len(knobs), 1), figsize=(3.6 * max(len(knobs), 1), 3.4),
                             squeeze=False)
    for ax, knob in zip(axes[0], knobs, strict=False):
        s = series_by_knob[knob]
        labels = [str(p["x"]) for p in s]
        numeric = all(isinstance(p["x"], int | float) for p in s)
        x = [p["x"] for p in s] if numeric else list(range(len(s)))
        ax.errorbar(x, [p["y"] for p in s], yerr=[p["err"] for p in s], fmt="o-", ms=4, capsize=2)
        if numeric and knob in ("train_jets", "epochs"):
            # log axis ticked at the points themselves (matplotlib's minor labels overlapped
            # within one decade)
            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_xticks(x, [f"{v:,.0f}".replace(",", " ") for v in x])
        if not numeric:
            ax.set_xticks(x, labels)
        ax.set_xlabel(KNOB_LABELS.get(knob, knob))
        ax.set_ylabel(metric_label)
    if not knobs:
        axes[0][0].text(0.5, 0.5, "no finished grid point", ha="center", transform=axes[0][0].transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def extrapolation_plot(panels: Sequence[dict], *, title: str | None = None):
    """Measured points and fitted curves carried to the papers' scale, one panel per
    (metric, knob): ``panels`` holds ``x``, ``y``, ``err``, ``fits`` (name -> Fit), ``at``
    (the papers' scale) and labels. The extrapolated stretch is dashed, with its 68 % band."""
    import matplotlib.pyplot as plt

    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
    for ax, p in zip(axes[0], panels, strict=False):
        ax.errorbar(p["x"], p["y"], yerr=p["err"], fmt="o", ms=4, color="k", label="measured")
        lo_x = max(min(p["x"]), 1.0)
        grid = np.logspace(np.log10(lo_x), np.log10(p["at"]), 120)
        for (name, fit), color in zip(p["fits"].items(), ("#1f77b4", "#d62728"), strict=False):
            pred = np.array([fit.predict(g) for g in grid])
            inside = grid <= max(p["x"])
            ax.plot(grid[inside], np.minimum(pred[inside, 0], 1), "-", color=color, label=name)
            ax.plot(grid[~inside], np.minimum(pred[~inside, 0], 1), "--", color=color)
            ax.fill_between(grid[~inside], np.minimum(pred[~inside, 1], 1),
                            np.minimum(pred[~inside, 2], 1), color=color, alpha=0.15, lw=0)
        ax.axvline(p["at"], color="grey", ls=":", lw=1, label="papers' scale (prediction)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(p["xlabel"])
        ax.set_ylabel(p["ylabel"])
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

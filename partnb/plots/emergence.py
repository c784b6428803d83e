"""Figures of notebook 09: attention statistics against the optimiser step."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["sparsity_over_training"]

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
    _pair(a[0], rows, "rows_max_ge_0.8", "max ≥ 0.8", err=True)
    x = _steps(rows)
    for suffix, color in (("", _CORRECT), ("_as_coded", _CODED)):
        y = _col(rows, "rows_max_ge_0.95" + suffix)
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

"""Fits of how sparsity measures grow with training jets and optimiser steps, and what they
predict at the papers' scale (notebook 10, docs/sparsity_study.md#fits-and-extrapolation).

Two forms, each justified by what it can and cannot do:

* **power law** y = a·xᵇ, a straight line in log y against log x: the form data-scaling
  laws of neural networks take over a few decades; it never saturates, so it is the
  *optimistic* extrapolation of a fraction that grows (capped at 1 when reported);
* **logistic in log x**, y = c / (1 + exp(−k (log₁₀ x − m))): a rise between two plateaus,
  the form a sudden emergence after a plateau takes (Zucchet et al., arXiv 2505.17863);
  it saturates at c, so it is the *conservative* one.

Both are weighted least-squares fits (weights from the points' errors where given, inflated
by √(χ²/dof) when the scatter exceeds them). Predictions carry a 68 % interval from the
parameter covariance (delta method, propagated in log y for the power law). They are
extrapolations over two to four decades from a handful of CPU-scale points: a prediction
with an interval, labelled as one, never a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from partnb.analysis.sparsity import rows_max_column

__all__ = ["Fit", "PAPER_SCALE", "extrapolation_row", "fit_logistic_log", "fit_power_law"]

#: the papers' training scale: training jets and optimiser steps (ParT paper, training recipes of
#: docs/training.md#the-published-recipes: JetClass 50 epochs × 10 000 × 1024 samples at batch 512 ≈ 1.0M steps; TL 20 epochs ×
#: 2400 × 512 samples at batch 512 = 48k steps; QG 20 epochs × 1.6M at batch 512 ≈ 62.5k steps)
PAPER_SCALE = {
    "jetclass": {"jets": 100_000_000, "steps": 50 * 10_000 * 1024 // 512},
    "toplandscape": {"jets": 1_200_000, "steps": 20 * 2400},
    "quarkgluon": {"jets": 1_600_000, "steps": 20 * 1_600_000 // 512},
}


@dataclass
class Fit:
    """A fitted form: ``params`` with covariance ``cov`` over ``n_points`` points."""

    form: str
    params: np.ndarray
    cov: np.ndarray
    n_points: int
    chi2_per_dof: float = float("nan")
    notes: list[str] = field(default_factory=list)

    def predict(self, x0: float) -> tuple[float, float, float]:
        """(value, lo, hi): the prediction at ``x0`` and its 68 % interval."""
        if self.form == "power_law":
            log_a, b = self.params
            lx = np.log10(x0)
            jac = np.array([1.0, lx])
            mean = log_a + b * lx
            sd = float(np.sqrt(max(jac @ self.cov @ jac, 0.0)))
            return float(10 ** mean), float(10 ** (mean - sd)), float(10 ** (mean + sd))
        c, k, m = self.params
        lx = np.log10(x0)
        e = np.exp(-k * (lx - m))
        value = c / (1 + e)
        jac = np.array([1 / (1 + e), c * e * (lx - m) / (1 + e) ** 2, -c * e * k / (1 + e) ** 2])
        sd = float(np.sqrt(max(jac @ self.cov @ jac, 0.0)))
        return float(value), float(value - sd), float(value + sd)


def _clean(x, y, yerr):
    x, y = np.asarray(x, float), np.asarray(y, float)
    yerr = np.full_like(y, np.nan) if yerr is None else np.asarray(yerr, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    return x[ok], y[ok], yerr[ok]


#: the note of a fit made without point errors (covariance from the scatter): its
#: ``chi2_per_dof`` is a residual variance, not a χ², so the verdict does not judge its form
UNWEIGHTED = "no point errors: covariance from the scatter"


def _floor_errors(yerr: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Points without a positive error among points with one get the smallest positive error.

    A fraction measured as 0 (no binary row yet at an early monitor step) has a jackknife error
    of 0; taken at face value it would either get infinite weight or, as before this floor,
    turn the whole fit unweighted (its χ² then a residual variance, not a χ²)."""
    good = np.isfinite(yerr) & (yerr > 0)
    if good.all() or not good.any():
        return yerr, []
    floored = np.where(good, yerr, yerr[good].min())
    return floored, [f"{int((~good).sum())} point(s) with zero error given the smallest point "
                     f"error ({yerr[good].min():.2g})"]


def fit_power_law(x: Sequence[float], y: Sequence[float], yerr: Sequence[float] | None = None) -> Fit:
    """y = a·xᵇ by weighted least squares of log₁₀ y on log₁₀ x (points with y ≤ 0 dropped:
    a power law cannot pass through 0). ``params`` = (log₁₀ a, b).

    Raises:
        ValueError: fewer than two usable points.
    """
    x, y, yerr = _clean(x, y, yerr)
    keep = y > 0
    notes = [] if keep.all() else [f"{int((~keep).sum())} point(s) with y <= 0 left out"]
    x, y, yerr = x[keep], y[keep], yerr[keep]
    yerr, floored = _floor_errors(yerr)
    notes += floored
    if len(x) < 2:
        raise ValueError(f"a power law needs two points with y > 0, got {len(x)}")
    lx, ly = np.log10(x), np.log10(y)
    # error of log10 y from the relative error; unknown errors: equal weights, scale from scatter
    sig = np.where(np.isfinite(yerr) & (yerr > 0), yerr / (y * np.log(10)), np.nan)
    known = np.isfinite(sig).all()
    w = 1 / sig**2 if known else np.ones_like(ly)
    X = np.column_stack([np.ones_like(lx), lx])
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    params = cov @ X.T @ (w * ly)
    resid = ly - X @ params
    dof = len(x) - 2
    chi2 = float(np.sum(w * resid**2) / dof) if dof > 0 else float("nan")
    if not known:
        cov = cov * (chi2 if dof > 0 else np.nan)
        notes.append(UNWEIGHTED)
    elif dof > 0 and chi2 > 1:
        cov = cov * chi2
    if dof <= 0:
        notes.append("as many parameters as points: no check of the form")
    return Fit("power_law", params, cov, len(x), chi2, notes)


def fit_logistic_log(x: Sequence[float], y: Sequence[float], yerr: Sequence[float] | None = None,
                     *, c_max: float = 1.0) -> Fit:
    """y = c / (1 + exp(−k (log₁₀ x − m))) with 0 < c ≤ ``c_max``, k > 0 (scipy's
    ``curve_fit``). ``params`` = (c, k, m).

    Raises:
        ValueError: fewer than three usable points, or the fit does not converge.
    """
    from scipy.optimize import curve_fit

    x, y, yerr = _clean(x, y, yerr)
    if len(x) < 3:
        raise ValueError(f"a logistic needs three points, got {len(x)}")
    lx = np.log10(x)
    yerr, notes = _floor_errors(yerr)

    def model(t, c, k, m):
        return c / (1 + np.exp(-k * (t - m)))

    known = bool(np.isfinite(yerr).all() and (yerr > 0).all())
    top = max(float(y.max()), 1e-12)
    p0 = (min(c_max, 1.5 * top), 2.0, float(np.median(lx)))
    try:
        params, cov = curve_fit(model, lx, y, p0=p0, sigma=yerr if known else None,
                                absolute_sigma=bool(known), maxfev=20_000,
                                bounds=([0.0, 1e-3, lx.min() - 6], [c_max, 50.0, lx.max() + 6]))
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"logistic fit failed: {error}") from None
    dof = len(x) - 3
    resid = (y - model(lx, *params)) / (yerr if known else 1.0)
    chi2 = float(np.sum(resid**2) / dof) if dof > 0 else float("nan")
    if not known:  # curve_fit scaled the covariance by the residual variance
        notes.append(UNWEIGHTED)
    elif dof > 0 and chi2 > 1:
        cov = cov * chi2
    if dof <= 0:
        notes.append("as many parameters as points: no check of the form")
    if not np.all(np.isfinite(cov)):
        notes.append("parameters not constrained by the points: interval undefined")
    return Fit("logistic_log", np.asarray(params), np.asarray(cov), len(x), chi2, notes)


def extrapolation_row(metric: str, knob: str, fit: Fit, x0: float, *, cap: float | None = 1.0) -> dict:
    """One row of ``10_extrapolation.csv``: ``metric, knob, fit, n_points, prediction, lo, hi``
    (+ the point ``x0`` and notes); a fraction (``cap`` given) is kept within [0, ``cap``]: a
    symmetric delta-method interval can otherwise reach below 0."""
    value, lo, hi = fit.predict(x0)
    if cap is not None:
        value, lo, hi = (min(max(v, 0.0), cap) for v in (value, lo, hi))
    return {"metric": metric, "knob": knob, "fit": fit.form, "n_points": fit.n_points,
            "prediction": value, "lo": lo, "hi": hi, "at": x0,
            "chi2_per_dof": fit.chi2_per_dof, "notes": "; ".join(fit.notes)}


# --- the grid's knobs (notebook 10) -----------------------------------------------------------

#: the x axis of each knob of partnb.study grids (a column of ``study_rows``)
KNOB_AXIS = {"train_jets": "train_jets", "epochs": "steps", "width": "embed_dim",
             "classes": "classes", "padding": "pad_mode",
             "weight_decay_mode": "weight_decay_mode", "detector": "detector"}


def seed_spread(rows: Sequence[dict], metric: str) -> float:
    """Standard deviation of ``metric`` over the base point's seeds (NaN with one seed)."""
    values = [r[metric] for r in rows if r["knob"] == "base"]
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def knob_series(rows: Sequence[dict], knob: str, metric: str, *, n_classes: int | None = None) -> list[dict]:
    """The points of one knob (the base point, averaged over its seeds, included), sorted by
    the knob's axis: ``x``, ``y`` and ``err`` = the jackknife error of the probe set and the
    seed-to-seed spread added in quadrature."""
    axis = KNOB_AXIS.get(knob, knob)
    spread = seed_spread(rows, metric)
    spread = 0.0 if not np.isfinite(spread) else spread
    base = [r for r in rows if r["knob"] == "base"]
    series = []
    if base:
        jack = np.nanmean([r.get(f"{metric}_err", np.nan) for r in base]) if any(
            np.isfinite(r.get(f"{metric}_err", np.nan)) for r in base) else 0.0
        series.append({"knob": knob, "point": "base", "x": base[0][axis],
                       "y": float(np.mean([r[metric] for r in base])),
                       "err": float(np.hypot(jack, spread))})
    for r in rows:
        if r["knob"] != knob:
            continue
        jack = r.get(f"{metric}_err", np.nan)
        series.append({"knob": knob, "point": r["point"], "x": r[axis], "y": r[metric],
                       "err": float(np.hypot(jack if np.isfinite(jack) else 0.0, spread))})
    for s in series:
        if knob == "classes" and s["x"] is None:
            s["x"] = n_classes
    if all(isinstance(s["x"], (int, float)) and not isinstance(s["x"], bool) for s in series):
        series.sort(key=lambda s: s["x"])  # a categorical axis (padding, detector) keeps the base first
    return series


def knob_effects(rows: Sequence[dict], knobs: Sequence[str], metric: str, *,
                 n_classes: int | None = None) -> list[dict]:
    """Per knob: ``metric`` at its smallest and largest setting (categorical knobs: the base
    and the other value), the change and its significance (change / combined error)."""
    out = []
    for knob in knobs:
        series = knob_series(rows, knob, metric, n_classes=n_classes)
        if len(series) < 2:
            continue
        lo, hi = series[0], series[-1]
        delta = hi["y"] - lo["y"]
        err = float(np.hypot(lo["err"], hi["err"]))
        out.append({"knob": knob, "metric": metric, "from_x": lo["x"], "to_x": hi["x"],
                    "from": lo["y"], "to": hi["y"], "change": delta, "error": err,
                    "significance": delta / err if err > 0 else float("nan"),
                    "n_points": len(series)})
    return out


def drivers_verdict(effects: Sequence[dict], extrapolations: Sequence[dict], *,
                    threshold: float = 3.0, binary: float = 0.5, bad_fit: float = 3.0) -> str:
    """A sentence from the knob effects (which change the metric by more than ``threshold``
    combined errors, largest first) and the extrapolations (does any prediction, or its upper
    edge, reach ``binary``; which fits, weighted by their points' errors, have χ²/dof above
    ``bad_fit``, i.e. a form the points reject)."""
    movers = sorted((e for e in effects if np.isfinite(e["significance"])
                     and abs(e["significance"]) >= threshold),
                    key=lambda e: -abs(e["significance"]))
    if movers:
        parts = [f"{e['knob']} ({e['from']:.3g} → {e['to']:.3g}, {e['significance']:+.1f}σ)"
                 for e in movers]
        text = f"Knobs that move {movers[0]['metric']} beyond {threshold:g}σ: " + "; ".join(parts) + "."
    else:
        tried = ", ".join(e["knob"] for e in effects) or "none"
        text = f"No knob moved it beyond {threshold:g}σ (knobs with ≥ 2 points: {tried})."
    preds = [x for x in extrapolations if np.isfinite(x.get("prediction", np.nan))]
    if preds:
        reach = [x for x in preds if x["prediction"] >= binary]
        edge = [x for x in preds if x["hi"] >= binary]
        best = max(preds, key=lambda x: x["prediction"])
        text += (f" Extrapolated to the papers' scale (a prediction, not a result): the largest is "
                 f"{best['prediction']:.3g} [{best['lo']:.3g}, {best['hi']:.3g}] ({best['fit']} in "
                 f"{best['knob']}); {len(reach)} of {len(preds)} predictions reach {binary:g} "
                 f"('binary'), {len(edge)} within their 68 % interval.")
        weighted = [x for x in preds if np.isfinite(x.get("chi2_per_dof", np.nan))
                    and UNWEIGHTED not in x.get("notes", "")]
        rejected = [x for x in weighted if x["chi2_per_dof"] > bad_fit]
        if rejected:
            named = ", ".join(f"{x['fit']} in {x['knob']} (χ²/dof {x['chi2_per_dof']:.3g})"
                              for x in rejected)
            text += (f" The points reject the form of {len(rejected)} of {len(weighted)} weighted "
                     f"fits (χ²/dof > {bad_fit:g}): {named}; those predictions rest on a curve the "
                     f"measurement does not follow.")
    return text


#: the measures carried to the papers' scale
EXTRAPOLATED = (rows_max_column(prefix=""), "median_row_max", "median_logit_gap")
_FORMS = {"power law": fit_power_law, "logistic": fit_logistic_log}


def _fits(x, y, err, metric) -> tuple[dict, list[str]]:
    fits, failed = {}, []
    for name, fitter in _FORMS.items():
        if name == "logistic" and metric == "median_logit_gap":
            continue  # not a fraction: no natural ceiling
        try:
            fits[name] = fitter(x, y, err)
        except ValueError as error:
            failed.append(f"{name}: {error}")
    return fits, failed


def extrapolations(study_rows: Sequence[dict], emergence_rows: Sequence[dict], dataset: str, *,
                   metrics: Sequence[str] = EXTRAPOLATED) -> tuple[list[dict], list[dict]]:
    """Fits of each measure against training jets (the grid's ``train_jets`` knob) and against
    optimiser steps (the emergence run's monitor points from step 10 on: one run, so its
    points are correlated and its interval too narrow — said in the notes), carried to the
    papers' scale :data:`PAPER_SCALE`. Returns (rows of ``10_extrapolation.csv``, plot panels);
    a fit that cannot be made is a row with its reason in ``notes``."""
    scale = PAPER_SCALE[dataset]
    rows, panels = [], []
    sources = []
    for metric in metrics:
        series = knob_series(study_rows, "train_jets", metric) if study_rows else []
        if series:
            sources.append((metric, "train_jets", [s["x"] for s in series], [s["y"] for s in series],
                            [s["err"] for s in series], scale["jets"], "training jets", ""))
        pts = [r for r in emergence_rows if r["step"] >= 10 and np.isfinite(r.get(metric, np.nan))]
        if pts:
            err = [r.get(f"{metric}_err", np.nan) for r in pts]
            sources.append((metric, "steps", [r["step"] for r in pts], [r[metric] for r in pts],
                            err, scale["steps"], "optimiser steps",
                            "points of one run (correlated): interval too narrow"))
    for metric, knob, x, y, err, at, xlabel, note in sources:
        fits, failed = _fits(x, y, err, metric)
        cap = None if metric == "median_logit_gap" else 1.0
        for fit in fits.values():
            row = extrapolation_row(metric, knob, fit, at, cap=cap)
            row["notes"] = "; ".join(filter(None, [row["notes"], note]))
            rows.append(row)
        for reason in failed:
            rows.append({"metric": metric, "knob": knob, "fit": reason.split(":")[0].replace(" ", "_"),
                         "n_points": len(x), "prediction": float("nan"), "lo": float("nan"),
                         "hi": float("nan"), "at": at, "chi2_per_dof": float("nan"),
                         "notes": reason})
        if fits:
            panels.append({"x": x, "y": y, "err": np.nan_to_num(np.asarray(err, float)), "fits": fits,
                           "at": at, "xlabel": xlabel, "ylabel": metric})
    return rows, panels

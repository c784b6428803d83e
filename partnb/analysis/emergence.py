"""Sparsity while a model trains: the monitor behind notebook 09.

During ``partnb train`` a :class:`SparsityMonitor` measures, at log-spaced optimiser steps
(0, 10, 30, 100, 300, … see :func:`monitor_steps`) and at the end of every epoch, how
concentrated the attention of the model is on a fixed *probe set* of validation jets, for
the attention the forward pass computes ("correct") and for the papers' as-coded capture
(A′ from a second attention call on the module's own output, W′ = softmax(A′ + U + M);
docs/analyses.md#the-capture-bug-of-the-papers-scripts):

* the fraction of (jet, block, head, real query) rows whose largest weight is ≥ 0.8 and
  ≥ 0.95, and the median row maximum;
* the median gap between a row's two largest logits (A + U, or A′ + U): a row maximum of
  0.8 over n keys needs a gap of about ln(4 (n − 1)), ≈ 5 for n = 50;
* the mean row entropy over its maximum, H / ln n (1 = uniform, 0 = one key);
* the medians of |A|, |U|, |A′| and of the paired ratio |A|/|U| (|A′|/|U| as coded) over
  real pairs;
* the interaction-dependent and non-binary rates D and N
  (docs/analyses.md#interaction-dependent-and-non-binary-computation), with the rules of
  ``argmax_decisions`` of notebook 06 (ties to the lowest key);
* the loss and accuracy of the probe set.

Only real queries and real keys count (n ≥ 2 for the gap and the entropy). Medians come
from fine histograms (0.01 dex for magnitudes, 0.001 for row maxima), so they agree with the
analysis consumers of notebooks 03, 04 and 06 to within a bin. The monitor runs in eval mode
under ``no_grad`` (the trimmer cuts each batch to its longest jet, which is lossless) and
leaves the model as it found it (train mode, the trimmer's call counter), so a run with the monitor trains to the same weights as one without it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..model.part import padding_bias
from .interaction import NON_BINARY_THRESHOLD
from .sparsity import (
    BINARY_ROW_THRESHOLD,
    ROW_MAX_EDGES,
    ROW_THRESHOLDS,
    jackknife_ratio,
    median_from_histogram,
    rows_max_column,
)
from .stream import pair_layout, stream_attention

__all__ = ["BINARY_COLUMN", "STRICT_COLUMN", "MONITOR_COLUMNS", "SparsityMonitor", "MonitorStats", "is_monitor_step",
           "monitor_steps", "VARIANT_SUFFIX", "emergence_params_file", "emergence_summary",
           "emergence_verdict", "latest_model", "load_monitor_log", "monitor_overhead",
           "pair_normalisation_rows", "HeadMagnitudes", "head_rows", "training_devices"]

#: log10 bins of magnitudes (|A|, |U|, |A′|) and of ratios: 0.01 dex from 1e-12 to 1e12,
#: values outside land in the first or last bin (zeros are counted apart).
_LOG_LO, _LOG_HI, _PER_DEX = -12.0, 12.0, 100
_LOG_BINS = int((_LOG_HI - _LOG_LO) * _PER_DEX)
LOG_EDGES = np.linspace(_LOG_LO, _LOG_HI, _LOG_BINS + 1)
#: logit-gap bins: 0.005 wide from 0 to 100
_GAP_STEP, _GAP_BINS = 0.005, 20_000
GAP_EDGES = np.arange(_GAP_BINS + 1) * _GAP_STEP

#: column suffix of each variant in the monitor log
VARIANT_SUFFIX = {"correct": "", "as_coded": "_as_coded"}
#: the monitor's binary-row columns: rows with max >= 0.8 and >= 0.95 (no ``frac_`` prefix)
BINARY_COLUMN, STRICT_COLUMN = (rows_max_column(t, prefix="") for t in ROW_THRESHOLDS)
_ROW_METRICS = (BINARY_COLUMN, BINARY_COLUMN + "_err", STRICT_COLUMN,
                STRICT_COLUMN + "_err", "median_row_max", "median_logit_gap", "mean_norm_entropy",
                "median_abs_A", "median_ratio_AU", "D_rate", "D_rate_err", "N_rate", "N_rate_err")
#: jet groups of the jackknife errors (jet index modulo GROUPS)
GROUPS = 10
#: the columns of ``monitor_log.csv`` after step, epoch and lr
MONITOR_COLUMNS = (("probe_loss", "probe_accuracy", "n_rows", "median_abs_U")
                   + tuple(m + s for s in VARIANT_SUFFIX.values() for m in _ROW_METRICS))
assert ROW_THRESHOLDS == (0.8, 0.95), "the committed monitor logs name their columns after 0.8 and 0.95"


def monitor_steps() -> Iterator[int]:
    """0, 10, 30, 100, 300, 1000, … (two points per decade from 10 on)."""
    yield 0
    decade = 10
    while True:
        yield decade
        yield 3 * decade
        decade *= 10


def is_monitor_step(step: int) -> bool:
    """Whether optimiser step ``step`` (steps done so far) is one of :func:`monitor_steps`."""
    if step == 0:
        return True
    for s in monitor_steps():
        if s >= step:
            return s == step
    return False  # pragma: no cover


def _log_hist(log10_values: Tensor) -> np.ndarray:
    """Counts in the 0.01-dex bins of values given as log10 (modified in place). Values
    beyond the range (a zero: −∞) land in the first or last bin; NaN (0/0) in the first."""
    b = log10_values.sub_(_LOG_LO).mul_(_PER_DEX).nan_to_num_(0.0).floor_()
    return _bincount(b.clamp_(0, _LOG_BINS - 1), _LOG_BINS)


def _bincount(bins: Tensor, size: int) -> np.ndarray:
    """Counts of integral-valued bins (float or int tensor) in [0, size): int32 into torch's
    bincount, ~3× faster on one thread than int64 into numpy's."""
    return torch.bincount(bins.to(torch.int32), minlength=size).numpy()


class MonitorStats:
    """Stream consumer: the monitor's statistics of one pass over the probe set.

    Feed it with :func:`~partnb.analysis.stream.stream_attention` (capture A, U, L, P;
    ``as_coded=True`` for the as-coded columns), then read :meth:`result`.
    """

    def __init__(self, threshold: float = NON_BINARY_THRESHOLD) -> None:
        self.threshold = threshold
        self.counts: dict[str, dict[str, float]] = {v: {"rows": 0, "ge08": 0, "ge095": 0, "D": 0,
                                                        "N": 0, "ent_sum": 0.0, "ent_rows": 0}
                                                    for v in VARIANT_SUFFIX}
        #: per jet group (jet index mod GROUPS): rows, ≥ 0.8, ≥ 0.95, D, N (jackknife errors)
        self.groups = {v: np.zeros((GROUPS, 5)) for v in VARIANT_SUFFIX}
        self.hist = {v: {"row_max": np.zeros(len(ROW_MAX_EDGES) - 1),
                         "gap": np.zeros(_GAP_BINS), "abs_A": np.zeros(_LOG_BINS),
                         "ratio": np.zeros(_LOG_BINS)} for v in VARIANT_SUFFIX}
        self.abs_u = np.zeros(_LOG_BINS)
        self.loss_sum, self.correct, self.jets = 0.0, 0, 0

    # -- streaming ---------------------------------------------------------------------
    def update(self, key, record: dict[str, Tensor], batch) -> None:
        if not isinstance(key, int):
            return
        if "P" in record:
            self._rows("correct", record["A"], record.get("U"), record["P"], record, batch,
                       record.get("L"))
            # the as-coded entries arrive in a second record of the same block without U and
            # the padding mask: keep this one for it
            batch.cache[("monitor_record", key)] = record
        if "P_as_coded" in record:
            first = batch.cache.pop(("monitor_record", key))
            self._rows("as_coded", record["A_as_coded"], first.get("U"), record["P_as_coded"],
                       first, batch)

    def update_logits(self, logits: Tensor, batch) -> None:
        y = torch.as_tensor(batch.label, dtype=torch.long)
        self.loss_sum += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
        self.correct += int((logits.argmax(1) == y).sum())
        self.jets += len(y)

    def _rows(self, variant: str, a: Tensor, u: Tensor | None, w: Tensor, record, batch,
              logits: Tensor | None = None) -> None:
        padding = record["padding_mask"]
        c, h = self.counts[variant], self.hist[variant]
        real = (~padding)[:, None, :].expand(w.shape[:3])  # (B, H, P) real queries
        n = (~padding).sum(dim=-1)[:, None, None].expand(w.shape[:3])
        row_max = w.amax(dim=-1)[real]
        group = torch.as_tensor(np.asarray(batch.index) % GROUPS)[:, None, None].expand(
            w.shape[:3])[real]
        flags = [torch.ones_like(row_max, dtype=torch.bool), row_max >= ROW_THRESHOLDS[0],
                 row_max >= ROW_THRESHOLDS[1], None, row_max < self.threshold]
        c["rows"] += int(row_max.numel())
        c["ge08"] += int((row_max >= ROW_THRESHOLDS[0]).sum())
        c["ge095"] += int((row_max >= ROW_THRESHOLDS[1]).sum())
        c["N"] += int((row_max < self.threshold).sum())
        idx = (row_max * (len(ROW_MAX_EDGES) - 1)).floor_().clamp_(0, len(ROW_MAX_EDGES) - 2)
        h["row_max"] += _bincount(idx, len(ROW_MAX_EDGES) - 1)
        # logits over real keys (−∞ on padded ones): the largest, its key, the second largest
        bias = padding_bias(padding, a.dtype)
        if logits is None:
            logits = a + bias if u is None else (a + u).add_(bias)
        top, arg_l = logits.max(dim=-1)  # first maximal key: ties go to the lowest index
        second = logits.scatter(-1, arg_l[..., None], -math.inf).amax(dim=-1)
        multi = real & (n >= 2)
        gap = ((top - second)[multi] / _GAP_STEP).floor_().clamp_(0, _GAP_BINS - 1)
        h["gap"] += _bincount(gap, _GAP_BINS)
        entropy = -torch.special.xlogy(w, w).sum(dim=-1)[multi]
        c["ent_sum"] += float((entropy / n[multi].double().log()).sum())
        c["ent_rows"] += int(multi.sum())
        # magnitudes over real pairs, binned in log10 (log|A| − log|U| for the ratio)
        layout = pair_layout(record, batch, a.shape[1])
        log_a = torch.log10(layout.gather(a).abs_())
        h["abs_A"] += _log_hist(log_a.clone())
        if u is not None:
            log_u = batch.cache.get(("monitor_log_u", id(u)))
            if log_u is None:  # U is one tensor for all blocks of a batch: log it once
                log_u = batch.cache[("monitor_log_u", id(u))] = torch.log10(layout.gather(u).abs_())
            h["ratio"] += _log_hist(log_a.sub_(log_u))
            if variant == "correct":
                self.abs_u += _log_hist(log_u.clone())
            arg_a = (a + bias).argmax(dim=-1)
            d = (arg_l != arg_a)
            c["D"] += int((d & real).sum())
            flags[3] = d[real]
        for k, flag in enumerate(flags):
            if flag is not None:
                self.groups[variant][:, k] += _bincount(group[flag], GROUPS)

    # -- results -------------------------------------------------------------------------
    def rows(self) -> list[dict[str, float]]:
        """The consumer table (:class:`~partnb.analysis.stream.Consumer`): one row,
        :meth:`result`."""
        return [self.result()]

    def result(self) -> dict[str, float]:
        """One row of the monitor log (without step, epoch, lr)."""
        nan = float("nan")
        row: dict[str, float] = {
            "probe_loss": self.loss_sum / self.jets if self.jets else nan,
            "probe_accuracy": self.correct / self.jets if self.jets else nan,
            "n_rows": self.counts["correct"]["rows"],
            "median_abs_U": _log_median(self.abs_u),
        }
        for variant, suffix in VARIANT_SUFFIX.items():
            c, h = self.counts[variant], self.hist[variant]
            rows = c["rows"]
            has_u = h["ratio"].sum() > 0
            values = {
                BINARY_COLUMN: c["ge08"] / rows if rows else nan,
                STRICT_COLUMN: c["ge095"] / rows if rows else nan,
                "median_row_max": median_from_histogram(h["row_max"], ROW_MAX_EDGES),
                "median_logit_gap": median_from_histogram(h["gap"], GAP_EDGES),
                "mean_norm_entropy": c["ent_sum"] / c["ent_rows"] if c["ent_rows"] else nan,
                "median_abs_A": _log_median(h["abs_A"]),
                "median_ratio_AU": _log_median(h["ratio"]) if has_u else nan,
                "D_rate": c["D"] / rows if rows and has_u else nan,
                "N_rate": c["N"] / rows if rows else nan,
            }
            g = self.groups[variant]
            for k, name in ((1, BINARY_COLUMN), (2, STRICT_COLUMN), (3, "D_rate"),
                            (4, "N_rate")):
                values[name + "_err"] = (jackknife_ratio(g[:, k], g[:, 0])[1]
                                         if rows and not (k == 3 and not has_u) else nan)
            row.update({k + suffix: v for k, v in values.items()})
        return row


def _log_median(hist: np.ndarray) -> float:
    """Median of a 0.01-dex log10 histogram, as a value (not a log)."""
    if hist.sum() <= 0:
        return float("nan")
    return float(10 ** median_from_histogram(hist, LOG_EDGES))


class SparsityMonitor:
    """Measures the probe set's attention statistics for a model in training.

    Args:
        inputs: the probe set (:class:`~partnb.data.features.JetInputs`), fixed for the run.
        batch_size: jets per forward pass.
        as_coded: also measure the papers' as-coded capture (the ``*_as_coded`` columns).
    """

    def __init__(self, inputs, *, batch_size: int = 100, as_coded: bool = True) -> None:
        self.inputs = inputs
        self.batch_size = batch_size
        self.as_coded = as_coded

    def measure(self, model) -> dict[str, float]:
        """One row of statistics; the model is returned in the mode and trimmer state it had."""
        was_training = model.training
        trimmer = getattr(model, "trimmer", None)
        calls = None if trimmer is None else trimmer.calls
        stats = MonitorStats()
        try:
            stream_attention(model, self.inputs, [stats], batch_size=self.batch_size,
                             capture=("A", "U", "L", "P"), as_coded=self.as_coded)
        finally:
            model.train(was_training)
            if trimmer is not None:
                trimmer.calls = calls
        return stats.result()


# --- reading a run's monitor log (notebook 09) ---------------------------------------------


def emergence_params_file(params) -> Path | None:
    """The params file of the emergence run that notebook 09 shows for ``params``:
    ``params/study/<name>_emergence.yaml`` beside the params' ``params/`` folder when it exists
    (the committed 20-epoch runs), else None (the params' own training run)."""
    candidate = Path(params.root) / "params" / "study" / f"{params.name}_emergence.yaml"
    return candidate if candidate.is_file() else None


def training_devices(epoch_rows: list[dict]) -> str:
    """Where a run's epochs were trained, from its ``train_log.json`` rows: runs moved between
    machines say so (docs/training.md#training-on-a-gpu), e.g. ``"cpu: epochs 1-2; cuda:0
    NVIDIA H200: epochs 3-10"``. Rows without a ``device`` column were trained on the CPU."""
    spans: list[list] = []
    for row in epoch_rows:
        device = row.get("device", "cpu")
        if spans and spans[-1][0] == device:
            spans[-1][2] = row["epoch"]
        else:
            spans.append([device, row["epoch"], row["epoch"]])
    return "; ".join(f"{d}: epoch {a}" if a == b else f"{d}: epochs {a}-{b}" for d, a, b in spans)


def load_monitor_log(models_dir) -> list[dict]:
    """The rows of ``<models_dir>/monitor_log.json`` (read as JSON, checked).

    Raises:
        FileNotFoundError: the run has no monitor log, naming the file and the command that
            makes it.
        ValueError: the file is not a list of rows with a step.
    """
    path = Path(models_dir) / "monitor_log.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no monitor log; train with train.monitor_jets > 0 "
                                "(`partnb train PARAMS`)")
    try:
        rows = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: unreadable monitor log ({error})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "step" in r for r in rows):
        raise ValueError(f"{path}: not a monitor log (a list of rows with 'step')")
    return rows


def _crossing(steps: np.ndarray, values: np.ndarray, level: float) -> float:
    """First step at which ``values`` reach ``level`` (log-linear interpolation in the step,
    step 0 placed at 1), NaN if never."""
    x = np.log10(np.maximum(steps, 1.0))
    above = np.flatnonzero(values >= level)
    if not len(above):
        return float("nan")
    k = above[0]
    if k == 0:
        return float(steps[0])
    frac = (level - values[k - 1]) / (values[k] - values[k - 1])
    return float(10 ** (x[k - 1] + frac * (x[k] - x[k - 1])))


def emergence_summary(rows: list[dict], metric: str = BINARY_COLUMN, *, fall_sigma: float = 3.0) -> dict:
    """When and how the attention sharpened over a run, computed from its monitor log.

    * ``step_half_<metric>``: first step at which ``metric`` made half of its net change from
      the first to the last monitor point (to the peak for a rise and fall, below; log-linear
      interpolation between points);
    * ``step_half_accuracy``, ``step_90_accuracy``: the same for the probe accuracy, at half
      and 90 % of its gain (when the accuracy "saturates");
    * ``largest_jump_share``: the largest change of ``metric`` between two consecutive monitor
      points as a share of the net change, and ``onset``: "sudden" when one interval between
      log-spaced points holds at least half of the change after a flat start (less than 10 %
      of the change in the first half of the log-step range), else "gradual";
    * ``peak_<metric>`` and ``step_peak_<metric>``: the largest value and where it was, and
      ``shape``: "rise and fall" when the peak lies more than ``fall_sigma`` combined jackknife
      errors (``<metric>_err`` of the two points, in quadrature) above the last point, "rise"
      when the metric grew otherwise, "no rise" when it did not. For a rise and fall the
      half-way step, the largest jump and the onset describe the rise, from the first point
      to the peak (the net change would mix the rise with the fall);
    * the first and last values of every monitored quantity (``first_*``, ``last_*``).
    """
    steps = np.array([r["step"] for r in rows], float)
    order = np.argsort(steps, kind="stable")
    rows = [rows[i] for i in order]
    steps = all_steps = steps[order]
    values = np.array([r.get(metric, np.nan) for r in rows], float)
    errors = np.array([r.get(f"{metric}_err", np.nan) for r in rows], float)
    acc = np.array([r.get("probe_accuracy", np.nan) for r in rows], float)
    out: dict = {"metric": metric, "n_points": len(rows), "last_step": float(steps[-1])}
    change = values[-1] - values[0]
    out["net_change"] = float(change)
    top = int(np.nanargmax(values)) if np.isfinite(values).any() else len(values) - 1
    out[f"peak_{metric}"] = float(values[top])
    out[f"step_peak_{metric}"] = float(steps[top])
    fall = values[top] - values[-1]
    fall_err = float(np.hypot(errors[top], errors[-1]))
    out[f"fall_{metric}_sigma"] = float(fall / fall_err) if fall_err > 0 else float("nan")
    rise_and_fall = bool(fall_err > 0 and fall > fall_sigma * fall_err and values[top] > values[0])
    out["shape"] = "rise and fall" if rise_and_fall else "rise" if change > 0 else "no rise"
    if rise_and_fall:  # describe the rise, up to the peak
        steps, values = steps[: top + 1], values[: top + 1]
        change = values[-1] - values[0]
    if change > 0:
        out[f"step_half_{metric}"] = _crossing(steps, values, values[0] + 0.5 * change)
        jumps = np.diff(values) / change
        out["largest_jump_share"] = float(jumps.max())
        x = np.log10(np.maximum(steps, 1.0))
        early = x <= x[0] + 0.5 * (x[-1] - x[0])
        flat_start = (values[early].max() - values[0]) / change < 0.1
        out["onset"] = "sudden" if (jumps.max() >= 0.5 and flat_start) else "gradual"
    else:
        out[f"step_half_{metric}"] = float("nan")
        out["largest_jump_share"] = float("nan")
        out["onset"] = "none (no increase)"
    gain = acc[-1] - acc[0]  # the accuracy over the whole run, also for a rise and fall
    out["step_half_accuracy"] = _crossing(all_steps, acc, acc[0] + 0.5 * gain) if gain > 0 else float("nan")
    out["step_90_accuracy"] = _crossing(all_steps, acc, acc[0] + 0.9 * gain) if gain > 0 else float("nan")
    for column in MONITOR_COLUMNS:
        out[f"first_{column}"] = rows[0].get(column, float("nan"))
        out[f"last_{column}"] = rows[-1].get(column, float("nan"))
    return out


def emergence_verdict(summary: dict, *, dataset: str) -> str:
    """One sentence per question of notebook 09, from :func:`emergence_summary`."""
    m = summary["metric"]
    last, first = summary[f"last_{m}"], summary[f"first_{m}"]
    coded = summary.get(f"last_{m}_as_coded", float("nan"))
    half, sat = summary[f"step_half_{m}"], summary["step_90_accuracy"]
    if summary.get("shape") == "rise and fall":
        parts = [f"{dataset}: rows with max weight ≥ 0.8 rose from {100 * first:.2f} % to a peak "
                 f"of {100 * summary[f'peak_{m}']:.2f} % at step {summary[f'step_peak_{m}']:.0f} "
                 f"({summary['onset']} onset"
                 + (f", half of the rise by step {half:.0f}" if np.isfinite(half) else "")
                 + f") and fell back to {100 * last:.2f} % by step {summary['last_step']:.0f} "
                 f"({summary[f'fall_{m}_sigma']:.0f} combined errors below the peak): the "
                 "sharpening does not last."]
        what = "the rise"
    else:
        parts = [f"{dataset}: rows with max weight ≥ 0.8 went from {100 * first:.2f} % to "
                 f"{100 * last:.2f} % over {summary['last_step']:.0f} steps ({summary['onset']} onset"
                 + (f", half of the change by step {half:.0f}" if np.isfinite(half) else "") + ")."]
        what = "the sharpening"
    if np.isfinite(half) and np.isfinite(sat):
        when = "before" if half < sat else "after"
        parts.append(f"Half of {what} came {when} the probe accuracy reached 90 % of its "
                     f"gain (step {sat:.0f}).")
    binary = 0.5  # "binary" attention: most rows nearly one-hot
    parts.append(f"At the end {100 * last:.2f} % of rows are ≥ 0.8 correctly captured and "
                 f"{100 * coded:.2f} % as coded: "
                 + ("neither reading is binary" if max(last, coded) < binary else
                    "the as-coded reading is binary while the true attention is not"
                    if coded >= binary > last else "the true attention is binary")
                 + f" (median top-two logit gap {summary['last_median_logit_gap']:.2f}; a row "
                 "maximum of 0.8 over ~50 keys needs ~5).")
    return " ".join(parts)


PAIR_FEATURE_NAMES = ("ln kT", "ln z", "ln ΔR", "ln m²")


def pair_normalisation_rows(models: dict, inputs, *, max_jets: int = 500) -> list[dict]:
    """What the first BatchNorm of the pair embedding learnt to subtract and divide by, per
    pair feature, beside the mean and standard deviation of the real pairs of ``inputs`` (both
    particles real, i ≥ j: the lower triangle with the self pairs, as the embedding computes
    them; the self pairs sit at the ε floor of ln kT and ln ΔR): with zero padding the running statistics include the ε-floor values of the
    padded pairs (docs/features.md#padding), so real pairs reach U compressed.

    Args:
        models: name -> ParT with a pair embedding.
        inputs: JetInputs (the first ``max_jets`` are used for the real-pair statistics).
    """
    from partnb.data.features import pairwise_features

    n = min(len(inputs), max_jets)
    v = torch.as_tensor(inputs.vectors[:n])
    mask = torch.as_tensor(inputs.mask[:n])[:, 0] > 0
    feats = pairwise_features(v, num_features=4)  # (B, 4, P, P)
    # the pairs the embedding computes: the lower triangle with the self pairs (i >= j)
    pairs = mask[:, :, None] & mask[:, None, :] & torch.ones(mask.shape[1], mask.shape[1]).tril().bool()
    real = feats.permute(1, 0, 2, 3)[:, pairs]  # (4, pairs)
    rows = []
    for c, feature in enumerate(PAIR_FEATURE_NAMES):
        row = {"pair_feature": feature, "real_pairs_mean": float(real[c].mean()),
               "real_pairs_std": float(real[c].std())}
        for name, model in models.items():
            bn = model.pair_embed.embed[0]
            row[f"{name}_running_mean"] = float(bn.running_mean[c])
            row[f"{name}_running_std"] = float(bn.running_var[c].sqrt())
            row[f"{name}_compression"] = float(bn.running_var[c].sqrt() / real[c].std())
        rows.append(row)
    return rows


class HeadMagnitudes:
    """Per (particle block, head): how large the query–key term A and the pair term U are, and
    how often a row is nearly binary, over real query–key pairs (streaming consumer; feed it
    a pass with ``capture=("A", "U", "P")``).

    The monitor's medians pool every block and head; a head that kept a large A while the
    others lost it would be invisible there. Medians come from the monitor's 0.01-dex
    histograms (exact to a bin).

    Attributes:
        abs_a, abs_u: (L, H, bins) counts of log10 |A| and log10 |U|.
        rows, rows_ge: (L, H) real query rows and those with max weight >= 0.8.
    """

    def __init__(self, num_layers: int, num_heads: int) -> None:
        self.L, self.H = num_layers, num_heads
        self.abs_a = np.zeros((num_layers, num_heads, _LOG_BINS), np.int64)
        self.abs_u = np.zeros((num_layers, num_heads, _LOG_BINS), np.int64)
        self.query_rows = np.zeros((num_layers, num_heads), np.int64)
        self.rows_ge = np.zeros((num_layers, num_heads), np.int64)

    def rows(self, model: str = "model") -> list[dict]:
        """The consumer table (:class:`~partnb.analysis.stream.Consumer`): :func:`head_rows`."""
        return head_rows(self, model)

    def update(self, key, record: dict[str, Tensor], batch) -> None:
        if not isinstance(key, int) or "A" not in record:
            return  # class blocks, and the as-coded record of a pass with as_coded=True
        # the real pairs, gathered head by head with the batch's shared layout: (H, m)
        layout = pair_layout(record, batch, self.H)
        for name, hist in (("A", self.abs_a), ("U", self.abs_u)):
            values = layout.gather(record[name].float()).reshape(self.H, -1).abs_().log10_()
            for h in range(self.H):
                hist[key, h] += _log_hist(values[h])
        real = ~record["padding_mask"]                                   # (B, P) real queries
        binary = (record["P"].amax(-1) >= BINARY_ROW_THRESHOLD) & real[:, None, :]
        self.query_rows[key] += int(real.sum())
        self.rows_ge[key] += binary.sum(dim=(0, 2)).numpy()


def head_rows(heads: HeadMagnitudes, model: str) -> list[dict]:
    """One row per (block, head) of a :class:`HeadMagnitudes`: medians of |A| and |U|, their
    ratio, and the fraction of rows with max >= 0.8."""
    rows = []
    for layer in range(heads.L):
        for h in range(heads.H):
            a, u = _log_median(heads.abs_a[layer, h]), _log_median(heads.abs_u[layer, h])
            n = int(heads.query_rows[layer, h])
            rows.append({"model": model, "layer": layer, "head": h, "median_abs_A": a,
                         "median_abs_U": u, "ratio_of_medians": a / u if u > 0 else float("nan"),
                         "rows": n,
                         rows_max_column(prefix=""): heads.rows_ge[layer, h] / n if n else float("nan")})
    return rows


def latest_model(params):
    """The params' model at its latest completed epoch (``epoch_NNN.pt`` in
    ``output.models``), in eval mode, and that epoch: a run still in progress is shown as far
    as it got.

    Raises:
        FileNotFoundError: no epoch checkpoint, naming the directory.
    """
    from partnb.model.checkpoint import load_state_dict_any
    from partnb.model.factory import model_from_params

    directory = Path(params.output.models)
    epochs = sorted(directory.glob("epoch_[0-9][0-9][0-9].pt"))
    if not epochs:
        raise FileNotFoundError(f"{directory}: no epoch_NNN.pt checkpoint; run `partnb train "
                                f"{params.source}`")
    model = model_from_params(params)
    load_state_dict_any(model, epochs[-1])
    return model.eval(), int(epochs[-1].stem.split("_")[1])


def monitor_overhead(rows: list[dict], epoch_rows: list[dict]) -> float:
    """Share of the run's wall time spent in the monitor, measured in the run itself: the
    monitor seconds over (the epochs' training seconds, which include the monitor points
    inside an epoch, + the monitor points at the epoch ends)."""
    monitor = sum(r.get("monitor_seconds", 0.0) for r in rows)
    ends = sum(r.get("monitor_seconds", 0.0) for r in rows if float(r["epoch"]).is_integer() and r["step"] > 0)
    train = sum(r["seconds"] for r in epoch_rows)
    return monitor / (train + ends) if train + ends > 0 else float("nan")

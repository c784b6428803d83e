"""The papers' cross-dataset claim from the per-dataset tables (notebook 08).

2512.00210 compares datasets: attention is nearly binary on JetClass and Quark-Gluon but not
on Top Landscape. Each ``partnb run`` covers one dataset; this module reads what the runs of
several params files wrote under their ``output.figures`` (notebooks 03, 04, 06, 07) and lays
the numbers side by side. Nothing is recomputed: the comparison shows exactly the committed
numbers.

Every reader returns flat rows with a ``dataset`` column (the params' ``name``) and skips a
dataset whose table is missing, recording it in the ``missing`` list it is given.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from partnb.analysis.sparsity import ABOVE_COLUMN, BINARY_ROW_THRESHOLD, ROWS_MAX_COLUMNS

__all__ = ["ComparisonError", "figure_dirs", "attention_histogram_rows", "binary_rows",
           "ratio_rows", "ratio_histogram_rows", "interaction_rows", "binary_ordering"]


class ComparisonError(ValueError):
    """Nothing to compare (no dataset wrote the tables)."""


def figure_dirs(params_list) -> dict[str, Path]:
    """``{params name: output.figures}`` of several validated params."""
    out: dict[str, Path] = {}
    for p in params_list:
        if p.name in out:
            raise ComparisonError(f"two params files are both named {p.name!r}; give each run "
                                  "its own name")
        out[p.name] = Path(p.output.figures)
    return out


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _table(dirs: Mapping[str, Path], name: str, missing: list[str]) -> dict[str, list[dict]]:
    out = {}
    for dataset, d in dirs.items():
        path = Path(d) / name
        if path.exists():
            out[dataset] = _read(path)
        else:
            missing.append(f"{dataset}: {name} (run `partnb run` with --only {name[:2]})")
    return out


def attention_histogram_rows(dirs: Mapping[str, Path], missing: list[str], *,
                             binning: str = "log") -> list[dict]:
    """Post-softmax attention over real pairs, all blocks and heads (03, variant ``correct``),
    trained and random-init, per dataset."""
    rows = []
    for dataset, table in _table(dirs, "03_attention_histograms.csv", missing).items():
        for r in table:
            if (r["variant"], r["layer"], r["class"], r["binning"]) == ("correct", "all", "all", binning):
                rows.append({"dataset": dataset, "model": r["model"], "bin_lo": _num(r["bin_lo"]),
                             "bin_hi": _num(r["bin_hi"]), "probability": _num(r["probability"])})
    return rows


BINARY_COLUMNS = (*ROWS_MAX_COLUMNS, ABOVE_COLUMN, "median_row_max", "uniform_median_row_max")


def binary_rows(dirs: Mapping[str, Path], missing: list[str]) -> list[dict]:
    """How binary attention is, per dataset and model (03 summary: real pairs, all blocks)."""
    rows = []
    for dataset, table in _table(dirs, "03_attention_summary.csv", missing).items():
        for r in table:
            if (r["variant"], r["layer"], r["class"]) != ("correct", "all", "all"):
                continue
            row = {"dataset": dataset, "model": r["model"], "n_jets": int(_num(r["n_jets"]))}
            for c in BINARY_COLUMNS:
                row[c] = _num(r[c])
                if f"{c}_err" in r:
                    row[f"{c}_err"] = _num(r[f"{c}_err"])
            rows.append(row)
    return rows


def ratio_rows(dirs: Mapping[str, Path], missing: list[str]) -> list[dict]:
    """|A|/|U| summary per dataset (04: trained model, all blocks), correct and as coded."""
    keep = ("q10_ratio", "q50_ratio", "q90_ratio", "frac_ratio_lt_1", "frac_ratio_gt_1e4",
            "median_abs_a", "median_abs_u", "frac_u_zero")
    rows = []
    for dataset, table in _table(dirs, "04_ratio_summary.csv", missing).items():
        for r in table:
            if r["layer"] == "all" and r["model"] == "trained":
                rows.append({"dataset": dataset, "variant": r["variant"],
                             **{k: _num(r[k]) for k in keep}})
    return rows


def ratio_histogram_rows(dirs: Mapping[str, Path], missing: list[str]) -> list[dict]:
    """log10 |A|/|U| histograms per dataset (04: trained, paired = ``correct``)."""
    rows = []
    for dataset, table in _table(dirs, "04_ratio_log10.csv", missing).items():
        for r in table:
            if (r["model"], r["variant"], r["layer"]) == ("trained", "correct", "all"):
                rows.append({"dataset": dataset, "bin_lo": _num(r["bin_lo"]),
                             "bin_hi": _num(r["bin_hi"]), "probability": _num(r["probability"])})
    return rows


def interaction_rows(dirs: Mapping[str, Path], missing: list[str]) -> list[dict]:
    """Per dataset: interaction-dependent and non-binary rates and coverages and the PCC
    (06, trained, float32 pair features), the ablation accuracies (06) and top-k (07)."""
    metrics = _table(dirs, "06_interaction_metrics.csv", missing)
    ablation = _table(dirs, "06_ablation.csv", missing)
    topk = _table(dirs, "07_topk.csv", missing)
    rows = []
    for dataset in dirs:
        row: dict = {"dataset": dataset}
        for r in metrics.get(dataset, []):
            if (r["model"], r["pair_features"]) == ("trained", "float32"):
                for k in ("rate_D", "coverage_D", "rate_N", "coverage_N", "pcc_phi",
                          "pcc_token_counts"):
                    row[k] = _num(r[k])
        for r in ablation.get(dataset, []):
            name = {"none": "accuracy", "zero_u (U:=0)": "accuracy_zero_u"}.get(r["intervention"])
            if r["model"] == "trained" and name:
                row[name] = _num(r["accuracy"])
            elif r["model"] == "trained" and r["intervention"].startswith("zero_a"):
                row["accuracy_zero_a"] = _num(r["accuracy"])
            elif r["model"] == "plain":
                row["accuracy_plain"] = _num(r["accuracy"])
        for r in topk.get(dataset, []):
            if r["source"] == "partnb" and r["k"] in ("1", "all"):
                row[f"accuracy_top{r['k']}"] = _num(r["accuracy"])
        if len(row) > 1:
            rows.append(row)
    return rows


def binary_ordering(rows: Sequence[dict], *, column: str = ROWS_MAX_COLUMNS[0],
                    binary: Sequence[str] = ("jetclass", "quarkgluon"),
                    not_binary: Sequence[str] = ("toplandscape",)) -> dict:
    """Does the papers' ordering hold here? True when every ``binary`` dataset's trained model
    has a larger ``column`` than every ``not_binary`` one by more than two combined
    standard errors; also whether any dataset is binary in absolute terms (more than half of
    the query rows with a maximum weight of at least 0.8)."""
    trained = {r["dataset"]: r for r in rows if r["model"] == "trained"}
    have_b = [d for d in binary if d in trained]
    have_n = [d for d in not_binary if d in trained]
    out: dict = {"column": column, "values": {d: trained[d][column] for d in trained}}
    if not have_b or not have_n:
        out.update(ordering_holds=None, sentence=(
            f"the ordering needs {', '.join(binary)} and {', '.join(not_binary)}; "
            f"have {', '.join(trained) or 'none'}"))
        return out

    def gap(a: str, b: str) -> float:
        ra, rb = trained[a], trained[b]
        err = math.hypot(ra.get(f"{column}_err", 0.0), rb.get(f"{column}_err", 0.0))
        return (ra[column] - rb[column]) / err if err > 0 else math.copysign(math.inf, ra[column] - rb[column])

    holds = all(gap(a, b) > 2 for a in have_b for b in have_n)
    absolute = {d: trained[d][column] > 0.5 for d in trained}
    values = ", ".join(f"{d} {trained[d][column]:.3g}" for d in trained)
    out.update(ordering_holds=holds, binary_in_absolute_terms=absolute, sentence=(
        f"fraction of query rows with max weight >= {BINARY_ROW_THRESHOLD:g} (trained): {values}. The papers' ordering "
        f"({' and '.join(have_b)} more binary than {' and '.join(have_n)}) "
        f"{'holds' if holds else 'does not hold'} at more than two standard errors; "
        + ("attention is binary (> 50 % of rows) on " + ", ".join(d for d, v in absolute.items() if v)
           if any(absolute.values()) else "on no dataset is attention binary in absolute terms "
           "(> 50 % of rows)") + "."))
    return out

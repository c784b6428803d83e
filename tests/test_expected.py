"""Committed reference tables lie in their expected ranges (tests/expected/<dataset>.yaml).

Each entry of ``tests/expected/<dataset>.yaml`` names a table under ``figures/<dataset>/``, one
number in it, a range and one line saying where the range comes from. A number is picked

* from a JSON table by ``key`` (a dotted path: ``rejection.Tbqq``), or
* from a CSV table by ``where`` (column = value for every given column) and ``column``: the
  one matching row, or with ``aggregate`` (count, sum, min, max, mean) over all matching rows.

The ranges are deliberately tight (the reference value and its statistical error); a range
that no value could leave is rejected by :func:`test_ranges_can_fail`.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from conftest import REPO

EXPECTED = REPO / "tests" / "expected"
FIGURES = REPO / "figures"
DATASETS = ("jetclass", "toplandscape", "quarkgluon", "comparison")
AGGREGATES = {"count": len, "sum": math.fsum, "min": min, "max": max,
              "mean": lambda v: math.fsum(v) / len(v)}
#: names of numbers that are probabilities, rates or fractions: a range covering [0, 1] is void
BOUNDED = ("accuracy", "auc", "frac", "rate", "coverage", "probability", "pcc")


def load_entries(dataset: str) -> list[dict]:
    path = EXPECTED / f"{dataset}.yaml"
    entries = yaml.safe_load(path.read_text()) or []
    for i, e in enumerate(entries):
        e["_id"] = f"{dataset}:{i}:{e['table']}:{e.get('key') or _where_text(e)}"
        e["_dataset"] = dataset
    return entries


def _where_text(entry: dict) -> str:
    where = ",".join(f"{k}={v}" for k, v in (entry.get("where") or {}).items())
    agg = f"{entry['aggregate']}:" if entry.get("aggregate") else ""
    return f"{agg}{entry.get('column')}[{where}]"


def _matches(cell: str, wanted) -> bool:
    if isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
        try:
            return math.isclose(float(cell), float(wanted), rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return False
    return cell == str(wanted)


def value_of(entry: dict, figures: Path) -> float:
    """The number an entry points at (raises AssertionError with a clear message)."""
    path = figures / entry["table"]
    assert path.exists(), f"{path} missing: rerun `partnb run params/{entry['_dataset']}.yaml`"
    if path.suffix == ".json":
        node = json.loads(path.read_text())
        for part in entry["key"].split("."):
            assert isinstance(node, dict) and part in node, f"{path.name}: no key {entry['key']!r}"
            node = node[part]
        return float(node)
    rows = list(csv.DictReader(open(path, newline="")))
    where = entry.get("where") or {}
    for col in where:
        assert rows and col in rows[0], f"{path.name}: no column {col!r}"
    chosen = [r for r in rows if all(_matches(r[c], v) for c, v in where.items())]
    if entry.get("aggregate") == "count":
        return float(len(chosen))
    assert chosen, f"{path.name}: no row with {where}"
    values = [float(r[entry["column"]]) for r in chosen]
    if entry.get("aggregate"):
        return float(AGGREGATES[entry["aggregate"]](values))
    assert len(values) == 1, f"{path.name}: {len(values)} rows match {where}; add columns to `where`"
    return values[0]


ALL = [e for d in DATASETS for e in load_entries(d)]


@pytest.mark.parametrize("entry", ALL, ids=[e["_id"] for e in ALL])
def test_committed_table_in_range(entry):
    lo, hi = (float(x) for x in entry["range"])
    value = value_of(entry, FIGURES / entry["_dataset"])
    assert lo <= value <= hi, (f"{entry['table']} {entry.get('key') or _where_text(entry)} = {value:.6g} "
                               f"outside [{lo:g}, {hi:g}] ({entry['why']})")


@pytest.mark.parametrize("entry", ALL, ids=[e["_id"] for e in ALL])
def test_ranges_can_fail(entry):
    assert entry.get("why", "").strip(), "every range says where it comes from"
    lo, hi = (float(x) for x in entry["range"])
    assert lo <= hi and not (math.isinf(lo) and math.isinf(hi)), entry["range"]
    name = (entry.get("key") or entry.get("column") or "").lower()
    if any(word in name for word in BOUNDED) and entry.get("aggregate") in (None, "mean", "min", "max"):
        assert lo > 0 or hi < 1, f"{entry['_id']}: [{lo}, {hi}] covers every possible value"


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_committed_table_has_a_range(dataset):
    """Each table of the reference run is checked by at least one entry."""
    named = {e["table"] for e in load_entries(dataset)}
    tables = sorted(p.name for p in (FIGURES / dataset).glob("[0-9][0-9]_*")
                    if p.suffix in (".csv", ".json"))
    assert tables, f"figures/{dataset} holds no reference tables"
    assert sorted(set(tables) - named) == [], f"tables without an expected range in {dataset}.yaml"


def test_log_histogram_tables_have_a_fixed_shape():
    """Every bin of the fixed log10 binning is a row, filled or not: the row count of the 04
    tables is set by the binning, not by which tail bins a sample reaches."""
    import numpy as np

    from partnb.analysis.magnitude import LOG10_EDGES, N_BINS, _log_rows

    sparse, full = np.zeros(N_BINS, np.int64), np.ones(N_BINS, np.int64)
    sparse[[0, 7, N_BINS - 1]] = (3, 1, 2)
    for counts in (sparse, full, np.zeros(N_BINS, np.int64)):
        rows = _log_rows(counts, {"model": "m"})
        assert len(rows) == N_BINS == len(LOG10_EDGES) - 1
        assert [r["count"] for r in rows] == counts.tolist()
    assert math.isclose(sum(r["probability"] for r in _log_rows(sparse, {})), 1.0)


# --------------------------------------------------------------------------------------
# a rerun passes the expected ranges
# --------------------------------------------------------------------------------------

#: the notebook the rerun test executes, and the one its tables come from
RERUN_NOTEBOOK = "04"


def structural(entry: dict) -> bool:
    """An entry that holds whatever the number of jets: the row count of a table with a fixed
    binning, or probabilities of one distribution summing to 1."""
    if entry.get("aggregate") == "count":
        return "n_jets" not in (entry.get("why") or "")
    return entry.get("aggregate") == "sum" and entry.get("column") == "probability"


def _rerun_params(tmp_path: Path, dataset: str, *, reduced: bool) -> Path:
    """The shipped params of ``dataset`` writing into ``tmp_path`` and reading the committed
    checkpoints; ``reduced``: only the first generated file of each class (the same jets as
    file 0 of the full dataset: files are a pure function of settings, seed and index)."""
    from conftest import PARAMS

    p = yaml.safe_load((PARAMS / f"{dataset}.yaml").read_text())
    p["dataset"]["cache_dir"] = str(tmp_path / "cache" if reduced else REPO / "data" / "generated")
    if reduced:
        p["dataset"]["jets_per_class"] = p["dataset"]["jets_per_file"]
    p["output"] = {"figures": str(tmp_path / "figures"), "runs": str(tmp_path / "runs"),
                   "models": str(REPO / "models" / dataset)}
    path = tmp_path / f"{dataset}.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def _generated(dataset: str) -> bool:
    from partnb.data import dataset_files
    from partnb.data.io import DataError
    from partnb.params import load_params

    from conftest import PARAMS

    try:
        dataset_files(load_params(PARAMS / f"{dataset}.yaml"), generate=False)
    except DataError:
        return False
    return True


@pytest.mark.slow
def test_rerun_of_an_analysis_notebook_passes_the_expected_ranges(tmp_path):
    """Notebook 04 executed again (papermill, committed checkpoints) into a scratch copy: its
    tables pass every expected range of tests/expected/<dataset>.yaml when the dataset of the
    main job is there (same jets, same size: the ranges are reference ± statistical error);
    otherwise it runs on the first generated file of each Top Landscape class and the tables
    must pass the ranges that hold at any size (fixed binnings, normalisation)."""
    from partnb.runner import run_notebooks

    full = [d for d in ("jetclass", "toplandscape", "quarkgluon") if _generated(d)]
    dataset = full[0] if full else "toplandscape"
    path = _rerun_params(tmp_path, dataset, reduced=not full)
    results = run_notebooks(path, only=[RERUN_NOTEBOOK], log=lambda *_: None)
    assert [r.error for r in results] == [None]
    entries = [e for e in load_entries(dataset) if e["table"].startswith(f"{RERUN_NOTEBOOK}_")]
    if not full:
        entries = [e for e in entries if structural(e)]
    assert len(entries) >= 3
    failed = []
    for e in entries:
        lo, hi = (float(x) for x in e["range"])
        value = value_of(e, tmp_path / "figures")
        if not lo <= value <= hi:
            failed.append(f"{e['_id']} = {value:.6g} outside [{lo:g}, {hi:g}]")
    assert failed == [], "\n".join(failed)

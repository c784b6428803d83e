"""Notebooks: every pair in sync and without outputs, a parameters cell, and a real
papermill run of each notebook on ``params/tiny.yaml`` that writes its figures and tables."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import pytest
from conftest import PARAMS, REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_in_sync_and_stripped(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run jupytext --sync {py.name}"
    nb = nbformat.read(ipynb, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{ipynb.name} has outputs"
    from_py = jupytext.read(py)
    assert [(c.cell_type, c.source.strip()) for c in from_py.cells] == \
        [(c.cell_type, c.source.strip()) for c in nb.cells], f"{py.name} and {ipynb.name} differ"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_first_code_cell(py):
    nb = jupytext.read(py)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), py.name
    assert "params_file" in code[0].source and "progress" in code[0].source
    assert nb.cells[0].cell_type == "markdown" and "| params file |" in nb.cells[0].source


@pytest.mark.slow
def test_run_01_datasets_tiny(tmp_path):
    """papermill executes notebook 01 on the tiny params; every figure has its table."""
    import yaml

    from partnb.runner import run_notebooks

    params = yaml.safe_load((PARAMS / "tiny.yaml").read_text())
    params["dataset"]["cache_dir"] = str(tmp_path / "cache")
    params["output"] = {"figures": str(tmp_path / "figures"), "runs": str(tmp_path / "runs")}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(params))
    results = run_notebooks(path, only=["01"], log=lambda *_: None)
    assert [r.error for r in results] == [None]
    figs = tmp_path / "figures"
    for stem in ("01_jet_observables", "01_constituent_features"):
        for ext in ("png", "pdf", "csv"):
            assert (figs / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    for png in figs.glob("*.png"):
        assert any(figs.glob(png.stem + ".csv")) or any(figs.glob(png.stem + ".json")), png.name
    summary = json.loads((figs / "01_summary.json").read_text())
    assert summary["n_jets"] == 400 and len(summary["classes"]) == 10
    executed = nbformat.read(tmp_path / "runs" / "01_datasets.ipynb", as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) or "injected-parameters" in
               c.metadata.get("tags", []) for c in executed.cells)
    import csv

    rows = list(csv.DictReader(open(figs / "01_jet_observables_summary.csv")))
    tbqq = next(r for r in rows if r["class"] == "Tbqq")
    assert 140 < float(tbqq["median_jet_mass"]) < 210
    assert Path(results[0].output).exists()

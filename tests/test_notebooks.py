"""Notebooks: every pair in sync and without outputs, a parameters cell, and a real
papermill run of each notebook on ``params/tiny.yaml`` that writes its figures and tables."""

from __future__ import annotations

import csv
import json

import jupytext
import nbformat
import pytest

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
#: the notebooks a per-dataset run executes (the comparison notebook runs over several)
DATASET_NOTEBOOKS = [p for p in NOTEBOOKS if p.stem != "08_dataset_comparison"]


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


def test_every_notebook_runs_on_tiny(tiny_run):
    tmp, results = tiny_run
    assert [r.notebook for r in results] == [p.stem for p in DATASET_NOTEBOOKS]
    assert {r.notebook: r.error for r in results} == {p.stem: None for p in DATASET_NOTEBOOKS}
    for r in results:
        executed = nbformat.read(r.output, as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_every_figure_has_its_table(tiny_run):
    figs = tiny_run[0] / "figures"
    pngs = sorted(figs.glob("*.png"))
    assert pngs
    for png in pngs:
        assert png.with_suffix(".pdf").stat().st_size > 0, png.name
        assert png.with_suffix(".csv").exists() or png.with_suffix(".json").exists(), png.name


def test_01_summary_counts_400_jets_of_10_classes(tiny_figures):
    summary = json.loads((tiny_figures / "01_summary.json").read_text())
    assert summary["n_jets"] == 400 and len(summary["classes"]) == 10


def test_01_top_jet_mass_peaks_near_the_top_mass(tiny_figures):
    rows = list(csv.DictReader(open(tiny_figures / "01_jet_observables_summary.csv")))
    tbqq = next(r for r in rows if r["class"] == "Tbqq")
    assert 140 < float(tbqq["median_jet_mass"]) < 210


def test_01_observable_densities_are_non_negative(tiny_figures):
    for r in csv.DictReader(open(tiny_figures / "01_jet_observables.csv")):
        assert float(r["density"]) >= 0


def test_02_metrics_are_of_100_jets_in_the_unit_range(tiny_figures):
    metrics = json.loads((tiny_figures / "02_metrics.json").read_text())
    assert metrics["n_jets"] == 100
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["auc_ovo"] <= 1


def test_02_rejections_name_the_nine_signal_classes_in_order(tiny_figures):
    metrics = json.loads((tiny_figures / "02_metrics.json").read_text())
    assert list(metrics["rejection"]) == ["Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Tbqq", "Tbl",
                                          "Wqq", "Zqq"]


def test_02_training_curve_has_both_epochs_with_positive_loss(tiny_figures):
    log = list(csv.DictReader(open(tiny_figures / "02_training_curves.csv")))
    assert [int(float(r["epoch"])) for r in log] == [1, 2]
    assert all(float(r["train_loss"]) > 0 for r in log)


def test_02_roc_background_efficiencies_are_fractions(tiny_figures):
    for r in csv.DictReader(open(tiny_figures / "02_roc.csv")):
        assert 0 <= float(r["background_efficiency"]) <= 1


def test_02_saves_the_random_init_checkpoint(tiny_run):
    assert (tiny_run[0] / "models" / "random_init.pt").exists()


def test_only_names_a_missing_notebook(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "partnb.cli", "run", str(REPO / "params" / "tiny.yaml"),
                          "--only", "01,99"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--only 99: no such notebook" in res.stderr
    assert "01_datasets" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "partnb.cli", "run", str(REPO / "params" / "tiny.yaml"),
                          "--only", "08"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "partnb compare" in res.stderr


def test_mismatched_checkpoint_fails_that_notebook_and_the_others_run(tiny_run, tmp_path):
    """A params file whose model does not match the data's features: notebook 02 fails with
    the checkpoint error naming the tensor; the next notebook still runs."""
    import yaml

    from partnb.runner import run_notebooks

    tmp, _ = tiny_run
    params = yaml.safe_load((tmp / "tiny.yaml").read_text())
    params["features"]["set"] = "kinpid"  # 13 inputs; the tiny checkpoint was trained on 7
    params["model"]["checkpoint"] = str(tmp / "models" / "epoch_002.pt")
    params["output"]["figures"] = str(tmp_path / "figures")
    params["output"]["runs"] = str(tmp_path / "runs")
    path = tmp_path / "mismatch.yaml"
    path.write_text(yaml.safe_dump(params))
    results = run_notebooks(path, only=["01", "02"], log=lambda *_: None)
    errors = {r.notebook: r.error for r in results}
    assert errors["01_datasets"] is None
    assert errors["02_training"] is not None and "CheckpointError" in errors["02_training"]
    assert "embed" in errors["02_training"]  # names the mismatching tensor

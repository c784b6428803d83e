"""Notebooks: every pair in sync and without outputs, a parameters cell, and a real
papermill run of each notebook on ``params/tiny.yaml`` that writes its figures and tables."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from conftest import PARAMS, REPO

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


@pytest.mark.slow  # two papermill runs at once
def test_two_runs_at_once_keep_to_their_own_kernels(tiny_run, tmp_path):
    """The notebooks' kernels talk to papermill over Unix sockets: ipykernel >= 7 warns on
    every TCP kernel without encryption, a line that would fill the main job's log once per
    notebook. Two ``partnb run`` at once (as for two datasets in two shells) each keep to
    their own kernel: with jupyter_client's default socket names (``kernel-ipc-1`` ... in the
    notebooks' folder) they connected to each other's kernels and failed with "Invalid
    Signature". Each run's whole output is the runner's own lines, and no socket file is
    left beside the notebooks. (The tiny run's model and data, each run with its own
    figures and runs folders.)"""
    import subprocess
    import sys

    import yaml

    from partnb.runner import NOTEBOOK_DIR

    tmp, _ = tiny_run
    procs = []
    for k in range(2):
        params = yaml.safe_load((tmp / "tiny.yaml").read_text())
        params["output"].update(figures=str(tmp_path / f"figures{k}"), runs=str(tmp_path / f"runs{k}"))
        path = tmp_path / f"tiny{k}.yaml"
        path.write_text(yaml.safe_dump(params))
        procs.append(subprocess.Popen([sys.executable, "-m", "partnb.cli", "run", str(path),
                                       "--only", "09,03"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL))
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        text = out + err
        assert proc.returncode == 0, text
        assert "09_sparsity_emergence" in text and "03_attention_distributions" in text, text
        assert "FAILED" not in text and "Invalid" not in text, text
        assert "without encryption" not in text and "WARNING" not in text, text
    assert not list(NOTEBOOK_DIR.glob("kernel-ipc*"))


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


# --------------------------------------------------------------------------------------
# partnb run: what it logs while papermill hides the notebooks' output
# --------------------------------------------------------------------------------------


def test_training_notebooks_table_matches_the_notebooks():
    """partnb.runner trains first what a notebook would train: the notebooks whose
    parameters cell has ``train_if_missing = True`` (the model) or
    ``train_plain_if_missing = True`` (ParT-plain)."""
    from partnb.runner import TRAINING_NOTEBOOKS

    found = {}
    for py in DATASET_NOTEBOOKS:
        first = [c for c in jupytext.read(py).cells if c.cell_type == "code"][0].source
        lines = [line.split("#")[0].replace(" ", "") for line in first.splitlines()]
        if "train_if_missing=True" in lines:
            found[py.stem] = "model"
        if "train_plain_if_missing=True" in lines:
            found[py.stem] = "plain"
    assert found == TRAINING_NOTEBOOKS


def test_run_logs_generation_training_epochs_and_notebook_times(tmp_path, monkeypatch):
    """``run_notebooks`` logs, in order, the generation progress, the training a notebook
    would do (one line per epoch, trained here because papermill hides the kernel's output),
    and one line per notebook with its run time; a rerun trains nothing, a training that
    fails is reported as that notebook's failure while the others still run, and ParT-plain
    is not trained for 06 when the model it needs first is missing. papermill, the
    generation and the training are stand-ins here (the real run: tiny_run)."""
    import papermill
    import yaml

    import partnb.data
    import partnb.runner
    import partnb.train
    from partnb.train import TrainingError

    p = yaml.safe_load((PARAMS / "tiny.yaml").read_text())
    p["dataset"]["cache_dir"] = str(tmp_path / "cache")
    p["output"] = {k: str(tmp_path / k) for k in ("figures", "runs", "models")}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(p))
    executed, trained = [], []

    def fake_generation(params, *, progress=False, log=print, generate=True):
        assert progress is False
        log("generate jetclass: 10/10 files, 50 jets/s")

    def fake_train(params, *, progress, log):
        assert progress is False
        trained.append(params.output.models)
        if params.features.pair_features == 0:
            raise TrainingError("the loss is nan")
        for epoch in (1, 2):
            log(f"epoch {epoch}/2: loss 2.3000, val acc 0.1000, val AUC 0.5000, 99 jets/s")
        final = tmp_path / "models" / "epoch_002.pt"
        final.parent.mkdir(parents=True, exist_ok=True)
        final.write_bytes(b"")

    monkeypatch.setattr(partnb.data, "dataset_files", fake_generation)
    monkeypatch.setattr(partnb.train, "train", fake_train)
    monkeypatch.setattr(partnb.runner, "ensure_kernel", lambda: "partnb")
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda book, out, **kw: executed.append(Path(book).stem))
    lines = []
    results = partnb.runner.run_notebooks(path, only=["02", "03", "06"], log=lines.append)

    models = tmp_path / "models"
    pattern = [
        "generate jetclass: 10/10 files, 50 jets/s",
        "02_training ... (1/3)",
        f"train tiny for 02_training: 2 epochs into {models}",
        "train tiny: epoch 1/2: loss 2.3000, val acc 0.1000, val AUC 0.5000, 99 jets/s",
        "train tiny: epoch 2/2: loss 2.3000, val acc 0.1000, val AUC 0.5000, 99 jets/s",
        "02_training <s> s ok",
        "03_attention_distributions ... (2/3)",
        "03_attention_distributions <s> s ok",
        "06_interaction_ablation ... (3/3)",
        f"train tiny ParT-plain for 06_interaction_ablation: 2 epochs into {models / 'plain'}",
        "06_interaction_ablation <s> s FAILED at training: TrainingError: the loss is nan",
        # the faked generation made no files: the record says so, the run stands
        "provenance: not recorded (AttributeError: 'NoneType' object has no attribute 'files')",
    ]
    assert [re.sub(r" [0-9.]+ s ", " <s> s ", " ".join(line.split())) for line in lines] == pattern
    assert executed == ["02_training", "03_attention_distributions"]
    assert [r.error for r in results] == [
        None, None, "training: TrainingError: the loss is nan"]

    lines.clear()
    trained.clear()
    partnb.runner.run_notebooks(path, only=["02"], log=lines.append)
    assert trained == [] and len(lines) == 3 and lines[1].startswith("02_training")

    # without the model 06 fails at its first cell: ParT-plain is not trained in vain first
    (models / "epoch_002.pt").unlink()
    partnb.runner.run_notebooks(path, only=["06"], log=lines.append)
    assert trained == []


def test_run_trains_before_the_notebooks(tiny_run):
    """In the real run the runner trained the model and ParT-plain before 02 and 06: the
    executed notebooks loaded them and printed no epoch of their own."""
    tmp, results = tiny_run
    for r in results:
        text = json.dumps(nbformat.read(r.output, as_version=4).cells)
        assert "epoch 1/" not in text, f"{r.notebook} trained in the kernel"
    assert (tmp / "models" / "epoch_002.pt").is_file()
    assert (tmp / "models" / "plain" / "epoch_002.pt").is_file()

"""Study grids (partnb study) and the fits of notebook 10 on data with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from partnb.analysis.scaling import PAPER_SCALE, extrapolation_row, fit_logistic_log, fit_power_law
from partnb.cli import main
from partnb.study import StudyError, load_study, point_status, run_study

REPO_PARAMS = __import__("pathlib").Path(__file__).resolve().parent.parent / "params"


# --- fits --------------------------------------------------------------------------------------


def test_power_law_recovers_a_known_law_and_its_interval_covers_the_truth():
    rng = np.random.default_rng(0)
    x = np.array([1e3, 4e3, 1.6e4, 6.4e4])
    truth = 2e-3 * x**0.4
    hits = 0
    for _ in range(200):
        err = 0.05 * truth
        y = truth + rng.normal(0, err)
        fit = fit_power_law(x, y, err)
        value, lo, hi = fit.predict(1e8)
        hits += lo <= 2e-3 * 1e8**0.4 <= hi
    # a 68 % interval: about two thirds of the toys cover the true value
    assert 0.55 < hits / 200 < 0.82
    exact = fit_power_law(x, truth)
    assert exact.params == pytest.approx([np.log10(2e-3), 0.4])


def test_power_law_drops_zero_points_and_says_so():
    fit = fit_power_law([1, 10, 100], [0.0, 0.1, 1.0])
    assert fit.n_points == 2 and "left out" in fit.notes[0]
    with pytest.raises(ValueError, match="two points"):
        fit_power_law([1, 10], [0.0, 0.1])


def test_logistic_recovers_a_known_step_and_saturates():
    x = np.logspace(0, 5, 11)
    c, k, m = 0.3, 3.0, 2.5
    y = c / (1 + np.exp(-k * (np.log10(x) - m)))
    fit = fit_logistic_log(x, y, np.full_like(y, 1e-3))
    assert fit.params == pytest.approx([c, k, m], rel=1e-3)
    value, lo, hi = fit.predict(1e9)
    assert value == pytest.approx(c, rel=1e-3) and lo <= value <= hi
    row = extrapolation_row("rows_max_ge_0.8", "steps", fit, 1e9)
    assert set(row) >= {"metric", "knob", "fit", "n_points", "prediction", "lo", "hi"}
    assert row["fit"] == "logistic_log" and row["n_points"] == 11


def test_a_zero_error_point_does_not_unweight_the_logistic_fit():
    """An early monitor point with no binary row has value 0 and jackknife error 0. The fit
    stays weighted by the other points' errors: its χ²/dof stays a χ² (about 1 for noise at
    the stated errors), not the residual variance it became when one error was 0."""
    rng = np.random.default_rng(1)
    x = np.logspace(1, 4, 13)
    c, k, m = 0.04, 4.0, 2.0
    truth = c / (1 + np.exp(-k * (np.log10(x) - m)))
    err = np.full_like(truth, 1e-3)
    y = truth + rng.normal(0, err)
    y[0], err[0] = 0.0, 0.0
    fit = fit_logistic_log(x, y, err)
    assert any("zero error" in n for n in fit.notes)
    assert 0.2 < fit.chi2_per_dof < 3
    value, lo, hi = fit.predict(1e6)
    assert lo <= c <= hi or abs(value - c) < 3 * (hi - lo)
    unweighted = fit_logistic_log(x, y)
    assert "no point errors: covariance from the scatter" in unweighted.notes
    power = fit_power_law(x[1:], y[1:], np.r_[0.0, err[2:]])
    assert power.n_points == 12 and any("zero error" in n for n in power.notes)


def test_a_fractions_interval_stays_within_zero_and_one():
    """Three points fix a logistic exactly: its delta-method interval at 100M jets is wide and
    symmetric, and for a fraction it is cut at 0 and 1 (the JetClass-like jets fit reached
    -0.27 before); a logit gap is not a fraction and keeps its interval."""
    fit = fit_logistic_log([4e3, 1.6e4, 6.4e4], [0.0225, 0.0283, 0.0147], [0.01, 0.0103, 0.0101])
    value, lo, hi = fit.predict(1e8)
    assert lo < 0  # the raw interval
    row = extrapolation_row("rows_max_ge_0.8", "train_jets", fit, 1e8)
    assert row["lo"] == 0.0 and row["prediction"] == pytest.approx(max(value, 0.0))
    assert row["hi"] == pytest.approx(min(hi, 1.0))
    free = extrapolation_row("median_logit_gap", "train_jets", fit, 1e8, cap=None)
    assert free["lo"] == pytest.approx(lo)


def test_drivers_verdict_names_movers_reach_and_rejected_forms():
    from partnb.analysis.scaling import drivers_verdict

    effects = [
        {"knob": "width", "metric": "rows_max_ge_0.8", "from": 0.05, "to": 0.001, "significance": -4.2},
        {"knob": "train_jets", "metric": "rows_max_ge_0.8", "from": 0.02, "to": 0.03, "significance": 1.1},
    ]
    extrap = [
        {"fit": "power_law", "knob": "steps", "prediction": 0.6, "lo": 0.4, "hi": 0.9,
         "chi2_per_dof": 40.0, "notes": "points of one run (correlated): interval too narrow"},
        {"fit": "logistic_log", "knob": "steps", "prediction": 0.02, "lo": 0.01, "hi": 0.03,
         "chi2_per_dof": 1.2, "notes": ""},
        {"fit": "power_law", "knob": "train_jets", "prediction": 0.1, "lo": 0.0, "hi": 0.6,
         "chi2_per_dof": 9.0, "notes": "no point errors: covariance from the scatter"},
    ]
    text = drivers_verdict(effects, extrap)
    assert "width (0.05 → 0.001, -4.2σ)" in text and "train_jets (" not in text
    assert "1 of 3 predictions reach 0.5" in text and "2 within their 68 % interval" in text
    # the unweighted fit's 'chi2' is a residual variance: not judged
    assert "reject the form of 1 of 2 weighted fits" in text and "power_law in steps (χ²/dof 40)" in text
    quiet = drivers_verdict(effects[1:], extrap[1:2])
    assert quiet.startswith("No knob moved it beyond 3σ (knobs with ≥ 2 points: train_jets)")
    assert "reject" not in quiet


def test_paper_scale_steps():
    assert PAPER_SCALE["jetclass"]["steps"] == 1_000_000
    assert PAPER_SCALE["toplandscape"]["jets"] == 1_200_000


# --- study files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["toplandscape_grid", "jetclass_grid"])
def test_committed_grids_load(name):
    study = load_study(REPO_PARAMS / "study" / f"{name}.yaml")
    names = [p.name for p in study.points]
    assert names[:2] == ["base-seed42", "base-seed43"]
    knobs = {p.knob for p in study.points}
    assert {"train_jets", "epochs", "width", "padding"} <= knobs
    # 3 points per knob with the base point; a two-valued setting (padding, weight-decay mode,
    # detector) has one point besides the base
    two_valued = {"padding", "weight_decay_mode", "detector"}
    for knob in knobs - {"base"} - two_valued:
        assert len([p for p in study.points if p.knob == knob]) >= 2, knob
    jets = study.point("train_jets-64000").params
    assert jets.train.max_jets == 64000 and jets.dataset.jets_per_class > 10000 // 2
    detector = [p for p in study.points if p.knob == "detector"]
    assert len(detector) == 1 and detector[0].params.dataset.detector != "none"
    assert detector[0].params.train.max_jets == study.points[0].params.train.max_jets


def _study_file(tmp_path, knobs, **extra):
    base = yaml.safe_load((REPO_PARAMS / "tiny.yaml").read_text())
    base["dataset"]["cache_dir"] = str(tmp_path / "cache")
    (tmp_path / "params").mkdir(exist_ok=True)
    (tmp_path / "params" / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {"study": {"base": "base.yaml", "output": "models/study", "seeds": [7], "knobs": knobs,
                      **extra}}
    path = tmp_path / "params" / "grid.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("knobs, extra, message", [
    ({"lr": {"key": "train.lr", "values": [0.1]}}, {}, "at least two"),
    ({"lr": {"key": "train.nope", "values": [0.1, 0.2]}}, {}, "not a params key"),
    ({"lr": {"key": "train.lr", "values": [0.1, -1.0]}}, {}, "knob 'lr' = -1.0"),
    ({}, {"seeds": ["a"]}, "seeds"),
    ({}, {"colour": 1}, "unknown key study.colour"),
])
def test_bad_study_files_are_refused_before_training(tmp_path, knobs, extra, message):
    path = _study_file(tmp_path, knobs, **extra)
    with pytest.raises(StudyError, match=message):
        load_study(path)
    assert not (tmp_path / "models").exists()


def test_cli_refuses_an_unknown_point(tmp_path, capsys):
    path = _study_file(tmp_path, {"epochs": {"key": "train.epochs", "values": [1, 2]}})
    assert main(["study", str(path), "--point", "nope"]) == 2
    assert "no point 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_tiny_study_trains_each_point_once(tmp_path, one_torch_thread):
    path = _study_file(tmp_path, {"epochs": {"key": "train.epochs", "values": [1, 2]}},
                       overrides={"train.monitor_jets": 50})
    study = load_study(path)
    assert [p.name for p in study.points] == ["base-seed7", "epochs-1"]
    assert [point_status(p) for p in study.points] == ["todo", "todo"]
    lines = []
    run_study(study, log=lines.append)
    assert [point_status(p) for p in study.points] == ["done", "done"]
    for point in study.points:
        assert (point.directory / "monitor_log.json").is_file()
    assert run_study(load_study(path), log=lines.append) == []  # both skipped
    assert sum("skipped" in line for line in lines) == 2
    # notebook 10 reads the two points: a table per point, the knob's effect, a verdict
    import csv
    import json

    import papermill as pm

    from partnb.runner import NOTEBOOK_DIR, ensure_kernel

    pm.execute_notebook(str(NOTEBOOK_DIR / "10_what_drives_sparsity.ipynb"), str(tmp_path / "10.ipynb"),
                        parameters={"params_file": str(tmp_path / "params" / "base.yaml"),
                                    "study_file": str(path), "progress": False},
                        kernel_name=ensure_kernel(), cwd=str(NOTEBOOK_DIR), progress_bar=False)
    figs = tmp_path / "figures" / "tiny"
    points = list(csv.DictReader(open(figs / "10_study_points.csv")))
    assert sorted(r["point"] for r in points) == ["base-seed7", "epochs-1"]
    effects = [r for r in csv.DictReader(open(figs / "10_knob_effects.csv")) if r["metric"] == "rows_max_ge_0.8"]
    assert [r["knob"] for r in effects] == ["epochs"] and int(effects[0]["n_points"]) == 2
    verdict = json.loads((figs / "10_verdict.json").read_text())
    assert verdict["points_finished"] == 2 and verdict["verdict"]


def test_a_categorical_knob_keeps_the_base_first():
    """'atlas-like' sorts before 'none': the detector knob's effect must still run from the
    base (particle level) to the detector point, not the other way round."""
    from partnb.analysis.scaling import knob_effects

    rows = [{"point": "base-seed42", "knob": "base", "detector": "none", "m": 0.02, "m_err": 0.001},
            {"point": "base-seed43", "knob": "base", "detector": "none", "m": 0.04, "m_err": 0.001},
            {"point": "detector-atlas-like", "knob": "detector", "detector": "atlas-like",
             "m": 0.09, "m_err": 0.002}]
    (effect,) = knob_effects(rows, ["detector"], "m")
    assert (effect["from_x"], effect["to_x"]) == ("none", "atlas-like")
    assert effect["from"] == pytest.approx(0.03) and effect["change"] == pytest.approx(0.06)


@pytest.mark.slow  # reads the tiny run's generated files
def test_split_sizes_from_the_plan_equal_the_files_and_generate_nothing(tiny_run, tmp_path):
    """Notebook 10 counts each grid point's training jets with ``generate=False``: where the
    generated files are not there (a fresh clone, a detector point) the sizes come from the
    generation plan, equal to what the files give, and nothing is generated."""
    from partnb.data.sample import split_sizes
    from partnb.params import load_params

    tmp, _ = tiny_run
    params = load_params(tmp / "tiny.yaml")
    from_files = split_sizes(params, generate=False)
    assert from_files == split_sizes(params) and sum(from_files.values()) > 0
    data = yaml.safe_load((tmp / "tiny.yaml").read_text())
    data["dataset"]["cache_dir"] = str(tmp_path / "empty")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    assert split_sizes(load_params(path), generate=False) == from_files
    assert not any((tmp_path / "empty").rglob("*.root"))

"""The cross-dataset comparison (notebook 08): readers, the ordering verdict, and a papermill
run over the tiny run's tables."""

from __future__ import annotations

import csv
import json

import pytest

from partnb.analysis import comparison


def _rows(values: dict[str, tuple[float, float]]) -> list[dict]:
    return [{"dataset": d, "model": "trained", "frac_rows_max_ge_0.8": v,
             "frac_rows_max_ge_0.8_err": e} for d, (v, e) in values.items()]


def test_ordering_holds_only_beyond_two_standard_errors():
    clear = comparison.binary_ordering(_rows({"jetclass": (0.30, 0.01), "quarkgluon": (0.20, 0.01),
                                              "toplandscape": (0.05, 0.01)}))
    assert clear["ordering_holds"] is True
    assert clear["binary_in_absolute_terms"] == {"jetclass": False, "quarkgluon": False,
                                                 "toplandscape": False}
    close = comparison.binary_ordering(_rows({"jetclass": (0.30, 0.01), "quarkgluon": (0.07, 0.01),
                                              "toplandscape": (0.05, 0.01)}))
    assert close["ordering_holds"] is False  # 0.07 vs 0.05 is 1.4 sigma
    binary = comparison.binary_ordering(_rows({"jetclass": (0.6, 0.01), "toplandscape": (0.1, 0.01)}))
    assert binary["ordering_holds"] is True and binary["binary_in_absolute_terms"]["jetclass"]
    partial = comparison.binary_ordering(_rows({"toplandscape": (0.1, 0.01)}))
    assert partial["ordering_holds"] is None


def test_missing_tables_are_listed(tmp_path):
    missing: list[str] = []
    assert comparison.binary_rows({"x": tmp_path}, missing) == []
    assert missing == ["x: 03_attention_summary.csv (run `partnb run` with --only 03)"]


def test_same_name_twice_is_refused():
    class P:
        name = "jetclass"

        class output:
            figures = "/tmp/a"

    with pytest.raises(comparison.ComparisonError, match="both named 'jetclass'"):
        comparison.figure_dirs([P, P])


@pytest.fixture(scope="module")
def comparison_run(tiny_run, tmp_path_factory):
    """Notebook 08 run once (papermill) over the tiny run's tables: (result, output dir)."""
    from partnb.runner import run_comparison

    tmp, _ = tiny_run
    out = tmp_path_factory.mktemp("comparison") / "comparison"
    result = run_comparison([tmp / "tiny.yaml"], output=out, log=lambda *_: None)
    return result, out


def test_08_compares_the_tiny_run_without_error(comparison_run):
    result, _ = comparison_run
    assert result.error is None


def test_08_binary_fractions_are_the_tiny_runs_for_both_models(comparison_run):
    _, out = comparison_run
    binary = list(csv.DictReader(open(out / "08_binary_fractions.csv")))
    assert {r["model"] for r in binary} == {"trained", "random_init"}
    for r in binary:
        assert r["dataset"] == "tiny"
        assert 0 <= float(r["frac_rows_max_ge_0.8"]) <= 1
        assert float(r["frac_rows_max_ge_0.95"]) <= float(r["frac_rows_max_ge_0.8"])


def test_08_interaction_table_has_one_row_of_fractions(comparison_run):
    _, out = comparison_run
    inter = list(csv.DictReader(open(out / "08_interaction.csv")))
    assert len(inter) == 1 and 0 <= float(inter[0]["rate_D"]) <= 1
    assert 0 <= float(inter[0]["accuracy_zero_u"]) <= 1


def test_08_one_dataset_has_no_ordering_to_test(comparison_run):
    _, out = comparison_run
    ordering = json.loads((out / "08_binary_ordering.json").read_text())
    assert ordering["ordering_holds"] is None  # one dataset: no ordering to test


def test_08_attention_distributions_are_normalised_per_model(comparison_run):
    _, out = comparison_run
    hist = list(csv.DictReader(open(out / "08_attention_distributions.csv")))
    for model in ("trained", "random_init"):
        total = sum(float(r["probability"]) for r in hist if r["model"] == model)
        assert total == pytest.approx(1.0, abs=1e-3)


def test_08_every_figure_has_its_table(comparison_run):
    _, out = comparison_run
    for png in out.glob("*.png"):
        assert png.with_suffix(".csv").exists() or png.with_suffix(".json").exists()

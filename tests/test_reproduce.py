"""Re-running an analysis on the committed default checkpoint reproduces the committed tables.

The reference run of ``params/toplandscape.yaml`` analysed the 2 000 test jets of 20 generated
files. Generation is a pure function of the settings, the seed and the file index, so this test
regenerates the first file of each class (2 x 1 000 jets, ~1 min on 2 cores), takes their test
slices (the last 10 %: 100 top + 100 QCD jets, the same jets the reference run saw), runs the
attention-distribution (03) and interaction (06) analyses with the committed checkpoint, and
compares with the committed tables within the statistical error of a 200-jet sample: a
regression that moves a number by more than five combined standard errors fails.
"""

from __future__ import annotations

import csv
import math
from concurrent.futures import ProcessPoolExecutor

import pytest
import yaml

from conftest import FIGURES_ROOT, PARAMS, REPO

TOLERANCE_SIGMA = 5.0


def _committed(table: str, **where) -> dict:
    rows = list(csv.DictReader(open(FIGURES_ROOT / "toplandscape" / table, newline="")))
    match = [r for r in rows if all(r[k] == v for k, v in where.items())]
    assert len(match) == 1, f"{table}: {len(match)} rows match {where}"
    return match[0]


def _generate_first_files(out_dir):
    from partnb.data.generate import GenerationConfig, generate_chunk_file, plan_chunks
    from partnb.params import load_params

    params = load_params(PARAMS / "toplandscape.yaml")
    config = GenerationConfig.from_params(params)
    chunks = [c for c in plan_chunks(config) if c.index == 0]
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(generate_chunk_file, [config] * len(chunks), chunks, [out_dir] * len(chunks),
                      [config.cache_key()] * len(chunks)))
    return sorted(out_dir.glob("*.root"))


@pytest.fixture(scope="module")
def rerun(tmp_path_factory):
    from partnb.analysis import interaction, sparsity
    from partnb.analysis.stream import analysis_inputs
    from partnb.data.schema import DATASETS
    from partnb.notebook import trained_model
    from partnb.params import params_from_dict

    tmp = tmp_path_factory.mktemp("reproduce")
    files = _generate_first_files(tmp)
    assert len(files) == 2, files
    data = yaml.safe_load((PARAMS / "toplandscape.yaml").read_text())
    data["dataset"].update(source="files", files=[str(f) for f in files])
    params = params_from_dict(data, source=PARAMS / "toplandscape.yaml", root=REPO)
    model = trained_model(params, train_if_missing=False)
    inputs = analysis_inputs(params)
    classes = list(DATASETS["toplandscape"].classes)
    acc = sparsity.attention_sparsity(model, inputs, classes, batch_size=100)
    summary = {(r["model"], r["variant"], r["layer"], r["class"]): r
               for r in acc.summary_rows("trained")}
    inter = interaction.interaction_metrics(model, inputs, batch_size=100, compare_float64=False)
    return len(inputs), summary, inter["float32"]


def _agree(ours: float, ours_err: float, ref: float, ref_err: float) -> bool:
    return abs(ours - ref) <= TOLERANCE_SIGMA * math.hypot(ours_err, ref_err)


def test_the_regenerated_test_slices_are_the_reference_jets(rerun):
    n, _, _ = rerun
    assert n == 200  # 10 % of 2 x 1000 jets, as in every file of the reference run


@pytest.mark.parametrize("column", ["frac_rows_max_ge_0.8", "frac_rows_max_ge_0.95"])
def test_03_binary_fractions_reproduce(rerun, column):
    _, summary, _ = rerun
    ours = summary[("trained", "correct", "all", "all")]
    ref = _committed("03_attention_summary.csv", model="trained", variant="correct", layer="all",
                     **{"class": "all"})
    assert _agree(float(ours[column]), float(ours[f"{column}_err"]), float(ref[column]),
                  float(ref[f"{column}_err"])), (column, ours[column], ref[column])
    assert float(ours["median_row_max"]) == pytest.approx(float(ref["median_row_max"]), rel=0.15)


@pytest.mark.parametrize("metric", ["rate_D", "rate_N", "coverage_D"])
def test_06_interaction_metrics_reproduce(rerun, metric):
    _, _, ours = rerun
    ref = _committed("06_interaction_metrics.csv", model="trained", pair_features="float32")
    ours_err = ours[f"{metric}_err"] if math.isfinite(ours[f"{metric}_err"]) else 0.0
    ref_err = float(ref[f"{metric}_err"]) if ref[f"{metric}_err"] not in ("", "nan") else 0.0
    # a floor for metrics at their bound (coverage 1 with zero spread)
    assert _agree(ours[metric], max(ours_err, 1e-3), float(ref[metric]), ref_err), \
        (metric, ours[metric], ref[metric])

"""Notebook 11's comparison of attention variants (partnb.analysis.variants): which params
files are variants, the measures of one variant on random models with a known property, and
the verdict on rows with a known answer."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from partnb.analysis import variants as va
from partnb.params import load_params

from conftest import PARAMS, mixed_jets, sharp_small_model, variant_params_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def test_only_files_that_change_the_attention_are_variants(tmp_path):
    base = load_params(PARAMS / "toplandscape.yaml", check_files=False)
    files = [variant_params_file(tmp_path, "a", {"model.attention": "sparsemax"}),
             variant_params_file(tmp_path, "b", {"train.lr": 0.002, "model.attention": "entmax15"}),
             variant_params_file(tmp_path, "c", {"model.attention": "sparsemax", "output.models": "x"}),
             variant_params_file(tmp_path, "d", {"train.attention_penalty": {"kind": "entropy", "weight": 0.1}}),
             variant_params_file(tmp_path, "e", {"model.attention": "entmax15", "train.monitor_jets": 20,
                                           "train.threads": 2})]
    chosen, skipped = va.compare_variants(base, files)
    assert [name for name, _ in chosen] == ["softmax", "sparsemax", "softmax + entropy 0.1", "entmax15"]
    assert chosen[0][1] is base
    reasons = {s["file"].rsplit("_", 1)[1]: s["reason"] for s in skipped}
    assert set(reasons) == {"b.yaml", "c.yaml"}
    assert reasons["b.yaml"].startswith("train.lr = 0.002")
    assert "same variant (sparsemax)" in reasons["c.yaml"]


def test_the_committed_variant_files_are_variants_of_the_default():
    """Every committed variant file is a variant of notebook 11 or of notebook 12, and each
    notebook leaves out the other's with a reason that names the notebook."""
    from partnb.analysis import differential as di

    base = load_params(PARAMS / "toplandscape.yaml", check_files=False)
    files = va.variant_files(base)
    assert files and all(f.name.startswith("toplandscape_") for f in files)
    chosen, skipped = va.compare_variants(base, files, attentions=va.EXPLICIT)
    chosen12, skipped12 = di.differential_variants(base)
    assert len(chosen) + len(chosen12) == len(files) + 2
    assert all("compared in notebook 12" in s["reason"] for s in skipped), skipped
    assert all("compared in notebook 11" in s["reason"] for s in skipped12), skipped12
    assert len(skipped) == len(chosen12) - 1 and len(skipped12) == len(chosen) - 1
    assert {p.model.attention for _, p in chosen12[1:]} <= set(di.DIFFERENTIAL)
    # run on a variant file, the others are its variants and it is not its own
    own = load_params(files[0], check_files=False)
    assert files[0] not in va.variant_files(own)


@pytest.fixture(scope="module")
def jets():
    j = mixed_jets(60, p=24, seed=3)
    return dataclasses.replace(j, label=j.label % 2)


@pytest.mark.parametrize("attention", ["softmax", "sparsemax"])
def test_variant_row_measures(jets, attention):
    from partnb.analysis.attention_features import subjet_assignments
    from partnb.model.factory import predict

    model = sharp_small_model(attention)
    subjets = subjet_assignments(jets, counts=(3,))
    lepton = np.zeros(jets.mask[:, 0].shape, bool)
    lepton[::7, 0] = jets.mask[::7, 0, 0] > 0
    row = va.variant_row(attention, model, jets, dataset="toplandscape", classes=["a", "b"],
                         subjets=subjets, subjet_class=1, is_lepton=lepton, batch_size=20)
    labels = np.asarray(jets.label)
    assert row["model"] == attention and row["n_jets"] == len(jets)
    assert row["accuracy"] == pytest.approx((predict(model, jets).argmax(1) == labels).mean())
    assert row["zero_u_drop"] == pytest.approx(row["accuracy"] - row["accuracy_zero_u"])
    if attention == "softmax":  # softmax never gives an exact zero over real keys
        assert row["frac_exact_zero"] == 0
    else:
        assert row["frac_exact_zero"] > 0.1
    assert 0 < row["mean_norm_entropy"] < 1 and 0 <= row["rate_D"] <= 1
    assert row["median_row_max"] > row["uniform_median_row_max"]
    assert 0 < row["subjet_jets"] <= int((labels == 1).sum())  # class-1 jets with a defined fraction
    assert 0 <= row["intersubjet_N3"] <= 1 and 0 <= row["lepton_fraction"] <= 1
    assert row["train_jets_per_s"] > 0 and row["infer_jets_per_s"] > 0
    assert math.isnan(row["train_jets_per_s_logged"])  # no run directory given


def test_sparsemax_is_sparser_than_softmax_on_the_same_weights(jets):
    rows = [va.variant_row(a, sharp_small_model(a), jets, dataset="toplandscape", classes=["a", "b"],
                           batch_size=20) for a in ("softmax", "sparsemax")]
    assert rows[1]["mean_norm_entropy"] < rows[0]["mean_norm_entropy"]
    assert rows[1]["median_row_max"] > rows[0]["median_row_max"]
    assert "lepton_fraction" not in rows[0] and "intersubjet_N3" not in rows[0]


def test_training_speed_includes_the_penalty(jets):
    model = sharp_small_model("softmax")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert va.training_speed(model, jets, penalty={"kind": "entropy", "weight": 0.1},
                             batch_size=20, batches=2) > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # a copy trains, not the model
    assert not model.training


def _row(name, acc, binary, n=2000, binary_err=0.002, median=0.1):
    return {"model": name, "accuracy": acc, "accuracy_err": math.sqrt(acc * (1 - acc) / n),
            "frac_rows_max_ge_0.8": binary, "frac_rows_max_ge_0.8_err": binary_err,
            "median_row_max": median}


def test_verdict_on_known_rows():
    same = va.variants_verdict([_row("softmax", 0.93, 0.005), _row("sparsemax", 0.925, 0.30, median=0.5)])
    assert same["variants"]["sparsemax"]["same_accuracy"] and same["explicit_matches_accuracy"]
    assert not same["emergent_as_sparse_as_sparsemax"]
    assert same["sparsemax_over_softmax_binary"] == pytest.approx(60)
    assert "60× less often binary" in same["sentence"]
    worse = va.variants_verdict([_row("softmax", 0.93, 0.005), _row("sparsemax", 0.88, 0.005),
                                 _row("entmax15", 0.95, 0.1)])
    assert not worse["variants"]["sparsemax"]["same_accuracy"]
    assert worse["variants"]["sparsemax"]["significance"] < -5
    assert not worse["explicit_matches_accuracy"]
    assert worse["emergent_as_sparse_as_sparsemax"]  # equal binary fractions
    # a seed spread widens the errors
    spread = va.variants_verdict([dict(_row("softmax", 0.93, 0.005), seed_spread=0.03),
                                  _row("sparsemax", 0.88, 0.005)])
    assert spread["variants"]["sparsemax"]["same_accuracy"]
    assert "only softmax" in va.variants_verdict([_row("softmax", 0.9, 0.0)])["sentence"].lower()
    assert va.variants_verdict([])["sentence"].startswith("No variant")
    assert [va.variants_verdict(r)["n_variants"] for r in ([], [_row("softmax", 0.9, 0.0)])] == [0, 0]
    assert worse["n_variants"] == 2


@pytest.mark.slow  # the session's papermill run of every notebook on params/tiny.yaml
def test_11_tables_of_the_tiny_run(tiny_figures):
    """The tiny params have no variant files: one row, the tiny model itself, and a verdict
    that says there is nothing to compare."""
    import csv
    import json

    rows = list(csv.DictReader((tiny_figures / "11_variants.csv").open()))
    assert [r["model"] for r in rows] == ["softmax"]
    row = rows[0]
    assert 0 <= float(row["accuracy"]) <= 1 and float(row["frac_exact_zero"]) == 0
    assert float(row["train_jets_per_s"]) > 0
    verdict = json.loads((tiny_figures / "11_verdict.json").read_text())
    assert "no explicit variant" in verdict["sentence"] and verdict["n_variants"] == 0
    assert (tiny_figures / "11_accuracy_vs_sparsity.png").stat().st_size > 0
    plotted = list(csv.DictReader((tiny_figures / "11_accuracy_vs_sparsity.csv").open()))
    assert [(r["model"], r["accuracy"]) for r in plotted] == [("softmax", row["accuracy"])]

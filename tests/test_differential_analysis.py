"""Notebook 12's comparison of differential attention with softmax
(partnb.analysis.differential): the signed-weight counts on a hand-written map, the measures
of real differential models with known properties, which files are its variants, and the
verdict on rows with a known answer."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from partnb.analysis import differential as di
from partnb.analysis import variants as va
from partnb.analysis.stream import Batch
from partnb.params import load_params

from conftest import PARAMS, mixed_jets, sharp_small_model, variant_params_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def _record(P, padding, lam=None):
    rec = {"P": torch.tensor(P, dtype=torch.float32), "padding_mask": torch.tensor(padding)}
    if lam is not None:
        rec["lambda"] = torch.tensor(lam)
    return rec


def test_signed_weights_on_a_hand_written_map():
    """Two jets, one head, P = 3; jet 0 has a padded third particle whose entries (large, and
    negative) must not count; jet 1 has three real particles."""
    P = [[[[0.905, -0.105, 5.0],
           [0.305, 0.395, -7.0],
           [0.0, 0.0, 0.0]]],
         [[[0.505, 0.245, 0.005],
           [-0.195, 0.505, 0.495],
           [0.855, -0.055, 0.0]]]]
    padding = [[False, False, True], [False, False, False]]
    sw = di.SignedWeights(1, groups=2)
    batch = Batch(index=np.array([0, 1]), label=np.array([0, 1]), n=np.array([2, 3]), inputs=None)
    sw.update(0, _record(P, padding, lam=0.2), batch)
    sw.update("cls0", _record(P, padding), batch)  # class blocks are not counted
    (row, total) = sw.block_rows("m")
    assert row["layer"] == 0 and total["layer"] == "all"
    assert row["entries"] == 4 + 9 and row["rows"] == 2 + 3
    assert row["frac_negative"] == pytest.approx(3 / 13)
    assert row["negative_mass_per_row"] == pytest.approx((-0.105 - 0.195 - 0.055) / 5)
    row_sums = [0.8, 0.7, 0.755, 0.805, 0.8]
    assert row["mean_row_sum"] == pytest.approx(sum(row_sums) / 5)
    assert row["frac_rows_max_ge_0.8"] == pytest.approx(2 / 5)  # 0.905 and 0.855
    assert row["lambda"] == pytest.approx(0.2) and total["lambda"] == pytest.approx(0.2)
    hist = sw.histogram_rows("m")
    assert len(hist) == len(di.WEIGHT_EDGES) - 1 == 200
    assert sum(h["entries"] for h in hist) == 13
    assert sum(h["fraction"] for h in hist) == pytest.approx(1.0)
    by_bin = {round(h["lo"], 2): h["entries"] for h in hist if h["entries"]}
    assert by_bin == {-0.2: 1, -0.11: 1, -0.06: 1, 0.0: 2, 0.24: 1, 0.3: 1, 0.39: 1, 0.49: 1,
                      0.5: 2, 0.85: 1, 0.9: 1}


def test_signed_weights_errors_need_two_groups():
    sw = di.SignedWeights(1, groups=3)
    batch = Batch(index=np.arange(3), label=np.zeros(3, int), n=np.array([2, 2, 2]), inputs=None)
    P = np.array([[[[0.7, 0.3], [0.6, 0.4]]]] * 3, np.float32)
    P[1, 0, 0] = [1.1, -0.1]
    sw.update(0, _record(P, [[False, False]] * 3), batch)
    row = sw.block_rows()[0]
    assert row["frac_negative"] == pytest.approx(1 / 12)
    assert row["frac_negative_err"] > 0 and math.isnan(row["lambda"])


@pytest.fixture(scope="module")
def jets():
    j = mixed_jets(60, p=24, seed=5)
    return dataclasses.replace(j, label=j.label % 2)


@pytest.mark.parametrize("attention", ["softmax", "differential", "differential_u"])
def test_differential_row(jets, attention):
    model = sharp_small_model(attention)
    row, signed = di.differential_row(attention, model, jets, dataset="toplandscape",
                                      classes=["a", "b"], batch_size=20)
    assert row["n_weights"] == sum(p.numel() for p in model.parameters())
    assert row["attention"] == attention
    assert row["zero_a_drop"] == pytest.approx(row["accuracy"] - row["accuracy_zero_a"])
    blocks = signed.block_rows(attention)
    assert len(blocks) == len(model.blocks) + 1
    for b in blocks[:-1]:
        lam = 0.0 if attention == "softmax" else b["lambda"]
        assert 0 < lam < 1 or attention == "softmax"
        assert b["mean_row_sum"] == pytest.approx(1 - lam, abs=1e-5)  # rows sum to 1 − λ
    if attention == "softmax":
        assert row["frac_negative"] == 0 and math.isnan(row["lambda_mean"])
    elif attention == "differential":  # two sharp query-key maps: some keys come out negative
        assert row["frac_negative"] > 0 and row["negative_mass_per_row"] < 0
    else:  # maps from the small random U alone are both near uniform: P ≈ (1 − λ)/n > 0
        assert row["frac_negative"] >= 0 and row["negative_mass_per_row"] <= 0
    if attention != "softmax":
        assert row["lambda_mean"] == pytest.approx(np.mean([b["lambda"] for b in blocks[:-1]]))
    if attention == "differential_u":  # no query-key term: A := 0 changes nothing
        assert row["accuracy_zero_a"] == row["accuracy"]


def test_weight_counts_of_the_committed_variants():
    """The equal-weight variant file is within 1 % of the softmax model's weight count, and the
    default-size differential model has the extra 2C² + 2C weights per particle block (plus λ
    vectors and the pair embedding's H more output channels)."""
    from partnb.model.factory import model_from_params

    base = load_params(PARAMS / "toplandscape.yaml", check_files=False)
    chosen, skipped = di.differential_variants(base)
    counts = {name: di.n_weights(model_from_params(p)) for name, p in chosen}
    soft = counts.pop("softmax")
    equal = [n for n in counts if "weights" in n]
    assert equal and all(abs(counts[n] / soft - 1) < 0.01 for n in equal)
    C, L = base.model.embed_dims[-1], base.model.num_layers
    assert counts["differential"] - soft >= L * (2 * C * C + 2 * C)


def test_which_files_are_differential_variants(tmp_path):
    base = load_params(PARAMS / "toplandscape.yaml", check_files=False)
    files = [variant_params_file(tmp_path, "a", {"model.attention": "differential"}),
             variant_params_file(tmp_path, "b", {"model.attention": "differential", "model.embed_dims": [16, 32, 64]}),
             variant_params_file(tmp_path, "c", {"model.attention": "differential", "train.lr": 0.002}),
             variant_params_file(tmp_path, "d", {"model.attention": "sparsemax"}),
             variant_params_file(tmp_path, "e", {"model.attention": "differential_u"}),
             variant_params_file(tmp_path, "f", {"model.embed_dims": [32, 64, 64]})]
    chosen, skipped = va.compare_variants(base, files, attentions=di.DIFFERENTIAL,
                                          allow=di.SIZE_KEYS, weights_in_name=True)
    assert [n for n, _ in chosen] == ["softmax", "differential", "differential, 344k weights",
                                      "differential_u"]
    reasons = {s["file"].rsplit("_", 1)[1]: s["reason"] for s in skipped}
    assert reasons["c.yaml"].startswith("train.lr = 0.002")
    assert reasons["d.yaml"] == "sparsemax attention: compared in notebook 11"
    assert reasons["f.yaml"] == "softmax attention: compared in notebook 11"
    # without allow, a size change is a difference that is named
    _, skipped11 = va.compare_variants(base, files[:2])
    assert skipped11[0]["reason"].startswith("model.embed_dims = [16, 32, 64]")


def _row(name, acc, binary, drop, *, n=2000, weights=341518, neg=0.0, lam=math.nan):
    err = math.sqrt(acc * (1 - acc) / n)
    acc0 = acc - drop
    return {"model": name, "n_weights": weights, "accuracy": acc, "accuracy_err": err,
            "accuracy_zero_u": acc0, "accuracy_zero_u_err": math.sqrt(acc0 * (1 - acc0) / n),
            "zero_u_drop": drop, "frac_rows_max_ge_0.8": binary,
            "frac_rows_max_ge_0.8_err": 0.001, "median_row_max": 0.1 + binary,
            "frac_negative": neg, "lambda_mean": lam}


def test_verdict_on_known_rows():
    v = di.differential_verdict([_row("softmax", 0.93, 0.003, 0.09),
                                 _row("differential", 0.935, 0.05, 0.01, weights=375142, neg=0.2, lam=0.3),
                                 _row("differential, 344k weights", 0.85, 0.003, 0.2, weights=343782)])
    d, e = v["variants"]["differential"], v["variants"]["differential, 344k weights"]
    assert d["same_accuracy"] and d["sparser"] and d["needs_u_less"] and not d["needs_u_more"]
    assert d["weights_ratio"] == pytest.approx(375142 / 341518)
    assert not e["same_accuracy"] and e["accuracy"] == "lower" and not e["sparser"]
    assert e["needs_u_more"]
    assert v["any_sparser"] and v["any_needs_u_less"] and v["n_variants"] == 2
    assert "it needs U less" in v["sentence"] and "it needs U more" in v["sentence"]
    assert "375,142 weights" in v["sentence"]
    only = di.differential_verdict([_row("softmax", 0.9, 0.0, 0.1)])
    assert only["n_variants"] == 0 and "no differential variant" in only["sentence"]
    assert di.differential_verdict([])["n_variants"] == 0


@pytest.mark.slow  # the session's papermill run of every notebook on params/tiny.yaml
def test_12_tables_of_the_tiny_run(tiny_figures):
    """The tiny params have no variant files: the tiny softmax model alone, every histogram
    bin written, and a verdict that says there is nothing to compare."""
    import csv
    import json

    rows = list(csv.DictReader((tiny_figures / "12_differential.csv").open()))
    assert [r["model"] for r in rows] == ["softmax"]
    assert float(rows[0]["frac_negative"]) == 0 and int(rows[0]["n_weights"]) > 0
    hist = list(csv.DictReader((tiny_figures / "12_signed_weights.csv").open()))
    assert len(hist) == 200 and sum(int(h["entries"]) for h in hist[:100]) == 0
    blocks = list(csv.DictReader((tiny_figures / "12_blocks.csv").open()))
    assert [b["layer"] for b in blocks][-1] == "all"
    verdict = json.loads((tiny_figures / "12_verdict.json").read_text())
    assert verdict["n_variants"] == 0 and "no differential variant" in verdict["sentence"]
    for stem in ("12_signed_weights", "12_ablation"):
        assert (tiny_figures / f"{stem}.png").stat().st_size > 0

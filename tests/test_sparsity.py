"""Attention-sparsity accumulators (docs/analyses.md#attention-distribution, docs/analyses.md#attention-heat-maps) against brute force on small random inputs,
and the sanity of notebook 03's tables on the tiny run."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from partnb.analysis.sparsity import (
    ABOVE_COLUMN,
    BINARY_ROW_THRESHOLD,
    LINEAR_EDGES,
    LOG_EDGES,
    ROW_THRESHOLDS,
    ROWS_MAX_COLUMNS,
    AttentionSparsity,
    attention_heatmaps,
    bin_index,
    heatmap_jet,
    jackknife_ratio,
    median_from_histogram,
    rows_max_column,
    untrimmed,
)
from partnb.analysis.stream import Batch, stream_attention
from partnb.model.part import AttentionProbe, ParticleTransformer

CLASSES = ("a", "b", "c")


def test_bin_index_is_numpys_histogram_convention():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.random(1000, dtype=np.float32),
                             np.array([0.0, 1.0, 0.95, 0.05, 0.5], np.float32), LINEAR_EDGES])
    for edges in (LINEAR_EDGES, LOG_EDGES):
        idx = bin_index(torch.as_tensor(values), edges).numpy()
        counts = np.bincount(idx, minlength=len(edges) - 1)
        assert counts.tolist() == np.histogram(values, edges)[0].tolist()
    # docs/pitfalls.md#pitfall-15-numpy-histogram-edges: exactly 1 lands in the last bin, 0.95 too, exact 0 in the first
    assert bin_index(torch.tensor([1.0, 0.95, 0.0]), LINEAR_EDGES).tolist() == [19, 19, 0]


def test_thresholds_and_column_names_are_defined_once():
    # the committed tables' column names, spelled from the one definition of the thresholds
    from partnb.analysis import comparison, interaction, scaling

    assert ROW_THRESHOLDS == (0.8, 0.95) and BINARY_ROW_THRESHOLD == 0.8
    assert ROWS_MAX_COLUMNS == ("frac_rows_max_ge_0.8", "frac_rows_max_ge_0.95")
    assert rows_max_column() == ROWS_MAX_COLUMNS[0]
    assert rows_max_column(ROW_THRESHOLDS[1], prefix="") == "rows_max_ge_0.95"
    assert rows_max_column(prefix="uniform_frac_") == "uniform_frac_rows_max_ge_0.8"
    assert ABOVE_COLUMN == "frac_above_0.99"
    assert interaction.NON_BINARY_THRESHOLD is BINARY_ROW_THRESHOLD
    assert scaling.EXTRAPOLATED[0] == "rows_max_ge_0.8"
    assert comparison.BINARY_COLUMNS[:3] == (*ROWS_MAX_COLUMNS, ABOVE_COLUMN)


def test_jackknife_ratio_by_hand():
    num, den = np.array([1.0, 2.0, 3.0]), np.array([10.0, 10.0, 10.0])
    ratio, err = jackknife_ratio(num, den)
    loo = np.array([5 / 20, 4 / 20, 3 / 20])
    assert ratio == pytest.approx(0.2)
    assert err == pytest.approx(np.sqrt(2 / 3 * np.sum((loo - loo.mean()) ** 2)))
    assert np.isnan(jackknife_ratio(np.array([1.0]), np.array([2.0]))[1])


def test_median_from_histogram():
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    assert median_from_histogram(np.array([0, 4, 0]), edges) == pytest.approx(1.5)
    assert median_from_histogram(np.array([1, 1, 2]), edges) == pytest.approx(2.0)
    assert np.isnan(median_from_histogram(np.zeros(3), edges))


def _random_batch(rng, B=6, P=7, start=0):
    """A Batch of B jets with random n (one jet with n = 1, one with n = P) and its padding."""
    n = rng.integers(1, P + 1, size=B)
    n[0] = 1  # a one-particle jet: uniform reference above 0.99
    n[1] = P
    padding = torch.as_tensor(np.arange(P)[None, :] >= n[:, None])
    label = rng.integers(0, len(CLASSES), size=B)
    mask = (~padding).numpy()[:, None, :].astype(np.float32)
    return Batch(np.arange(start, start + B), label, n, SimpleNamespace(mask=mask)), padding


def test_attention_sparsity_equals_brute_force():
    rng = np.random.default_rng(3)
    L, H = 2, 2
    acc = AttentionSparsity(L, H, CLASSES, groups=3)
    keep_correct, keep_as, rowmax_correct, rowmax_as, jets = [], [], [], [], []
    for b in range(3):
        batch, padding = _random_batch(rng, start=6 * b)
        jets.append(batch)
        for layer in range(L):
            real = ~padding
            w, w_as = (torch.as_tensor(rng.normal(scale=3.0, size=(6, H, 7, 7)), dtype=torch.float32)
                       .masked_fill(padding[:, None, None, :], float("-inf")).softmax(-1)
                       for _ in range(2))
            acc.update(layer, {"P": w, "padding_mask": padding, "n": real.sum(-1)}, batch)
            acc.update(layer, {"P_as_coded": w_as}, batch)
            for j in range(len(batch.n)):
                n = batch.n[j]
                keep_correct.append(w[j, :, :n, :n].numpy().ravel())
                rowmax_correct.append(w[j, :, :n, :n].numpy().max(-1).ravel())
                keep_as.append(w_as[j].numpy().ravel())
                rowmax_as.append(w_as[j].numpy().max(-1).ravel())
    for variant, values, rowmax in (("correct", keep_correct, rowmax_correct),
                                    ("as_coded", keep_as, rowmax_as)):
        values, rowmax = np.concatenate(values), np.concatenate(rowmax)
        assert acc.linear[variant].sum(axis=(0, 1, 2)).tolist() == \
            np.histogram(values, LINEAR_EDGES)[0].tolist()
        assert acc.log[variant].sum(axis=(0, 1, 2)).tolist() == \
            np.histogram(values, LOG_EDGES)[0].tolist()
        row = acc.summary_row(variant)
        assert row["n_entries"] == len(values) and row["n_rows"] == len(rowmax)
        assert row["frac_above_0.99"] == pytest.approx(np.mean(values > 0.99))
        assert row["frac_exact_zero"] == pytest.approx(np.mean(values == 0))
        assert row["frac_rows_max_ge_0.8"] == pytest.approx(np.mean(rowmax >= 0.8))
        assert row["frac_rows_max_ge_0.95"] == pytest.approx(np.mean(rowmax >= 0.95))
        assert row["median_row_max"] == pytest.approx(np.median(rowmax), abs=2e-3)
        assert row["max_row_sum_error"] < 1e-5
    n_all = np.concatenate([b.n for b in jets])
    correct = acc.summary_row("correct")
    # one-particle jets: their single weight is 1 (> 0.99); uniform reference = those jets
    assert correct["uniform_frac_above_0.99"] == pytest.approx(np.sum(n_all == 1) / np.sum(n_all ** 2))
    assert correct["uniform_median_row_max"] == pytest.approx(np.median(np.repeat(1 / n_all, n_all)),
                                                              abs=2e-3)
    assert correct["frac_real_pairs"] == pytest.approx(1.0)
    assert acc.summary_row("as_coded")["frac_real_pairs"] == pytest.approx(
        np.sum(n_all ** 2) / (len(n_all) * 7 ** 2))
    # per class: rows of class "a" only
    labels = np.concatenate([b.label for b in jets])
    per_class = {r["class"]: r for r in acc.summary_rows("m", per_class=True)
                 if r["variant"] == "correct"}
    assert per_class["a"]["n_jets"] == np.sum(labels == 0)
    assert per_class["a"]["n_rows"] == L * H * np.sum(n_all[labels == 0])
    # histogram table: probabilities sum to 1 per selection, batch-average present
    hist = acc.histogram_rows("m", classes=["a"])
    for key in {(r["variant"], r["layer"], r["class"], r["binning"]) for r in hist}:
        prob = [r["probability"] for r in hist if (r["variant"], r["layer"], r["class"],
                                                   r["binning"]) == key]
        assert sum(prob) == pytest.approx(1.0)


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return ParticleTransformer(7, 3, embed_dims=(8, 8), pair_embed_dims=(4, 4), num_heads=2,
                               num_layers=2, num_cls_layers=1).eval()


def _tiny_inputs(rng, B=5, P=9):
    from partnb.data.features import JetInputs

    n = rng.integers(2, P + 1, size=B)
    mask = (np.arange(P)[None, :] < n[:, None]).astype(np.float32)[:, None, :]
    features = rng.normal(size=(B, 7, P)).astype(np.float32) * mask
    pt = rng.uniform(1, 50, size=(B, P))
    eta, phi = rng.normal(scale=0.3, size=(B, P)), rng.normal(scale=0.3, size=(B, P))
    vectors = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)],
                       axis=1).astype(np.float32) * mask
    return JetInputs(features, vectors, mask, np.arange(B) % 3, n.astype(np.int64), "kin",
                     [f"f{i}" for i in range(7)])


def test_streamed_model_pass_matches_stored_probe():
    """Through a real (random) model: the streamed correct variant equals W of a stored probe
    on the trimmed pass, cropped to n — trimming does not change the real entries."""
    rng = np.random.default_rng(5)
    model, inputs = _tiny_model(), _tiny_inputs(rng)
    acc = AttentionSparsity(2, 2, CLASSES, groups=2)
    with untrimmed(model):
        stream_attention(model, inputs, [acc], batch_size=3, capture=("P",), as_coded=True)
    assert model.trimmer.enabled
    model.trimmer.calls = 99  # past the warm-up: trimmed to max n
    values = []
    for start in (0, 3):
        idx = np.arange(start, min(start + 3, len(inputs)))
        probe = AttentionProbe(capture=("P",))
        with torch.no_grad():
            model(torch.as_tensor(inputs.features[idx]), torch.as_tensor(inputs.vectors[idx]),
                  torch.as_tensor(inputs.mask[idx]), probe=probe)
        for layer in range(2):
            for j, jet in enumerate(idx):
                n = inputs.n_particles[jet]
                values.append(probe.records[layer]["P"][j, :, :n, :n].numpy().ravel())
    values = np.concatenate(values)
    assert acc.linear["correct"].sum(axis=(0, 1, 2)).tolist() == \
        np.histogram(values, LINEAR_EDGES)[0].tolist()
    assert acc.summary_row("as_coded")["n_entries"] == len(inputs) * 2 * 2 * 9 ** 2


def test_heatmaps_are_row_stochastic_and_as_coded_differs():
    rng = np.random.default_rng(6)
    model, inputs = _tiny_model(1), _tiny_inputs(rng)
    jet = heatmap_jet(inputs, 1)
    assert inputs.label[jet] == 1
    maps = attention_heatmaps(model, inputs, jet)
    n = inputs.n_particles[jet]
    for variant in ("correct", "as_coded"):
        assert maps[variant].shape == (2, n, n)
        np.testing.assert_allclose(maps[variant].sum(-1), 1.0, atol=1e-5)
    assert not np.allclose(maps["correct"], maps["as_coded"])


def _attention_summary(figs):
    return list(csv.DictReader(open(figs / "03_attention_summary.csv")))


def test_03_summary_has_both_models_both_variants_and_every_layer(tiny_figures):
    summary = _attention_summary(tiny_figures)
    assert {(r["model"], r["variant"]) for r in summary} == {
        (m, v) for m in ("trained", "random_init") for v in ("correct", "as_coded")}
    assert {r["layer"] for r in summary} == {"all", "0", "1"}


def test_03_summary_rows_are_of_100_jets(tiny_figures):
    for r in _attention_summary(tiny_figures):
        assert int(r["n_jets"]) == 100


def test_03_summary_fractions_are_fractions_and_095_within_08(tiny_figures):
    for r in _attention_summary(tiny_figures):
        for col in ("frac_above_0.99", "frac_rows_max_ge_0.8", "frac_rows_max_ge_0.95",
                    "median_row_max", "frac_real_pairs", "uniform_median_row_max"):
            assert 0 <= float(r[col]) <= 1, (col, r)
        assert float(r["frac_rows_max_ge_0.95"]) <= float(r["frac_rows_max_ge_0.8"])


def test_03_attention_rows_sum_to_one_over_real_keys(tiny_figures):
    for r in _attention_summary(tiny_figures):
        assert float(r["max_row_sum_error"]) < 1e-4  # rows sum to 1 over real keys


def test_03_summary_fraction_errors_are_finite(tiny_figures):
    for r in _attention_summary(tiny_figures):
        assert np.isfinite(float(r["frac_rows_max_ge_0.8_err"]))


def test_03_row_maximum_is_never_below_the_uniform_reference(tiny_figures):
    for r in _attention_summary(tiny_figures):
        # weights ≥ 1/n on the row maximum: never below the uniform reference
        assert float(r["median_row_max"]) >= float(r["uniform_median_row_max"]) - 1e-3


def test_03_as_coded_variant_includes_padding_pairs(tiny_figures):
    as_coded = [r for r in _attention_summary(tiny_figures) if r["variant"] == "as_coded"]
    assert all(float(r["frac_real_pairs"]) < 1 for r in as_coded)  # padding included


def test_03_histograms_are_normalised_with_their_bin_counts(tiny_figures):
    hist = list(csv.DictReader(open(tiny_figures / "03_attention_histograms.csv")))
    groups = {}
    for r in hist:
        p = float(r["probability"])
        assert 0 <= p <= 1
        groups.setdefault((r["model"], r["variant"], r["layer"], r["class"], r["binning"]), []).append(p)
    assert {k[4] for k in groups} == {"linear20", "log"}
    for key, probs in groups.items():
        assert sum(probs) == pytest.approx(1.0, abs=1e-4), key
        assert len(probs) == (20 if key[4] == "linear20" else len(LOG_EDGES) - 1)


def test_03_per_head_table_has_a_row_per_model_variant_layer_and_head(tiny_figures):
    per_head = list(csv.DictReader(open(tiny_figures / "03_attention_per_head.csv")))
    assert len(per_head) == 2 * 2 * 2 * 2  # models × variants × layers × heads


def test_03_per_class_table_has_top_and_qcd(tiny_figures):
    per_class = list(csv.DictReader(open(tiny_figures / "03_attention_per_class.csv")))
    assert {"Tbqq", "QCD"} <= {r["class"] for r in per_class}


@pytest.mark.parametrize("stem", ["03_heatmap_trained", "03_heatmap_random_init"])
def test_03_heatmap_rows_sum_to_one_in_both_variants(tiny_figures, stem):
    cells = list(csv.DictReader(open(tiny_figures / f"{stem}.csv")))
    assert {r["variant"] for r in cells} == {"correct", "as_coded"}
    sums = {}
    for r in cells:
        sums[(r["variant"], r["query"])] = sums.get((r["variant"], r["query"]), 0) + float(r["weight"])
    assert all(abs(s - 1) < 1e-4 for s in sums.values())

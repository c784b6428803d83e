"""|A|/|U| accumulators (docs/analyses.md#magnitude-ratio-of-a-and-u) against brute force — the paired correct ratio and the
papers' unpaired as-coded recipe written out literally — and notebook 04's tables on the
tiny run."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from partnb.analysis.magnitude import (
    DECADE_EDGES,
    LOG10_EDGES,
    MagnitudeRatio,
    decade_labels,
    ratio_peak_statement,
)
from partnb.analysis.sparsity import untrimmed
from partnb.analysis.stream import Batch, stream_attention
from partnb.model.part import ParticleTransformer

L, H, P = 3, 2, 6


def _batches(rng, n_batches=3, B=4):
    """Random A, A', U records of L blocks for a few batches (U has exact zeros)."""
    out = []
    for b in range(n_batches):
        n = rng.integers(1, P + 1, size=B)
        n[0] = P
        padding = torch.as_tensor(np.arange(P)[None, :] >= n[:, None])
        u = torch.as_tensor(rng.lognormal(sigma=2.0, size=(B, H, P, P)) *
                            rng.choice([-1, 1], size=(B, H, P, P)), dtype=torch.float32)
        u[:, :, 0, 1] = 0.0  # U = 0 exactly: excluded from the ratio and counted
        a = [torch.as_tensor(rng.normal(scale=3.0, size=(B, H, P, P)), dtype=torch.float32)
             for _ in range(L)]
        a_prime = [torch.as_tensor(rng.normal(size=(B, H, P, P)), dtype=torch.float32)
                   for _ in range(L)]
        mask = (~padding).numpy()[:, None, :].astype(np.float32)
        batch = Batch(np.arange(b * B, (b + 1) * B), np.zeros(B, np.int64), n,
                      SimpleNamespace(mask=mask))
        out.append((batch, padding, u, a, a_prime))
    return out


def _feed(acc, batches):
    for batch, padding, u, a, a_prime in batches:
        for layer in range(L):
            acc.update(layer, {"A": a[layer], "U": u, "padding_mask": padding,
                               "n": (~padding).sum(-1)}, batch)
            acc.update(layer, {"A_as_coded": a_prime[layer]}, batch)


def test_correct_ratio_equals_brute_force():
    rng = np.random.default_rng(11)
    batches = _batches(rng)
    acc = MagnitudeRatio(L, groups=4)
    _feed(acc, batches)
    ratios, abs_u, n_zero, per_layer = [], [], 0, {k: [] for k in range(L)}
    for batch, _, u, a, _ in batches:
        for layer in range(L):
            for j, n in enumerate(batch.n):
                uu = u[j, :, :n, :n].numpy().ravel()
                aa = a[layer][j, :, :n, :n].numpy().ravel()
                keep = uu != 0
                n_zero += int((~keep).sum())
                r = np.abs(aa[keep]).astype(np.float64) / np.abs(uu[keep])
                ratios.append(r)
                per_layer[layer].append(r)
                abs_u.append(np.abs(uu))
    r = np.concatenate(ratios)
    rows = {(x["variant"], x["layer"]): x for x in acc.summary_rows("m")}
    row = rows[("correct", "all")]
    assert row["n_u_zero"] == n_zero > 0
    assert row["n_ratio"] == len(r) and row["n_pairs"] == len(r) + n_zero
    assert row["frac_ratio_lt_1"] == pytest.approx(np.mean(r < 1))
    assert row["frac_ratio_gt_1e4"] == pytest.approx(np.mean(r > 1e4))
    # median from 0.05-dex bins: within one bin of the exact median
    assert abs(np.log10(row["q50_ratio"]) - np.log10(np.median(r))) < 0.05
    assert abs(np.log10(row["q90_ratio"]) - np.log10(np.quantile(r, 0.9))) < 0.05
    assert abs(np.log10(row["median_abs_u"]) - np.log10(np.median(np.concatenate(abs_u)))) < 0.05
    assert np.isfinite(row["median_ratio_err"]) and row["frac_ratio_lt_1_err"] > 0
    hist = acc.ratio_histogram_rows("m")
    dec = [x["count"] for x in hist if x["variant"] == "correct" and x["layer"] == "all"
           and x["binning"] == "decade"]
    assert dec == np.histogram(r, DECADE_EDGES)[0].tolist()
    assert acc.ratio_log10["correct"].sum(axis=(0, 1)).tolist() == \
        np.histogram(np.log10(r), LOG10_EDGES)[0].tolist()
    dec1 = [x["count"] for x in hist if x["variant"] == "correct" and x["layer"] == "1"
            and x["binning"] == "decade"]
    assert dec1 == np.histogram(np.concatenate(per_layer[1]), DECADE_EDGES)[0].tolist()


def test_as_coded_ratio_is_the_papers_unpaired_recipe():
    """Per batch: stack the blocks, flatten, drop non-finite separately, cut to the shorter,
    keep |U| > 0, ratio — exactly the reference scripts' steps (docs/analyses.md#ratio-as-coded)."""
    rng = np.random.default_rng(12)
    batches = _batches(rng)
    acc = MagnitudeRatio(L, groups=4)
    _feed(acc, batches)
    ratios = []
    for _, padding, u, _, a_prime in batches:
        u_plus_m = u.masked_fill(padding[:, None, None, :], float("-inf"))
        a_stack = np.stack([x.numpy() for x in a_prime]).ravel()
        u_stack = np.stack([u_plus_m.numpy()] * L).ravel()
        a_stack, u_stack = a_stack[np.isfinite(a_stack)], u_stack[np.isfinite(u_stack)]
        m = min(len(a_stack), len(u_stack))
        a_stack, u_stack = a_stack[:m], u_stack[:m]
        keep = np.abs(u_stack) > 0
        ratios.append(np.abs(a_stack[keep]).astype(np.float64) / np.abs(u_stack[keep]))
    r = np.concatenate(ratios)
    row = {x["layer"]: x for x in acc.summary_rows("m") if x["variant"] == "as_coded"}["all"]
    assert row["n_ratio"] == len(r)
    assert row["frac_ratio_lt_1"] == pytest.approx(np.mean(r < 1))
    assert row["n_nonfinite_dropped"] == sum(L * H * P * int(p.sum()) for _, p, *_ in batches)
    dec = [x["count"] for x in acc.ratio_histogram_rows("m") if x["variant"] == "as_coded"
           and x["layer"] == "all" and x["binning"] == "decade"]
    assert dec == np.histogram(r, DECADE_EDGES)[0].tolist()


def test_decade_labels_and_peak_statement():
    assert decade_labels()[:3] == ["0–1", "1–10", "10–10^2"]
    assert decade_labels()[-1] == "10^6–inf"
    rows = [{"model": "trained", "variant": "correct", "layer": "all", "binning": "decade",
             "bin": lab, "bin_lo": lo, "probability": p}
            for lab, lo, p in zip(decade_labels(), DECADE_EDGES[:-1],
                                  [0.1, 0.2, 0.0, 0.0, 0.0, 0.7, 0.0, 0.0], strict=True)]
    text = ratio_peak_statement(rows)
    assert "10^4–10^5 (70.0%)" in text and text.endswith("peak reproduces.")
    rows[0]["probability"], rows[5]["probability"] = 0.7, 0.1
    assert ratio_peak_statement(rows).endswith("does not reproduce.")


def test_model_pass_counts_every_real_pair():
    torch.manual_seed(2)
    model = ParticleTransformer(7, 3, embed_dims=(8, 8), pair_embed_dims=(4, 4), num_heads=2,
                                num_layers=2, num_cls_layers=1).eval()
    rng = np.random.default_rng(3)
    from partnb.data.features import JetInputs

    B, Pm = 5, 8
    n = rng.integers(2, Pm + 1, size=B)
    mask = (np.arange(Pm)[None, :] < n[:, None]).astype(np.float32)[:, None, :]
    pt, eta, phi = rng.uniform(1, 50, (B, Pm)), rng.normal(0, .3, (B, Pm)), rng.normal(0, .3, (B, Pm))
    vectors = (np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)],
                        axis=1) * mask).astype(np.float32)
    inputs = JetInputs((rng.normal(size=(B, 7, Pm)) * mask).astype(np.float32), vectors, mask,
                       np.zeros(B, np.int64), n.astype(np.int64), "kin", [f"f{i}" for i in range(7)])
    acc = MagnitudeRatio(2, groups=2)
    with untrimmed(model):
        stream_attention(model, inputs, [acc], batch_size=2, capture=("A", "U"), as_coded=True)
    rows = {(x["variant"], x["layer"]): x for x in acc.summary_rows("m")}
    assert rows[("correct", "all")]["n_pairs"] == 2 * 2 * int(np.sum(n ** 2))
    # as coded: L·H·P·Σn entries per batch survive the cut (U + M finite on real keys)
    assert rows[("as_coded", "all")]["n_pairs"] == 2 * 2 * Pm * int(np.sum(n))
    assert acc.n_jets == B


def _ratio_summary(figs):
    return list(csv.DictReader(open(figs / "04_ratio_summary.csv")))


def test_04_summary_has_both_models_both_variants_and_every_layer(tiny_figures):
    summary = _ratio_summary(tiny_figures)
    assert {(r["model"], r["variant"]) for r in summary} == {
        (m, v) for m in ("trained", "random_init") for v in ("correct", "as_coded")}
    assert {r["layer"] for r in summary} == {"all", "0", "1"}


def test_04_summary_fractions_are_fractions(tiny_figures):
    for r in _ratio_summary(tiny_figures):
        for col in ("frac_u_zero", "frac_ratio_lt_1", "frac_ratio_gt_1e4"):
            assert 0 <= float(r[col]) <= 1, (col, r)


def test_04_summary_ratio_quantiles_are_finite_and_ordered(tiny_figures):
    for r in _ratio_summary(tiny_figures):
        q = [float(r[c]) for c in ("q10_ratio", "q50_ratio", "q90_ratio")]
        assert all(np.isfinite(q)) and q[0] <= q[1] <= q[2]


def test_04_summary_median_magnitudes_are_positive(tiny_figures):
    for r in _ratio_summary(tiny_figures):
        assert float(r["median_abs_a"]) > 0 and float(r["median_abs_u"]) > 0


def test_04_summary_every_pair_is_a_ratio_or_a_u_zero(tiny_figures):
    for r in _ratio_summary(tiny_figures):
        assert int(r["n_ratio"]) + int(r["n_u_zero"]) == int(r["n_pairs"])


def test_04_summary_fraction_errors_are_finite(tiny_figures):
    for r in _ratio_summary(tiny_figures):
        assert np.isfinite(float(r["frac_ratio_lt_1_err"]))


def test_04_correct_ratio_over_all_layers_is_of_100_jets(tiny_figures):
    summary = _ratio_summary(tiny_figures)
    correct = [r for r in summary if r["variant"] == "correct" and r["layer"] == "all"]
    assert all(int(r["n_jets"]) == 100 for r in correct)


def test_04_histograms_are_normalised_in_both_binnings_with_8_decades(tiny_figures):
    hist = list(csv.DictReader(open(tiny_figures / "04_ratio_histogram.csv")))
    groups = {}
    for r in hist:
        assert 0 <= float(r["probability"]) <= 1
        groups.setdefault((r["model"], r["variant"], r["layer"], r["binning"]), []).append(
            float(r["probability"]))
    assert {k[3] for k in groups} == {"decade", "log10_ratio"}
    for key, probs in groups.items():
        assert sum(probs) == pytest.approx(1.0, abs=1e-4), key
        if key[3] == "decade":
            assert len(probs) == 8


def test_04_magnitudes_table_has_a_and_u_probabilities(tiny_figures):
    mags = list(csv.DictReader(open(tiny_figures / "04_magnitudes.csv")))
    assert {r["quantity"] for r in mags} == {"abs_A", "abs_U"}
    assert all(0 <= float(r["probability"]) <= 1 for r in mags)

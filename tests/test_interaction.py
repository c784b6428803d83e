"""Tests of partnb.analysis.interaction, .ablation and .u_structure
(docs/analyses.md#zero-u-ablation, docs/analyses.md#interaction-dependent-and-non-binary-computation)
against brute force on a tiny ParT, and of the tables notebook 06 writes on the tiny run."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from partnb.analysis import ablation, u_structure
from partnb.analysis import interaction as ia
from partnb.analysis.stream import stream_attention
from partnb.data.features import JetInputs
from partnb.model.part import (
    AttentionProbe,
    Intervention,
    ParticleTransformer,
    zero_pair_embed_params,
)

N_FEATURES = 7


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_model(num_classes: int = 3, seed: int = 0) -> ParticleTransformer:
    """Tiny ParT with perturbed weights and BatchNorm running statistics away from defaults,
    the pair embedding scaled up so that U matters, and sharp attention (large q, k)."""
    torch.manual_seed(seed)
    model = ParticleTransformer(N_FEATURES, num_classes, embed_dims=(16, 32, 16),
                                pair_embed_dims=(8, 8), num_heads=2, num_layers=2,
                                num_cls_layers=1, trim=False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith("running_var"):
                value.copy_(0.5 + 2 * torch.rand(value.shape, generator=g))
            elif name.endswith("running_mean"):
                value.copy_(torch.randn(value.shape, generator=g))
            elif name.startswith("pair_embed") and value.ndim == 3:
                value.mul_(6.0)
            elif name.endswith("in_proj_weight"):
                value.mul_(4.0)
    return model.eval()


def random_inputs(counts, length: int = 9, num_classes: int = 3, seed: int = 1) -> JetInputs:
    """Zero-padded jets with ``counts`` real particles (collimated 4-vectors, random features)."""
    rng = np.random.default_rng(seed)
    counts = np.asarray(counts)
    mask = (np.arange(length)[None] < counts[:, None]).astype(np.float32)[:, None]
    features = rng.normal(size=(len(counts), N_FEATURES, length)).astype(np.float32) * mask
    p3 = rng.normal(size=(len(counts), 3, length)) * 10
    p3[:, 2] += 40
    energy = np.sqrt((p3 ** 2).sum(1, keepdims=True) + rng.uniform(0, 0.5, (len(counts), 1, length)))
    vectors = (np.concatenate([p3, energy], 1) * mask).astype(np.float32)
    label = np.arange(len(counts)) % num_classes
    return JetInputs(features, vectors, mask, label, counts.astype(np.int64), "kin")


def probe_records(model, inputs, dtype=torch.float32):
    """Per jet, the stored probe records of all particle blocks (brute-force reference)."""
    out = []
    for b in range(len(inputs)):
        probe = AttentionProbe(capture=("A", "U", "P"))
        model(torch.as_tensor(inputs.features[b:b + 1]),
              torch.as_tensor(inputs.vectors[b:b + 1]).to(dtype),
              torch.as_tensor(inputs.mask[b:b + 1]), probe=probe)
        out.append({k: {n: v[0].double().numpy() for n, v in r.items() if n in ("A", "U", "P")}
                    for k, r in probe.records.items() if isinstance(k, int)})
    return out


def brute_force_indicators(records, counts):
    """Lists of (jet, D, N) per computation and per-token counts, by explicit loops."""
    comps, tokens = [], []
    for b, (rec, n) in enumerate(zip(records, counts, strict=True)):
        x, y = np.zeros(n), np.zeros(n)
        for r in rec.values():
            for h in range(r["A"].shape[0]):
                for i in range(n):
                    a, u, w = r["A"][h, i, :n], r["U"][h, i, :n], r["P"][h, i, :n]
                    d = int(np.argmax(a + u) != np.argmax(a))
                    nb = int(w.max() < 0.8)
                    comps.append((b, d, nb))
                    x[i] += d
                    y[i] += nb
        tokens += [(b, xi, yi) for xi, yi in zip(x, y, strict=True)]
    return np.array(comps, float), np.array(tokens, float)


def metrics_from_lists(comps, tokens):
    d, n = comps[:, 1], comps[:, 2]
    x, y = tokens[:, 1], tokens[:, 2]
    return {"rate_D": d.mean(), "rate_N": n.mean(), "coverage_D": (x > 0).mean(),
            "coverage_N": (y > 0).mean(), "pcc_phi": np.corrcoef(d, n)[0, 1],
            "pcc_token_counts": np.corrcoef(x, y)[0, 1]}


def test_argmax_decisions_ties_padding_and_threshold():
    a = torch.tensor([[[[1.0, 1.0, 9.0], [1.0, 1.0, 9.0], [0.0, 0.0, 0.0]]]])
    u = torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0]]]])
    w = torch.tensor([[[[0.85, 0.15, 0.0], [0.5, 0.5, 0.0], [0.1, 0.1, 0.8]]]])
    padding = torch.tensor([[False, False, True]])
    dec = ia.argmax_decisions(a, u, w, padding)
    # row 0: tie in A and in A + U -> both lowest index 0 -> D = 0; padded key 2 (9.0) ignored
    # row 1: U moves the argmax from 0 (tie) to 1 -> D = 1; row 2 is padded -> nothing counts
    assert dec["argmax_a"][0, 0, :2].tolist() == [0, 0]
    assert dec["argmax_l"][0, 0, :2].tolist() == [0, 1]
    assert dec["D"][0, 0].tolist() == [False, True, False]
    assert dec["N"][0, 0].tolist() == [False, True, False]


@pytest.mark.parametrize("keep", [False, True])
def test_counter_decisions_equal_argmax_decisions_with_ties(keep):
    """The counter's argmax-free decisions against the reference :func:`argmax_decisions` on
    integer-valued A and U (ties everywhere), random padding and an all-padded jet."""
    g = torch.Generator().manual_seed(5)
    B, H, P = 12, 3, 7
    n = torch.randint(1, P + 1, (B,), generator=g)
    n[0], n[1] = P, 0
    padding = torch.arange(P)[None, :] >= n[:, None]
    a = torch.randint(-2, 3, (B, H, P, P), generator=g).float()
    u = torch.randint(-1, 2, (B, H, P, P), generator=g).float()
    logits = (a + u).masked_fill(padding[:, None, None, :], -math.inf)
    weights = logits.softmax(-1)
    ref = ia.argmax_decisions(a, u, weights, padding)
    assert 0 < int(ref["D"].sum()) < int(ref["real"].sum()) * H  # both outcomes occur
    counter = ia.InteractionCounter(keep_decisions=keep)
    for record in ({"A": a, "U": u, "P": weights, "padding_mask": padding},
                   {"A": a, "U": u, "L": logits, "P": weights, "padding_mask": padding}):
        got = counter._decisions(record)
        for name in ("D", "N", "real"):
            assert torch.equal(got[name], ref[name]), name
        assert ("argmax_l" in got) == keep
        if keep:
            real = ref["real"].expand_as(ref["D"])
            assert torch.equal(got["argmax_l"][real], ref["argmax_l"][real])


def test_interaction_counter_matches_brute_force():
    counts = np.array([5, 9, 1, 7, 3, 8, 6, 2, 9, 4, 5, 7])
    model, inputs = random_model(), random_inputs(counts)
    counter = ia.InteractionCounter()
    stream_attention(model, inputs, [counter], batch_size=5)
    got = counter.result()
    comps, tokens = brute_force_indicators(probe_records(model, inputs), counts)
    want = metrics_from_lists(comps, tokens)
    assert 0 < want["rate_D"] < 1 and 0 < want["rate_N"] < 1  # the test is not trivial
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name
    assert got["n_computations"] == len(comps) and got["n_tokens"] == counts.sum()
    # jackknife over jet groups (jet index modulo 10), by brute force for the D rate
    groups = np.arange(len(counts)) % 10
    loo = [comps[groups[comps[:, 0].astype(int)] != g, 1].mean() for g in range(10)]
    jack = math.sqrt(9 / 10 * np.sum((np.array(loo) - np.mean(loo)) ** 2))
    assert got["rate_D_err"] == pytest.approx(jack, rel=1e-9)


def test_float64_lockstep_matches_separate_passes():
    counts = np.array([6, 9, 4, 8, 7])
    model, inputs = random_model(seed=3), random_inputs(counts, seed=4)
    res = ia.interaction_metrics(model, inputs, batch_size=2)
    for dtype, name in ((torch.float32, "float32"), (torch.float64, "float64")):
        comps, tokens = brute_force_indicators(probe_records(model, inputs, dtype), counts)
        assert res[name]["rate_D"] == pytest.approx(comps[:, 1].mean(), abs=1e-12)
    # flips: argmax of A + U compared decision by decision between the two precisions
    r32, r64 = probe_records(model, inputs), probe_records(model, inputs, torch.float64)
    flips = total = 0
    for a, b, n in zip(r32, r64, counts, strict=True):
        for key in a:
            l32 = (a[key]["A"] + a[key]["U"])[:, :n, :n].argmax(-1)
            l64 = (b[key]["A"] + b[key]["U"])[:, :n, :n].argmax(-1)
            flips += int((l32 != l64).sum())
            total += l32.size
    assert res["flips"]["flip_argmax"] == pytest.approx(flips / total)
    rows = ia.interaction_rows([("trained", res)], {"source": "paper", "rate_D": 0.036})
    assert [r["pair_features"] for r in rows] == ["float32", "float64", "?"]


def test_u_structure_and_row_variation_match_brute_force():
    counts = np.array([5, 9, 1, 7, 3, 8])
    model, inputs = random_model(seed=5), random_inputs(counts, seed=6)
    us, rv = u_structure.UStructure(), u_structure.RowVariation()
    stream_attention(model, inputs, [us, rv], batch_size=4)
    records = probe_records(model, inputs)
    heads = records[0][0]["U"].shape[0]
    u_rows = {r["head"]: r for r in us.rows()}
    for h in range(heads):
        diag, off, ranks = [], [], []
        for rec, n in zip(records, counts, strict=True):
            u = rec[0]["U"][h, :n, :n]
            diag += list(np.diag(u))
            off += list(u[~np.eye(n, dtype=bool)])
            for i in range(n if n > 1 else 0):
                others = np.delete(u[i], i)
                ranks.append(((others < u[i, i]).sum() + 0.5 * (others == u[i, i]).sum()) / (n - 1))
        assert u_rows[h]["mean_diag"] == pytest.approx(np.mean(diag), rel=1e-6)
        assert u_rows[h]["mean_offdiag"] == pytest.approx(np.mean(off), rel=1e-6)
        assert u_rows[h]["self_rank_mean"] == pytest.approx(np.mean(ranks), abs=1e-12)
        assert abs(u_rows[h]["median_offdiag"] - np.median(off)) < 0.02  # histogram resolution
    dens = np.array([r["density_offdiag"] for r in us.distribution_rows()])
    assert np.sum(dens * np.diff(u_structure.U_EDGES)) == pytest.approx(1.0)
    for row in rv.rows():
        if row["head"] == "all":
            continue
        std_a, std_u, std_l = [], [], []
        for rec, n in zip(records, counts, strict=True):
            if n < 2:
                continue
            r = rec[row["layer"]]
            a, u = r["A"][row["head"], :n, :n], r["U"][row["head"], :n, :n]
            std_a += list(a.std(axis=-1))
            std_u += list(u.std(axis=-1))
            std_l += list((a + u).std(axis=-1))
        assert row["n_rows"] == len(std_a)
        assert row["mean_std_A"] == pytest.approx(np.mean(std_a), rel=1e-6)
        assert row["mean_std_U"] == pytest.approx(np.mean(std_u), rel=1e-6)
        # A + U from var A + var U + 2 cov(A, U), in float32
        assert row["mean_std_A_plus_U"] == pytest.approx(np.mean(std_l), rel=1e-5)
        assert row["frac_rows_U_varies_more"] == pytest.approx(np.mean(np.array(std_u) > std_a))


def test_zero_u_two_ways_agree_with_bn_stats_away_from_defaults():
    model = random_model(num_classes=2, seed=7)
    bn = model.pair_embed.embed[-2]
    assert isinstance(bn, torch.nn.BatchNorm1d) and bn.running_mean.abs().max() > 0.1
    inputs = random_inputs(np.array([9, 4, 7, 2, 8, 6, 5, 3]), num_classes=2, seed=8)
    x, v, m = (torch.as_tensor(t) for t in (inputs.features, inputs.vectors, inputs.mask))
    with torch.no_grad():
        cheap = model(x, v, m, intervention=Intervention(zero_u=True))
        literal = zero_pair_embed_params(model)(x, v, m)
        full = model(x, v, m)
    torch.testing.assert_close(cheap, literal, atol=1e-5, rtol=1e-5)
    assert (cheap - full).abs().max() > 1e-3  # U mattered, so the agreement is not trivial
    rows = ablation.ablation_rows(model, inputs, "toplandscape", batch_size=3)
    by = {r["intervention"]: r for r in rows}
    for name in ("accuracy", "auc", "rej_50%"):
        assert by["zero_u (U:=0)"][name] == by["zero_u (params zeroed)"][name]


@pytest.mark.parametrize(("zero_u", "zero_a", "verdict"), [
    (0.15, 0.2, "co-adaptation"), (0.15, 0.7, "U dominates"), (0.75, 0.1, "A dominates"),
    (0.75, 0.8, "no collapse")])
def test_ablation_verdict(zero_u, zero_a, verdict):
    labels = np.arange(100) % 10  # chance 0.1
    rows = [{"model": "trained", "intervention": "none", "accuracy": 0.8},
            {"model": "trained", "intervention": "zero_u (U:=0)", "accuracy": zero_u},
            {"model": "trained", "intervention": "zero_a (A:=0, U kept)", "accuracy": zero_a}]
    out = ablation.ablation_verdict(rows, labels)
    assert out["verdict"] == verdict
    assert out["collapse_u"] == pytest.approx((0.8 - zero_u) / 0.7)
    assert f"{zero_u:.3f}" in out["sentence"]


def _read(path):
    return list(csv.DictReader(open(path)))


def _finite_in_unit(value):
    return math.isfinite(float(value)) and 0.0 <= float(value) <= 1.0


def _ablation(figs):
    """06_ablation.csv: all rows, and our rows (those with a jet count) by intervention."""
    ablation = _read(figs / "06_ablation.csv")
    return ablation, {r["intervention"]: r for r in ablation if r["n_jets"]}


def test_06_ablation_has_every_intervention_and_the_published_row(tiny_figures):
    ablation, ours = _ablation(tiny_figures)
    assert set(ours) == {"none", "zero_u (U:=0)", "zero_u (params zeroed)", "zero_a (A:=0, U kept)",
                         "none (trained without U)"}
    assert any(r["model"] == "published zero-U" for r in ablation)


def test_06_ablation_rows_are_100_jets_with_unit_metrics_and_rejections_at_least_1(tiny_figures):
    _, ours = _ablation(tiny_figures)
    for r in ours.values():
        assert int(r["n_jets"]) == 100
        for col in ("accuracy", "auc", "auc_ovo", "auc_ovr"):
            assert _finite_in_unit(r[col]), (r["intervention"], col)
        rej = [c for c in r if c.startswith("rej_") and not c.startswith("rej_err")]
        assert len(rej) == 9 and all(float(r[c]) >= 1 for c in rej)


def test_06_zero_u_by_intervention_and_by_zeroed_params_give_the_same_accuracy(tiny_figures):
    _, ours = _ablation(tiny_figures)
    assert ours["zero_u (U:=0)"]["accuracy"] == ours["zero_u (params zeroed)"]["accuracy"]


def test_06_ablation_verdict_is_one_of_the_four(tiny_figures):
    verdict = json.loads((tiny_figures / "06_ablation_verdict.json").read_text())
    assert verdict["verdict"] in ("co-adaptation", "U dominates", "A dominates", "no collapse")


def test_06_interaction_metrics_have_trained_float32_float64_and_random_init_rows(tiny_figures):
    metrics = _read(tiny_figures / "06_interaction_metrics.csv")
    assert {(r["model"], r["pair_features"]) for r in metrics} >= {
        ("trained", "float32"), ("trained", "float64"), ("random init", "float32")}


def test_06_interaction_rates_are_fractions_within_their_coverage_and_pcc_a_correlation(tiny_figures):
    for r in _read(tiny_figures / "06_interaction_metrics.csv"):
        if r["n_jets"]:
            for col in ("rate_D", "coverage_D", "rate_N", "coverage_N"):
                assert _finite_in_unit(r[col]), col
            assert float(r["rate_D"]) <= float(r["coverage_D"])
            assert float(r["rate_N"]) <= float(r["coverage_N"])
            n_rate = float(r["rate_N"])
            if 0 < float(r["rate_D"]) < 1 and 0 < n_rate < 1:
                assert -1 <= float(r["pcc_phi"]) <= 1


def test_06_flip_fractions_of_the_trained_float32_row_are_fractions(tiny_figures):
    for r in _read(tiny_figures / "06_interaction_metrics.csv"):
        if r["model"] == "trained" and r["pair_features"] == "float32":
            assert _finite_in_unit(r["flip_argmax"]) and _finite_in_unit(r["flip_D"])


def test_06_u_structure_has_a_row_per_head_and_all(tiny_figures):
    u_rows = _read(tiny_figures / "06_u_structure.csv")
    assert [r["head"] for r in u_rows] == ["0", "1", "all"]  # tiny: 2 heads


def test_06_u_is_never_below_the_gelu_minimum(tiny_figures):
    for r in _read(tiny_figures / "06_u_structure.csv"):
        assert float(r["u_min"]) >= -0.17 - 1e-4  # U is a GELU output (docs/model.md#pair-embedding-u)


def test_06_u_self_pair_rank_columns_are_fractions(tiny_figures):
    for r in _read(tiny_figures / "06_u_structure.csv"):
        assert _finite_in_unit(r["self_rank_mean"]) and _finite_in_unit(r["frac_self_lowest"])


def test_06_u_distribution_densities_integrate_to_one(tiny_figures):
    dist = _read(tiny_figures / "06_u_distribution.csv")
    widths = np.array([float(r["u_high"]) - float(r["u_low"]) for r in dist])
    for col in ("density_diag", "density_offdiag"):
        assert np.sum(widths * np.array([float(r[col]) for r in dist])) == pytest.approx(1.0, abs=1e-4)


def test_06_row_variation_covers_both_layers_with_positive_a_spread(tiny_figures):
    variation = _read(tiny_figures / "06_row_variation.csv")
    assert {r["layer"] for r in variation} == {"0", "1"}
    for r in variation:
        assert float(r["mean_std_A"]) > 0 and float(r["mean_std_U"]) >= 0
        assert _finite_in_unit(r["frac_rows_U_varies_more"])

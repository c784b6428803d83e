"""kT subjets, lepton and inter-subjet attention fractions (docs/analyses.md#kt-subjets, docs/analyses.md#lepton-attention-fraction, docs/analyses.md#inter-subjet-attention-fraction) against brute
force on small random inputs and a tiny random model; sanity of notebook 05's tables."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from partnb.analysis import substructure as ss
from partnb.analysis.stream import AnalysisError, stream_attention
from partnb.data.features import JetInputs
from partnb.model.part import AttentionProbe, ParticleTransformer

FEATURES = ("part_pt_log", "part_e_log", "part_logptrel", "part_logerel", "part_deltaR",
            "part_deta", "part_dphi")


def random_jets(n_particles, p=12, seed=0) -> JetInputs:
    """Jets of massless particles around the z... x axis, zero-padded to p slots."""
    rng = np.random.default_rng(seed)
    b = len(n_particles)
    vectors = np.zeros((b, 4, p), np.float32)
    features = np.zeros((b, len(FEATURES), p), np.float32)
    mask = np.zeros((b, 1, p), np.float32)
    for k, n in enumerate(n_particles):
        pt = rng.exponential(20.0, n) + 1.0
        eta = rng.normal(0, 0.3, n)
        phi = rng.normal(0, 0.3, n)
        vectors[k, :, :n] = [pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)]
        features[k, :, :n] = rng.normal(size=(len(FEATURES), n))
        features[k, 5, :n], features[k, 6, :n] = eta, phi
        mask[k, 0, :n] = 1
    return JetInputs(features, vectors, mask, np.zeros(b, np.int64), np.asarray(n_particles, np.int64),
                     "kin", FEATURES)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(3)
    return ParticleTransformer(len(FEATURES), 3, embed_dims=(8, 16, 8), pair_embed_dims=(4,), num_heads=2,
                               num_layers=2, num_cls_layers=1).eval()


def brute_force_weights(model, inputs):
    """Per jet, the (layers, H, n, n) post-softmax weights from one stored probe call per jet."""
    out = []
    for k in range(len(inputs)):
        probe = AttentionProbe(capture=("P",))
        with torch.no_grad():
            model(torch.as_tensor(inputs.features[k:k + 1]), torch.as_tensor(inputs.vectors[k:k + 1]),
                  torch.as_tensor(inputs.mask[k:k + 1]), probe=probe)
        n = int(inputs.n_particles[k])
        out.append(np.stack([probe.records[ly]["P"][0, :, :n, :n].double().numpy()
                             for ly in sorted(probe.records)]))
    return out


def test_kt_subjets_cover_every_particle_sorted_by_pt():
    import fastjet

    jets = random_jets([9, 2, 12, 5], seed=1)
    sub = ss.kt_subjets(jets.vectors, jets.n_particles, 3)
    assert sub.used.tolist() == [True, False, True, True] and sub.n_skipped == 1
    assert (sub.labels[1] == -1).all()
    for k in np.flatnonzero(sub.used):
        n = jets.n_particles[k]
        lab = sub.labels[k, :n]
        assert (sub.labels[k, n:] == -1).all()
        # every real particle in one of the three subjets, subjet pT descending
        assert sorted(set(lab.tolist())) == [0, 1, 2]
        pt = [np.hypot(*jets.vectors[k, :2, :n][:, lab == s].sum(axis=1)) for s in range(3)]
        assert pt[0] >= pt[1] >= pt[2]
        # independent mapping by 4-momentum equality (the scripts' original rule, docs/analyses.md#kt-subjets)
        pjs = [fastjet.PseudoJet(*map(float, jets.vectors[k, :, i])) for i in range(n)]
        cs = fastjet.ClusterSequence(pjs, fastjet.JetDefinition(fastjet.kt_algorithm, 0.8))
        by_momentum = np.full(n, -1)
        for s, subjet in enumerate(sorted(cs.exclusive_jets(3), key=lambda j: -j.pt())):
            for c in subjet.constituents():
                i = np.flatnonzero(np.all(np.isclose(jets.vectors[k, :, :n].T, [c.px(), c.py(), c.pz(), c.E()],
                                                     rtol=1e-6), axis=1))
                by_momentum[i] = s
        np.testing.assert_array_equal(lab, by_momentum)
    assert sub.unmatched_fraction == 0.0


def test_uniform_intersubjet_fraction_by_hand():
    labels = np.array([[0, 0, 1, -1], [0, 1, -1, -1]])
    sub = ss.SubjetAssignment(labels, np.array([True, False]), np.array([3, 2]), 2)
    # 6 ordered pairs i != j among 3 particles, 4 of them between subjet 0 and 1
    np.testing.assert_allclose(sub.uniform_intersubjet_fraction[0], 4 / 6)
    assert np.isnan(sub.uniform_intersubjet_fraction[1])


def test_lepton_fraction_matches_brute_force(tiny_model):
    jets = random_jets([7, 10, 4, 12, 6], seed=2)
    is_lepton = np.zeros(jets.mask.shape[::2], bool)
    is_lepton[0, 3] = is_lepton[1, [0, 9]] = is_lepton[3, 11] = is_lepton[4, 1] = True  # jet 2: none
    consumer = ss.LeptonAttentionFraction(1, is_lepton)
    stream_attention(tiny_model, jets, [consumer], batch_size=2, capture=("P",))
    assert consumer.jets == 5 and consumer.jets_without_lepton == 1
    expected, uniform = [], []
    for k, w in enumerate(brute_force_weights(tiny_model, jets)):
        n = jets.n_particles[k]
        lep = is_lepton[k, :n]
        if not lep.any():
            continue
        last = w[-1]
        expected.append([sum(last[h, i, j] for i in range(n) for j in range(n) if lep[j]) / last[h].sum()
                         for h in range(last.shape[0])])
        uniform.append(lep.sum() / n)
    np.testing.assert_allclose(consumer.fractions, expected, rtol=1e-5)
    np.testing.assert_allclose(consumer.uniform[:, 0], uniform)


def test_intersubjet_fraction_matches_brute_force(tiny_model):
    jets = random_jets([8, 3, 11, 6], seed=4)
    labels = np.full(jets.mask.shape[::2], -1)
    rng = np.random.default_rng(5)
    for k, n in enumerate(jets.n_particles):
        labels[k, :n] = rng.integers(-1, 3, n)  # -1 = unmatched: its own group
    labels[2, :11] = 0  # one subjet only: numerator 0
    used = np.array([True, False, True, True])
    sub = ss.SubjetAssignment(labels, used, jets.n_particles, 3)
    consumer = ss.InterSubjetAttentionFraction(sub)
    stream_attention(tiny_model, jets, [consumer], batch_size=3, capture=("P",))
    got = consumer.fractions
    assert got.shape == (4, 2, 2)
    assert np.isnan(got[1]).all()
    for k, w in enumerate(brute_force_weights(tiny_model, jets)):
        if not used[k]:
            continue
        n = jets.n_particles[k]
        s = labels[k, :n]
        for ly in range(2):
            for h in range(2):
                num = sum(w[ly, h, i, j] for i in range(n) for j in range(n) if i != j and s[i] != s[j])
                den = sum(w[ly, h, i, j] for i in range(n) for j in range(n) if i != j)
                np.testing.assert_allclose(got[k, ly, h], num / den, rtol=1e-5, atol=1e-12)
    assert (got[2] == 0).all()


def test_graph_maps_are_row_stochastic(tiny_model):
    jets = random_jets([5, 9], seed=6)
    consumer = ss.GraphJetAttention(1, [1])
    stream_attention(tiny_model, jets, [consumer], capture=("A", "P"))
    maps = consumer.maps[1]
    assert set(consumer.maps) == {1} and maps["W"].shape == (2, 9, 9)
    for w in maps.values():
        np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-6)
    a = torch.tensor([[[0.0, 1.0, 5.0], [2.0, 2.0, -7.0], [1.0, 1.0, 1.0]]])
    np.testing.assert_allclose(ss.softmax_over_real_keys(a, 2)[0, 0].numpy(),
                               [1 / (1 + np.e), np.e / (1 + np.e)])


def test_fraction_summary_and_histogram_by_hand():
    values = np.array([[0.25, 0.65], [0.85, np.nan], [np.nan, np.nan]])
    s = ss.fraction_summary(values)
    assert s["jets"] == 2 and s["entries"] == 3
    assert s["mean"] == pytest.approx(1.75 / 3) and s["median"] == pytest.approx(0.65)
    assert s["frac_above_0.5"] == pytest.approx(2 / 3)
    rows = ss.fraction_histogram_rows({"trained": values}, bins=5)
    assert [r["count_trained"] for r in rows] == [0, 1, 0, 1, 1]
    assert sum(r["density_trained"] * 0.2 for r in rows) == pytest.approx(1.0)


def test_plan_follows_the_datasets_design():
    jc = ss.substructure_plan("jetclass")
    assert [(t.class_name, t.n_subjets) for t in jc.jet_types] == [("Tbl", 2), ("Tbqq", 3), ("H4q", 4)]
    assert [t.class_name for t in jc.lepton_types] == ["Tbl"]
    tl = ss.substructure_plan("toplandscape")
    assert not tl.lepton_types and [t.n_subjets for t in tl.intersubjet_types] == [3] and tl.notes
    qg = ss.substructure_plan("quarkgluon")
    assert not qg.lepton_types and not qg.intersubjet_types and len(qg.jet_types) == 2
    with pytest.raises(AnalysisError):
        ss.substructure_plan("mnist")


def _rows(path):
    return list(csv.DictReader(open(path)))


def test_05_tables_are_sane(tiny_run):
    tmp, _ = tiny_run
    figs = tmp / "figures"
    finding = {r["jet_type"]: r for r in _rows(figs / "05_subjet_finding.csv")}
    assert set(finding) == {"tbl", "tbqq", "h4q"}
    for r in finding.values():
        assert int(r["jets"]) == 10 and int(r["jets_used"]) + int(r["jets_skipped_n_below_N"]) == 10
        assert 0 <= float(r["unmatched_particle_fraction"]) <= 1
    for slug, n_sub in (("tbl", 2), ("tbqq", 3), ("h4q", 4)):
        particles = _rows(figs / f"05_subjet_graph_{slug}_particles.csv")
        n = len(particles)
        assert {int(p["subjet"]) for p in particles} <= set(range(-1, n_sub))
        assert all(np.isfinite(float(p[c])) for p in particles for c in ("deta", "dphi", "log_pt"))
        if slug == "tbl":
            assert any(int(p["pid"]) in (4, 5) for p in particles)  # the drawn jet has a lepton
        for suffix in ("", "_tlg"):
            table = json.loads((figs / f"05_subjet_graph_{slug}{suffix}.json").read_text())
            w = np.array(table["weights"])
            assert w.shape == (2, n, n) and table["n"] == n  # heads of the tiny model
            np.testing.assert_allclose(w.sum(axis=-1), 1.0, atol=1e-4)  # rows sum to 1 over real keys
            assert (w >= 0).all() and (w <= 1).all()
    lepton = {r["model"]: r for r in _rows(figs / "05_lepton_attention_summary.csv")}
    assert set(lepton) == {"trained", "random_init", "uniform"}
    for r in lepton.values():
        for c in ("mean", "median", "frac_above_0.5"):
            assert 0 <= float(r[c]) <= 1
    inter = _rows(figs / "05_intersubjet_attention_summary.csv")
    assert {(r["jet_type"], r["model"]) for r in inter} == {
        (j, m) for j in ("tbqq", "h4q") for m in ("trained", "random_init", "uniform")}
    assert {r["layer"] for r in inter} == {"all", "last", "0", "1", "any"}
    for r in inter:
        assert 0 <= float(r["mean"]) <= 1 and float(r["mean_err"]) >= 0
    for stem in ("05_lepton_attention", "05_intersubjet_attention"):
        hist = _rows(figs / f"{stem}.csv")
        for col in [c for c in hist[0] if c.startswith("density_")]:
            width = [float(r["bin_hi"]) - float(r["bin_lo"]) for r in hist]
            total = sum(float(r[col]) * dw for r, dw in zip(hist, width, strict=True))
            groups = len({(r["jet_type"], r.get("layers")) for r in hist})
            assert total == pytest.approx(groups, rel=1e-4)  # each histogram normalised to 1


def test_missing_class_is_a_clear_error_and_graph_only_types_stream_one_jet(tiny_run):
    from partnb.notebook import trained_model
    from partnb.params import load_params

    params = load_params(tiny_run[0] / "tiny.yaml")
    with pytest.raises(AnalysisError, match="top"):
        ss.analyse_jet_type(params, ss.JetType("top", "t", "top", 3), {})
    models = {"trained": trained_model(params, train_if_missing=False),
              "random_init": trained_model(params, train_if_missing=False, random_init=True)}
    graph_only = ss.analyse_jet_type(params, ss.JetType("qcd", "QCD", "QCD", 2), models, graph_jet=1)
    full = ss.analyse_jet_type(params, ss.JetType("qcd", "QCD", "QCD", 2, intersubjet_fraction=True),
                               models, graph_jet=1)
    assert not graph_only.intersubjet and set(full.intersubjet) == {"trained", "random_init"}
    assert graph_only.graph.position == full.graph.position == 1
    np.testing.assert_allclose(graph_only.graph.weights["W"], full.graph.weights["W"], atol=1e-5)

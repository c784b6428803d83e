"""Per-jet attention statistics and the classifier on them (partnb.analysis.attention_features,
docs/analyses.md#attention-statistics-as-a-jet-tagger): the features against brute force on a
tiny random ParT, the D rate against InteractionCounter jet by jet, the fractions against the
notebook-05 consumers, the classifier on synthetic data with a known answer, and the tables of
notebook 13 on the tiny run."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from test_interaction import probe_records, random_inputs, random_model

from partnb.analysis import attention_features as af
from partnb.analysis import substructure as ss
from partnb.analysis.interaction import InteractionCounter
from partnb.analysis.stream import Consumer, stream_attention

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COUNTS = np.array([5, 9, 1, 7, 3, 8, 6, 2, 9, 4, 5, 7])


@pytest.fixture(scope="module")
def streamed():
    """A tiny random ParT, jets with 1…9 particles, subjets N = 2, 3, 4, a lepton in every
    other jet, the consumer streamed as coded (its second records must be skipped)."""
    torch.set_num_threads(1)
    model, inputs = random_model(seed=2), random_inputs(COUNTS, seed=3)
    subjets = af.subjet_assignments(inputs)
    is_lepton = np.zeros(inputs.mask[:, 0].shape, bool)
    is_lepton[::2, 1] = COUNTS[::2] > 1  # PID flags sit on real particles only
    consumer = af.JetAttentionFeatures(len(inputs), subjets=subjets, is_lepton=is_lepton,
                                       classes=["a", "b", "c"])
    logits = stream_attention(model, inputs, [consumer], batch_size=5, capture=("A", "U", "P"),
                              as_coded=True)
    return model, inputs, subjets, is_lepton, consumer, logits


def brute_force(records, inputs, subjets, is_lepton):
    """Per jet, per (block, head), every statistic by explicit loops over the n × n maps."""
    out = []
    for k, rec in enumerate(records):
        n = int(inputs.n_particles[k])
        jet = {}
        for layer, r in rec.items():
            for h in range(r["P"].shape[0]):
                w, a, u = r["P"][h, :n, :n], r["A"][h, :n, :n], r["U"][h, :n, :n]
                row_max = w.max(axis=1)
                ent = [-sum(x * math.log(x) for x in row if x > 0) for row in w]
                stats = {"row_max_mean": row_max.mean(),
                         "frac_rows_max_ge_0.8": (row_max >= 0.8).mean(),
                         "entropy": np.mean(ent) / math.log(n) if n > 1 else math.nan,
                         "rate_D": np.mean([np.argmax(a[i] + u[i]) != np.argmax(a[i]) for i in range(n)])}
                for count, s in subjets.items():
                    lab = s.labels[k, :n]
                    num = sum(w[i, j] for i in range(n) for j in range(n) if i != j and lab[i] != lab[j])
                    den = sum(w[i, j] for i in range(n) for j in range(n) if i != j)
                    stats[f"intersubjet_N{count}"] = num / den if (s.used[k] and den > 0) else math.nan
                lep = is_lepton[k, :n]
                stats["lepton_fraction"] = w[:, lep].sum() / w.sum() if lep.any() else math.nan
                for name, value in stats.items():
                    jet[(name, layer, h)] = value
        out.append(jet)
    return out


def test_it_is_a_consumer(streamed):
    consumer = streamed[4]
    assert isinstance(consumer, Consumer)
    rows = consumer.rows("trained")
    assert len(rows) == len(COUNTS) and rows[0]["model"] == "trained"
    assert all(np.isscalar(v) for r in rows for v in r.values())


def test_features_match_brute_force(streamed):
    model, inputs, subjets, is_lepton, consumer, _ = streamed
    want = brute_force(probe_records(model, inputs), inputs, subjets, is_lepton)
    checked = 0
    for stat in consumer.stats:
        got = consumer.head_values(stat)                       # (jets, blocks, heads)
        for k in range(len(COUNTS)):
            for layer in range(got.shape[1]):
                for h in range(got.shape[2]):
                    w = want[k][(stat, layer, h)]
                    if math.isnan(w):
                        assert math.isnan(got[k, layer, h]), (stat, k, layer, h)
                    else:
                        assert got[k, layer, h] == pytest.approx(w, abs=1e-6), (stat, k, layer, h)
                        checked += 1
    assert checked > 300  # of 12 jets x 2 blocks x 2 heads x 9 statistics, less the NaN
    # not trivial: D, binary rows and leptons occur, and NaN appear where undefined
    assert np.nanmax(consumer.head_values("rate_D")) > 0
    assert np.nanmax(consumer.head_values("frac_rows_max_ge_0.8")) > 0
    assert np.isnan(consumer.head_values("entropy")[2]).all()               # n = 1
    assert np.isnan(consumer.head_values("lepton_fraction")[1]).all()       # no lepton
    assert np.isfinite(consumer.head_values("lepton_fraction")[0]).all()


def test_jet_columns_mass_multiplicity_scores(streamed):
    model, inputs, _, _, consumer, logits = streamed
    cols = consumer.columns()
    p = inputs.vectors.astype(np.float64).sum(axis=-1)
    mass = np.sqrt(np.clip(p[:, 3] ** 2 - (p[:, :3] ** 2).sum(axis=1), 0, None))
    np.testing.assert_allclose(cols["mass"], mass, rtol=1e-12)
    np.testing.assert_array_equal(cols["multiplicity"], COUNTS)
    np.testing.assert_array_equal(cols["label"], inputs.label)
    scores = np.column_stack([cols[f"score_{c}"] for c in "abc"])
    np.testing.assert_allclose(scores, torch.softmax(torch.as_tensor(logits, dtype=torch.float64), -1),
                               rtol=1e-6)
    # block averages of head values, the overall average of the block averages
    heads = consumer.head_values("row_max_mean")
    np.testing.assert_allclose(cols["row_max_mean_l1"], heads[:, 1].mean(axis=1))
    np.testing.assert_allclose(cols["row_max_mean"], heads.mean(axis=(1, 2)))
    np.testing.assert_allclose(cols["entropy_l0_h1"], consumer.head_values("entropy")[:, 0, 1])


def test_d_rate_equals_interaction_counter_jet_by_jet(streamed):
    model, inputs, _, _, consumer, _ = streamed
    got = consumer.columns()["rate_D"]
    for k in range(len(COUNTS)):
        counter = InteractionCounter()
        stream_attention(model, inputs.take([k]), [counter], batch_size=1, capture=("A", "U", "L", "P"))
        assert got[k] == pytest.approx(counter.result()["rate_D"], abs=1e-12), k


def test_fractions_equal_the_notebook_05_consumers(streamed):
    model, inputs, subjets, is_lepton, consumer, _ = streamed
    last = consumer.layers[-1]
    inter = {n: ss.InterSubjetAttentionFraction(s) for n, s in subjets.items()}
    lepton = ss.LeptonAttentionFraction(last, is_lepton)
    stream_attention(model, inputs, [*inter.values(), lepton], batch_size=4, capture=("P",))
    for n, c in inter.items():
        np.testing.assert_allclose(consumer.head_values(f"intersubjet_N{n}"), c.fractions,
                                   rtol=1e-6, atol=1e-9)  # float32 attention, other batch shapes
    has = is_lepton.any(axis=1)
    np.testing.assert_allclose(consumer.head_values("lepton_fraction")[has, -1], lepton.fractions,
                               rtol=1e-6)


def test_order_of_batches_does_not_matter(streamed):
    model, inputs, subjets, is_lepton, consumer, _ = streamed
    again = af.JetAttentionFeatures(len(inputs), subjets=subjets, is_lepton=is_lepton)
    stream_attention(model, inputs, [again], batch_size=3, capture=("A", "U", "P"))
    for stat in consumer.stats:
        np.testing.assert_allclose(again.head_values(stat), consumer.head_values(stat),
                                   rtol=2e-5, atol=1e-7)  # float32 attention in other batch shapes


def test_attention_columns_never_hold_the_obvious(streamed):
    cols = streamed[4].columns()
    for kwargs in ({}, {"per_head": True}, {"lepton": True}):
        names = af.attention_columns(cols, **kwargs)
        assert names and not {"mass", "multiplicity", "label", "jet"} & set(names)
        assert not any(n.startswith("score_") for n in names)
    assert any("lepton" in n for n in af.attention_columns(cols, lepton=True))
    assert not any("lepton" in n for n in af.attention_columns(cols))
    sets = af.input_matrices(cols, cols)
    assert list(sets) == list(af.INPUT_SETS)
    assert sets["mass_multiplicity"].shape == (len(COUNTS), 2)
    np.testing.assert_array_equal(sets["mass_multiplicity"][:, 1], COUNTS)  # the consumer's
    kin = {"jet_mass": np.arange(len(COUNTS)) * 1.0, "jet_multiplicity": COUNTS * 2}
    sets = af.input_matrices(cols, kinematics=kin)
    np.testing.assert_array_equal(sets["mass_multiplicity"], np.column_stack([kin["jet_mass"], COUNTS * 2]))
    assert "random_attention" not in sets


# --------------------------------------------------------------------------------------
# The classifier on synthetic data with a known answer
# --------------------------------------------------------------------------------------


def synthetic(n_per_class=300, seed=0):
    """Two classes; 'attention' columns: one perfect separator and one noise column; mass and
    multiplicity: pure noise. Returns (matrices, labels, scores)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per_class)
    rng.shuffle(labels)
    perfect = (labels == 0) + rng.uniform(0, 0.5, len(labels))
    noise = rng.normal(size=(len(labels), 3))
    scores = np.column_stack([perfect / 2, 1 - perfect / 2])
    matrices = {"attention": noise[:, :1], "mass_multiplicity": noise[:, 1:],
                "attention_mass_multiplicity": np.column_stack([perfect, noise])}
    return matrices, labels, scores


def test_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500).astype(bool)
    s = rng.integers(0, 5, 500).astype(float)
    assert af._auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_classifier_known_answers():
    matrices, labels, scores = synthetic()
    r = af.classify_task(matrices, labels, scores, ["sig", "bkg"], "sig", "bkg", seed=3)
    assert r.evaluated and r.n_eval == 300 and r.n_eval_signal == 150
    # a perfect separator: AUC 1; pure noise: 0.5 within 3 errors
    assert r.auc["attention_mass_multiplicity"] > 0.98  # beside three noise columns
    assert abs(r.auc["attention"] - 0.5) < 3 * r.error("attention")
    assert abs(r.auc["mass_multiplicity"] - 0.5) < 3 * r.error("mass_multiplicity")
    assert 0.01 < r.error("attention") < 0.06          # ~ 1/sqrt(12 n) for 150 + 150 jets
    # the tagger's AUC is that of the discriminant of partnb.metrics on the evaluation jets
    jets = np.arange(len(labels))
    _, test = af._half_split(labels[jets] == 0, np.random.default_rng(3))
    assert r.auc["tagger"] == pytest.approx(roc_auc_score(labels[test] == 0, scores[test, 0]))
    verdict = af.attention_verdict([r])
    task = verdict["tasks"]["sig vs bkg"]
    assert not task["separates"] and task["adds"]
    assert task["gain"] > 0.4 and "separates no" in verdict["sentence"]
    rows = af.classifier_rows([r])
    assert [row["inputs"] for row in rows] == ["attention", "mass_multiplicity",
                                               "attention_mass_multiplicity"]
    assert rows[0]["tagger_auc"] == r.auc["tagger"] and rows[0]["n_eval"] == 300


def test_separating_attention_and_duplicated_mass():
    """Attention that separates perfectly; attention that merely copies the mass adds nothing."""
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], 200)
    mass = rng.normal(size=400) + 0.5 * (labels == 0)
    mult = rng.normal(size=400)
    good = (labels == 0) + rng.uniform(0, 0.3, 400)
    kin = np.column_stack([mass, mult])
    separating = af.classify_task({"attention": good[:, None], "mass_multiplicity": kin},
                                  labels, None, ["s", "b"], "s", "b")
    assert separating.auc["attention"] > 0.99
    copy = af.classify_task({"attention": mass[:, None], "mass_multiplicity": kin,
                             "attention_mass_multiplicity": np.column_stack([mass, kin])},
                            labels, None, ["s", "b"], "s", "b")
    assert af.attention_verdict([separating])["tasks"]["s vs b"]["separates"]
    gain, err = copy.difference("attention_mass_multiplicity", "mass_multiplicity")
    assert abs(gain) <= 3 * err + 1e-12
    assert not af.attention_verdict([copy])["tasks"]["s vs b"]["adds"]


def test_too_few_jets_is_a_row_not_an_exception():
    labels = np.array([0] * 50 + [1] * 5 + [2] * 50)
    x = {"attention": np.random.default_rng(0).normal(size=(105, 2)),
         "mass_multiplicity": np.zeros((105, 2))}
    results = [af.classify_task(x, labels, None, ["QCD", "A", "B"], s, "QCD") for s in ("A", "B", "C")]
    assert not results[0].evaluated and "too few jets: 5 A and 50 QCD" in results[0].note
    assert results[1].evaluated
    assert not results[2].evaluated and "not a class" in results[2].note
    rows = af.classifier_rows(results)
    assert rows[0]["inputs"] == "none" and rows[0]["note"]
    verdict = af.attention_verdict(results)
    assert set(verdict["skipped"]) == {"A vs QCD", "C vs QCD"} and "Not evaluated" in verdict["sentence"]
    nothing = af.attention_verdict([results[0]])
    assert nothing["tasks"] == {} and nothing["sentence"].startswith("No task")


def test_all_missing_column_is_dropped():
    matrices, labels, scores = synthetic(n_per_class=60)
    matrices["attention"] = np.column_stack([matrices["attention"], np.full(len(labels), np.nan)])
    r = af.classify_task(matrices, labels, scores, ["sig", "bkg"], "sig", "bkg")
    assert r.n_features["attention"] == 1


def test_summary_and_histograms_by_hand():
    cols = {"label": np.array([0, 0, 0, 1, 1, 1]), "x": np.array([1.0, 2, 3, 4, 5, np.nan])}
    rows = af.feature_summary_rows(cols, ["QCD", "sig"], ["x"], "QCD")
    sig = next(r for r in rows if r["class"] == "sig")
    assert sig["jets"] == 2 and sig["median"] == 4.5 and sig["auc_vs_background"] == 1.0
    assert math.isnan(next(r for r in rows if r["class"] == "QCD")["auc_vs_background"])
    hist = af.feature_histogram_rows(cols, ["QCD", "sig"], ["x"], bins=5)
    assert sum(r["count"] for r in hist if r["class"] == "sig") == 2
    for name in ("QCD", "sig"):
        dens = [(r["density"], r["bin_hi"] - r["bin_lo"]) for r in hist if r["class"] == name]
        assert sum(d * w for d, w in dens) == pytest.approx(1.0)


def test_signal_tasks():
    assert af.signal_tasks("toplandscape") == [("top", "QCD")]
    assert af.signal_tasks("quarkgluon") == [("quark", "gluon")]
    tasks = af.signal_tasks("jetclass")
    assert len(tasks) == 9 and all(b == "QCD" for _, b in tasks) and tasks[0] == ("Hbb", "QCD")


# --------------------------------------------------------------------------------------
# Notebook 13 on the tiny run
# --------------------------------------------------------------------------------------


def test_13_tables_are_sane(tiny_figures):
    auc = list(csv.DictReader(open(tiny_figures / "13_classifier_auc.csv")))
    assert {r["task"] for r in auc} == {f"{s} vs QCD" for s, _ in af.signal_tasks("jetclass")}
    for r in auc:
        if r["note"]:
            assert r["inputs"] == "none" and "too few jets" in r["note"]
        else:
            assert 0 <= float(r["auc"]) <= 1 and int(r["n_eval"]) > 0
    summary = list(csv.DictReader(open(tiny_figures / "13_attention_features_summary.csv")))
    assert {r["model"] for r in summary} == {"trained", "random_init"}
    assert len({r["class"] for r in summary}) == 10
    for r in summary:
        if r["feature"] in af.ROW_STATS and int(r["jets"]):
            assert 0 <= float(r["q25"]) <= float(r["median"]) <= float(r["q75"]) <= 1
    verdict = json.loads((tiny_figures / "13_verdict.json").read_text())
    assert verdict["sentence"] and "rule" in verdict
    for name in {r["class"] for r in summary}:
        med = {r["feature"]: float(r["median"]) for r in summary
               if r["class"] == name and r["model"] == "trained"}
        assert med["jet_multiplicity"] >= med["multiplicity"]  # the whole jet, not only the kept
    hist = list(csv.DictReader(open(tiny_figures / "13_attention_features.csv")))
    assert {"row_max_mean", "rate_D", "jet_mass", "jet_multiplicity"} <= {r["feature"] for r in hist}

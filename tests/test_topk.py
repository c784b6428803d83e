"""Tests of partnb.analysis.topk (docs/analyses.md#top-k-attention) on a tiny random ParT, and of the tables notebook
07 writes on the tiny run."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from test_interaction import random_inputs, random_model

from partnb.analysis import topk
from partnb.model.part import AttentionProbe, Intervention
from partnb.reference import TOPK_PUBLISHED

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_parse_k():
    assert topk.parse_k([1, 2, "all"]) == [1, 2, "all"]
    assert topk.parse_k(np.array([3, 4])) == [3, 4]
    for bad in ([0], [True], ["ALL"], [2.5]):
        with pytest.raises(ValueError, match="positive integer or 'all'"):
            topk.parse_k(bad)


def test_topk_keeps_the_largest_logits_of_the_unrestricted_pass():
    """Brute force on block 0 (same input either way): the k = 1 weights are one-hot on the
    argmax of the unrestricted logits over real keys; k = 2 keeps exactly their top two."""
    model, inputs = random_model(seed=11), random_inputs(np.array([6, 9, 3, 1]), seed=12)
    x, v, m = (torch.as_tensor(t) for t in (inputs.features, inputs.vectors, inputs.mask))
    probes = {}
    for k in (None, 1, 2):
        probes[k] = AttentionProbe(layers=[0], capture=("L", "P"))
        model(x, v, m, probe=probes[k], intervention=None if k is None else Intervention(topk=k))
    full = probes[None].records[0]["L"].numpy()
    for b, n in enumerate(inputs.n_particles):
        logits = full[b, :, :n, :n]
        order = np.argsort(-logits, axis=-1, kind="stable")
        hard = probes[1].records[0]["P"][b, :, :n, :n].numpy()
        np.testing.assert_allclose(hard, np.eye(n)[order[..., 0]], atol=1e-6)
        kept = probes[2].records[0]["P"][b, :, :n, :n].numpy() > 0
        want = np.zeros_like(kept)
        np.put_along_axis(want, order[..., :min(2, n)], True, axis=-1)
        assert (kept == want).all()


def test_topk_evaluation_rows_and_timing():
    model = random_model(num_classes=2, seed=13)
    inputs = random_inputs(np.array([9, 4, 7, 2, 8, 6, 5, 3, 9, 9]), num_classes=2, seed=14)
    rows, timing = topk.topk_evaluation(model, inputs, "toplandscape", [1, 9, "all"], batch_size=4)
    by = {r["k"]: r for r in rows}
    assert list(by) == [1, 9, "all"] and all(r["source"] == "partnb" for r in rows)
    # k = 9 >= n for every jet: the rows are unchanged, so the metrics equal the baseline
    for col in ("accuracy", "auc", "rej_50%", "rej_30%"):
        assert by[9][col] == by["all"][col]
    assert 0 <= by[1]["accuracy"] <= 1
    paths = [t["path"] for t in timing]
    assert paths.count("fused (SDPA)") == 1 and "explicit, no restriction" in paths
    for t in timing:
        assert t["jets_per_s"] > 0 and t["threads"] == 1 and t["n_jets"] == 10
    assert next(t for t in timing if t["k"] == "all")["relative_to_fused"] == 1.0


def test_published_topk_rows_are_wang_table_1():
    rows = {r["k"]: r for r in topk.published_topk_rows(TOPK_PUBLISHED, [1, 5, 30, "all"])}
    assert list(rows) == [1, 30, "all"]  # k = 5 is not in the paper
    assert rows[1]["accuracy"] == 0.770 and rows[1]["auc"] == 0.9754 and rows[1]["rej_Tbl"] == 6601
    assert rows["all"]["rej_Tbqq"] == 32787 and rows[30]["rej_Zqq"] == 402
    assert [c for c in rows[1] if c.startswith("rej_")] == [
        "rej_Hbb", "rej_Hcc", "rej_Hgg", "rej_H4q", "rej_Hqql", "rej_Tbqq", "rej_Tbl", "rej_Wqq",
        "rej_Zqq"]


def _ours(figs):
    """07_topk.csv: all rows, and partnb's rows by k."""
    rows = list(csv.DictReader(open(figs / "07_topk.csv")))
    return rows, {r["k"]: r for r in rows if r["source"] == "partnb"}


def test_07_every_k_is_evaluated_and_has_its_paper_row(tiny_figures):
    rows, ours = _ours(tiny_figures)
    assert list(ours) == ["1", "2", "3", "4", "6", "10", "20", "30", "all"]
    assert {r["k"] for r in rows if r["source"] == "paper"} == set(ours)  # tiny is JetClass-like


def test_07_topk_rows_are_of_100_jets_with_unit_metrics(tiny_figures):
    _, ours = _ours(tiny_figures)
    for r in ours.values():
        assert int(r["n_jets"]) == 100
        for col in ("accuracy", "auc", "auc_ovo", "auc_ovr"):
            assert math.isfinite(float(r[col])) and 0 <= float(r[col]) <= 1


def test_07_timing_covers_every_k_and_the_explicit_pass_with_positive_rates(tiny_figures):
    _, ours = _ours(tiny_figures)
    # tiny: P = 32 particles, so k = 30 is nearly and "all" exactly the unrestricted model
    timing = list(csv.DictReader(open(tiny_figures / "07_topk_timing.csv")))
    assert {t["k"] for t in timing} == set(ours) | {"explicit (k=32)"}
    for t in timing:
        assert float(t["jets_per_s"]) > 0 and int(t["threads"]) >= 1

"""The sparsity monitor (notebook 09) and weaver's wrap padding.

Real generated Top-Landscape-like jets, real (small) ParT models; the monitor is checked
against the analysis consumers of notebooks 03, 04 and 06 on the same model and jets.
"""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import torch

from partnb.analysis.emergence import (
    MONITOR_COLUMNS,
    MonitorStats,
    is_monitor_step,
    monitor_steps,
)
from partnb.analysis.interaction import InteractionCounter, argmax_decisions
from partnb.analysis.magnitude import MagnitudeRatio
from partnb.analysis.sparsity import AttentionSparsity
from partnb.analysis.stream import stream_attention
from partnb.data.features import JetInputs, build_inputs, required_branches
from partnb.data.io import iterate_jets
from partnb.data.padding import pad_inputs, wrap_pad
from partnb.model.part import ParticleTransformer
from partnb.params import load_params, params_from_dict
from partnb.train import train

from conftest import REPO, mixed_jets

SMALL = {"embed_dims": [16, 32, 16], "pair_embed_dims": [8, 8], "num_heads": 2, "num_layers": 2,
         "num_cls_layers": 1, "dropout": 0.0}


@pytest.fixture(scope="module")
def tl_inputs(toplandscape_sample):
    _, files = toplandscape_sample
    chunks = [build_inputs(c, "kin", max_particles=48)
              for c in iterate_jets(list(files), branches=list(required_branches("kin")))]
    return JetInputs.concat(chunks)


def _sharp_model(seed: int = 0) -> ParticleTransformer:
    """A small random ParT whose query/key weights are scaled up, so that many rows are
    nearly one-hot (the thresholds 0.8 and 0.95 are then crossed by real rows)."""
    torch.manual_seed(seed)
    model = ParticleTransformer(input_dim=7, num_classes=2, embed_dims=(16, 32, 16),
                                pair_embed_dims=(8, 8), num_heads=2, num_layers=2,
                                num_cls_layers=1).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.attn.in_proj_weight[:32] *= 6.0
    return model


# --- steps ---------------------------------------------------------------------------------


def test_monitor_steps_are_log_spaced():
    steps = [s for _, s in zip(range(8), monitor_steps(), strict=False)]
    assert steps == [0, 10, 30, 100, 300, 1000, 3000, 10000]
    assert [s for s in range(3500) if is_monitor_step(s)] == steps[:7]


# --- wrap padding ---------------------------------------------------------------------------


def _weaver_repeat_pad(values: ak.Array, maxlen: int) -> np.ndarray:
    """weaver's ``_repeat_pad`` rule as described in docs/features.md#padding, written
    independently: tile the flattened values, cut to (jets × maxlen), keep real entries."""
    flat = ak.to_numpy(ak.flatten(values))
    tiled = np.tile(flat, int(np.ceil(len(values) * maxlen / len(flat))))[: len(values) * maxlen]
    tiled = tiled.reshape(len(values), maxlen)
    real = ak.to_numpy(ak.fill_none(ak.pad_none(values, maxlen, clip=True), np.nan))
    return np.where(np.isnan(real), tiled, real)


def test_wrap_padding_follows_weavers_repeat_pad_rule():
    rng = np.random.default_rng(1)
    n = np.array([3, 1, 5, 2, 4])  # all below P: weaver's list equals partnb's kept list
    P, C = 6, 3
    feats = np.zeros((len(n), C, P), np.float32)
    vecs = np.zeros((len(n), 4, P), np.float32)
    mask = np.zeros((len(n), 1, P), np.float32)
    jagged_f, jagged_v = [[] for _ in range(C)], [[] for _ in range(4)]
    for r, k in enumerate(n):
        f, v = rng.normal(size=(C, k)), rng.normal(size=(4, k))
        feats[r, :, :k], vecs[r, :, :k], mask[r, 0, :k] = f, v, 1
        for c in range(C):
            jagged_f[c].append(f[c].astype(np.float32))
        for c in range(4):
            jagged_v[c].append(v[c].astype(np.float32))
    inputs = JetInputs(feats, vecs, mask, np.zeros(len(n), np.int64), n, "kin", ("a", "b", "c"))
    padded = wrap_pad(inputs)
    for c in range(C):
        np.testing.assert_array_equal(padded.features[:, c], _weaver_repeat_pad(ak.Array(jagged_f[c]), P))
    for c in range(4):
        np.testing.assert_array_equal(padded.vectors[:, c], _weaver_repeat_pad(ak.Array(jagged_v[c]), P))
    # the mask still marks the padded slots, the real slots are untouched, the input unchanged
    np.testing.assert_array_equal(padded.mask, mask)
    assert (np.moveaxis(feats, 1, 2)[mask[:, 0] == 0] == 0).all()
    assert pad_inputs(inputs, "zero") is inputs
    with pytest.raises(ValueError, match="pad mode"):
        pad_inputs(inputs, "reflect")


def test_predictions_do_not_depend_on_the_padding_mode(tl_inputs, one_torch_thread):
    inputs = tl_inputs.take(np.arange(40))
    wrapped = wrap_pad(inputs)
    assert not np.array_equal(wrapped.features, inputs.features)  # the padded slots changed
    model = _sharp_model()
    out = []
    for x in (inputs, wrapped):
        with torch.no_grad():
            out.append(model(torch.as_tensor(x.features), torch.as_tensor(x.vectors),
                             torch.as_tensor(x.mask)))
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=2e-5)


# --- the monitor against the analysis consumers ---------------------------------------------------


def test_monitor_equals_the_analysis_consumers(tl_inputs, one_torch_thread):
    inputs = tl_inputs.take(np.arange(120))
    model = _sharp_model()
    stats = MonitorStats()
    sparsity = AttentionSparsity(2, 2, ["top", "qcd"])
    counter = InteractionCounter()
    ratio = MagnitudeRatio(2)
    stream_attention(model, inputs, [stats, sparsity, counter, ratio], batch_size=50,
                     capture=("A", "U", "L", "P"), as_coded=True)
    row = stats.result()
    assert set(MONITOR_COLUMNS) == set(row)
    ref = sparsity.summary_row("correct")
    assert ref["frac_rows_max_ge_0.8"] > 0.01  # the check below is not trivially 0 = 0
    assert row["rows_max_ge_0.8"] == pytest.approx(ref["frac_rows_max_ge_0.8"], abs=1e-12)
    assert row["rows_max_ge_0.95"] == pytest.approx(ref["frac_rows_max_ge_0.95"], abs=1e-12)
    assert row["median_row_max"] == pytest.approx(ref["median_row_max"], abs=2e-3)
    counts = counter.result()
    assert 0 < counts["rate_D"] < 1
    assert row["D_rate"] == pytest.approx(counts["rate_D"], abs=1e-12)
    assert row["N_rate"] == pytest.approx(counts["rate_N"], abs=1e-12)
    mag = next(r for r in ratio.summary_rows("m") if r["variant"] == "correct" and r["layer"] == "all")
    for mine, theirs in (("median_ratio_AU", "q50_ratio"), ("median_abs_A", "median_abs_a"),
                         ("median_abs_U", "median_abs_u")):
        assert np.log10(row[mine]) == pytest.approx(np.log10(mag[theirs]), abs=0.06), mine
    assert row["probe_accuracy"] == pytest.approx(
        np.mean(stream_attention(model, inputs, [], batch_size=50).argmax(1) == inputs.label))


def test_as_coded_columns_equal_brute_force(tl_inputs, one_torch_thread):
    inputs = tl_inputs.take(np.arange(30))
    model = _sharp_model(1)
    stats = MonitorStats()
    stream_attention(model, inputs, [stats], batch_size=30, capture=("A", "U", "L", "P"),
                     as_coded=True)
    from partnb.model.part import AttentionProbe

    probe = AttentionProbe(capture=("A", "U", "P"), as_coded=True)
    with torch.no_grad():
        model(torch.as_tensor(inputs.features), torch.as_tensor(inputs.vectors),
              torch.as_tensor(inputs.mask), probe=probe)
    d = n = rows = ge08 = 0
    gaps = []
    for rec in probe.records.values():
        dec = argmax_decisions(rec["A_as_coded"], rec["U"], rec["P_as_coded"], rec["padding_mask"])
        d, n, rows = d + int(dec["D"].sum()), n + int(dec["N"].sum()), rows + int(dec["real"].sum()) * 2
        real = dec["real"].expand(dec["D"].shape)
        ge08 += int((rec["P_as_coded"].amax(-1)[real] >= 0.8).sum())
        logits = (rec["A_as_coded"] + rec["U"]).masked_fill(rec["padding_mask"][:, None, None], -np.inf)
        top2 = logits.topk(2, dim=-1).values[real]
        gaps.append((top2[:, 0] - top2[:, 1]).numpy())
    row = stats.result()
    assert row["D_rate_as_coded"] == pytest.approx(d / rows, abs=1e-12)
    assert row["N_rate_as_coded"] == pytest.approx(n / rows, abs=1e-12)
    assert row["rows_max_ge_0.8_as_coded"] == pytest.approx(ge08 / rows, abs=1e-12)
    assert row["median_logit_gap_as_coded"] == pytest.approx(np.median(np.concatenate(gaps)), abs=0.01)


# --- the monitor inside training ------------------------------------------------------------------


def _params(tmp_path, name, pad_mode="wrap", **train_keys):
    return params_from_dict({
        "name": name, "seed": 5,
        "dataset": {"name": "toplandscape"},
        "features": {"set": "kin", "max_particles": 48, "pad_mode": pad_mode},
        "model": SMALL,
        "train": {"epochs": 2, "batch_size": 20, "lr": 3e-3, "threads": 1, "schedule": "none",
                  **train_keys},
        "analysis": {"progress": False, "batch_size": 40},
        "output": {"models": str(tmp_path / name)},
    }, check_files=False)


def _weights(result):
    return {k: v.clone() for k, v in result.model.state_dict().items()}


def test_monitor_leaves_training_unchanged_and_resumes(tl_inputs, tmp_path, one_torch_thread):
    train_set, val_set = tl_inputs.take(np.arange(0, 240)), tl_inputs.take(np.arange(240, 300))
    plain = train(_params(tmp_path, "off", monitor_jets=0), data=(train_set, val_set), log=lambda _: None)
    watched = train(_params(tmp_path, "on", monitor_jets=50), data=(train_set, val_set), log=lambda _: None)
    for key, value in _weights(plain).items():
        torch.testing.assert_close(_weights(watched)[key], value, rtol=0, atol=0, msg=key)
    assert not (tmp_path / "off" / "monitor_log.json").exists()
    rows = json.loads((tmp_path / "on" / "monitor_log.json").read_text())
    # 12 batches per epoch: steps 0 and 10, then the epoch ends 12 and 24
    assert [r["step"] for r in rows] == [0, 10, 12, 24]
    assert rows[-1]["epoch"] == 2.0
    # interrupted after one epoch, then resumed: the same log and weights
    first = train(_params(tmp_path, "resumed", monitor_jets=50), epochs=1,
                  data=(train_set, val_set), log=lambda _: None)
    assert len(first.log) == 1
    resumed = train(_params(tmp_path, "resumed", monitor_jets=50), data=(train_set, val_set),
                    log=lambda _: None)
    assert resumed.resumed_from == 1
    again = json.loads((tmp_path / "resumed" / "monitor_log.json").read_text())
    assert [r["step"] for r in again] == [r["step"] for r in rows]
    for a, b in zip(again, rows, strict=True):
        for column in MONITOR_COLUMNS:
            assert a[column] == pytest.approx(b[column], rel=1e-6, nan_ok=True), column
    for key, value in _weights(watched).items():
        torch.testing.assert_close(_weights(resumed)[key], value, rtol=0, atol=0, msg=key)


def test_wrap_and_zero_padding_train_differently(tl_inputs, tmp_path, one_torch_thread):
    """The pad mode reaches training (the BatchNorms' statistics see the padded slots) and
    the run key; zero-padded runs keep the key they had before the setting existed, and the
    monitor's settings never enter it."""
    from partnb.params import stable_hash
    from partnb.train import _run_key

    train_set, val_set = tl_inputs.take(np.arange(0, 120)), tl_inputs.take(np.arange(120, 160))
    runs = {mode: _weights(train(_params(tmp_path, mode, monitor_jets=0, epochs=1, pad_mode=mode),
                                 data=(train_set, val_set), log=lambda _: None))
            for mode in ("wrap", "zero")}
    pair_bn = "pair_embed.embed.0.running_mean"
    assert not torch.equal(runs["wrap"][pair_bn], runs["zero"][pair_bn])
    # zero-padded pairs sit at the ln(1e-8) floor: they pull the running mean of ln kT down
    # (most of these jets fill the 48 slots, so the shift is small here)
    assert runs["zero"][pair_bn][0] < runs["wrap"][pair_bn][0]
    keys = {mode: _run_key(_params(tmp_path, "k", monitor_jets=m, pad_mode=mode))
            for mode in ("wrap", "zero") for m in (0,)}
    assert keys["wrap"] != keys["zero"]
    assert _run_key(_params(tmp_path, "k", monitor_jets=123, pad_mode="zero")) == keys["zero"]
    # a zero-padded, plainly batched softmax run on particle-level jets (no weight decay, no
    # attention penalty) keeps the key of the settings before pad_mode, batching,
    # weight_decay_mode, model.attention, train.attention_penalty, train.device and dataset.detector existed,
    # without the keys that only say where the data is read
    old_style = _params(tmp_path, "k", pad_mode="zero", batching="plain")
    legacy = old_style.to_dict()
    del legacy["features"]["pad_mode"]
    del legacy["model"]["attention"]
    for name in ("monitor_jets", "monitor_as_coded", "batching", "weight_decay_mode",
                 "attention_penalty", "device"):
        del legacy["train"][name]
    for name in ("cache_dir", "workers", "format", "detector"):
        del legacy["dataset"][name]
    assert _run_key(old_style) == stable_hash({s: legacy[s] for s in ("dataset", "features",
                                                                      "model", "train", "seed")})


# --- notebook 09 on the tiny run ------------------------------------------------------------------


@pytest.mark.slow
def test_09_tables_of_the_tiny_run(tiny_run):
    import csv

    tmp, _ = tiny_run
    figs = tmp / "figures"
    rows = list(csv.DictReader(open(figs / "09_sparsity_emergence.csv")))
    steps = [int(r["step"]) for r in rows]
    assert steps[0] == 0 and steps == sorted(set(steps))
    for r in rows:
        for column in ("rows_max_ge_0.8", "rows_max_ge_0.8_as_coded", "N_rate", "D_rate",
                       "median_row_max", "mean_norm_entropy", "probe_accuracy"):
            assert 0.0 <= float(r[column]) <= 1.0, column
        assert float(r["median_logit_gap"]) >= 0 and float(r["median_abs_U"]) > 0
    verdict = json.loads((figs / "09_emergence_verdict.json").read_text())
    assert verdict["n_points"] == len(rows) and "rows with max weight" in verdict["verdict"]
    bn = list(csv.DictReader(open(figs / "09_pair_normalisation.csv")))
    assert [r["pair_feature"] for r in bn] == ["ln kT", "ln z", "ln ΔR", "ln m²"]


def test_emergence_summary_on_a_known_curve():
    """A flat start and a jump between two points is "sudden"; a steady rise "gradual"; the
    half-way step is interpolated in log step."""
    from partnb.analysis.emergence import emergence_summary

    steps = [0, 10, 30, 100, 300, 1000, 3000]
    sudden = [0.0, 0.0, 0.001, 0.002, 0.08, 0.095, 0.1]
    rows = [{"step": s, "rows_max_ge_0.8": v, "probe_accuracy": 0.5 + v} for s, v in zip(steps, sudden, strict=True)]
    summary = emergence_summary(rows)
    assert summary["onset"] == "sudden"
    assert summary["largest_jump_share"] == pytest.approx(0.78)
    # half (0.05) is reached between 100 (0.002) and 300 (0.08): log-linear interpolation
    frac = (0.05 - 0.002) / (0.08 - 0.002)
    assert summary["step_half_rows_max_ge_0.8"] == pytest.approx(10 ** (2 + frac * np.log10(3)))
    steady = [{"step": s, "rows_max_ge_0.8": 0.01 * k, "probe_accuracy": 0.5}
              for k, s in enumerate(steps)]
    assert emergence_summary(steady)["onset"] == "gradual"
    assert np.isnan(emergence_summary(steady)["step_90_accuracy"])


def test_a_rise_and_fall_is_named_and_timed_on_its_rise():
    """The fraction peaks and falls back well beyond its errors (as the QG and JetClass-like
    runs do): the summary names the shape and the peak, times the rise up to the peak (the net
    change would put "half of the change" at a step before most of the rise), and the verdict
    says the sharpening does not last. Within the errors, the same curve is a plain rise."""
    from partnb.analysis.emergence import emergence_summary, emergence_verdict

    steps = [0, 10, 30, 100, 300, 1000, 3000]
    values = [0.0, 0.0, 0.01, 0.03, 0.04, 0.02, 0.008]
    rows = [{"step": s, "rows_max_ge_0.8": v, "rows_max_ge_0.8_err": 0.001,
             "probe_accuracy": 0.5 + 0.1 * k, "median_logit_gap": 0.2,
             "rows_max_ge_0.8_as_coded": v} for k, (s, v) in enumerate(zip(steps, values, strict=True))]
    summary = emergence_summary(rows)
    assert summary["shape"] == "rise and fall"
    assert summary["peak_rows_max_ge_0.8"] == 0.04 and summary["step_peak_rows_max_ge_0.8"] == 300
    assert summary["fall_rows_max_ge_0.8_sigma"] == pytest.approx(0.032 / (0.001 * np.sqrt(2)))
    # half of the rise (0.02) between 30 (0.01) and 100 (0.03); the net change (0.008) would
    # give a step between 10 and 30
    assert summary["step_half_rows_max_ge_0.8"] == pytest.approx(10 ** (np.log10(30) + 0.5 * np.log10(100 / 30)))
    assert summary["largest_jump_share"] == pytest.approx(0.5)
    assert summary["net_change"] == pytest.approx(0.008)
    text = emergence_verdict(summary, dataset="toy")
    assert "to a peak of 4.00 % at step 300" in text and "fell back to 0.80 %" in text
    assert "Half of the rise came" in text
    noisy = [{**r, "rows_max_ge_0.8_err": 0.02} for r in rows]
    assert emergence_summary(noisy)["shape"] == "rise"
    flat = [{**r, "rows_max_ge_0.8": 0.0} for r in rows]
    assert emergence_summary(flat)["shape"] == "no rise"


def test_as_coded_interaction_counter_equals_the_monitor(tl_inputs, one_torch_thread):
    """06's D′/N′ (InteractionCounter on the as-coded capture) and the monitor's as-coded
    columns count the same computations the same way; the correct reading is unchanged by
    streaming as coded."""
    from partnb.analysis.interaction import (
        as_coded_interaction_metrics,
        as_coded_rows,
        as_coded_sentence,
    )
    from partnb.reference import INTERACTION_PUBLISHED

    inputs = tl_inputs.take(np.arange(60))
    model = _sharp_model(2)
    stats, plain = MonitorStats(), InteractionCounter()
    stream_attention(model, inputs, [stats], batch_size=30, capture=("A", "U", "L", "P"), as_coded=True)
    stream_attention(model, inputs, [plain], batch_size=30, capture=("A", "U", "L", "P"))
    res = as_coded_interaction_metrics(model, inputs, batch_size=30)
    row = stats.result()
    assert res["as_coded"]["rate_D"] == pytest.approx(row["D_rate_as_coded"], abs=1e-12)
    assert res["as_coded"]["rate_N"] == pytest.approx(row["N_rate_as_coded"], abs=1e-12)
    assert res["correct"]["rate_D"] == pytest.approx(plain.result()["rate_D"], abs=1e-12)
    assert res["as_coded"]["rate_D"] != res["correct"]["rate_D"]
    rows = as_coded_rows(res, INTERACTION_PUBLISHED)
    assert [r["reading"] for r in rows] == ["correct", "as_coded", INTERACTION_PUBLISHED["source"]]
    verdict = as_coded_sentence(res, INTERACTION_PUBLISHED)
    for name, m in verdict["metrics"].items():
        if m["change"] != "unchanged":
            assert (m["change"] == "closer") == (abs(m["as_coded"] - m["paper"]) < abs(m["correct"] - m["paper"])), name
    assert verdict["metrics"]["rate_D"]["change"] != "unchanged"  # D' differs from D here
    with pytest.raises(ValueError, match="variant"):
        InteractionCounter(variant="as coded")


class _Records:
    """Keeps every particle block's record (a brute-force reference)."""

    def __init__(self):
        self.records = []

    def update(self, key, record, batch):
        if isinstance(key, int):
            self.records.append((key, {k: v.clone() for k, v in record.items() if hasattr(v, "clone")}))


def test_head_magnitudes_match_brute_force(one_torch_thread):
    """Per (block, head) medians of |A|, |U| and the rows with max >= 0.8, against numpy on
    the same records: medians within one 0.01-dex bin, row counts exact."""
    from partnb.analysis.emergence import HeadMagnitudes, head_rows
    from partnb.analysis.stream import stream_attention
    from partnb.model.factory import model_from_params

    params = load_params(REPO / "params" / "tiny.yaml")
    torch.manual_seed(3)
    model = model_from_params(params).eval()
    inputs = mixed_jets(80)
    cfg = model.config
    heads, records = HeadMagnitudes(cfg["num_layers"], cfg["num_heads"]), _Records()
    stream_attention(model, inputs, [heads, records], batch_size=20, capture=("A", "U", "P"))
    rows = head_rows(heads, "m")
    assert len(rows) == cfg["num_layers"] * cfg["num_heads"]
    for row in rows:
        a, u, n, ge = [], [], 0, 0
        for key, rec in records.records:
            if key != row["layer"]:
                continue
            real = ~rec["padding_mask"]
            pairs = real[:, :, None] & real[:, None, :]
            a.append(rec["A"][:, row["head"]][pairs].abs().numpy())
            u.append(rec["U"][:, row["head"]][pairs].abs().numpy())
            row_max = rec["P"][:, row["head"]].amax(-1)[real]
            n += row_max.numel()
            ge += int((row_max >= 0.8).sum())
        assert abs(np.log10(row["median_abs_A"]) - np.log10(np.median(np.concatenate(a)))) <= 0.011
        assert abs(np.log10(row["median_abs_U"]) - np.log10(np.median(np.concatenate(u)))) <= 0.011
        assert row["rows"] == n and row["rows_max_ge_0.8"] == pytest.approx(ge / n)
    # heads differ (the check is not comparing a head with itself)
    assert len({round(r["median_abs_A"], 6) for r in rows}) > 1


def test_training_devices_names_each_stretch_of_epochs():
    from partnb.analysis.emergence import training_devices

    rows = [{"epoch": 1}, {"epoch": 2}, {"epoch": 3, "device": "cuda:0 NVIDIA H200"},
            {"epoch": 4, "device": "cuda:0 NVIDIA H200"}, {"epoch": 5}]
    assert training_devices(rows) == "cpu: epochs 1-2; cuda:0 NVIDIA H200: epochs 3-4; cpu: epoch 5"
    assert training_devices([{"epoch": 1}]) == "cpu: epoch 1"

"""Tests of partnb.data.features: feature sets (docs/features.md#feature-sets, docs/features.md#standardisation) and pair features (docs/features.md#pair-features)."""

from __future__ import annotations

import math
import time

import awkward as ak
import numpy as np
import pytest
import torch

from partnb.data.features import (
    FEATURE_SETS,
    PAIR_EPS,
    FeatureError,
    FeatureSpec,
    JetInputs,
    build_inputs,
    pairwise_features,
    pairwise_features_lower_triangle,
    required_branches,
)
from partnb.data.schema import PID_PARTICLE_BRANCHES

LN_EPS = math.log(1e-8)  # -18.420680743952367


def make_jets(jets: list[dict]) -> ak.Array:
    """JetClass-layout records from plain lists: part_* -> jagged float32, jet_* -> float32."""
    counts = np.array([len(jet["part_px"]) for jet in jets], dtype=np.int64)
    fields: dict[str, ak.Array | np.ndarray] = {}
    for name in jets[0]:
        if name.startswith("part_"):
            flat = np.concatenate([np.asarray(jet[name], dtype=np.float32) for jet in jets])
            fields[name] = ak.unflatten(flat, counts)
        elif name == "label":
            fields[name] = np.array([jet[name] for jet in jets], dtype=np.int32)
        else:
            fields[name] = np.array([jet[name] for jet in jets], dtype=np.float32)
    return ak.zip(fields, depth_limit=1)


def f32(values) -> list[float]:
    """The float32-rounded inputs as Python floats (what the jets really hold)."""
    return [float(np.float32(v)) for v in values]


# Three particles: a hard one, a very soft one (below the -5 clip in the log features) and
# one far from the axis (deltaR above the +5 clip).
THREE = {
    "part_px": [120.0, 0.002, -3.0],
    "part_py": [-35.0, 0.0015, 4.0],
    "part_pz": [80.0, 0.001, -12.0],
    "part_energy": [150.0, 0.003, 13.5],
    "part_deta": [0.05, -0.3, 1.9],
    "part_dphi": [-0.02, 0.25, 0.5],
    "part_charge": [1, 0, -1],
    "part_isChargedHadron": [1, 0, 0],
    "part_isNeutralHadron": [0, 0, 0],
    "part_isPhoton": [0, 1, 0],
    "part_isElectron": [0, 0, 1],
    "part_isMuon": [0, 0, 0],
    "part_d0val": [0.5, -2.0, 0.0],
    "part_d0err": [-0.5, 0.3, 2.0],
    "part_dzval": [1.0, 0.1, -0.3],
    "part_dzerr": [0.05, 1.5, -1.0],
    "jet_pt": 500.0,
    "jet_energy": 800.0,
    "label": 3,
}


def kin_by_hand(jet: dict, clip: bool) -> np.ndarray:
    """The 7 kin features of each particle, with the docs/features.md#feature-sets constants written out."""

    def t(x, center, scale):
        y = (x - center) * scale
        return min(max(y, -5.0), 5.0) if clip else y

    jet_pt, jet_e = float(np.float32(jet["jet_pt"])), float(np.float32(jet["jet_energy"]))
    rows = []
    for px, py, e, deta, dphi in zip(
        f32(jet["part_px"]), f32(jet["part_py"]), f32(jet["part_energy"]),
        f32(jet["part_deta"]), f32(jet["part_dphi"]), strict=True,
    ):
        pt = math.sqrt(px * px + py * py)
        rows.append([
            t(math.log(pt), 1.7, 0.7),
            t(math.log(e), 2.0, 0.7),
            t(math.log(pt / jet_pt), -4.7, 0.7),
            t(math.log(e / jet_e), -4.7, 0.7),
            t(math.sqrt(deta * deta + dphi * dphi), 0.2, 4.0),
            deta,
            dphi,
        ])
    return np.array(rows).T  # (7, n)


# --- feature-set tables ------------------------------------------------------------------

def test_feature_set_tables_match_spec():
    kin = [
        ("part_pt_log", 1.7, 0.7), ("part_e_log", 2.0, 0.7), ("part_logptrel", -4.7, 0.7),
        ("part_logerel", -4.7, 0.7), ("part_deltaR", 0.2, 4.0),
    ]
    pid = [
        "part_charge", "part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton",
        "part_isElectron", "part_isMuon",
    ]
    angles = ["part_deta", "part_dphi"]
    impact = ["part_d0", "part_d0err", "part_dz", "part_dzerr"]
    names = {key: [spec.name for spec in specs] for key, specs in FEATURE_SETS.items()}
    kin_names = [name for name, _, _ in kin]
    assert names["kin"] == kin_names + angles
    assert names["kinpid"] == kin_names + pid + angles
    assert names["full"] == kin_names + pid + impact + angles
    plus = pid.copy()
    plus[1:3] = ["part_isCHad", "part_isNHad"]
    assert names["kinpidplus"] == kin_names + plus + angles
    assert [len(FEATURE_SETS[k]) for k in ("kin", "kinpid", "kinpidplus", "full")] == [7, 13, 13, 17]
    assert tuple(pid) == PID_PARTICLE_BRANCHES
    for specs in FEATURE_SETS.values():
        for spec in specs:
            if spec.name in dict.fromkeys(kin_names):
                center, scale = next((c, s) for n, c, s in kin if n == spec.name)
                assert (spec.center, spec.scale, spec.lo, spec.hi) == (center, scale, -5.0, 5.0)
            elif spec.name in ("part_d0err", "part_dzerr"):
                assert (spec.center, spec.scale, spec.lo, spec.hi) == (0.0, 1.0, 0.0, 1.0)
            else:
                assert spec.is_raw
    with pytest.raises(AttributeError):
        FEATURE_SETS["kin"][0].center = 0.0  # frozen


def test_required_branches():
    assert required_branches("kin") == (
        "part_px", "part_py", "part_pz", "part_energy", "jet_pt", "jet_energy",
        "part_deta", "part_dphi",
    )
    assert set(required_branches("kinpid")) == set(required_branches("kin")) | set(
        PID_PARTICLE_BRANCHES
    )
    full = set(required_branches("full"))
    assert {"part_d0val", "part_d0err", "part_dzval", "part_dzerr"} <= full
    assert "part_d0" not in full
    plus = set(required_branches("kinpidplus"))
    assert "part_pid" in plus
    assert not {"part_isChargedHadron", "part_isNeutralHadron"} & plus
    with pytest.raises(ValueError, match="unknown feature set"):
        required_branches("kinematics")


# --- particle features by hand ----------------------------------------------------------------

@pytest.mark.parametrize("clip", [True, False])
def test_kin_features_by_hand(clip):
    inputs = build_inputs(make_jets([THREE]), "kin", max_particles=3, clip=clip)
    assert inputs.features.shape == (1, 7, 3)
    assert inputs.features.dtype == np.float32
    expected = kin_by_hand(THREE, clip=clip)
    np.testing.assert_allclose(inputs.features[0], expected, rtol=1e-6, atol=1e-6)
    assert inputs.feature_names == tuple(spec.name for spec in FEATURE_SETS["kin"])


def test_clipping_at_five():
    jets = make_jets([THREE])
    clipped = build_inputs(jets, "kin", max_particles=3).features[0]
    raw = build_inputs(jets, "kin", max_particles=3, clip=False).features[0]
    # soft particle 1: pt_log, e_log, logptrel, logerel all below -5 without the clip
    assert np.all(raw[:4, 1] < -5) and np.all(clipped[:4, 1] == -5)
    # particle 2 at deltaR = hypot(1.9, 0.5): (1.9646 - 0.2) * 4 = 7.06 > 5
    assert raw[4, 2] == pytest.approx((math.hypot(1.9, 0.5) - 0.2) * 4, rel=1e-6)
    assert clipped[4, 2] == 5
    # unclipped values are identical where the clip is inactive
    np.testing.assert_array_equal(clipped[:, 0], raw[:, 0])
    assert np.all(np.abs(clipped) <= 5)


@pytest.mark.parametrize("clip", [True, False])
def test_full_features_by_hand(clip):
    inputs = build_inputs(make_jets([THREE]), "full", max_particles=3, clip=clip)
    x = inputs.features[0]
    assert x.shape == (17, 3)
    kin = kin_by_hand(THREE, clip=clip)
    np.testing.assert_allclose(x[:5], kin[:5], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x[15:], kin[5:], rtol=1e-6)
    for row, name in enumerate(PID_PARTICLE_BRANCHES, start=5):
        np.testing.assert_array_equal(x[row], THREE[name])
    np.testing.assert_allclose(x[11], [math.tanh(v) for v in f32(THREE["part_d0val"])], rtol=1e-6)
    np.testing.assert_allclose(x[13], [math.tanh(v) for v in f32(THREE["part_dzval"])], rtol=1e-6)
    # d0err / dzerr: clipped to [0, 1] even with clip=False (docs/features.md#standardisation)
    np.testing.assert_allclose(x[12], [0.0, 0.3, 1.0], rtol=1e-6)
    np.testing.assert_allclose(x[14], [0.05, 1.0, 0.0], rtol=1e-6)


def test_kinpid_pid_rows():
    x = build_inputs(make_jets([THREE]), "kinpid", max_particles=3).features[0]
    assert x.shape == (13, 3)
    for row, name in enumerate(PID_PARTICLE_BRANCHES, start=5):
        np.testing.assert_array_equal(x[row], THREE[name])
    np.testing.assert_allclose(x[11:], kin_by_hand(THREE, clip=True)[5:], rtol=1e-6)


def test_kinpidplus_weights():
    pid = [211, -321, 2212, -2112, 130, 22, 2112, -11, 13, 321]
    n = len(pid)
    jet = {
        "part_px": [10.0 - i for i in range(n)], "part_py": [1.0] * n, "part_pz": [2.0] * n,
        "part_energy": [12.0 - i for i in range(n)], "part_deta": [0.1] * n,
        "part_dphi": [0.1] * n, "part_charge": [1, -1, 1, 0, 0, 0, 0, 1, -1, 1],
        "part_isPhoton": [0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
        "part_isElectron": [0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
        "part_isMuon": [0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        "part_pid": pid, "jet_pt": 60.0, "jet_energy": 80.0,
    }
    x = build_inputs(make_jets([jet]), "kinpidplus", max_particles=n).features[0]
    np.testing.assert_allclose(x[6], [1.0, 0.5, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5], rtol=1e-7)
    np.testing.assert_allclose(x[7], [0.0, 0.0, 0.0, 0.2, 1.0, 0.0, 0.2, 0.0, 0.0, 0.0], rtol=1e-7)
    np.testing.assert_array_equal(x[5], jet["part_charge"])
    np.testing.assert_array_equal(x[8:11], [jet["part_isPhoton"], jet["part_isElectron"],
                                            jet["part_isMuon"]])


# --- padding, truncation, labels -------------------------------------------------------------

def _ten_particles() -> dict:
    n = 10
    return {
        "part_px": [float(50 - 4 * i) for i in range(n)], "part_py": [1.0] * n,
        "part_pz": [3.0] * n, "part_energy": [float(60 - 4 * i) for i in range(n)],
        "part_deta": [0.01 * i for i in range(n)], "part_dphi": [-0.01 * i for i in range(n)],
        "jet_pt": 300.0, "jet_energy": 400.0,
    }


def test_zero_padding():
    empty = {key: ([] if key.startswith("part_") else value) for key, value in THREE.items()}
    inputs = build_inputs(make_jets([THREE, empty]), "full", max_particles=5)
    assert inputs.mask.shape == (2, 1, 5) and inputs.mask.dtype == np.float32
    np.testing.assert_array_equal(inputs.mask[:, 0], [[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(inputs.n_particles, [3, 0])
    assert inputs.n_particles.dtype == np.int64
    assert np.all(inputs.features[0, :, 3:] == 0) and np.all(inputs.vectors[0, :, 3:] == 0)
    assert np.all(inputs.features[1] == 0) and np.all(inputs.vectors[1] == 0)
    np.testing.assert_allclose(
        inputs.vectors[0, :, :3],
        [THREE["part_px"], THREE["part_py"], THREE["part_pz"], THREE["part_energy"]],
        rtol=1e-7,
    )


def test_truncation_keeps_first_particles():
    jet = _ten_particles()
    inputs = build_inputs(make_jets([jet, THREE]), "kin", max_particles=4)
    assert inputs.features.shape == (2, 7, 4)
    np.testing.assert_array_equal(inputs.n_particles, [4, 3])
    np.testing.assert_array_equal(inputs.mask[:, 0], [[1, 1, 1, 1], [1, 1, 1, 0]])
    np.testing.assert_allclose(inputs.vectors[0, 0], jet["part_px"][:4])
    np.testing.assert_allclose(inputs.vectors[0, 3], jet["part_energy"][:4])
    full_length = build_inputs(make_jets([jet]), "kin", max_particles=10)
    np.testing.assert_array_equal(inputs.features[0], full_length.features[0, :, :4])


def test_labels_len_and_torch():
    with_label = build_inputs(make_jets([THREE, THREE]), "kin", max_particles=3)
    np.testing.assert_array_equal(with_label.label, [3, 3])
    assert with_label.label.dtype == np.int64
    jet = _ten_particles()  # no label field
    without = build_inputs(make_jets([jet]), "kin", max_particles=16)
    np.testing.assert_array_equal(without.label, [-1])
    assert len(with_label) == 2 and len(without) == 1
    tensors = with_label.to_torch()
    assert set(tensors) == {"features", "vectors", "mask", "label", "n_particles"}
    assert tensors["features"].dtype == torch.float32 and tensors["features"].shape == (2, 7, 3)
    assert tensors["label"].dtype == torch.int64
    assert isinstance(with_label, JetInputs)


def test_float64_output():
    inputs = build_inputs(make_jets([THREE]), "kin", max_particles=4, dtype=np.float64)
    assert inputs.features.dtype == inputs.vectors.dtype == inputs.mask.dtype == np.float64
    np.testing.assert_allclose(inputs.features[0, :, :3], kin_by_hand(THREE, True), rtol=1e-12)


# --- errors and NaN ------------------------------------------------------------------------------

def test_missing_pid_branches_raise_feature_error():
    kin_only = make_jets([_ten_particles()])  # like TopLandscape: kinematic branches only
    with pytest.raises(FeatureError, match=r"'kinpid'.*part_charge.*part_isMuon"):
        build_inputs(kin_only, "kinpid")
    with pytest.raises(FeatureError, match="part_d0val"):
        build_inputs(make_jets([{k: v for k, v in THREE.items() if k != "part_d0val"}]), "full")
    with pytest.raises(FeatureError, match=r"'kinpidplus'.*part_pid"):
        build_inputs(make_jets([THREE]), "kinpidplus")
    with pytest.raises(FeatureError, match="jet_energy"):
        build_inputs(make_jets([{k: v for k, v in THREE.items() if k != "jet_energy"}]), "kin")
    assert issubclass(FeatureError, ValueError)


def test_bad_arguments():
    jets = make_jets([THREE])
    with pytest.raises(ValueError, match="unknown feature set"):
        build_inputs(jets, "kinematic")
    with pytest.raises(ValueError, match="max_particles"):
        build_inputs(jets, "kin", max_particles=0)
    with pytest.raises(TypeError, match="dtype"):
        build_inputs(jets, "kin", dtype=np.int32)


def test_nan_replaced_by_zero_with_one_warning():
    jet = dict(THREE)
    jet["part_energy"] = [150.0, float("nan"), 13.5]
    with pytest.warns(RuntimeWarning, match=r"part_e_log \(1\).*part_logerel \(1\)") as record:
        inputs = build_inputs(make_jets([jet]), "kin", max_particles=4)
    assert len(record) == 1
    assert "part_energy (1)" in str(record[0].message)
    assert inputs.features[0, 1, 1] == 0 and inputs.features[0, 3, 1] == 0
    assert inputs.vectors[0, 3, 1] == 0
    assert np.all(np.isfinite(inputs.features))
    expected = kin_by_hand(THREE, clip=True)
    np.testing.assert_allclose(inputs.features[0, 0, :3], expected[0], rtol=1e-6)


# --- vectorisation sanity ------------------------------------------------------------------------

def synthetic_jets(n_jets: int, seed: int = 0) -> ak.Array:
    """Random JetClass-like jets with all branches (float32), multiplicities 1..200."""
    rng = np.random.default_rng(seed)
    counts = np.clip(rng.poisson(45, n_jets), 1, 200)
    total = int(counts.sum())
    pt = rng.exponential(10.0, total) + 0.1
    eta, phi = rng.normal(0, 0.3, total), rng.normal(0, 0.3, total)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    flat = {
        "part_px": px, "part_py": py, "part_pz": pz,
        "part_energy": np.sqrt(px**2 + py**2 + pz**2), "part_deta": eta, "part_dphi": phi,
    }
    for name in ("part_d0val", "part_d0err", "part_dzval", "part_dzerr"):
        flat[name] = rng.normal(0, 1, total)
    for name in PID_PARTICLE_BRANCHES:
        flat[name] = rng.integers(0, 2, total)
    fields = {k: ak.unflatten(v.astype(np.float32), counts) for k, v in flat.items()}
    fields["jet_pt"] = np.full(n_jets, 600.0, dtype=np.float32)
    fields["jet_energy"] = np.full(n_jets, 900.0, dtype=np.float32)
    fields["label"] = rng.integers(0, 10, n_jets).astype(np.int32)
    return ak.zip(fields, depth_limit=1)


def test_build_inputs_on_20k_jets():
    jets = synthetic_jets(20_000)
    counts = ak.to_numpy(ak.num(jets["part_px"], axis=1))
    for feature_set, channels in (("kin", 7), ("full", 17)):
        start = time.perf_counter()
        inputs = build_inputs(jets, feature_set, max_particles=128)
        elapsed = time.perf_counter() - start
        print(f"build_inputs {feature_set}: {len(jets) / elapsed:.0f} jets/s")
        assert inputs.features.shape == (20_000, channels, 128)
        np.testing.assert_array_equal(inputs.n_particles, np.minimum(counts, 128))
        np.testing.assert_array_equal(inputs.mask.sum(axis=(1, 2)), np.minimum(counts, 128))
        assert np.all(np.isfinite(inputs.features))
    # spot check: one jet against a batch of one
    single = build_inputs(jets[1234:1235], "full", max_particles=128)
    np.testing.assert_array_equal(single.features[0], inputs.features[1234])


@pytest.mark.parametrize("max_particles", [1, 30, 50])
def test_truncated_batch_equals_jets_one_by_one(max_particles):
    # truncation goes through a mask over the flat particle list: each jet of a batch with
    # mixed multiplicities (some cut, some padded) equals the same jet built alone
    jets = synthetic_jets(300)
    counts = ak.to_numpy(ak.num(jets["part_px"], axis=1))
    assert (counts > max_particles).any() and (max_particles == 1 or (counts < max_particles).any())
    batch = build_inputs(jets, "full", max_particles=max_particles)
    for i in (0, 1, int(np.argmax(counts)), int(np.argmin(counts)), 299):
        alone = build_inputs(jets[i : i + 1], "full", max_particles=max_particles)
        for field in ("features", "vectors", "mask"):
            np.testing.assert_array_equal(getattr(batch, field)[i], getattr(alone, field)[0])
        assert batch.n_particles[i] == min(counts[i], max_particles)


# --- pairwise features ------------------------------------------------------------------------------

def pair_by_hand(a, b, eps=1e-8) -> list[float]:
    """[ln kT, ln z, ln Δ, ln m²] of one pair, scalar math (docs/features.md#pair-features)."""

    def pt_y_phi(v):
        px, py, pz, e = v
        return (
            math.sqrt(px * px + py * py),
            0.5 * math.log(1 + 2 * pz / max(e - pz, 1e-20)),
            math.atan2(py, px),
        )

    pt_a, y_a, phi_a = pt_y_phi(a)
    pt_b, y_b, phi_b = pt_y_phi(b)
    dphi = (phi_a - phi_b + math.pi) % (2 * math.pi) - math.pi  # Python % is a floor-mod
    delta = math.sqrt((y_a - y_b) ** 2 + dphi**2)
    pt_min = min(pt_a, pt_b)
    m2 = (a[3] + b[3]) ** 2 - sum((a[k] + b[k]) ** 2 for k in range(3))
    return [
        math.log(max(pt_min * delta, eps)),
        math.log(max(pt_min / max(pt_a + pt_b, eps), eps)),
        math.log(max(delta, eps)),
        math.log(max(m2, eps)),
    ]


def random_vectors(n_jets: int, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.normal(0.0, 20.0, (n_jets, 3, n))
    mass = rng.uniform(0.0, 2.0, (n_jets, 1, n))
    energy = np.sqrt((p**2).sum(axis=1, keepdims=True) + mass**2)
    v = np.concatenate([p, energy], axis=1)
    v[:, :, -1] = 0.0  # one zero-padded slot per jet
    return v


def test_pairwise_matches_scalar_loop():
    v = random_vectors(2, 7)
    out = pairwise_features(v)
    assert out.shape == (2, 4, 7, 7) and out.dtype == torch.float64
    expected = np.empty((2, 4, 7, 7))
    for jet in range(2):
        for i in range(7):
            for j in range(7):
                expected[jet, :, i, j] = pair_by_hand(v[jet, :, i], v[jet, :, j])
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-10)


def test_pairwise_special_values():
    massive = [1.0, 2.0, 3.0, math.sqrt(14.0 + 0.25)]
    massless = [3.0, 4.0, 0.0, 5.0]  # m² = 0 exactly
    zero = [0.0, 0.0, 0.0, 0.0]
    v = torch.tensor([massive, massless, zero, zero], dtype=torch.float64).T.unsqueeze(0)
    out = pairwise_features(v)[0]
    # self pair: ln Δ = ln kT = ln 1e-8, ln z = ln 1/2
    for i in (0, 1):
        assert out[2, i, i].item() == pytest.approx(LN_EPS, abs=1e-12)
        assert out[0, i, i].item() == pytest.approx(LN_EPS, abs=1e-12)
        assert out[1, i, i].item() == pytest.approx(math.log(0.5), abs=1e-12)
    assert LN_EPS == pytest.approx(-18.4207, abs=1e-4)
    # massless with a zero vector: ln kT = ln z = ln m² = ln eps, ln Δ finite (y = 0, φ = 0)
    for channel in (0, 1, 3):
        assert out[channel, 1, 2].item() == pytest.approx(LN_EPS, abs=1e-12)
    assert out[2, 1, 2].item() == pytest.approx(math.log(math.atan2(4.0, 3.0)), abs=1e-12)
    # two zero vectors: all four ln eps
    np.testing.assert_allclose(out[:, 2, 3].numpy(), [LN_EPS] * 4, atol=1e-12)
    assert torch.isfinite(out).all()


def test_pairwise_delta_phi_wraps():
    v = torch.tensor(
        [[math.cos(3.1), math.cos(-3.1)], [math.sin(3.1), math.sin(-3.1)], [0.0, 0.0], [1.0, 1.0]],
        dtype=torch.float64,
    ).unsqueeze(0)
    ln_delta = pairwise_features(v, num_features=1)[0, 0, 0, 1].item()
    assert math.exp(ln_delta) == pytest.approx(2 * math.pi - 6.2, abs=1e-12)  # 0.0831853
    assert math.exp(ln_delta) == pytest.approx(0.0831853, abs=1e-7)


def test_pairwise_uses_rapidity_not_pseudorapidity():
    mass = 2.0
    a = [1.0, 0.0, 2.0, math.sqrt(1.0 + 4.0 + mass**2)]  # E = 3: y = ½ ln 5, η = asinh 2
    b = [1.0, 0.0, 0.0, 1.0]  # y = η = 0, same φ
    v = torch.tensor([a, b], dtype=torch.float64).T.unsqueeze(0)
    delta = math.exp(pairwise_features(v)[0, 2, 0, 1].item())
    assert delta == pytest.approx(0.5 * math.log(5.0), abs=1e-12)
    assert abs(delta - math.asinh(2.0)) > 0.5


def test_pairwise_channel_order():
    a, b = [10.0, 0.0, 0.0, 10.0], [0.0, 2.0, 0.0, 2.0]  # Δ = π/2, pT 10 and 2, m² = 40
    v = torch.tensor([a, b], dtype=torch.float64).T.unsqueeze(0)
    out = pairwise_features(v)[0, :, 0, 1].numpy()
    expected = [math.log(2 * math.pi / 2), math.log(2 / 12), math.log(math.pi / 2), math.log(40.0)]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(pairwise_features(v, num_features=1)[0, 0], pairwise_features(v)[0, 2])
    np.testing.assert_array_equal(pairwise_features(v, num_features=3), pairwise_features(v)[:, :3])
    for bad in (0, 2, 5, 8):
        with pytest.raises(ValueError, match="num_features"):
            pairwise_features(v, num_features=bad)
    with pytest.raises(ValueError, match="shape"):
        pairwise_features(torch.zeros(1, 3, 5))


def test_pairwise_symmetric_and_lower_triangle():
    v = torch.from_numpy(random_vectors(3, 9, seed=7))
    full = pairwise_features(v)
    torch.testing.assert_close(full, full.transpose(-1, -2), rtol=0, atol=1e-12)
    tril = pairwise_features_lower_triangle(v)
    i, j = torch.tril_indices(9, 9)
    assert tril.shape == (3, 4, 9 * 10 // 2)
    torch.testing.assert_close(tril, full[:, :, i, j], rtol=0, atol=0)
    v32 = v.float()
    torch.testing.assert_close(pairwise_features_lower_triangle(v32, num_features=3),
                               pairwise_features(v32, num_features=3)[:, :, i, j], rtol=0, atol=0)


def test_pairwise_mask_zeroes_padded_pairs():
    v = random_vectors(2, 6, seed=3)
    mask = np.ones((2, 1, 6), dtype=np.float32)
    mask[0, 0, 4:] = 0
    mask[1, 0, 5:] = 0
    plain, masked = pairwise_features(v), pairwise_features(v, mask=mask)
    real = torch.from_numpy(mask[:, 0] != 0)
    pair_real = (real[:, :, None] & real[:, None, :]).unsqueeze(1).expand_as(plain)
    assert torch.all(masked[~pair_real] == 0)
    torch.testing.assert_close(masked[pair_real], plain[pair_real], rtol=0, atol=0)
    torch.testing.assert_close(pairwise_features(v, mask=mask[:, 0]), masked, rtol=0, atol=0)


def test_pairwise_dtype_and_self_pair_mass_noise():
    # A light particle (m = 1 MeV) at |p| ≈ 110 GeV: self-pair m² = 4 m² = 4e-6 GeV² is a
    # cancellation of two ≈ 4.8e4 GeV² terms (docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise).
    p = [60.0, -45.0, 80.0]
    mass = 1e-3
    vec = p + [math.sqrt(sum(x * x for x in p) + mass**2)]
    v64 = torch.tensor([vec], dtype=torch.float64).T.unsqueeze(0)
    ln_m2_64 = pairwise_features(v64)[0, 3, 0, 0]
    ln_m2_32 = pairwise_features(v64.float())[0, 3, 0, 0]
    assert ln_m2_64.dtype == torch.float64 and ln_m2_32.dtype == torch.float32
    truth = math.log(4 * mass**2)  # -12.43
    assert ln_m2_64.item() == pytest.approx(truth, abs=1e-4)  # float64 resolves the mass
    # float32 cannot: its value is rounding noise (floored at ln eps), far from the truth
    assert LN_EPS - 1e-5 <= ln_m2_32.item() and math.isfinite(ln_m2_32.item())
    assert abs(ln_m2_32.item() - truth) > 1.0


def test_feature_spec_transform():
    spec = FeatureSpec("x", 1.0, 2.0)
    np.testing.assert_array_equal(spec.transform(np.array([0.0, 1.5, 9.0])), [-2.0, 1.0, 5.0])
    np.testing.assert_array_equal(spec.transform(np.array([9.0]), clip=False), [16.0])
    raw = FeatureSpec("y")
    values = np.array([100.0])
    assert raw.transform(values) is values
    assert PAIR_EPS == 1e-8

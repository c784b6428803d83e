"""Tests of partnb.data.io: every supported format, written here in its exact real layout."""

from __future__ import annotations

import math
import zipfile

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot

from partnb.data import io, writer
from partnb.data.io import DataError
from partnb.data.schema import (
    JET_BRANCHES,
    JETCLASS_CLASSES,
    JETCLASS_LABEL_DTYPES,
    KINEMATIC_PARTICLE_BRANCHES,
    PARTICLE_BRANCHES,
    PID_PARTICLE_BRANCHES,
)

N_JETS = 30
TL_MAX = 200  # constituent columns of the real TopLandscape files
QG_MAX = 60  # padded particle axis of the QuarkGluon npz fixture


# --------------------------------------------------------------------------------------
# synthetic, physical-looking jets
# --------------------------------------------------------------------------------------


def make_jets(seed: int, n_jets: int = N_JETS, counts=None) -> dict[str, np.ndarray]:
    """pT-ordered massless constituents around a jet axis; flat arrays plus counts."""
    rng = np.random.default_rng(seed)
    if counts is None:
        counts = rng.integers(20, 51, n_jets)
    counts = np.asarray(counts, dtype=np.int64)
    axis_eta = rng.uniform(-1.8, 1.8, n_jets)
    axis_phi = rng.uniform(-np.pi, np.pi, n_jets)
    axis_eta[0], axis_phi[0] = -1.2, np.pi - 0.02  # negative eta, straddles +-pi
    axis_eta[1] = 0.9
    total = int(counts.sum())
    jet = np.repeat(np.arange(n_jets), counts)
    pt = rng.exponential(15.0, total) + 0.5
    # sort pt descending inside each jet
    order = np.lexsort((-pt, jet))
    pt = pt[order]
    eta = axis_eta[jet] + rng.normal(0, 0.25, total)
    phi = axis_phi[jet] + rng.normal(0, 0.25, total)
    phi = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    pid = rng.choice([211, -211, 22, 130, 321, -2212, 11, -13, 2112], total)
    return {
        "counts": counts, "pt": pt, "eta": eta, "phi": phi, "pid": pid.astype(np.float64),
        "px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta),
        "energy": pt * np.cosh(eta), "classes": rng.integers(0, 10, n_jets),
        "binary": rng.integers(0, 2, n_jets),
    }


def hand_kinematics(px, py, pz, e):
    """Hand calculation (plain Python, one jet) of the converter kinematics (docs/datasets.md#top-landscape)."""
    jx, jy, jz, je = sum(px), sum(py), sum(pz), sum(e)
    jpt = math.hypot(jx, jy)
    jeta = math.asinh(jz / jpt)
    jphi = math.atan2(jy, jx)
    jm = math.sqrt(max(je**2 - jx**2 - jy**2 - jz**2, 0.0))
    sign = 1.0 if jeta >= 0 else -1.0
    deta, dphi = [], []
    for x, y, z in zip(px, py, pz, strict=True):
        pt = math.hypot(x, y)
        deta.append((math.asinh(z / pt) - jeta) * sign)
        d = math.atan2(y, x) - jphi
        while d >= math.pi:
            d -= 2 * math.pi
        while d < -math.pi:
            d += 2 * math.pi
        dphi.append(d)
    return {"jet_pt": jpt, "jet_eta": jeta, "jet_phi": jphi, "jet_energy": je, "jet_mass": jm,
            "part_deta": deta, "part_dphi": dphi}


def jagged(values, counts, dtype=np.float32):
    return ak.unflatten(np.asarray(values).astype(dtype), np.asarray(counts))


def jetclass_branches(j: dict[str, np.ndarray]) -> dict[str, object]:
    """All docs/datasets.md#jetclass branches with the real dtypes (labels mixed)."""
    counts = j["counts"]
    idx = np.repeat(np.arange(len(counts)), counts)
    jx, jy, jz, je = (np.bincount(idx, j[k], len(counts)) for k in ("px", "py", "pz", "energy"))
    jpt = np.hypot(jx, jy)
    jeta, jphi = np.arcsinh(jz / np.maximum(jpt, 1e-9)), np.arctan2(jy, jx)
    sign = np.where(jeta >= 0, 1.0, -1.0)
    rng = np.random.default_rng(99)
    total = int(counts.sum())
    data: dict[str, object] = {
        "part_px": jagged(j["px"], counts), "part_py": jagged(j["py"], counts),
        "part_pz": jagged(j["pz"], counts), "part_energy": jagged(j["energy"], counts),
        "part_deta": jagged((j["eta"] - jeta[idx]) * sign[idx], counts),
        "part_dphi": jagged(np.mod(j["phi"] - jphi[idx] + np.pi, 2 * np.pi) - np.pi, counts),
        "part_d0val": jagged(rng.normal(0, 0.1, total), counts),
        "part_d0err": jagged(rng.uniform(0, 0.2, total), counts),
        "part_dzval": jagged(rng.normal(0, 0.1, total), counts),
        "part_dzerr": jagged(rng.uniform(0, 0.2, total), counts),
        "part_charge": jagged(np.sign(j["pid"]) * (np.abs(j["pid"]) != 22), counts),
        "part_isChargedHadron": jagged(np.isin(np.abs(j["pid"]), (211, 321, 2212)), counts),
        "part_isNeutralHadron": jagged(np.isin(j["pid"], (130, 2112)), counts),
        "part_isPhoton": jagged(j["pid"] == 22, counts),
        "part_isElectron": jagged(np.abs(j["pid"]) == 11, counts),
        "part_isMuon": jagged(np.abs(j["pid"]) == 13, counts, np.int32),
    }
    for k, (name, dtype) in enumerate(JETCLASS_LABEL_DTYPES.items()):
        data[name] = (j["classes"] == k).astype(dtype)
    data.update({
        "jet_pt": jpt.astype(np.float32), "jet_eta": jeta.astype(np.float32),
        "jet_phi": jphi.astype(np.float32), "jet_energy": je.astype(np.float32),
        "jet_nparticles": counts.astype(np.float32),
        "jet_sdmass": rng.uniform(10, 200, len(counts)).astype(np.float32),
    })
    for t in range(1, 5):
        data[f"jet_tau{t}"] = rng.uniform(0, 1, len(counts)).astype(np.float32)
    data["aux_genpart_eta"] = ak.Array([[0.1, 0.2]] * len(counts))
    data["aux_truth_match"] = np.ones(len(counts), np.int32)
    return data


def write_root_directly(path, data, *, rntuple: bool = False) -> None:
    """Write with uproot itself (not our writer): a TTree like the real files, by default."""
    with uproot.recreate(path) as fh:
        if rntuple:  # uproot >= 5.7 writes an RNTuple for a plain assignment
            fh["tree"] = data
            return
        types = {k: (ak.type(v) if isinstance(v, ak.Array) else v.dtype) for k, v in data.items()}
        fh.mktree("tree", types)
        fh["tree"].extend(data)


def write_tl_h5(path, j, fmt="table", drop=()) -> pd.DataFrame:
    counts = j["counts"]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    cols = {}
    for i in range(TL_MAX):  # interleaved E_i, PX_i, PY_i, PZ_i as in the real files
        for prefix, key in (("E", "energy"), ("PX", "px"), ("PY", "py"), ("PZ", "pz")):
            col = np.zeros(len(counts), np.float32)
            has = counts > i
            col[has] = j[key][offsets[:-1][has] + i]
            cols[f"{prefix}_{i}"] = col
    for name in ("truthE", "truthPX", "truthPY", "truthPZ"):
        cols[name] = np.ones(len(counts), np.float32)
    cols["ttv"] = np.zeros(len(counts), np.int64)
    cols["is_signal_new"] = j["binary"].astype(np.int64)
    df = pd.DataFrame(cols)
    df = df.drop(columns=list(drop))
    df.to_hdf(path, key="table", format=fmt)
    return df


def qg_padded(j, rng) -> np.ndarray:
    """(N, QG_MAX, 4) = (pt, y, phi, pid), shuffled particles, zero padded, phi in [0, 2pi)."""
    counts = j["counts"]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    X = np.zeros((len(counts), QG_MAX, 4))
    for i, n in enumerate(counts):
        sl = slice(offsets[i], offsets[i + 1])
        block = np.stack([j["pt"][sl], j["eta"][sl], np.mod(j["phi"][sl], 2 * np.pi),
                          j["pid"][sl]], axis=1)
        X[i, :n] = block[rng.permutation(n)]
    return X


def write_parquet(path, j, qg: bool) -> None:
    counts = j["counts"]
    data = jetclass_branches(j)
    rec = {"label": j["binary"].astype(np.int64)}
    for name in ("jet_pt", "jet_eta", "jet_phi", "jet_energy"):
        rec[name] = data[name]
    rec["jet_mass"] = np.full(len(counts), 12.5, np.float32)
    rec["jet_nparticles"] = counts.astype(np.int64)
    for name in KINEMATIC_PARTICLE_BRANCHES:
        rec[name] = data[name]
    if qg:
        rec["part_pid"] = jagged(j["pid"], counts)
        for name in PID_PARTICLE_BRANCHES:
            rec[name] = ak.values_astype(data[name], np.float32)
    ak.to_parquet(ak.Array(rec), path, compression="LZ4", compression_level=4)


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("formats")
    out = {}
    j = make_jets(1)
    out["jets_jc"] = j
    write_root_directly(d / "jetclass.root", jetclass_branches(j))
    out["jetclass-root"] = d / "jetclass.root"

    jt = make_jets(2)
    out["jets_tl"] = jt
    write_tl_h5(d / "tl_table.h5", jt, "table")
    out["toplandscape-h5"] = d / "tl_table.h5"
    write_tl_h5(d / "tl_fixed.h5", jt, "fixed")
    out["tl-fixed"] = d / "tl_fixed.h5"

    jq = make_jets(3)
    out["jets_qg"] = jq
    X = qg_padded(jq, np.random.default_rng(4))
    np.savez_compressed(d / "QG_jets.npz", X=X, y=jq["binary"].astype(np.float64))
    out["quarkgluon-npz"] = d / "QG_jets.npz"
    np.savez(d / "QG_jets_stored.npz", X=X, y=jq["binary"].astype(np.float64))
    out["qg-stored"] = d / "QG_jets_stored.npz"

    write_parquet(d / "tl_converted.parquet", jt, qg=False)
    out["toplandscape-parquet"] = d / "tl_converted.parquet"
    write_parquet(d / "qg_converted.parquet", jq, qg=True)
    out["quarkgluon-parquet"] = d / "qg_converted.parquet"

    tl_root = {k: v for k, v in jetclass_branches(jt).items() if k in KINEMATIC_PARTICLE_BRANCHES}
    tl_root["label"] = jt["binary"].astype(np.int32)
    tl_root["jet_pt"] = np.ones(N_JETS, np.float32)
    write_root_directly(d / "tl.root", tl_root)
    out["toplandscape-root"] = d / "tl.root"
    qg_root = dict(tl_root)
    qg_root["part_isChargedHadron"] = jagged(np.zeros(int(jt["counts"].sum())), jt["counts"])
    write_root_directly(d / "qg.root", qg_root)
    out["quarkgluon-root"] = d / "qg.root"
    return out


FORMAT_KEYS = [
    "jetclass-root", "toplandscape-root", "quarkgluon-root", "toplandscape-h5",
    "quarkgluon-npz", "toplandscape-parquet", "quarkgluon-parquet",
]


# --------------------------------------------------------------------------------------
# detection, counting
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMAT_KEYS)
def test_detect_format(files, fmt):
    assert io.detect_format(files[fmt]) == fmt
    assert io.count_jets(files[fmt]) == N_JETS
    assert io.dataset_of_format(fmt) == fmt.split("-")[0]


def test_detect_by_content_not_extension(files, tmp_path):
    for key, name in (("quarkgluon-npz", "a.root"), ("toplandscape-h5", "b.parquet"),
                      ("jetclass-root", "c.h5")):
        target = tmp_path / name
        target.write_bytes(files[key].read_bytes())
        assert io.detect_format(target) == key
    assert io.detect_format(files["tl-fixed"]) == "toplandscape-h5"
    assert io.count_jets(files["tl-fixed"]) == N_JETS
    assert io.detect_format(files["qg-stored"]) == "quarkgluon-npz"
    with pytest.raises(ValueError, match="unknown"):
        io.dataset_of_format("nope")


# --------------------------------------------------------------------------------------
# JetClass ROOT
# --------------------------------------------------------------------------------------


def test_jetclass_root_fields_and_labels(files):
    arr = io.read_jets(files["jetclass-root"])
    j = files["jets_jc"]
    assert len(arr) == N_JETS
    expected = [*PARTICLE_BRANCHES, *JET_BRANCHES[:4], "jet_mass", *JET_BRANCHES[4:], "label"]
    assert arr.fields == expected  # aux_* and counters are not part of the representation
    for name in arr.fields:
        dtype = "int32" if name == "label" else "float32"
        assert str(ak.type(arr[name]).content).endswith(dtype), name
    # argmax over the label branches in JETCLASS_CLASSES order, despite mixed dtypes
    np.testing.assert_array_equal(arr.label.to_numpy(), j["classes"])
    assert len(JETCLASS_CLASSES) == 10
    np.testing.assert_array_equal(ak.num(arr.part_px).to_numpy(), j["counts"])
    np.testing.assert_allclose(ak.flatten(arr.part_px).to_numpy(), j["px"], rtol=1e-6)
    np.testing.assert_array_equal(ak.flatten(arr.part_isMuon).to_numpy(),
                                  (np.abs(j["pid"]) == 13).astype(np.float32))
    # jet_mass computed from the constituents (float32 inputs)
    n0 = j["counts"][0]
    hand = hand_kinematics(*(list(arr[0][f"part_{k}"].to_numpy().astype(np.float64))
                             for k in ("px", "py", "pz", "energy")))
    assert n0 == len(arr[0].part_px)
    assert arr[0].jet_mass == pytest.approx(hand["jet_mass"], rel=1e-5)


def test_jetclass_rntuple(files, tmp_path):
    path = tmp_path / "rntuple.root"
    write_root_directly(path, jetclass_branches(files["jets_jc"]), rntuple=True)
    assert io.detect_format(path) == "jetclass-root"
    ours, ref = io.read_jets(path, step_size=8), io.read_jets(files["jetclass-root"])
    assert ours.fields == ref.fields
    assert all(ak.all(ours[name] == ref[name]) for name in ref.fields)


def test_jetclass_branch_selection(files):
    full = io.read_jets(files["jetclass-root"])
    sel = io.read_jets(files["jetclass-root"], branches=["part_deta", "jet_mass", "label"])
    assert sel.fields == ["part_deta", "jet_mass", "label"]
    np.testing.assert_array_equal(sel.jet_mass.to_numpy(), full.jet_mass.to_numpy())
    assert ak.all(sel.part_deta == full.part_deta)
    only_jet = io.read_jets(files["jetclass-root"], branches=["jet_sdmass"])
    assert only_jet.fields == ["jet_sdmass", "label"]
    # a truth branch with its own multiplicity may be requested explicitly
    aux = io.read_jets(files["jetclass-root"], branches=["aux_genpart_eta", "part_px"], step_size=8)
    assert ak.num(aux.aux_genpart_eta).tolist() == [2] * N_JETS
    assert ak.all(ak.num(aux.part_px) == ak.num(full.part_px))


def test_inconsistent_particle_counts(tmp_path):
    data = jetclass_branches(make_jets(13, n_jets=6))
    data["part_dphi"] = data["part_dphi"][[0, 1, 2, 4, 3, 5]]  # jets 3 and 4 swapped
    path = tmp_path / "ragged.root"
    write_root_directly(path, data)
    with pytest.raises(DataError, match="part_dphi") as exc:
        io.read_jets(path)
    assert "ragged.root" in str(exc.value) and "entry 3" in str(exc.value)


def test_jetclass_bad_labels(files, tmp_path):
    data = jetclass_branches(make_jets(5, n_jets=8))
    data["label_Hbb"] = data["label_Hbb"].copy()
    data["label_Hbb"][:] = True  # now some rows have two labels set
    path = tmp_path / "twolabels.root"
    write_root_directly(path, data)
    with pytest.raises(DataError, match="exactly one set label") as exc:
        io.read_jets(path)
    assert "twolabels.root" in str(exc.value) and "entry" in str(exc.value)
    data.pop("label_Tbl")
    write_root_directly(tmp_path / "nolabel.root", data)
    with pytest.raises(DataError, match="label_Tbl") as exc:
        io.read_jets(tmp_path / "nolabel.root")
    assert "nolabel.root" in str(exc.value)


# --------------------------------------------------------------------------------------
# TopLandscape HDF5
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["toplandscape-h5", "tl-fixed"])
def test_toplandscape_h5(files, key):
    arr = io.read_jets(files[key])
    j = files["jets_tl"]
    assert len(arr) == N_JETS  # the last jet is kept (ParT's converter drops it)
    assert arr.fields == [*KINEMATIC_PARTICLE_BRANCHES, "jet_pt", "jet_eta", "jet_phi",
                          "jet_energy", "jet_mass", "jet_nparticles", "label"]
    # raw is_signal_new 1 (top) -> class index 0
    np.testing.assert_array_equal(arr.label.to_numpy(), np.where(j["binary"] == 1, 0, 1))
    np.testing.assert_array_equal(arr.jet_nparticles.to_numpy(), j["counts"])
    offsets = np.concatenate([[0], np.cumsum(j["counts"])])
    for i in (0, 1):  # jet 0: eta < 0 (sign flip) and phi around +-pi; jet 1: eta > 0
        sl = slice(offsets[i], offsets[i + 1])
        parts = [list(j[k][sl].astype(np.float32).astype(np.float64))
                 for k in ("px", "py", "pz", "energy")]
        hand = hand_kinematics(*parts)
        for name in ("jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_mass"):
            assert arr[i][name] == pytest.approx(hand[name], rel=1e-5, abs=1e-5), name
        np.testing.assert_allclose(arr[i].part_deta.to_numpy(), hand["part_deta"], atol=2e-5)
        np.testing.assert_allclose(arr[i].part_dphi.to_numpy(), hand["part_dphi"], atol=2e-5)
        np.testing.assert_allclose(arr[i].part_px.to_numpy(), parts[0], rtol=1e-6)
    assert arr[0].jet_eta < 0
    # deta flipped: particles more central than the axis (eta > jet_eta) get negative deta
    eta0 = np.arcsinh(j["pz"][: j["counts"][0]] / j["pt"][: j["counts"][0]])
    assert np.all(np.sign(arr[0].part_deta.to_numpy()) == -np.sign(eta0 - arr[0].jet_eta))
    # dphi wraps across +-pi: raw phi differences exceed pi, dphi stays small
    raw = np.arctan2(j["py"][: j["counts"][0]], j["px"][: j["counts"][0]]) - arr[0].jet_phi
    assert np.abs(raw).max() > np.pi
    dphi = arr[0].part_dphi.to_numpy()
    assert np.all((dphi >= -np.pi) & (dphi < np.pi)) and np.abs(dphi).max() < 2.0


def test_toplandscape_h5_missing_column(tmp_path):
    path = tmp_path / "nolabel.h5"
    write_tl_h5(path, make_jets(6, n_jets=5), drop=("is_signal_new",))
    assert io.detect_format(path) == "toplandscape-h5"
    with pytest.raises(DataError, match="is_signal_new") as exc:
        io.read_jets(path)
    assert "nolabel.h5" in str(exc.value)
    df = pd.DataFrame({"a": [1.0, 2.0]})
    df.to_hdf(tmp_path / "otherkey.h5", key="jets", format="table")
    with pytest.raises(DataError, match="'table'") as exc:
        io.detect_format(tmp_path / "otherkey.h5")
    assert "otherkey.h5" in str(exc.value)


# --------------------------------------------------------------------------------------
# QuarkGluon NPZ
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["quarkgluon-npz", "qg-stored"])
def test_quarkgluon_npz(files, key):
    arr = io.read_jets(files[key])
    j = files["jets_qg"]
    assert arr.fields == [*KINEMATIC_PARTICLE_BRANCHES, *PID_PARTICLE_BRANCHES, "part_pid",
                          "jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_mass",
                          "jet_nparticles", "label"]
    np.testing.assert_array_equal(arr.label.to_numpy(), np.where(j["binary"] == 1, 0, 1))
    # re-sorted by pt although stored shuffled: equal to the pt-ordered generator output
    np.testing.assert_allclose(ak.flatten(arr.part_px).to_numpy(), j["px"], rtol=2e-6, atol=1e-5)
    pt = np.hypot(arr.part_px, arr.part_py)
    assert ak.all(pt[:, :-1] >= pt[:, 1:] * (1 - 1e-6))
    offsets = np.concatenate([[0], np.cumsum(j["counts"])])
    for i in (0, 1):
        sl = slice(offsets[i], offsets[i + 1])
        hand = hand_kinematics(*(list(j[k][sl]) for k in ("px", "py", "pz", "energy")))
        for name in ("jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_mass"):
            assert arr[i][name] == pytest.approx(hand[name], rel=1e-5, abs=1e-5), name
        np.testing.assert_allclose(arr[i].part_deta.to_numpy(), hand["part_deta"], atol=2e-5)
        np.testing.assert_allclose(arr[i].part_dphi.to_numpy(), hand["part_dphi"], atol=2e-5)


def test_quarkgluon_pid_flags_and_sorting(tmp_path):
    pids = [211, -211, 321, -321, 2212, -2212, 130, 2112, -2112, 22, 11, -11, 13, -13]
    pts = [5.0, 50.0, 7.0, 3.0, 1.0, 9.0, 30.0, 2.0, 4.0, 40.0, 6.0, 8.0, 10.0, 20.0]
    X = np.zeros((2, 20, 4))
    X[0, : len(pids)] = np.stack([pts, np.full(14, 0.3), np.full(14, 6.2), pids], axis=1)
    X[1, :3] = [[3.0, -0.5, 1.0, 22], [9.0, -0.4, 1.1, 22], [1.0, -0.6, 0.9, 211]]
    path = tmp_path / "QG_jets_flags.npz"
    np.savez_compressed(path, X=X, y=np.array([1.0, 0.0]))
    arr = io.read_jets(path)
    order = np.argsort(pts)[::-1]
    pid = np.array(pids, dtype=float)[order]
    np.testing.assert_array_equal(arr[0].part_pid.to_numpy(), pid)
    np.testing.assert_allclose(np.hypot(arr[0].part_px, arr[0].part_py).to_numpy(),
                               np.array(pts)[order], rtol=1e-6)
    expect = {
        "part_isChargedHadron": np.isin(np.abs(pid), (211, 321, 2212)),
        "part_isNeutralHadron": np.isin(pid, (130, 2112, -2112)),
        "part_isPhoton": pid == 22,
        "part_isElectron": np.abs(pid) == 11,
        "part_isMuon": np.abs(pid) == 13,
        "part_charge": np.isin(pid, (211, 321, 2212, -11, -13)) * 1.0
        - np.isin(pid, (-211, -321, -2212, 11, 13)) * 1.0,
    }
    for name, values in expect.items():
        np.testing.assert_array_equal(arr[0][name].to_numpy(), values.astype(np.float32), name)
    assert arr.label.tolist() == [0, 1]  # y = 1 (quark) -> class index 0
    # massless: E = pt cosh y, pz = pt sinh y; jet 1 has eta < 0 -> deta sign flipped
    np.testing.assert_allclose(arr[1].part_energy.to_numpy(),
                               [9 * np.cosh(-0.4), 3 * np.cosh(-0.5), np.cosh(-0.6)], rtol=1e-6)
    hand = hand_kinematics(*(list(arr[1][f"part_{k}"].to_numpy().astype(float))
                             for k in ("px", "py", "pz", "energy")))
    np.testing.assert_allclose(arr[1].part_deta.to_numpy(), hand["part_deta"], atol=1e-5)
    assert arr[1].jet_eta < 0


# --------------------------------------------------------------------------------------
# converted parquet and ROOT (TL / QG)
# --------------------------------------------------------------------------------------


def test_parquet_formats(files):
    tl = io.read_jets(files["toplandscape-parquet"])
    qg = io.read_jets(files["quarkgluon-parquet"])
    for arr, j in ((tl, files["jets_tl"]), (qg, files["jets_qg"])):
        np.testing.assert_array_equal(arr.label.to_numpy(), np.where(j["binary"] == 1, 0, 1))
        np.testing.assert_allclose(ak.flatten(arr.part_pz).to_numpy(), j["pz"], rtol=1e-6)
        assert arr.jet_mass[0] == pytest.approx(12.5)  # stored jet_mass is read, not recomputed
        assert str(ak.type(arr.jet_nparticles).content) == "float32"
    assert "part_charge" not in tl.fields and "part_pid" not in tl.fields  # absent, not zero
    assert {"part_pid", "part_isChargedHadron", "part_charge"} <= set(qg.fields)
    np.testing.assert_array_equal(ak.flatten(qg.part_pid).to_numpy(), files["jets_qg"]["pid"])


def test_converted_root(files):
    tl = io.read_jets(files["toplandscape-root"])
    qg = io.read_jets(files["quarkgluon-root"])
    labels = np.where(files["jets_tl"]["binary"] == 1, 0, 1)
    np.testing.assert_array_equal(tl.label.to_numpy(), labels)
    np.testing.assert_array_equal(qg.label.to_numpy(), labels)
    assert "part_isChargedHadron" in qg.fields and "part_isChargedHadron" not in tl.fields
    assert "jet_mass" in tl.fields  # computed


# --------------------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------------------


def test_writer_round_trip(files, tmp_path):
    data = jetclass_branches(files["jets_jc"])
    path = writer.write_jetclass_root(tmp_path / "written.root", data)
    assert io.detect_format(path) == "jetclass-root"
    assert [p.name for p in tmp_path.iterdir()] == ["written.root"]  # no temp file left
    ours = io.read_jets(path)
    direct = io.read_jets(files["jetclass-root"])
    assert ours.fields == direct.fields
    for name in ours.fields:
        assert ak.all(ours[name] == direct[name]), name
    with uproot.open(path) as fh:
        tree = fh["tree"]
        assert tree["label_Hbb"].interpretation.from_dtype.kind == "b"
        assert tree["label_QCD"].interpretation.from_dtype.kind == "f"
        assert tree["label_Zqq"].interpretation.from_dtype.kind == "i"
        assert tree["part_isMuon"].interpretation.content.from_dtype.kind == "f"

    tl = {k: data[k] for k in KINEMATIC_PARTICLE_BRANCHES}
    tl["label"] = files["jets_jc"]["binary"].astype(np.int32)
    writer.write_jetclass_root(tmp_path / "tl.root", tl)
    assert io.detect_format(tmp_path / "tl.root") == "toplandscape-root"
    tl["part_isChargedHadron"] = data["part_isChargedHadron"]
    writer.write_jetclass_root(tmp_path / "qg.root", tl, basket_entries=7)
    assert io.detect_format(tmp_path / "qg.root") == "quarkgluon-root"
    back = io.read_jets(tmp_path / "qg.root", step_size=11)
    np.testing.assert_array_equal(back.label.to_numpy(),
                                  np.where(files["jets_jc"]["binary"] == 1, 0, 1))


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "broken.root"
    bad = {"part_px": ak.Array([[1.0, 2.0]]), "label": np.array(["x"])}
    with pytest.raises(Exception):  # noqa: B017 - uproot cannot write strings
        writer.write_jetclass_root(target, bad)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="broken.root"):
        writer.write_jetclass_root(target, {"part_px": ak.Array([[1.0, 2.0]]), "label": np.ones(2)})


# --------------------------------------------------------------------------------------
# streaming
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMAT_KEYS)
def test_streaming_equals_single_read(files, fmt):
    whole = io.read_jets(files[fmt])
    chunks = list(io.iterate_jets(files[fmt], step_size=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2]
    joined = ak.concatenate(chunks)
    assert joined.fields == whole.fields
    for name in whole.fields:
        assert ak.all(joined[name] == whole[name]), name
    head = io.read_jets(files[fmt], max_jets=9, step_size=4)
    assert len(head) == 9 and ak.all(head.label == whole.label[:9])


def test_streaming_several_files(files, tmp_path):
    src = files["toplandscape-parquet"]
    for name in ("tl_file_10.parquet", "tl_file_2.parquet"):
        (tmp_path / name).write_bytes(src.read_bytes())
    h5 = tmp_path / "tl_file_1.h5"
    h5.write_bytes(files["toplandscape-h5"].read_bytes())
    chunks = list(io.iterate_jets(tmp_path, step_size=20, branches=["part_dphi", "jet_pt"]))
    assert [len(c) for c in chunks] == [20, 10] * 3  # chunks never span files
    assert all(c.fields == ["part_dphi", "jet_pt", "label"] for c in chunks)
    assert io.count_jets(tmp_path) == 3 * N_JETS
    assert len(io.read_jets(str(tmp_path / "*.parquet"), max_jets=45)) == 45


def test_read_nothing_keeps_fields(files):
    arr = io.read_jets(files["toplandscape-h5"], max_jets=0)
    assert len(arr) == 0 and "part_px" in arr.fields and "label" in arr.fields


# --------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------


def test_expand_paths(tmp_path):
    for name in ("file_10.root", "file_2.root", "file_1.root", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    sub = tmp_path / "sub" / "deeper"
    sub.mkdir(parents=True)
    (sub / "file_3.root").write_bytes(b"")
    names = [p.name for p in io.expand_paths(tmp_path)]
    assert names == ["file_1.root", "file_2.root", "file_10.root"]
    assert [p.name for p in io.expand_paths(str(tmp_path / "file_*.root"))] == names
    rec = io.expand_paths(str(tmp_path / "**" / "file_?.root"))
    assert [p.name for p in rec] == ["file_1.root", "file_2.root", "file_3.root"]
    dup = io.expand_paths([tmp_path / "file_2.root", str(tmp_path / "file_*.root")])
    assert [p.name for p in dup] == ["file_2.root", "file_1.root", "file_10.root"]


@pytest.mark.parametrize("spec", ["nomatch_*.root", "missing.root", "emptydir"])
def test_expand_paths_errors(tmp_path, spec):
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(DataError) as exc:
        io.expand_paths(tmp_path / spec)
    assert spec in str(exc.value)
    with pytest.raises(DataError, match=spec.replace("*", r"\*")):
        io.read_jets(str(tmp_path / spec))


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def test_truncated_root(files, tmp_path):
    data = files["jetclass-root"].read_bytes()
    path = tmp_path / "truncated.root"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated") as exc:
        io.read_jets(path)
    assert "truncated.root" in str(exc.value)


@pytest.mark.parametrize("name", ["garbage.npz", "garbage.h5", "garbage.parquet", "garbage.root"])
def test_garbage_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(DataError, match="corrupt or truncated") as exc:
        io.detect_format(path)
    assert name in str(exc.value)


@pytest.mark.parametrize("key", ["quarkgluon-npz", "toplandscape-h5", "toplandscape-parquet"])
def test_truncated_other_formats(files, tmp_path, key):
    data = files[key].read_bytes()
    path = tmp_path / f"cut_{files[key].name}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated") as exc:
        io.read_jets(path)
    assert path.name in str(exc.value)


def test_npz_member_truncated(files, tmp_path):
    """A zip whose X.npy is shorter than its header promises (valid archive)."""
    with zipfile.ZipFile(files["quarkgluon-npz"]) as zf:
        x_bytes, y_bytes = zf.read("X.npy"), zf.read("y.npy")
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("X.npy", x_bytes[: len(x_bytes) // 2])
        zf.writestr("y.npy", y_bytes)
    assert io.count_jets(path) == N_JETS
    with pytest.raises(DataError, match="corrupt or truncated") as exc:
        io.read_jets(path)
    assert "short.npz" in str(exc.value) and "'X'" in str(exc.value)


def test_npz_missing_member(tmp_path):
    path = tmp_path / "noy.npz"
    np.savez(path, X=np.zeros((2, 3, 4)))
    with pytest.raises(DataError, match="'y'") as exc:
        io.read_jets(path)
    assert "noy.npz" in str(exc.value)


def test_root_missing_branch(tmp_path):
    data = jetclass_branches(make_jets(7, n_jets=6))
    del data["part_px"]
    path = tmp_path / "nopx.root"
    write_root_directly(path, data)
    with pytest.raises(DataError, match="part_px") as exc:
        io.read_jets(path)
    assert "nopx.root" in str(exc.value)
    with pytest.raises(DataError, match="part_px") as exc:
        io.read_jets(path, branches=["part_px"])
    assert "nopx.root" in str(exc.value)


def test_requested_branch_missing(files):
    for key in ("toplandscape-h5", "toplandscape-parquet", "toplandscape-root"):
        with pytest.raises(DataError, match="part_pid") as exc:
            io.read_jets(files[key], branches=["part_px", "part_pid"])
        assert files[key].name in str(exc.value)


def test_root_without_tree(tmp_path):
    path = tmp_path / "notree.root"
    with uproot.recreate(path) as fh:
        fh["events"] = {"x": np.zeros(3)}
    with pytest.raises(DataError, match="'tree'") as exc:
        io.detect_format(path)
    assert "notree.root" in str(exc.value)


@pytest.mark.parametrize("bad_n", [0, 1])
def test_too_few_constituents_root(tmp_path, bad_n):
    counts = np.full(12, 25)
    counts[9] = bad_n
    path = tmp_path / f"jets_n{bad_n}.root"
    write_root_directly(path, jetclass_branches(make_jets(8, n_jets=12, counts=counts)))
    with pytest.raises(DataError, match="cannot be analysed") as exc:
        io.read_jets(path, step_size=5)  # entry 9 is in the second chunk: global index
    msg = str(exc.value)
    assert path.name in msg and "entry 9" in msg and "1 jet(s)" in msg


def test_too_few_constituents_h5_and_npz(tmp_path):
    counts = np.full(6, 20)
    counts[[2, 4]] = [1, 0]
    j = make_jets(9, n_jets=6, counts=counts)
    write_tl_h5(tmp_path / "few.h5", j)
    with pytest.raises(DataError, match="entry 2") as exc:
        io.read_jets(tmp_path / "few.h5")
    assert "few.h5" in str(exc.value) and "2 jet(s)" in str(exc.value)
    X = qg_padded(j, np.random.default_rng(0))
    np.savez_compressed(tmp_path / "few.npz", X=X, y=np.ones(6))
    with pytest.raises(DataError, match="entry 2") as exc:
        io.read_jets(tmp_path / "few.npz")
    assert "few.npz" in str(exc.value)


def test_nan_replaced_with_one_warning_per_branch(tmp_path):
    data = jetclass_branches(make_jets(10, n_jets=12))
    deta = ak.to_numpy(ak.flatten(data["part_deta"])).copy()
    counts = ak.to_numpy(ak.num(data["part_deta"]))
    deta[[3, 400]] = [np.nan, np.inf]  # jets 0 and >= 8: two different chunks of 6
    data["part_deta"] = ak.unflatten(deta, counts)
    data["jet_pt"] = data["jet_pt"].copy()
    data["jet_pt"][5] = np.nan
    path = tmp_path / "withnan.root"
    write_root_directly(path, data)
    with pytest.warns(RuntimeWarning) as record:
        arr = io.read_jets(path, step_size=6)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert any("part_deta" in m and "withnan.root" in m and "1 non-finite" in m for m in messages)
    assert any("jet_pt" in m and "withnan.root" in m for m in messages)
    assert ak.flatten(arr.part_deta)[3] == 0 and ak.flatten(arr.part_deta)[400] == 0
    assert arr.jet_pt[5] == 0
    assert np.isfinite(ak.flatten(arr.part_deta).to_numpy()).all()


def test_nan_in_h5(tmp_path):
    j = make_jets(11, n_jets=4)
    df = write_tl_h5(tmp_path / "nan.h5", j)
    df.loc[1, "PX_0"] = np.nan
    df.to_hdf(tmp_path / "nan.h5", key="table", format="table")
    with pytest.warns(RuntimeWarning, match="PX_") as record:
        arr = io.read_jets(tmp_path / "nan.h5")
    assert "nan.h5" in str(record[0].message)
    assert arr[1].part_px[0] == 0


def test_mixing_datasets(files):
    with pytest.raises(DataError, match="cannot mix") as exc:
        io.read_jets([files["toplandscape-h5"], files["quarkgluon-npz"]])
    msg = str(exc.value)
    assert files["toplandscape-h5"].name in msg and files["quarkgluon-npz"].name in msg
    with pytest.raises(DataError, match="cannot mix"):
        io.read_jets([files["jetclass-root"], files["toplandscape-root"]])
    # same family, different formats is fine
    both = io.read_jets([files["toplandscape-h5"], files["toplandscape-parquet"]])
    assert len(both) == 2 * N_JETS


def test_format_argument(files):
    arr = io.read_jets(files["toplandscape-h5"], format="toplandscape-h5")
    assert len(arr) == N_JETS
    with pytest.raises(DataError, match="tl_table.h5"):
        io.read_jets(files["toplandscape-h5"], format="quarkgluon-npz")
    with pytest.raises(ValueError, match="unknown format"):
        io.read_jets(files["toplandscape-h5"], format="csv")
    with pytest.raises(ValueError, match="step_size"):
        io.read_jets(files["toplandscape-h5"], step_size=0)


def test_bad_binary_label(tmp_path):
    j = make_jets(12, n_jets=5)
    X = qg_padded(j, np.random.default_rng(1))
    np.savez(tmp_path / "badlabel.npz", X=X, y=np.array([1, 0, 2, 1, 0.0]))
    with pytest.raises(DataError, match="label") as exc:
        io.read_jets(tmp_path / "badlabel.npz")
    assert "badlabel.npz" in str(exc.value) and "entry 2" in str(exc.value)


def test_module_api():
    assert set(io.__all__) >= {"DataError", "expand_paths", "detect_format", "dataset_of_format",
                               "iterate_jets", "read_jets", "count_jets"}
    assert writer.__all__ == ["write_jetclass_root"] and not hasattr(io, "write_jetclass_root")
    assert issubclass(DataError, ValueError)
    with pytest.raises(TypeError, match="stepsize"):
        io.read_jets("unused.root", stepsize=3)


def test_nullable_parquet(tmp_path):
    """Parquet written by other tools may be nullable: None is treated like NaN (-> 0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = [[10.0, None, 3.0], [5.0, 4.0]]
    table = pa.table({
        "label": pa.array([1, 0], pa.int64()),
        "jet_pt": pa.array([None, 2.0], pa.float32()),
        **{name: pa.array(part, pa.list_(pa.float32())) for name in KINEMATIC_PARTICLE_BRANCHES},
    })
    path = tmp_path / "nullable.parquet"
    pq.write_table(table, path)
    assert io.detect_format(path) == "toplandscape-parquet"
    with pytest.warns(RuntimeWarning, match="nullable.parquet") as record:
        arr = io.read_jets(path)
    assert len(record) == len(KINEMATIC_PARTICLE_BRANCHES) + 1
    assert arr.part_px.tolist() == [[10.0, 0.0, 3.0], [5.0, 4.0]]
    assert arr.jet_pt.tolist() == [0.0, 2.0] and arr.label.tolist() == [0, 1]


def test_early_stop_closes_files(files):
    stream = io.iterate_jets([files["quarkgluon-npz"], files["quarkgluon-parquet"]], step_size=4)
    first = next(stream)
    assert len(first) == 4
    stream.close()  # must not raise, and releases the open zip archive

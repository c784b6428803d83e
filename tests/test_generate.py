"""Generated jets (real Pythia 8 + FastJet runs): physics, layout, determinism, resumption.

The samples are read back through ``partnb.data.io`` -- the same reader that serves the
real JetClass / Top Landscape / Quark-Gluon files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import awkward as ak
import numpy as np
import pytest
import uproot

from partnb.data.generate import GenerationConfig, chunk_seed, generate, output_dir, plan_chunks
from partnb.data.io import detect_format, read_jets
from partnb.data.schema import (
    JET_BRANCHES,
    JETCLASS_CLASSES,
    JETCLASS_LABEL_DTYPES,
    PARTICLE_BRANCHES,
)


def _median_mass(jets, class_index):
    m = np.asarray(jets.jet_mass)[np.asarray(jets.label) == class_index]
    assert len(m) > 0
    return float(np.median(m))


def _rapidity(jets):
    pt, eta, e = (np.asarray(jets[k], dtype=np.float64) for k in ("jet_pt", "jet_eta", "jet_energy"))
    pz = pt * np.sinh(eta)
    return 0.5 * np.log((e + pz) / (e - pz))


def _delta_r_rapidity(jets):
    e, pz = jets.part_energy, jets.part_pz
    y = 0.5 * np.log((e + pz) / (e - pz))
    dphi = (np.arctan2(jets.part_py, jets.part_px) - jets.jet_phi + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(y - _rapidity(jets), dphi)


def _within_radius(jets, radius):
    dr = ak.to_numpy(ak.flatten(_delta_r_rapidity(jets)))
    assert np.mean(dr > radius) < 0.005
    assert dr.max() < 1.5 * radius


def _all_finite(jets):
    for field in jets.fields:
        values = ak.to_numpy(ak.flatten(jets[field], axis=None)).astype(np.float64)
        assert np.all(np.isfinite(values)), field


def test_jetclass_physics(jetclass_sample):
    config, files = jetclass_sample
    assert {detect_format(f) for f in files} == {"jetclass-root"}
    jets = read_jets(files)
    n = config.jets_per_class
    assert np.bincount(np.asarray(jets.label), minlength=10).tolist() == [n] * 10
    c = {name: i for i, name in enumerate(JETCLASS_CLASSES)}
    assert 150 < _median_mass(jets, c["Tbqq"]) < 200
    for name in ("Wqq", "Zqq"):
        assert 65 < _median_mass(jets, c[name]) < 100, name
    for name in ("Hbb", "Hcc", "Hgg", "H4q"):
        assert 105 < _median_mass(jets, c[name]) < 140, name
    # H -> l nu q q': the neutrino escapes, so the visible mass sits below m_H
    assert 50 < _median_mass(jets, c["Hqql"]) < 125
    # QCD jet mass falls steeply: far more jets at 30-130 GeV than at 130-230 GeV
    qcd = np.asarray(jets.jet_mass)[np.asarray(jets.label) == c["QCD"]]
    low, high = np.sum((qcd > 30) & (qcd < 130)), np.sum((qcd > 130) & (qcd < 230))
    assert low > 4 * max(high, 1)
    # every jet passes the JetClass selection
    pt, eta = np.asarray(jets.jet_pt), np.asarray(jets.jet_eta)
    assert np.all((pt > 500) & (pt < 1000) & (np.abs(eta) < 2))
    _all_finite(jets)
    # the constituents add up to the jet, and particles are pT-ordered
    px = ak.sum(jets.part_px, axis=1)
    py = ak.sum(jets.part_py, axis=1)
    np.testing.assert_allclose(np.hypot(px, py), pt, rtol=1e-4)
    ppt = np.hypot(jets.part_px, jets.part_py)
    assert ak.all(ppt[:, 1:] <= ppt[:, :-1] * (1 + 1e-6))
    # anti-kT clusters in (rapidity, phi): constituents lie within R of the final axis, up to
    # the few that were merged before the axis moved (measured: 0.07 % of them, all < 1.0)
    _within_radius(jets, 0.8)
    # leptons: t -> b l nu and H -> l nu q q' jets carry a lepton more often than Tbqq
    has_lep = ak.to_numpy(ak.any((jets.part_isElectron + jets.part_isMuon) > 0, axis=1))
    lab = np.asarray(jets.label)
    assert has_lep[lab == c["Tbl"]].mean() > has_lep[lab == c["Tbqq"]].mean() + 0.3


def test_jetclass_layout_and_one_hot_labels(jetclass_sample):
    _, files = jetclass_sample
    with uproot.open(files[0]) as f:
        tree = f["tree"]
        names = set(tree.keys())
        for b in PARTICLE_BRANCHES:
            assert b in names, b
            assert tree[b].interpretation.content.from_dtype == np.dtype(">f4"), b
        for b in JET_BRANCHES:
            assert tree[b].interpretation.from_dtype == np.dtype(">f4"), b
        for b, dtype in JETCLASS_LABEL_DTYPES.items():
            assert tree[b].interpretation.from_dtype.newbyteorder("=") == np.dtype(dtype), b
    labels = np.stack([
        np.concatenate([uproot.open(f)["tree"][b].array(library="np").astype(np.int64) for f in files])
        for b in JETCLASS_LABEL_DTYPES
    ], axis=1)
    assert np.all(labels.sum(axis=1) == 1)
    # impact parameters are zero by construction (no tracks at generator level)
    jets = read_jets(files[:1])
    assert ak.all(jets.part_d0val == 0) and ak.all(jets.part_dzerr == 0)


def test_toplandscape_physics(toplandscape_sample):
    config, files = toplandscape_sample
    assert {detect_format(f) for f in files} == {"toplandscape-root"}
    jets = read_jets(files)
    lab = np.asarray(jets.label)
    assert np.bincount(lab).tolist() == [config.jets_per_class] * 2  # index 0 = top
    assert 150 < _median_mass(jets, 0) < 200
    assert _median_mass(jets, 1) < 110
    pt, eta = np.asarray(jets.jet_pt), np.asarray(jets.jet_eta)
    assert np.all((pt > 550) & (pt < 650) & (np.abs(eta) < 2))
    assert "part_charge" not in jets.fields  # TL carries kinematics only
    _all_finite(jets)


def test_quarkgluon_physics(quarkgluon_sample):
    config, files = quarkgluon_sample
    assert {detect_format(f) for f in files} == {"quarkgluon-root"}
    jets = read_jets(files)
    lab = np.asarray(jets.label)
    assert np.bincount(lab).tolist() == [config.jets_per_class] * 2  # index 0 = quark
    mult = ak.to_numpy(ak.num(jets.part_px))
    assert mult[lab == 1].mean() > mult[lab == 0].mean() + 3  # gluons radiate more
    pt = np.asarray(jets.jet_pt)
    assert np.all((pt > 500) & (pt < 550) & (np.abs(_rapidity(jets)) < 1.7))
    _within_radius(jets, 0.4)
    _all_finite(jets)


def test_chunks_are_pure_functions_of_settings():
    a = GenerationConfig("toplandscape", jets_per_class=30, jets_per_file=10, seed=1)
    b = GenerationConfig("toplandscape", jets_per_class=90, jets_per_file=10, seed=1)
    c = GenerationConfig("toplandscape", jets_per_class=30, jets_per_file=10, seed=2)
    assert a.cache_key() == b.cache_key() != c.cache_key()
    pa, pb = plan_chunks(a), plan_chunks(b)
    assert [x.filename for x in pa] == ["top_0000.root", "top_0001.root", "top_0002.root",
                                        "QCD_0000.root", "QCD_0001.root", "QCD_0002.root"]
    assert {chunk_seed(a, x) for x in pa} <= {chunk_seed(b, x) for x in pb}
    assert len({chunk_seed(a, x) for x in pa}) == len(pa)
    with pytest.raises(ValueError, match="no class 'Wqq'"):
        GenerationConfig("toplandscape", classes=("Wqq",))


def _arrays(files):
    return [uproot.open(f)["tree"].arrays(library="ak") for f in files]


@pytest.mark.slow  # Pythia twice: ~7 s on 2 loaded cores
def test_same_jets_whatever_the_number_of_workers(tmp_path):
    config = GenerationConfig("toplandscape", jets_per_class=24, jets_per_file=12, seed=5)
    one = generate(config, tmp_path / "w1", workers=1, progress=False)
    two = generate(config, tmp_path / "w2", workers=2, progress=False)
    for x, y in zip(_arrays(one), _arrays(two), strict=True):
        assert ak.all(x.part_px == y.part_px) and ak.all(x.jet_sdmass == y.jet_sdmass)
    # chunks differ from one another (each has its own seed)
    first, second = _arrays(one)[:2]
    assert not np.array_equal(np.asarray(first.jet_pt), np.asarray(second.jet_pt))


@pytest.mark.slow  # Pythia three times, one killed: ~15 s on 2 loaded cores
def test_killed_run_resumes_and_matches(tmp_path):
    """kill -9 in the middle of a run: no partial file is trusted, and the resumed run ends
    with the same files as an uninterrupted one."""
    config = GenerationConfig("toplandscape", jets_per_class=40, jets_per_file=10, seed=9)
    out = output_dir(config, tmp_path / "killed")
    code = (
        "from partnb.data.generate import GenerationConfig, generate\n"
        "c = GenerationConfig('toplandscape', jets_per_class=40, jets_per_file=10, seed=9)\n"
        f"generate(c, {str(tmp_path / 'killed')!r}, workers=1, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("*.root")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.name for p in out.glob("*.root"))
    assert 0 < len(done_before) < 8, "kill landed too late to test resumption"
    for p in out.glob("*.root"):  # every file present is complete
        assert uproot.open(p)["tree"].num_entries == 10
    resumed = generate(config, tmp_path / "killed", workers=2, progress=False)
    assert not list(out.glob("*.tmp-*"))
    fresh = generate(config, tmp_path / "fresh", workers=2, progress=False)
    for x, y in zip(_arrays(resumed), _arrays(fresh), strict=True):
        assert ak.all(x.part_energy == y.part_energy)

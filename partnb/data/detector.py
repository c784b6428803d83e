"""A parametrised detector response for the generated jets (``dataset.detector``).

The real JetClass jets went through Delphes with its CMS card and particle-flow ("e-flow")
reconstruction, the Top Landscape jets through Delphes with its ATLAS card (calorimeter-level
constituents); the Quark-Gluon jets are particle level. This module applies the response of
those cards to the stable visible particles of a batch of events, vectorised in numpy, before
the jets are clustered:

* ``none``: particle level, the particles are returned untouched (the default; the committed
  models were trained on it).
* ``cms-like``: tracking efficiency and momentum resolution of charged particles by species,
  |η| and pT; ECAL and HCAL towers with the card's η–φ segmentation, energy fractions,
  stochastic, noise and constant terms (log-normal smearing, as Delphes), thresholds
  (``EnergyMin``, ``EnergySignificanceMin``) and random positions within the cell
  (``SmearTowerCenter``); particle-flow output: every track individually, and per tower the
  energy left after the expected deposit of the tracks that hit it, as a photon (ECAL) or a
  neutral hadron (HCAL) when significant. Muons leave no calorimeter deposit.
* ``atlas-like``: the same steps with the ATLAS card's numbers (field, tracker, ECAL and HCAL
  segmentation and resolutions): its e-flow objects, of which the Top Landscape files keep the
  4-vectors only. The card's calorimeter towers as constituents were measured too and give far
  fewer constituents than the real files (``docs/detector.md``): the real jets are not made of
  towers.

Every number is taken from the public Delphes cards ``cards/delphes_card_CMS.tcl`` and
``cards/delphes_card_ATLAS.tcl`` (delphes/delphes; ``docs/detector.md`` lists them with the
versions and what differs between versions). Charged particles are bent in the solenoid
field before they reach the calorimeter (a helix from the beam line to the barrel radius of
the card); there is no pile-up, no vertexing and no impact parameter.

Output candidates carry a PDG id the rest of the generator understands: tracks keep the id
of their particle (charge and the charged-hadron / electron / muon flags follow from it, as
the JetClass ntuples take them from the Delphes e-flow track), ECAL candidates are photons
(22) and HCAL candidates neutral hadrons (130).

Reference: J. de Favereau et al. (Delphes 3), JHEP 02 (2014) 057, arXiv:1307.6346.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DETECTOR_MODES", "DETECTOR_MODEL_VERSION", "DetectorSpec", "DETECTORS",
           "apply_detector", "check_detector_mode"]

#: ``dataset.detector`` values; ``none`` is particle level.
DETECTOR_MODES = ("none", "cms-like", "atlas-like")
#: Bump when the response of a mode changes (enters the cache key of its generated data).
DETECTOR_MODEL_VERSION = 2  # 2: jets left with fewer than two constituents are not kept
#: The detector each dataset's real files went through: JetClass the Delphes CMS card
#: (particle-flow candidates), Top Landscape the ATLAS card (calorimeter towers); the
#: Quark-Gluon dataset is particle level.
REAL_DATASET_DETECTOR = {"jetclass": "cms-like", "toplandscape": "atlas-like", "quarkgluon": "none"}
#: Mean constituent multiplicity of the real datasets' jets, per (dataset, class), where
#: published or measured on the public files: JetClass H->bb (the first 12 jets of
#: JetClass_example_100k average 39.3; about 41 for the class), Top Landscape top and QCD
#: (arXiv:1902.09914's files), Quark-Gluon quark and gluon (EnergyFlow's files, particle level).
REAL_MULTIPLICITY = {("jetclass", "Hbb"): 41.0, ("toplandscape", "top"): 55.0,
                     ("toplandscape", "QCD"): 43.0, ("quarkgluon", "quark"): 33.8,
                     ("quarkgluon", "gluon"): 53.4}

_PHOTON_ID = 22
_NEUTRAL_HADRON_ID = 130


def check_detector_mode(mode) -> None:
    """Raise ValueError naming ``dataset.detector`` for a value that is not a mode."""
    if mode not in DETECTOR_MODES:
        raise ValueError(f"dataset.detector = {mode!r} must be one of "
                         f"{', '.join(map(repr, DETECTOR_MODES))}")


# --------------------------------------------------------------------------------------
# The cards' numbers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calorimeter:
    """One Delphes ``SimpleCalorimeter``.

    Attributes:
        edges: tower edges in η, ascending; tower k spans ``edges[k] .. edges[k + 1]``.
        n_phi: φ bins (uniform over 2π) of tower row k; Delphes attaches the φ bins to the
            upper η edge of a row.
        resolution: per |η| region ``(|η| max, constant, stochastic, noise, a, b, η0)``:
            σ(E) = (a + b (|η| − η0)²) · sqrt((cE)² + s²E + n²), the card's formula.
        energy_min: ``EnergyMin`` (GeV).
        significance_min: ``EnergySignificanceMin`` (in σ).
    """

    name: str
    edges: np.ndarray
    n_phi: np.ndarray
    resolution: tuple[tuple[float, ...], ...]
    energy_min: float
    significance_min: float

    def sigma(self, energy: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
        out = np.zeros_like(energy)
        lo = 0.0
        for eta_max, c, s, n, a, b, eta0 in self.resolution:
            sel = (abs_eta > lo) & (abs_eta <= eta_max) if lo > 0 else abs_eta <= eta_max
            shape = a + b * (abs_eta[sel] - eta0) ** 2
            e = energy[sel]
            out[sel] = shape * np.sqrt((c * e) ** 2 + s * s * e + n * n)
            lo = eta_max
        return out


def _segmentation(rows: list[tuple[list[float], int]]) -> tuple[np.ndarray, np.ndarray]:
    """Tower edges and φ bins per row from the card's ``EtaPhiBins`` lists: each η edge
    carries the φ binning of the row below it; the first edge only opens the first row."""
    pairs = sorted({round(e, 6): n for edges, n in rows for e in edges}.items())
    edges = np.array([e for e, _ in pairs])
    n_phi = np.array([n for _, n in pairs[1:]], dtype=np.int64)
    return edges, n_phi


def _ecal_rows() -> list[tuple[list[float], int]]:
    """ECAL segmentation shared by the CMS and ATLAS cards: 0.0174 × 1° up to |η| = 3
    (barrel ``i · 0.0174``, i = −85..86; endcaps ``±(1.4964 .. 2.958)``), then the forward
    calorimeter in 0.175 × 10°."""
    fwd = [-5, -4.7, -4.525, -4.35, -4.175, -4, -3.825, -3.65, -3.475, -3.3, -3.125, -2.958,
           3.125, 3.3, 3.475, 3.65, 3.825, 4, 4.175, 4.35, 4.525, 4.7, 5]
    barrel = [i * 0.0174 for i in range(-85, 87)]
    endcap = [-2.958 + i * 0.0174 for i in range(1, 85)] + [1.4964 + i * 0.0174 for i in range(1, 85)]
    return [(fwd, 36), (endcap, 360), (barrel, 360)]


def _cms_hcal_rows() -> list[tuple[list[float], int]]:
    five = [round(-1.566 + i * 0.087, 3) for i in range(38)]  # -1.566 .. 1.653, 5° towers
    ten = [-4.35, -4.175, -4, -3.825, -3.65, -3.475, -3.3, -3.125, -2.95, -2.868, -2.65, -2.5,
           -2.322, -2.172, -2.043, -1.93, -1.83, -1.74, -1.653, 1.74, 1.83, 1.93, 2.043, 2.172,
           2.322, 2.5, 2.65, 2.868, 2.95, 3.125, 3.3, 3.475, 3.65, 3.825, 4, 4.175, 4.35, 4.525]
    twenty = [-5, -4.7, -4.525, 4.7, 5]
    return [(twenty, 18), (ten, 36), (five, 72)]


def _atlas_hcal_rows() -> list[tuple[list[float], int]]:
    ten = [-3.2] + [round(-2.5 + 0.1 * i, 1) for i in range(52)] + [3.3]  # -2.5 .. 2.6, 0.1 × 10°
    twenty = [-4.9, -4.7, -4.5, -4.3, -4.1, -3.9, -3.7, -3.5, -3.3, -3, -2.8, -2.6,
              2.8, 3, 3.2, 3.5, 3.7, 3.9, 4.1, 4.3, 4.5, 4.7, 4.9]
    return [(twenty, 18), (ten, 36)]


@dataclass(frozen=True)
class DetectorSpec:
    """The numbers of one Delphes card that the emulation uses.

    Attributes:
        bz, radius: solenoid field (T) and the radius (m) of its coverage (``ParticlePropagator``).
        tracking: per species (``hadron``, ``electron``, ``muon``) the efficiency table of
            the ``*TrackingEfficiency`` modules: rows ``(|η| max, pT threshold, eff below
            it, eff above it[, pT threshold 2, eff above it])`` for pT > 0.1 GeV.
        momentum: per species the relative pT resolution of the ``*MomentumSmearing``
            modules, rows ``(|η| max, a, b)``: σ(pT)/pT = sqrt(a² + (b pT)²).
        ecal, hcal: the two calorimeters.
        particle_flow: output tracks + e-flow neutrals (True) or the calorimeter towers
            themselves (False: no card uses it now; kept to measure the tower alternative).
    """

    name: str
    card: str
    bz: float
    radius: float
    tracking: dict
    momentum: dict
    ecal: Calorimeter
    hcal: Calorimeter
    particle_flow: bool


#: Tracking efficiencies: identical in the CMS and ATLAS cards.
_TRACKING = {
    "hadron": ((1.5, 1.0, 0.70, 0.95), (2.5, 1.0, 0.60, 0.85)),
    "electron": ((1.5, 1.0, 0.73, 0.95, 100.0, 0.99), (2.5, 1.0, 0.50, 0.83, 100.0, 0.90)),
    "muon": ((1.5, 1.0, 0.75, 0.99), (2.5, 1.0, 0.70, 0.98)),
}
_ELECTRON_MOMENTUM = ((0.5, 0.03, 1.3e-3), (1.5, 0.05, 1.7e-3), (2.5, 0.15, 3.1e-3))
_MUON_MOMENTUM = ((0.5, 0.01, 1.0e-4), (1.5, 0.015, 1.5e-4), (2.5, 0.025, 3.5e-4))

_CMS_ECAL_RES = ((1.5, 0.008, 0.11, 0.40, 1.0, 0.64, 0.0),
                 (2.5, 0.008, 0.11, 0.40, 2.16, 5.6, 2.0),
                 (5.0, 0.107, 2.08, 0.0, 1.0, 0.0, 0.0))
_CMS_HCAL_RES = ((3.0, 0.050, 1.50, 0.0, 1.0, 0.0, 0.0), (5.0, 0.130, 2.70, 0.0, 1.0, 0.0, 0.0))
_ATLAS_ECAL_RES = ((3.2, 0.0017, 0.101, 0.0, 1.0, 0.0, 0.0), (4.9, 0.0350, 0.285, 0.0, 1.0, 0.0, 0.0))
_ATLAS_HCAL_RES = ((1.7, 0.0302, 0.5205, 1.59, 1.0, 0.0, 0.0), (3.2, 0.0500, 0.706, 0.0, 1.0, 0.0, 0.0),
                   (4.9, 0.0942, 1.00, 0.0, 1.0, 0.0, 0.0))


def _calorimeter(name, rows, resolution, energy_min, significance_min) -> Calorimeter:
    edges, n_phi = _segmentation(rows)
    return Calorimeter(name, edges, n_phi, resolution, energy_min, significance_min)


DETECTORS: dict[str, DetectorSpec] = {
    "cms-like": DetectorSpec(
        name="cms-like", card="delphes_card_CMS.tcl", bz=3.8, radius=1.29,
        tracking=_TRACKING,
        momentum={"hadron": ((0.5, 0.01, 1.5e-4), (1.5, 0.015, 2.5e-4), (2.5, 0.025, 5.5e-4)),
                  "electron": _ELECTRON_MOMENTUM, "muon": _MUON_MOMENTUM},
        ecal=_calorimeter("ECAL", _ecal_rows(), _CMS_ECAL_RES, 0.5, 2.0),
        hcal=_calorimeter("HCAL", _cms_hcal_rows(), _CMS_HCAL_RES, 1.0, 2.0),
        particle_flow=True,
    ),
    "atlas-like": DetectorSpec(
        name="atlas-like", card="delphes_card_ATLAS.tcl", bz=2.0, radius=1.15,
        tracking=_TRACKING,
        momentum={"hadron": ((0.5, 0.06, 1.3e-3), (1.5, 0.10, 1.7e-3), (2.5, 0.25, 3.1e-3)),
                  "electron": _ELECTRON_MOMENTUM, "muon": _MUON_MOMENTUM},
        ecal=_calorimeter("ECAL", _ecal_rows(), _ATLAS_ECAL_RES, 0.5, 2.0),
        hcal=_calorimeter("HCAL", _atlas_hcal_rows(), _ATLAS_HCAL_RES, 1.0, 2.0),
        particle_flow=True,
    ),
}


# --------------------------------------------------------------------------------------
# The response
# --------------------------------------------------------------------------------------


def _energy_fractions(abs_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ECAL and HCAL fractions of a particle's energy (``EnergyFraction`` of both cards):
    e, γ, π0 all ECAL; K0S and Λ 0.3 / 0.7; muons and neutrinos none; other hadrons all HCAL."""
    em = (abs_id == 11) | (abs_id == 22) | (abs_id == 111)
    v0 = (abs_id == 310) | (abs_id == 3122)
    invisible = (abs_id == 12) | (abs_id == 13) | (abs_id == 14) | (abs_id == 16)
    f_ecal = np.where(em, 1.0, np.where(v0, 0.3, 0.0))
    f_hcal = np.where(em | invisible, 0.0, np.where(v0, 0.7, 1.0))
    return f_ecal, f_hcal


def _species(abs_id: np.ndarray) -> dict[str, np.ndarray]:
    return {"electron": abs_id == 11, "muon": abs_id == 13,
            "hadron": (abs_id != 11) & (abs_id != 13)}


def _tracking_efficiency(spec: DetectorSpec, abs_id, pt, abs_eta) -> np.ndarray:
    eff = np.zeros_like(pt)
    for species, sel in _species(abs_id).items():
        lo = 0.0
        for row in spec.tracking[species]:
            eta_max, pt1, below, above = row[:4]
            here = sel & (abs_eta > lo) & (abs_eta <= eta_max) & (pt > 0.1) if lo > 0 else \
                sel & (abs_eta <= eta_max) & (pt > 0.1)
            value = np.where(pt <= pt1, below, above)
            if len(row) == 6:
                value = np.where(pt > row[4], row[5], value)
            eff[here] = value[here]
            lo = eta_max
    return eff


def _momentum_resolution(spec: DetectorSpec, abs_id, pt, abs_eta) -> np.ndarray:
    rel = np.zeros_like(pt)
    for species, sel in _species(abs_id).items():
        lo = 0.0
        for eta_max, a, b in spec.momentum[species]:
            here = sel & (abs_eta <= eta_max) & ((abs_eta > lo) if lo > 0 else True)
            rel[here] = np.sqrt(a * a + (b * pt[here]) ** 2)
            lo = eta_max
    return rel


def _log_normal(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Log-normal numbers of the given mean and standard deviation (Delphes' ``LogNormal``);
    ``mean`` itself where sigma is 0. One normal number is drawn per entry."""
    z = rng.standard_normal(len(mean))
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.log1p((sigma / mean) ** 2)
        mu = np.log(mean) - 0.5 * s2
        out = np.exp(mu + np.sqrt(s2) * z)
    return np.where((sigma > 0) & (mean > 0), out, mean)


def _bent_phi(phi, pt, charge, spec: DetectorSpec) -> np.ndarray:
    """φ where a charged particle reaches the barrel radius of the solenoid: a helix of radius
    r = pT / (0.3 B) from the beam line turns by asin(R / 2r); loopers (2r < R) by π/2."""
    with np.errstate(divide="ignore"):
        x = np.minimum(1.0, 0.3 * spec.bz * spec.radius / (2.0 * np.maximum(pt, 1e-9)))
    return np.where(charge != 0, phi - np.sign(charge) * np.arcsin(x), phi)


def _towers(cal: Calorimeter, event, eta, phi, energy, track_energy, track_var, rng):
    """Sum the deposits per (event, tower), smear, apply the thresholds.

    Returns per kept tower: event, smeared energy, deposit of the tracks expected there,
    variance of that expectation, σ of the tower, η and φ drawn uniformly within the cell.
    """
    row = np.searchsorted(cal.edges, eta, side="right") - 1
    inside = (row >= 0) & (row < len(cal.n_phi)) & ((energy > 0) | (track_energy > 0))
    event, eta, phi, energy = event[inside], eta[inside], phi[inside], energy[inside]
    track_energy, track_var, row = track_energy[inside], track_var[inside], row[inside]
    n_phi = cal.n_phi[row]
    col = np.floor((wrap(phi) + np.pi) / (2 * np.pi) * n_phi).astype(np.int64)
    col = np.clip(col, 0, n_phi - 1)
    key = (event.astype(np.int64) * len(cal.n_phi) + row) * 1024 + col
    uniq, inv = np.unique(key, return_inverse=True)
    e_tower = np.bincount(inv, weights=energy, minlength=len(uniq))
    e_track = np.bincount(inv, weights=track_energy, minlength=len(uniq))
    v_track = np.bincount(inv, weights=track_var, minlength=len(uniq))
    t_col = uniq % 1024
    t_row = (uniq // 1024) % len(cal.n_phi)
    t_event = uniq // 1024 // len(cal.n_phi)
    lo, hi = cal.edges[t_row], cal.edges[t_row + 1]
    centre = 0.5 * (lo + hi)
    sigma = cal.sigma(e_tower, np.abs(centre))
    smeared = _log_normal(rng, e_tower, sigma)
    smeared = np.where((smeared < cal.energy_min) | (smeared < cal.significance_min * sigma),
                       0.0, smeared)
    u = rng.random((2, len(uniq)))  # SmearTowerCenter: a uniform position within the cell
    width = 2 * np.pi / cal.n_phi[t_row]
    t_eta = lo + u[0] * (hi - lo)
    t_phi = wrap(-np.pi + (t_col + u[1]) * width)
    return t_event, smeared, e_track, v_track, sigma, t_eta, t_phi


def wrap(phi: np.ndarray) -> np.ndarray:
    return (phi + np.pi) % (2 * np.pi) - np.pi


def _massless(event, energy, eta, phi, pid) -> dict[str, np.ndarray]:
    pt = energy / np.cosh(eta)
    return {"event": event, "px": pt * np.cos(phi), "py": pt * np.sin(phi),
            "pz": pt * np.sinh(eta), "e": energy, "id": np.full(len(energy), pid)}


def apply_detector(mode: str, fin: dict[str, np.ndarray], counts: np.ndarray, charge: np.ndarray,
                   rng: np.random.Generator | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The detector-level candidates of a batch of events.

    Args:
        mode: one of :data:`DETECTOR_MODES`.
        fin: flat stable visible particles of every event (``px``, ``py``, ``pz``, ``e``,
            ``id``), event after event.
        counts: particles per event.
        charge: electric charge of each particle.
        rng: the chunk's detector random generator (unused for ``none``).

    Returns:
        The candidates in the same layout (``px``, ``py``, ``pz``, ``e``, ``id``), event
        after event, and the candidates per event. ``none`` returns the input itself.
    """
    check_detector_mode(mode)
    if mode == "none":
        return fin, counts
    spec = DETECTORS[mode]
    n_events = len(counts)
    event = np.repeat(np.arange(n_events), counts)
    px, py, pz, e = (np.asarray(fin[k], dtype=np.float64) for k in ("px", "py", "pz", "e"))
    pid = np.asarray(fin["id"])
    abs_id = np.abs(pid)
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
    phi = np.arctan2(py, px)
    abs_eta = np.abs(eta)
    n = len(pt)
    # one draw per particle for the track (efficiency, then momentum), whatever its kind
    u_track, z_track = rng.random(n), rng.standard_normal(n)

    # tracks: species efficiency, log-normal pT smearing, direction kept, mass kept
    charged = charge != 0
    tracked = charged & (u_track < _tracking_efficiency(spec, abs_id, pt, abs_eta))
    rel = _momentum_resolution(spec, abs_id, pt, abs_eta)
    s2 = np.log1p(rel**2)
    scale = np.where(tracked, np.exp(-0.5 * s2 + np.sqrt(s2) * z_track), 1.0)
    mass2 = np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0)
    t_px, t_py, t_pz = px * scale, py * scale, pz * scale
    t_e = np.sqrt(t_px**2 + t_py**2 + t_pz**2 + mass2)

    # calorimeter deposits at the bent position; the expected deposit of each track there
    f_ecal, f_hcal = _energy_fractions(abs_id)
    phi_calo = _bent_phi(phi, pt, charge, spec)
    track_e = np.where(tracked, t_e, 0.0)
    track_var = (rel * track_e) ** 2
    out = []
    if spec.particle_flow:
        out.append({"event": event[tracked], "px": t_px[tracked], "py": t_py[tracked],
                    "pz": t_pz[tracked], "e": t_e[tracked], "id": pid[tracked]})
    for cal, frac, out_id in ((spec.ecal, f_ecal, _PHOTON_ID), (spec.hcal, f_hcal, _NEUTRAL_HADRON_ID)):
        ev, energy, e_trk, v_trk, sigma, t_eta, t_phi = _towers(
            cal, event, eta, phi_calo, frac * e, frac * track_e, frac**2 * track_var, rng)
        if spec.particle_flow:
            # e-flow: what the tracks do not explain, if significant
            neutral = np.maximum(energy - e_trk, 0.0)
            significance = neutral / np.sqrt(sigma**2 + v_trk + 1e-12)
            keep = (neutral > cal.energy_min) & (significance > cal.significance_min)
            energy = np.where(keep, neutral, 0.0)
        keep = energy > 0
        out.append(_massless(ev[keep], energy[keep], t_eta[keep], t_phi[keep], out_id))
    cat = {k: np.concatenate([o[k] for o in out]) for k in ("event", "px", "py", "pz", "e", "id")}
    order = np.argsort(cat["event"], kind="stable")
    result = {k: cat[k][order] for k in ("px", "py", "pz", "e", "id")}
    return result, np.bincount(cat["event"], minlength=n_events)

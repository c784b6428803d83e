"""Process cards and dataset cards of the generated (embedded default) datasets.

Each generated dataset mirrors one public dataset at particle level: Pythia 8 hard
process + parton shower + hadronisation (+ multiple parton interactions where the real
dataset had them), FastJet anti-kT with the real radius, the real kinematic selection and,
for resonance classes, truth matching of the decay products to the jet as JetClass does.
By default there is **no detector simulation** (JetClass and Top Landscape used Delphes;
the quark-gluon sample is particle level like ours), so numbers are not expected to match
the papers' to better than the effect of a detector; ``dataset.detector: cms-like`` or
``atlas-like`` applies the parametrised response of :mod:`partnb.data.detector` instead.

A :class:`ProcessCard` says everything that defines one class: the Pythia settings,
which resonance must be matched to the jet, and how many jets an event may give.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .schema import DATASETS, JETCLASS_CLASSES, JETCLASS_FILE_PREFIXES

__all__ = ["ProcessCard", "DatasetCard", "DATASET_CARDS", "dataset_card_text"]

#: Settings shared by every card: particle level, LHC convention for stable particles
#: (c·tau > 10 mm does not decay: K0S, Lambda are final state, as in the detector samples).
COMMON_SETTINGS = (
    "Tune:pp = 14",  # Monash 2013, Pythia's default tune, stated explicitly
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Print:quiet = on",
)

_Z_TO_NUNU = ("WeakZ0:gmZmode = 2", "23:onMode = off", "23:onIfAny = 12 14 16")
_W_HADRONIC = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
_W_LEPTONIC = ("24:onMode = off", "24:onIfAny = 11 13 15")
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")
_ZH = ("HiggsSM:ffbar2HZ = on",) + _Z_TO_NUNU + ("25:onMode = off",)
_Z_PLUS_JET = ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on")


@dataclass(frozen=True)
class ProcessCard:
    """One generated class.

    Attributes:
        name: class name (weaver label name without ``label_``).
        description: one line for the dataset card.
        settings: Pythia ``readString`` lines specific to this class.
        alternate_settings: optional second list used for odd chunk indices (e.g. the
            charge-conjugate W decay of H->lnuqq), so the sample is charge symmetric.
        resonance: |PDG id| of the resonance whose decay products must lie inside the jet
            (None: no matching, every jet passing the selection is kept).
        outgoing_partons: for quark/gluon cards: allowed |PDG id| of the hard outgoing parton.
        leading_jet_only: keep only the hardest jet of the event (quark-gluon convention).
    """

    name: str
    description: str
    settings: tuple[str, ...]
    alternate_settings: tuple[str, ...] | None = None
    resonance: int | None = None
    outgoing_partons: tuple[int, ...] | None = None
    leading_jet_only: bool = False

    def settings_for_chunk(self, chunk_index: int) -> tuple[str, ...]:
        if self.alternate_settings is not None and chunk_index % 2 == 1:
            return self.alternate_settings
        return self.settings


@dataclass(frozen=True)
class DatasetCard:
    """Beam, jet definition, selection and classes of one generated dataset family."""

    name: str
    title: str
    real_dataset: str
    sqrt_s_gev: float
    mpi: bool
    jet_radius: float
    pt_min: float
    pt_max: float
    abs_eta_max: float
    #: "eta" (pseudorapidity) or "y" (rapidity) for the |.| < abs_eta_max cut
    eta_variable: str
    pthat_min: float
    pthat_max: float
    processes: tuple[ProcessCard, ...]
    file_prefixes: tuple[str, ...]
    label_convention: str
    differences: tuple[str, ...] = field(default_factory=tuple)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.processes)

    def beam_settings(self) -> tuple[str, ...]:
        return (
            f"Beams:eCM = {self.sqrt_s_gev:g}",
            f"PartonLevel:MPI = {'on' if self.mpi else 'off'}",
            f"PhaseSpace:pTHatMin = {self.pthat_min:g}",
            f"PhaseSpace:pTHatMax = {self.pthat_max:g}",
        )


_JETCLASS_PROCESSES = (
    ProcessCard("QCD", "Z(->nunu) + jet, q qbar -> Z g and q g -> Z q", _Z_PLUS_JET + _Z_TO_NUNU),
    ProcessCard("Hbb", "Z(->nunu) H, H -> b bbar", _ZH + ("25:onIfAny = 5",), resonance=25),
    ProcessCard("Hcc", "Z(->nunu) H, H -> c cbar", _ZH + ("25:onIfAny = 4",), resonance=25),
    ProcessCard("Hgg", "Z(->nunu) H, H -> g g", _ZH + ("25:onIfAny = 21",), resonance=25),
    ProcessCard(
        "H4q", "Z(->nunu) H, H -> W W* -> 4 quarks",
        _ZH + ("25:onIfMatch = 24 -24",) + _W_HADRONIC, resonance=25,
    ),
    ProcessCard(
        "Hqql", "Z(->nunu) H, H -> W W* -> q q' l nu (l = e, mu, tau; both charges)",
        _ZH + ("25:onIfMatch = 24 -24", "24:onMode = off",
               "24:onPosIfAny = 1 2 3 4 5", "24:onNegIfAny = 11 13 15"),
        alternate_settings=_ZH + ("25:onIfMatch = 24 -24", "24:onMode = off",
                                  "24:onNegIfAny = 1 2 3 4 5", "24:onPosIfAny = 11 13 15"),
        resonance=25,
    ),
    ProcessCard(
        "Zqq", "Z + jet, Z -> q qbar (q = udscb)",
        _Z_PLUS_JET + ("WeakZ0:gmZmode = 2", "23:onMode = off", "23:onIfAny = 1 2 3 4 5"),
        resonance=23,
    ),
    ProcessCard(
        "Wqq", "W + jet, W -> q qbar'",
        ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on") + _W_HADRONIC,
        resonance=24,
    ),
    ProcessCard("Tbqq", "t tbar, t -> b W, W -> q qbar'", _TTBAR + _W_HADRONIC, resonance=6),
    ProcessCard(
        "Tbl", "t tbar, t -> b W, W -> l nu (l = e, mu, tau)", _TTBAR + _W_LEPTONIC, resonance=6,
    ),
)

_TL_PROCESSES = (
    ProcessCard("top", "t tbar, all hadronic (t -> b q qbar')", _TTBAR + _W_HADRONIC, resonance=6),
    ProcessCard("QCD", "QCD 2 -> 2 (HardQCD:all)", ("HardQCD:all = on",)),
)

_QG_PROCESSES = (
    ProcessCard(
        "quark", "Z(->nunu) + quark, q g -> Z q, outgoing q = u, d, s",
        ("WeakBosonAndParton:qg2gmZq = on",) + _Z_TO_NUNU,
        outgoing_partons=(1, 2, 3), leading_jet_only=True,
    ),
    ProcessCard(
        "gluon", "Z(->nunu) + gluon, q qbar -> Z g",
        ("WeakBosonAndParton:qqbar2gmZg = on",) + _Z_TO_NUNU,
        outgoing_partons=(21,), leading_jet_only=True,
    ),
)

_NO_DETECTOR = (
    "No detector simulation: particles are Pythia's stable final state (neutrinos removed), "
    "without tracking/calorimeter resolution, thresholds or particle-flow reconstruction.",
    "Impact parameters part_d0val/part_dzval are 0 and part_d0err/part_dzerr are 0: the "
    "generator has no tracks or vertices to measure (particles come from the primary vertex "
    "or from decays with c*tau < 10 mm, whose displacement is not propagated).",
    "No pile-up.",
)

DATASET_CARDS: dict[str, DatasetCard] = {
    "jetclass": DatasetCard(
        name="jetclass",
        title="JetClass-like, generated (10 classes)",
        real_dataset="JetClass (Qu, Li, Qian 2022; Zenodo 6619768): MadGraph5 + Pythia 8 + Delphes CMS",
        sqrt_s_gev=13000.0,
        mpi=True,
        jet_radius=DATASETS["jetclass"].jet_radius,
        pt_min=500.0, pt_max=1000.0, abs_eta_max=2.0, eta_variable="eta",
        pthat_min=450.0, pthat_max=1100.0,
        processes=_JETCLASS_PROCESSES,
        file_prefixes=JETCLASS_FILE_PREFIXES,
        label_convention="one-hot label_* branches with JetClass's mixed dtypes; class index "
        "= position in " + ", ".join(JETCLASS_CLASSES),
        differences=_NO_DETECTOR + (
            "Resonances come from Standard Model processes (ZH, W/Z + jet, t tbar) rather than "
            "JetClass's heavy-resonance samples, so the pT spectrum of signal and QCD jets "
            "differs; signal jets require the resonance and all its visible decay products "
            "within Delta R < 0.8 of the jet axis.",
        ),
    ),
    "toplandscape": DatasetCard(
        name="toplandscape",
        title="Top-tagging landscape-like, generated (top vs QCD)",
        real_dataset="Top Quark Tagging Reference Dataset (Kasieczka et al. 2019; Zenodo 2603256): "
        "Pythia 8 + Delphes ATLAS card",
        sqrt_s_gev=14000.0,
        mpi=False,
        jet_radius=DATASETS["toplandscape"].jet_radius,
        pt_min=550.0, pt_max=650.0, abs_eta_max=2.0, eta_variable="eta",
        pthat_min=500.0, pthat_max=700.0,
        processes=_TL_PROCESSES,
        file_prefixes=("top", "QCD"),
        label_convention="branch `label` = 1 for top, 0 for QCD (as the ParT converter writes "
        "is_signal_new); weaver class index 0 = top, 1 = QCD",
        differences=_NO_DETECTOR + (
            "The real dataset keeps the 200 leading constituents of calorimeter-level "
            "(Delphes eflow) objects; ours keeps every stable visible particle.",
        ),
    ),
    "quarkgluon": DatasetCard(
        name="quarkgluon",
        title="Quark-gluon-like, generated (Z + q vs Z + g)",
        real_dataset="Pythia 8 quark and gluon jets (Komiske, Metodiev, Thaler 2019; Zenodo "
        "3164691), particle level",
        sqrt_s_gev=14000.0,
        mpi=True,
        jet_radius=DATASETS["quarkgluon"].jet_radius,
        pt_min=500.0, pt_max=550.0, abs_eta_max=1.7, eta_variable="y",
        pthat_min=450.0, pthat_max=650.0,
        processes=_QG_PROCESSES,
        file_prefixes=("quark", "gluon"),
        label_convention="branch `label` = 1 for quark, 0 for gluon (EnergyFlow's y); weaver "
        "class index 0 = quark, 1 = gluon",
        differences=(
            "Both are particle level without detector simulation; the real sample used "
            "Pythia 8.226 with its default tune, ours Pythia 8.317 Monash.",
            "The class is defined by the outgoing parton of the hard 2 -> 2 process, and only "
            "the hardest jet of the event is kept, as in the real sample.",
            "Impact-parameter branches are absent, as in the real sample.",
        ),
    ),
}


#: One line per detector mode for the dataset card (the particle-level card has none).
_DETECTOR_LINES = {
    "cms-like": "cms-like: parametrised response of the Delphes CMS card (partnb.data.detector, "
    "docs/detector.md): tracking efficiency and pT resolution, ECAL/HCAL towers with the card's "
    "segmentation, resolutions and thresholds; particle-flow candidates (tracks, photons from "
    "the ECAL, neutral hadrons from the HCAL) are clustered",
    "atlas-like": "atlas-like: parametrised response of the Delphes ATLAS card (partnb.data.detector, "
    "docs/detector.md): tracking efficiency and pT resolution, ECAL/HCAL towers with the card's "
    "segmentation, resolutions and thresholds; its e-flow objects (tracks, ECAL and HCAL "
    "neutrals) are clustered",
}


def dataset_card_text(dataset: str, pythia_version: str | None = None, detector: str = "none") -> str:
    """The dataset card as Markdown: generator, tune, processes, cuts, labels, differences;
    with a ``detector`` other than ``none``, what the detector emulation does."""
    card = DATASET_CARDS[dataset]
    if pythia_version is None:
        try:
            from importlib.metadata import version

            pythia_version = version("pythia8mc")
        except Exception:  # pragma: no cover - only without pythia8mc installed
            pythia_version = "unknown"
    eta = "|eta|" if card.eta_variable == "eta" else "|y|"
    lines = [
        f"## {card.title}",
        "",
        f"- Mirrors: {card.real_dataset}",
        f"- Generator: Pythia {pythia_version} (pythia8mc), tune Monash 2013 (Tune:pp = 14), "
        f"pp at sqrt(s) = {card.sqrt_s_gev / 1000:g} TeV, multiple parton interactions "
        f"{'on' if card.mpi else 'off'}, hadronisation on, c*tau > 10 mm stable, "
        f"pTHat in [{card.pthat_min:g}, {card.pthat_max:g}] GeV",
        f"- Jets: FastJet anti-kT R = {card.jet_radius:g}, E-scheme, on "
        + ("all stable visible particles (neutrinos removed)" if detector == "none"
           else "the detector-level candidates (below)"),
        f"- Selection: {card.pt_min:g} < pT < {card.pt_max:g} GeV, {eta} < {card.abs_eta_max:g}",
        f"- Labels: {card.label_convention}",
        "- Branches: JetClass layout (tree `tree`): part_px/py/pz/energy, part_deta = "
        "sign(jet_eta)(eta - jet_eta), part_dphi (wrapped), PID flags and charge from the Pythia "
        "ids, jet_pt/eta/phi/energy/mass/nparticles, jet_sdmass (soft drop beta = 0, "
        "z_cut = 0.1), jet_tau1..4 (N-subjettiness, exclusive kT axes, beta = 1)",
        "- Processes:",
    ]
    lines += [f"  - `{p.name}`: {p.description}" for p in card.processes]
    differences = list(card.differences)
    if detector != "none":
        lines.append(f"- Detector: {_DETECTOR_LINES[detector]}")
        differences = [d.replace("ours keeps every stable visible particle",
                                 "ours keeps every e-flow candidate")
                       .replace("Both are particle level without detector simulation",
                                "The real sample is particle level, ours is not")
                       for d in differences if d != _NO_DETECTOR[0]] + [
            "The detector is a parametrisation of the Delphes card, not Delphes: no pile-up, "
            "no vertexing or impact parameters, tracks keep their momenta in the particle-flow "
            "combination."]
    lines.append("- Differences from the real dataset:")
    lines += [f"  - {d}" for d in differences]
    return "\n".join(lines)

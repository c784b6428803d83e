"""Names, dtypes and label conventions shared by every reader and writer.

The in-memory representation of jets everywhere in partnb is an ``awkward.Array`` of
records whose fields carry the JetClass branch names (docs/datasets.md#the-common-jet-layout): jagged ``part_*``
fields, scalar ``jet_*`` fields, plus one integer field ``label`` holding the weaver
class index (docs/datasets.md#label-conventions). Every reader (``partnb.data.io``) yields chunks in this
shape and ``partnb.data.features`` consumes it, so generated and real files share one path.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DATASETS",
    "DatasetSchema",
    "JETCLASS_CLASSES",
    "JET_BRANCHES",
    "PARTICLE_BRANCHES",
    "KINEMATIC_PARTICLE_BRANCHES",
    "PID_PARTICLE_BRANCHES",
    "IMPACT_PARTICLE_BRANCHES",
    "JETCLASS_LABEL_DTYPES",
    "PAPER_COLUMN_ORDER",
]

#: Per-particle jagged branches of the JetClass ROOT files, all stored as float32.
KINEMATIC_PARTICLE_BRANCHES = (
    "part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi",
)
IMPACT_PARTICLE_BRANCHES = ("part_d0val", "part_d0err", "part_dzval", "part_dzerr")
PID_PARTICLE_BRANCHES = (
    "part_charge", "part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton",
    "part_isElectron", "part_isMuon",
)
PARTICLE_BRANCHES = KINEMATIC_PARTICLE_BRANCHES + IMPACT_PARTICLE_BRANCHES + PID_PARTICLE_BRANCHES

#: Jet-level scalar branches (float32).
JET_BRANCHES = (
    "jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_nparticles", "jet_sdmass",
    "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4",
)

#: JetClass classes in weaver's class-index order (docs/datasets.md#jetclass), with their file-name prefixes.
JETCLASS_CLASSES = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")
JETCLASS_FILE_PREFIXES = (
    "ZJetsToNuNu", "HToBB", "HToCC", "HToGG", "HToWW4Q", "HToWW2Q1L", "ZToQQ", "WToQQ",
    "TTBar", "TTBarLep",
)
#: The label branches of the real files have mixed dtypes (docs/datasets.md#jetclass, docs/pitfalls.md#pitfall-8-label-conventions).
JETCLASS_LABEL_DTYPES = {
    "label_QCD": "float32",
    "label_Hbb": "bool", "label_Hcc": "bool", "label_Hgg": "bool", "label_H4q": "bool",
    "label_Hqql": "bool",
    "label_Zqq": "int32", "label_Wqq": "int32", "label_Tbqq": "int32", "label_Tbl": "int32",
}
#: Column order of the papers' tables (W before Z, unlike the index order; docs/metrics.md#background-rejection).
PAPER_COLUMN_ORDER = ("Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Tbqq", "Tbl", "Wqq", "Zqq")


@dataclass(frozen=True)
class DatasetSchema:
    """What distinguishes the three dataset families once they are in JetClass layout."""

    name: str
    #: class names in weaver class-index order
    classes: tuple[str, ...]
    #: particle branches the family's files really carry (others are absent, not zero)
    particle_branches: tuple[str, ...]
    #: anti-kT radius of the jets
    jet_radius: float
    #: for binary families: the raw ``label`` value that means class index 0
    #: (TL: raw 1 = top -> index 0; QG: raw 1 = quark -> index 0; docs/datasets.md#label-conventions)
    raw_label_of_index0: int | None = None


DATASETS = {
    "jetclass": DatasetSchema(
        name="jetclass",
        classes=JETCLASS_CLASSES,
        particle_branches=PARTICLE_BRANCHES,
        jet_radius=0.8,
    ),
    "toplandscape": DatasetSchema(
        name="toplandscape",
        classes=("top", "QCD"),
        particle_branches=KINEMATIC_PARTICLE_BRANCHES,
        jet_radius=0.8,
        raw_label_of_index0=1,
    ),
    "quarkgluon": DatasetSchema(
        name="quarkgluon",
        classes=("quark", "gluon"),
        particle_branches=KINEMATIC_PARTICLE_BRANCHES + PID_PARTICLE_BRANCHES,
        jet_radius=0.4,
        raw_label_of_index0=1,
    ),
}

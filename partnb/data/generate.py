"""Generate the embedded default datasets with Pythia 8 and FastJet.

The work is cut into *chunks*: chunk ``i`` of class ``c`` is one ROOT file of exactly
``jets_per_file`` jets, and it is a pure function of the generation settings, the seed,
``c`` and ``i`` (its Pythia seed is derived from all of them). So the same settings give
the same jets whatever the number of workers, a cluster can produce chunks as independent
array jobs (:func:`generate_chunk_file`), and an interrupted run resumes at the first
missing file. Each file is written to a temporary name and renamed, so a file that exists
is complete.

Three engines run the chunks, all through the one per-file function
:func:`generate_chunk_file`, so they write the same jets: :func:`generate` (one process, or a
pool of ``workers`` processes, or with ``scheduler`` the tasks of a ``dask.distributed``
cluster: :mod:`partnb.data.engines`); :func:`generate_file`, one file named by class and
index (a Slurm or HTCondor array task); :func:`missing_chunks` lists the files still to make
(to resubmit the array tasks that failed). ``docs/cluster.md`` shows them at scale.

Per batch of events the work is vectorised: ``Pythia.nextBatch`` returns the event records
as awkward arrays, FastJet clusters the whole batch in one call, and the jet and particle
quantities are computed with awkward/numpy. Only the truth matching walks the (short)
resonance decay chains of each event in Python.

The dataset cards (processes, cuts, differences to the real data) live in
:mod:`partnb.data.cards`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import awkward as ak
import numpy as np

from ..params import stable_hash
from .cards import COMMON_SETTINGS, DATASET_CARDS, DatasetCard, ProcessCard
from .detector import DETECTOR_MODEL_VERSION, DETECTOR_MODES, apply_detector, check_detector_mode
from .io import DataError
from .kinematics import pseudorapidity, rapidity, wrap_phi
from .schema import JETCLASS_CLASSES, JETCLASS_LABEL_DTYPES

__all__ = [
    "GenerationConfig",
    "Chunk",
    "GENERATOR_VERSION",
    "plan_chunks",
    "generate_chunk",
    "generate_chunk_file",
    "generate",
    "generate_file",
    "missing_chunks",
    "select_chunk",
    "GenerationRequestError",
    "bare_pythia_rate",
]

#: Bump when the generated content changes for the same settings (invalidates caches).
GENERATOR_VERSION = 1
_NEUTRINOS = (12, 14, 16)
_RESONANCES = (6, 23, 24, 25)
_EVENTS_PER_BATCH = 50
_MAX_EMPTY_BATCHES = 400


@dataclass(frozen=True)
class GenerationConfig:
    """Everything that defines a generated dataset.

    Attributes:
        dataset: ``jetclass``, ``toplandscape`` or ``quarkgluon``.
        jets_per_class: jets wanted per class (rounded up to whole files).
        jets_per_file: jets per file, the unit of work; part of the cache key.
        seed: master seed.
        classes: subset of the dataset's classes (None: all).
        detector: ``none`` (particle level), ``cms-like`` or ``atlas-like``
            (:mod:`partnb.data.detector`); enters the cache key unless ``none``, so the
            particle-level data keeps the key it had before the option existed.
    """

    dataset: str
    jets_per_class: int = 8000
    jets_per_file: int = 1000
    seed: int = 42
    classes: tuple[str, ...] | None = None
    detector: str = "none"

    def __post_init__(self):
        check_detector_mode(self.detector)
        if self.dataset not in DATASET_CARDS:
            raise ValueError(f"unknown dataset {self.dataset!r}; one of {sorted(DATASET_CARDS)}")
        if self.jets_per_class <= 0 or self.jets_per_file <= 0:
            raise ValueError("jets_per_class and jets_per_file must be positive")
        valid = DATASET_CARDS[self.dataset].classes
        for c in self.classes or ():
            if c not in valid:
                raise ValueError(f"{self.dataset} has no class {c!r}; classes: {', '.join(valid)}")

    @property
    def card(self) -> DatasetCard:
        return DATASET_CARDS[self.dataset]

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.classes) if self.classes else self.card.classes

    def cache_key(self) -> str:
        """Hash of what determines the content of each file (not how many files)."""
        import pythia8mc

        card = self.card
        settings = {
            "dataset": self.dataset,
            "jets_per_file": self.jets_per_file,
            "seed": self.seed,
            "generator_version": GENERATOR_VERSION,
            "pythia": getattr(pythia8mc, "__version__", _pythia_version()),
            "card": asdict(card),
            "common": COMMON_SETTINGS,
        }
        if self.detector != "none":  # particle level keeps the key it always had
            settings["detector"] = {"mode": self.detector, "version": DETECTOR_MODEL_VERSION}
        return stable_hash(settings)

    @classmethod
    def from_params(cls, params, jets_per_class: int | None = None) -> GenerationConfig:
        ds = params.dataset
        return cls(
            dataset=ds.name,
            jets_per_class=jets_per_class or ds.jets_per_class,
            jets_per_file=min(ds.jets_per_file, jets_per_class or ds.jets_per_file),
            seed=params.seed,
            classes=tuple(ds.classes) if ds.classes else None,
            detector=ds.detector,
        )


@dataclass(frozen=True)
class Chunk:
    """One unit of work: ``n_jets`` jets of class ``class_name``, written to ``filename``."""

    class_index: int
    class_name: str
    index: int
    n_jets: int
    filename: str


def _pythia_version() -> str:
    from importlib.metadata import version

    return version("pythia8mc")


def plan_chunks(config: GenerationConfig) -> list[Chunk]:
    """The files that make up ``config``'s dataset, class by class."""
    card = config.card
    n_files = math.ceil(config.jets_per_class / config.jets_per_file)
    chunks = []
    for name in config.class_names:
        ci = card.classes.index(name)
        prefix = card.file_prefixes[ci]
        for i in range(n_files):
            chunks.append(Chunk(ci, name, i, config.jets_per_file, f"{prefix}_{i:04d}.root"))
    return chunks


class GenerationRequestError(DataError):
    """A generation request that cannot run, refused before any work: an unknown class, a file
    index out of range, a Dask scheduler that is not installed or does not answer.

    ``option`` is the ``partnb generate`` option that carries it (``class``, ``file``,
    ``scheduler``), ``value`` what was asked, ``reason`` why it cannot run; the message is
    ``--option value: reason``.
    """

    def __init__(self, option: str, value, reason: str):
        self.option, self.value, self.reason = option, value, reason
        super().__init__(f"--{option} {value}: {reason}")


def select_chunk(config: GenerationConfig, class_name: str, index: int) -> Chunk:
    """The chunk that is file ``index`` of class ``class_name`` in ``config``'s plan.

    Raises:
        GenerationRequestError: the class is not one of ``config``'s, or the index is not
            one of its files (``0 ... n_files - 1``).
    """
    names = config.class_names
    if class_name not in names:
        why = (f"not a class of {config.dataset}" if class_name not in config.card.classes
               else "not one of the classes that dataset.classes selects")
        raise GenerationRequestError("class", class_name, f"{why} (classes: {', '.join(names)})")
    chunks = [c for c in plan_chunks(config) if c.class_name == class_name]
    if not 0 <= index < len(chunks):
        raise GenerationRequestError(
            "file", index,
            f"out of range: {config.dataset} has files 0-{len(chunks) - 1} of class {class_name} "
            f"({config.jets_per_class} jets per class, {config.jets_per_file} per file)")
    return chunks[index]


def missing_chunks(config: GenerationConfig, cache_dir: str | os.PathLike) -> list[Chunk]:
    """The chunks of ``config``'s plan whose file is not (yet) under ``cache_dir``, in plan
    order (class by class, index ascending), whatever made the others: a full run, an array
    task or a Dask task. Reads only; creates nothing."""
    out_dir = output_dir(config, cache_dir)
    return [c for c in plan_chunks(config) if not (out_dir / c.filename).exists()]


def chunk_seed(config: GenerationConfig, chunk: Chunk, cache_key: str | None = None) -> int:
    """Pythia seed of a chunk: a pure function of the settings, class and chunk index.

    The detector is left out: every mode generates the same events (the particle-level
    chunk's seed), so the modes can be compared event by event; the detector's own random
    numbers come from :func:`detector_rng`."""
    if config.detector != "none":
        cache_key = replace(config, detector="none").cache_key()
    key = cache_key or config.cache_key()
    h = stable_hash([key, chunk.class_name, chunk.index], length=15)
    return int(h, 16) % 900_000_000 + 1  # Pythia accepts 1 ... 900 000 000


def detector_rng(config: GenerationConfig, seed: int) -> np.random.Generator | None:
    """The detector's random generator of a chunk whose Pythia seed is ``seed``: a pure
    function of the chunk (the same whatever the number of workers) and of the mode; None
    at particle level, which draws nothing."""
    if config.detector == "none":
        return None
    return np.random.default_rng([seed, DETECTOR_MODES.index(config.detector)])


@contextlib.contextmanager
def quiet_stdout():
    """Silence C++ banners (FastJet, Pythia) written straight to file descriptor 1."""
    try:
        fd = os.dup(1)
    except OSError:  # pragma: no cover - no stdout at all
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)


def make_pythia(settings: Sequence[str]):
    """A configured, initialised ``pythia8mc.Pythia``; raises RuntimeError if init fails."""
    import pythia8mc

    with quiet_stdout():
        pythia = pythia8mc.Pythia("", False)
        for line in settings:
            if not pythia.readString(line):
                raise RuntimeError(f"Pythia rejected the setting {line!r}")
        ok = pythia.init()
    if not ok:
        raise RuntimeError(f"Pythia failed to initialise with settings {list(settings)}")
    return pythia


def pythia_settings(card: DatasetCard, proc: ProcessCard, chunk_index: int, seed: int) -> list[str]:
    return [
        *card.beam_settings(), *COMMON_SETTINGS, *proc.settings_for_chunk(chunk_index),
        "Random:setSeed = on", f"Random:seed = {seed}",
    ]


# --------------------------------------------------------------------------------------
# Truth: resonance decay products and hard partons, per event
# --------------------------------------------------------------------------------------


def _bottom_copy(i: int, ids, d1, d2) -> int:
    """Follow the carbon copies of particle ``i`` (recoils in the shower) to the last one."""
    while True:
        a, b = d1[i], d2[i]
        if a > 0 and (b == a or b == 0) and ids[a] == ids[i]:
            i = a
            continue
        return i


def _decay_leaves(i: int, ids, d1, d2, depth: int = 0) -> list[int]:
    """Indices of the non-resonant decay products of resonance ``i`` (recursing through W/Z/H)."""
    i = _bottom_copy(i, ids, d1, d2)
    a, b = d1[i], d2[i]
    if a <= 0 or depth > 4:
        return []
    leaves = []
    for k in range(a, max(a, b) + 1):
        if abs(ids[k]) in _RESONANCES:
            leaves += _decay_leaves(k, ids, d1, d2, depth + 1)
        else:
            leaves.append(k)
    return leaves


def _truth_targets(ev: dict[str, np.ndarray], resonance: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each hard resonance of type ``resonance`` in one event: (eta, phi) of the
    resonance (first element) and of its visible decay products (the rest)."""
    ids, m1, d1, d2 = ev["id"], ev["mother1"], ev["daughter1"], ev["daughter2"]
    aid = np.abs(ids)
    targets = []
    for i in np.flatnonzero(aid == resonance):
        if abs(ids[m1[i]]) == resonance:  # a copy, not the first instance
            continue
        last = _bottom_copy(int(i), ids, d1, d2)
        leaves = [k for k in _decay_leaves(int(i), ids, d1, d2) if abs(ids[k]) not in _NEUTRINOS]
        if not leaves:
            continue
        idx = np.array([last, *leaves])
        eta = pseudorapidity(ev["px"][idx], ev["py"][idx], ev["pz"][idx])
        phi = np.arctan2(ev["py"][idx], ev["px"][idx])
        targets.append((eta, phi))
    return targets


def _hard_outgoing_parton(ev: dict[str, np.ndarray]) -> int:
    """|PDG id| of the coloured outgoing parton of the hard 2 -> 2 process (entries 5, 6)."""
    for k in (5, 6):
        if k < len(ev["id"]):
            a = abs(int(ev["id"][k]))
            if a <= 6 or a == 21:
                return a
    return 0


# --------------------------------------------------------------------------------------
# One batch of events -> selected jets
# --------------------------------------------------------------------------------------


def _charges(ids: np.ndarray, pythia) -> np.ndarray:
    uniq, inv = np.unique(ids, return_inverse=True)
    ch = np.array([pythia.particleData.charge(int(u)) for u in uniq], dtype=np.float32)
    return ch[inv]


def _flat_event_record(prt) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The few event-record columns we use, as flat numpy arrays, and particles per event.

    Projecting single fields before flattening avoids masking the whole record (a dozen
    columns, vertices included), which costs more than the clustering itself.
    """
    counts = ak.to_numpy(ak.num(prt.id))
    cols = {name: ak.to_numpy(ak.flatten(prt[name])) for name in
            ("id", "status", "mother1", "daughter1", "daughter2")}
    p = prt.p
    cols.update({name: ak.to_numpy(ak.flatten(p[key])) for name, key in
                 (("px", "px"), ("py", "py"), ("pz", "pz"), ("e", "e"))})
    return cols, counts


def _visible(flat: dict[str, np.ndarray], card: DatasetCard, proc: ProcessCard) -> np.ndarray:
    """Final-state particles that are clustered: not neutrinos, and (unless the card keeps the
    leading jet only) within the acceptance plus 3R in rapidity."""
    aid = np.abs(flat["id"])
    visible = (flat["status"] > 0) & (aid != 12) & (aid != 14) & (aid != 16)
    if not proc.leading_jet_only:
        # A particle more than 3R in rapidity beyond the acceptance can neither enter nor move
        # a selected jet (anti-kT merges within ~R of the axis; |y_jet| <= |eta_jet|), so it
        # is not clustered: a third of the particles (beam remnants, MPI) at no cost in physics.
        # Not for leading-jet-only cards, where a forward jet can still be the hardest.
        y_max = card.abs_eta_max + 3 * card.jet_radius
        visible &= np.abs(rapidity(flat["pz"], flat["e"])) < y_max
    return visible


def _cluster(fin: dict[str, np.ndarray], fin_counts: np.ndarray, card: DatasetCard):
    """Anti-kT jets (R of the card, pT > 0.8 pT_min) of every event and each jet's
    constituent indices into its event's final-state particles."""
    import fastjet

    p4 = ak.unflatten(ak.zip({"px": fin["px"], "py": fin["py"], "pz": fin["pz"], "E": fin["e"]}),
                      fin_counts)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, card.jet_radius)
    min_pt = 0.8 * card.pt_min
    with quiet_stdout(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(p4, jetdef)
        return cs.inclusive_jets(min_pt=min_pt), cs.constituent_index(min_pt=min_pt)


def _jet_kinematics(jets, n_per_event: np.ndarray) -> dict[str, np.ndarray]:
    """Flat per-jet kinematics, the event of each jet and its pT rank there (0 = hardest)."""
    n_events = len(n_per_event)
    event = np.repeat(np.arange(n_events), n_per_event)
    kin = {name: ak.to_numpy(ak.flatten(getattr(jets, key)))
           for name, key in (("px", "px"), ("py", "py"), ("pz", "pz"), ("e", "E"))}
    kin["pt"] = np.hypot(kin["px"], kin["py"])
    kin["eta"] = pseudorapidity(kin["px"], kin["py"], kin["pz"])
    kin["phi"] = np.arctan2(kin["py"], kin["px"])
    kin["rap"] = rapidity(kin["pz"], kin["e"])
    order = np.lexsort((-kin["pt"], event))
    first = np.concatenate([[0], np.cumsum(n_per_event)[:-1]])
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order)) - np.repeat(first, n_per_event)
    kin["event"], kin["rank"] = event, rank
    return kin


def _in_window(kin: dict[str, np.ndarray], card: DatasetCard, proc: ProcessCard) -> np.ndarray:
    """Jets in the card's pT window and acceptance (in η or rapidity, as the card says);
    the hardest jet of its event only, for leading-jet-only cards."""
    acc_var = kin["eta"] if card.eta_variable == "eta" else kin["rap"]
    keep = (kin["pt"] > card.pt_min) & (kin["pt"] < card.pt_max) & (np.abs(acc_var) < card.abs_eta_max)
    if proc.leading_jet_only:
        keep &= kin["rank"] == 0
    return keep


def _truth_matched(keep: np.ndarray, kin: dict[str, np.ndarray], flat: dict[str, np.ndarray],
                   counts: np.ndarray, card: DatasetCard, proc: ProcessCard) -> np.ndarray:
    """``keep`` and the jet's truth: every decay product of the resonance within R of the
    axis, or the event's hard outgoing parton of the wanted kind (cards without truth keep
    every jet)."""
    cand_events = np.unique(kin["event"][keep])
    if not len(cand_events) or (proc.resonance is None and proc.outgoing_partons is None):
        return keep
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    matched = np.zeros_like(keep)
    r2 = card.jet_radius**2
    for e in cand_events:
        sl = slice(starts[e], starts[e] + counts[e])
        ev = {k: v[sl] for k, v in flat.items()}
        jets_here = np.flatnonzero(keep & (kin["event"] == e))
        if proc.outgoing_partons is not None:
            if _hard_outgoing_parton(ev) in proc.outgoing_partons:
                matched[jets_here] = True
            continue
        for eta, phi in _truth_targets(ev, proc.resonance):
            for j in jets_here:
                d2 = (eta - kin["eta"][j]) ** 2 + wrap_phi(phi - kin["phi"][j]) ** 2
                if np.all(d2 < r2):
                    matched[j] = True
    return keep & matched


def _constituents(cons, keep: np.ndarray, fin: dict[str, np.ndarray],
                  fin_counts: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The kept jets' constituents from the flat final-state arrays, pT-descending in each
    jet, and the constituents per jet."""
    fin_starts = np.concatenate([[0], np.cumsum(fin_counts)[:-1]])
    cons_flat_jets = ak.flatten(cons + fin_starts, axis=1)[keep]
    n_cons = ak.to_numpy(ak.num(cons_flat_jets))
    gidx = ak.to_numpy(ak.flatten(cons_flat_jets))
    part = {k: fin[k][gidx] for k in ("px", "py", "pz", "e", "id")}
    part["pt"] = np.hypot(part["px"], part["py"])
    jet_of_part = np.repeat(np.arange(len(n_cons)), n_cons)
    srt = np.lexsort((-part["pt"], jet_of_part))
    return {k: v[srt] for k, v in part.items()}, n_cons


def _jet_branches(kj: dict[str, np.ndarray], part: dict[str, np.ndarray], n_cons: np.ndarray,
                  pythia) -> dict[str, np.ndarray]:
    """The JetClass branches of the kept jets: particle kinematics relative to the jet axis,
    charge and particle-type flags, jet four-vector and mass."""
    peta = pseudorapidity(part["px"], part["py"], part["pz"])
    pphi = np.arctan2(part["py"], part["px"])
    jeta_p = np.repeat(kj["eta"], n_cons)
    sign = np.where(jeta_p <= 0, -1.0, 1.0)
    # JetClass convention: sign(jet_eta)*(eta - jet_eta), with jet_eta = 0 counted as -1 there;
    # the converters of TL/QG use sign 0 -> +1. A jet at exactly eta = 0 does not occur.
    deta = sign * (peta - jeta_p)
    dphi = wrap_phi(pphi - np.repeat(kj["phi"], n_cons))
    fid = part["id"]
    absid = np.abs(fid)
    charge = _charges(fid, pythia)
    is_hadron = absid > 100
    m2 = kj["e"] ** 2 - kj["px"] ** 2 - kj["py"] ** 2 - kj["pz"] ** 2
    return {
        "n_cons": n_cons,
        "part_px": part["px"], "part_py": part["py"], "part_pz": part["pz"],
        "part_energy": part["e"], "part_deta": deta, "part_dphi": dphi,
        "part_charge": charge,
        "part_isChargedHadron": (is_hadron & (charge != 0)).astype(np.float32),
        "part_isNeutralHadron": (is_hadron & (charge == 0)).astype(np.float32),
        "part_isPhoton": (absid == 22).astype(np.float32),
        "part_isElectron": (absid == 11).astype(np.float32),
        "part_isMuon": (absid == 13).astype(np.float32),
        "part_pid": fid.astype(np.float32),
        "jet_pt": kj["pt"], "jet_eta": kj["eta"], "jet_phi": kj["phi"], "jet_energy": kj["e"],
        "jet_mass": np.sqrt(np.maximum(m2, 0.0)),
        "jet_nparticles": n_cons.astype(np.float32),
    }


#: constituents a generated jet must have (a selection cut, after the detector response)
MIN_CONSTITUENTS = 2


def _jets_from_batch(batch, card: DatasetCard, proc: ProcessCard, pythia, detector: str = "none",
                     rng: np.random.Generator | None = None) -> dict[str, np.ndarray] | None:
    """The selected, truth-matched jets of a batch of events as JetClass branches (None when
    no jet is kept), in named steps: visibility, the detector response (none at particle
    level), clustering, jet kinematics and ranking, the pT/acceptance window, truth matching,
    constituents, branches."""
    prt = batch.prt
    n_events = len(prt)
    if n_events == 0:
        return None
    flat, counts = _flat_event_record(prt)
    visible = _visible(flat, card, proc)
    event_of_particle = np.repeat(np.arange(n_events), counts)
    fin_counts = np.bincount(event_of_particle[visible], minlength=n_events)
    fin = {k: flat[k][visible] for k in ("px", "py", "pz", "e", "id")}
    if detector != "none":
        fin, fin_counts = apply_detector(detector, fin, fin_counts, _charges(fin["id"], pythia), rng)
    jets, cons = _cluster(fin, fin_counts, card)
    n_per_event = ak.to_numpy(ak.num(jets))
    if n_per_event.sum() == 0:
        return None
    kin = _jet_kinematics(jets, n_per_event)
    keep = _truth_matched(_in_window(kin, card, proc), kin, flat, counts, card, proc)
    # a jet needs two constituents (attention over one particle is undefined and the readers
    # refuse such jets): at particle level a jet in the pT window always has many, but the
    # detector's towers and thresholds can leave a single tower
    keep &= ak.to_numpy(ak.num(ak.flatten(cons, axis=1))) >= MIN_CONSTITUENTS
    if not keep.any():
        return None
    part, n_cons = _constituents(cons, keep, fin, fin_counts)
    kj = {k: kin[k][keep] for k in ("px", "py", "pz", "e", "pt", "eta", "phi")}
    return _jet_branches(kj, part, n_cons, pythia)


def _softdrop_mass(parts: dict[str, np.ndarray], n_cons: np.ndarray, radius: float,
                   z_cut: float = 0.1) -> np.ndarray:
    """Soft-drop mass with beta = 0 (mMDT; Larkoski et al., arXiv:1402.2657): recluster each jet
    with Cambridge/Aachen, undo the last merging while the softer branch carries a pT fraction
    below ``z_cut`` (following the harder branch), return the mass where it stops.

    Walks FastJet's own C/A history through its PseudoJet interface: identical results to the
    awkward interface's ``exclusive_jets_softdrop_grooming`` and eight times faster (measured).
    """
    import fastjet

    jetdef = fastjet.JetDefinition(fastjet.cambridge_algorithm, radius)
    cols = [parts[k].tolist() for k in ("part_px", "part_py", "part_pz", "part_energy")]
    ends = np.cumsum(n_cons).tolist()
    out = np.zeros(len(n_cons))
    start = 0
    for k, end in enumerate(ends):
        pjs = [fastjet.PseudoJet(*v) for v in zip(*(c[start:end] for c in cols), strict=True)]
        start = end
        cs = fastjet.ClusterSequence(pjs, jetdef)
        jet = cs.exclusive_jets(1)[0]
        p1, p2 = fastjet.PseudoJet(), fastjet.PseudoJet()
        while jet.has_parents(p1, p2):
            pt1, pt2 = p1.pt(), p2.pt()
            if min(pt1, pt2) / (pt1 + pt2) > z_cut:
                break
            jet = p1 if pt1 > pt2 else p2
            p1, p2 = fastjet.PseudoJet(), fastjet.PseudoJet()
        out[k] = jet.m()
    return out


def _substructure(parts: dict[str, np.ndarray], n_cons: np.ndarray, radius: float) -> dict[str, np.ndarray]:
    """Soft-drop mass (beta = 0, z_cut = 0.1, R0 = R) and N-subjettiness tau_1..4
    (exclusive kT axes, beta = 1, normalised by sum(pT) * R) of every jet."""
    import fastjet

    p4 = ak.unflatten(ak.zip({"px": parts["part_px"], "py": parts["part_py"],
                              "pz": parts["part_pz"], "E": parts["part_energy"]}), n_cons)
    out = {}
    with quiet_stdout(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["jet_sdmass"] = _softdrop_mass(parts, n_cons, radius)
        kt = fastjet.ClusterSequence(p4, fastjet.JetDefinition(fastjet.kt_algorithm, radius))
        pt = np.hypot(parts["part_px"], parts["part_py"])
        eta = pseudorapidity(parts["part_px"], parts["part_py"], parts["part_pz"])
        phi = np.arctan2(parts["part_py"], parts["part_px"])
        jet_of = np.repeat(np.arange(len(n_cons)), n_cons)
        norm = np.bincount(jet_of, weights=pt, minlength=len(n_cons)) * radius
        for n in (1, 2, 3, 4):
            tau = np.zeros(len(n_cons))
            ok = n_cons >= n
            if ok.any():
                axes = kt.exclusive_jets(n_jets=n) if ok.all() else None
                if axes is None:  # rare: a jet with fewer than n particles
                    sub = ak.unflatten(ak.zip({k: ak.flatten(p4[k]) for k in ("px", "py", "pz", "E")}),
                                       n_cons)[ok]
                    axes_ok = fastjet.ClusterSequence(
                        sub, fastjet.JetDefinition(fastjet.kt_algorithm, radius)).exclusive_jets(n_jets=n)
                    ax_px = np.zeros((len(n_cons), n))
                    ax_py, ax_pz = np.zeros_like(ax_px), np.zeros_like(ax_px)
                    ax_px[ok] = ak.to_numpy(axes_ok.px)
                    ax_py[ok] = ak.to_numpy(axes_ok.py)
                    ax_pz[ok] = ak.to_numpy(axes_ok.pz)
                else:
                    ax_px, ax_py, ax_pz = (ak.to_numpy(axes[c]) for c in ("px", "py", "pz"))
                a_eta = pseudorapidity(ax_px, ax_py, ax_pz)[jet_of]  # (n_parts, n)
                a_phi = np.arctan2(ax_py, ax_px)[jet_of]
                dr = np.sqrt((eta[:, None] - a_eta) ** 2 + wrap_phi(phi[:, None] - a_phi) ** 2)
                num = np.bincount(jet_of, weights=pt * dr.min(axis=1), minlength=len(n_cons))
                tau = np.where(ok, num / np.maximum(norm, 1e-12), 0.0)
            out[f"jet_tau{n}"] = tau
    return out


# --------------------------------------------------------------------------------------
# Chunks
# --------------------------------------------------------------------------------------


@dataclass
class ChunkStats:
    filename: str
    n_jets: int
    n_events: int
    seconds: float


def generate_chunk(config: GenerationConfig, chunk: Chunk, cache_key: str | None = None) -> tuple[dict, ChunkStats]:
    """Generate the jets of one chunk; returns (branches for the ROOT file, statistics)."""
    card = config.card
    proc = card.processes[chunk.class_index]
    seed = chunk_seed(config, chunk, cache_key)
    t0 = time.perf_counter()
    pythia = make_pythia(pythia_settings(card, proc, chunk.index, seed))
    rng = detector_rng(config, seed)
    pieces: list[dict] = []
    n_jets = n_events = empty = 0
    while n_jets < chunk.n_jets:
        batch = pythia.nextBatch(_EVENTS_PER_BATCH)
        n_events += len(batch)
        got = _jets_from_batch(batch, card, proc, pythia, config.detector, rng)
        if got is None:
            empty += 1
            if empty > _MAX_EMPTY_BATCHES and n_jets == 0:
                raise RuntimeError(
                    f"{config.dataset}/{chunk.class_name}: no jet passed the selection in "
                    f"{n_events} events; the process card or the cuts are inconsistent")
            continue
        pieces.append(got)
        n_jets += len(got["jet_pt"])

    # Concatenate and cut to exactly n_jets jets.
    n_cons = np.concatenate([p["n_cons"] for p in pieces])[: chunk.n_jets]
    n_part = int(n_cons.sum())
    flat = {k: np.concatenate([p[k] for p in pieces])[:n_part] for k in pieces[0] if k.startswith("part_")}
    jets = {k: np.concatenate([p[k] for p in pieces])[: chunk.n_jets]
            for k in pieces[0] if k.startswith("jet_")}
    jets.update(_substructure(flat, n_cons, card.jet_radius))
    branches = _to_branches(config.dataset, chunk.class_index, flat, jets, n_cons)
    return branches, ChunkStats(chunk.filename, chunk.n_jets, n_events, time.perf_counter() - t0)


def _to_branches(dataset: str, class_index: int, flat: dict, jets: dict, n_cons: np.ndarray) -> dict:
    n = len(n_cons)
    out: dict = {}
    names = ["part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi"]
    if dataset == "jetclass":
        zeros = np.zeros(len(flat["part_px"]), dtype=np.float32)
        flat = {**flat, "part_d0val": zeros, "part_d0err": zeros, "part_dzval": zeros,
                "part_dzerr": zeros}
        names += ["part_d0val", "part_d0err", "part_dzval", "part_dzerr"]
    if dataset in ("jetclass", "quarkgluon"):
        names += ["part_charge", "part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton",
                  "part_isElectron", "part_isMuon"]
    if dataset == "quarkgluon":
        names.append("part_pid")
    for name in names:
        out[name] = ak.unflatten(flat[name].astype(np.float32), n_cons)
    for name in ("jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_mass", "jet_nparticles",
                 "jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4"):
        out[name] = jets[name].astype(np.float32)
    if dataset == "jetclass":
        for ci, cname in enumerate(JETCLASS_CLASSES):
            key = f"label_{cname}"
            out[key] = np.full(n, ci == class_index, dtype=JETCLASS_LABEL_DTYPES[key])
    else:  # raw label: 1 for class index 0 (top / quark), as the converted files have it
        out["label"] = np.full(n, 1 if class_index == 0 else 0, dtype=np.int32)
    return out


def generate_chunk_file(config: GenerationConfig, chunk: Chunk, out_dir: str | os.PathLike,
                        cache_key: str | None = None) -> ChunkStats:
    """Generate one chunk and write it atomically to ``out_dir/chunk.filename``.

    An existing file is complete (it was renamed into place) and is not regenerated.
    """
    from .writer import write_jetclass_root

    path = Path(out_dir) / chunk.filename
    if path.exists():
        return ChunkStats(chunk.filename, chunk.n_jets, 0, 0.0)
    branches, stats = generate_chunk(config, chunk, cache_key)
    write_jetclass_root(path, branches)
    return stats


class _ProgressLog:
    """One line per ``every`` seconds (and one at the end) while files are generated:
    ``generate jetclass: 12/50 files, 118 jets/s, ~5 min left``."""

    def __init__(self, dataset: str, n_files: int, n_done: int, n_jets: int, log, every: float):
        self.dataset, self.n_files, self.done, self.todo_jets = dataset, n_files, n_done, n_jets
        self.log, self.every, self.jets = log, every, 0
        self.t0 = self.last = time.perf_counter()
        if log is not None and n_done < n_files:
            log(f"generate {dataset}: {n_files - n_done} of {n_files} files to make "
                f"({n_jets} jets)")

    def __call__(self, n_jets: int) -> None:
        self.done += 1
        self.jets += n_jets
        now = time.perf_counter()
        if self.log is None or (now - self.last < self.every and self.done < self.n_files):
            return
        self.last = now
        rate = self.jets / max(now - self.t0, 1e-9)
        left = (self.todo_jets - self.jets) / max(rate, 1e-9)
        eta = f", ~{left / 60:.0f} min left" if self.done < self.n_files else ""
        self.log(f"generate {self.dataset}: {self.done}/{self.n_files} files, "
                 f"{rate:.0f} jets/s{eta}")


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: a worker ends when the process that started it dies, even by
    ``kill -9`` (no orphan keeps generating). Linux: the kernel sends SIGKILL on the parent's
    death (``PR_SET_PDEATHSIG``); everywhere: a thread polls the parent pid once a second.
    Ctrl-C, which the terminal sends to every process of the group, is left to the parent:
    it stops the workers itself (:func:`_stop_workers`), without a traceback from each."""
    import signal
    import sys
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the request above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="partnb-parent-watchdog", daemon=True).start()


def _stop_workers(pool: ProcessPoolExecutor, out_dir: Path) -> None:
    """Stop a pool at once (Ctrl-C, SIGTERM, a failed chunk): cancel the chunks not started,
    kill the workers instead of waiting for their chunks to finish (minutes each at full
    size), and remove the temp files they were writing. A file in place is complete."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public API < 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(10)
    _remove_stale_temps(out_dir)


def _remove_stale_temps(out_dir: Path) -> None:
    """Remove the temp files of writers that no longer run (``kill -9``); a temp file of a
    live process (another run generating into the same cache) is left alone."""
    from .io import stale_temp_files

    for tmp in stale_temp_files(out_dir):
        with contextlib.suppress(OSError):
            tmp.unlink()


def _worker(args) -> ChunkStats:
    config, chunk, out_dir, key = args
    return generate_chunk_file(config, chunk, out_dir, key)


def output_dir(config: GenerationConfig, cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / f"{config.dataset}-{config.cache_key()}"


def _run_in_this_process(config, todo, out_dir, key) -> Iterator[ChunkStats]:
    for c in todo:
        yield generate_chunk_file(config, c, out_dir, key)


def _run_in_processes(config, todo, out_dir, key, workers: int) -> Iterator[ChunkStats]:
    """The chunks on a pool of ``workers`` processes, yielded as they finish; stopped at once
    (workers killed, temp files removed) when the caller stops or a chunk fails."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                             initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        pending = {pool.submit(_worker, (config, c, out_dir, key)) for c in todo}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        except BaseException:  # Ctrl-C, SIGTERM, a failed chunk, or the caller closing us
            _stop_workers(pool, out_dir)
            raise


def generate(
    config: GenerationConfig,
    cache_dir: str | os.PathLike,
    *,
    workers: int = 0,
    scheduler: str | None = None,
    progress: bool = True,
    log=None,
    log_every: float = 30.0,
) -> list[Path]:
    """Generate (or complete) the dataset of ``config`` under ``cache_dir``.

    Files already present are kept (resume), whichever engine made them; the missing chunks
    are generated by ``workers`` processes (0 = all cores), or, with ``scheduler``, as the
    tasks of a ``dask.distributed`` cluster: ``"local"`` starts a ``LocalCluster`` of
    ``workers`` single-threaded worker processes, an address (``tcp://HOST:PORT``) uses the
    scheduler of a running cluster, whose workers must see ``cache_dir`` (a shared
    filesystem; :mod:`partnb.data.engines`). Every engine calls :func:`generate_chunk_file`,
    so the files hold the same jets. A manifest (``manifest.json``) with the settings, the
    dataset card and the run's rates is written at the end. ``log`` (a callable taking one
    line) gets files done / total, jets/s and the time left at most every ``log_every``
    seconds and at the end: progress for batch logs, where a progress bar is off.

    Returns:
        The paths of the dataset's files, class by class.

    Raises:
        GenerationRequestError: ``scheduler`` needs ``dask.distributed``, which is not
            installed, or no scheduler answers at its address (checked for a few seconds
            before anything is written).
    """
    from tqdm.auto import tqdm

    key = config.cache_key()
    out_dir = output_dir(config, cache_dir)
    with contextlib.ExitStack() as stack:
        dask = None
        if scheduler is not None:
            from . import engines

            dask = stack.enter_context(engines.DaskEngine(scheduler, workers))  # checked here
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(out_dir)  # left by a killed run; never trusted
        chunks = plan_chunks(config)
        todo = [c for c in chunks if not (out_dir / c.filename).exists()]
        workers = workers or os.cpu_count() or 1
        if dask is not None:
            engine = f"dask {scheduler}"
            run = dask.run(config, todo, out_dir, key) if todo else iter(())
        elif workers == 1 or len(todo) <= 1:
            engine = "1 process"
            run = _run_in_this_process(config, todo, out_dir, key)
        else:
            engine = f"{min(workers, len(todo))} processes"
            run = _run_in_processes(config, todo, out_dir, key, workers)
        stats: list[ChunkStats] = []
        t0 = time.perf_counter()
        bar = tqdm(total=sum(c.n_jets for c in todo), unit="jet",
                   disable=not progress or not todo, desc=f"generate {config.dataset}",
                   smoothing=0.1)
        report = _ProgressLog(config.dataset, len(chunks), len(chunks) - len(todo),
                              sum(c.n_jets for c in todo), log, log_every)
        try:
            for s in run:
                stats.append(s)
                bar.update(s.n_jets)
                report(s.n_jets)
        finally:
            bar.close()
            if hasattr(run, "close"):
                run.close()  # stops the engine's workers at once if we leave early
    elapsed = time.perf_counter() - t0
    if dask is not None:
        workers = dask.n_workers
    _write_manifest(config, out_dir, chunks, stats, elapsed, workers, engine)
    return [out_dir / c.filename for c in chunks]


def generate_file(config: GenerationConfig, class_name: str, index: int,
                  cache_dir: str | os.PathLike) -> tuple[Path, ChunkStats]:
    """Make file ``index`` of class ``class_name`` alone (one array task): the same file, byte
    for byte in its jets, as :func:`generate` makes, in the same place, so a later full run
    or ``missing_chunks`` counts it as done. An existing file is kept (``n_events == 0``).

    The class and index are checked before any work (:func:`select_chunk`). Only this file's
    temp files of writers that no longer run are removed: other array tasks may be writing
    theirs into the same directory from other machines, whose process ids mean nothing here.
    The manifest is left to a full run (``partnb generate`` once every file is there), so
    that concurrent tasks do not race on it.

    Returns:
        The file's path and the chunk's statistics.
    """
    from .io import stale_temp_files

    chunk = select_chunk(config, class_name, index)
    out_dir = output_dir(config, cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for tmp in stale_temp_files(out_dir, f"{chunk.filename}.tmp-*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
    return out_dir / chunk.filename, generate_chunk_file(config, chunk, out_dir)


def _write_manifest(config, out_dir: Path, chunks, stats, elapsed, workers, engine) -> None:
    from .cards import dataset_card_text

    manifest_path = out_dir / "manifest.json"
    previous = {}
    if manifest_path.exists():
        with contextlib.suppress(ValueError, OSError):
            previous = json.loads(manifest_path.read_text())
    runs = previous.get("runs", [])
    if stats:
        runs.append({
            "chunks": len(stats), "jets": sum(s.n_jets for s in stats),
            "events": sum(s.n_events for s in stats), "seconds": round(elapsed, 2),
            "workers": workers, "engine": engine,
            "jets_per_second": round(sum(s.n_jets for s in stats) / max(elapsed, 1e-9), 2),
        })
    manifest = {
        "dataset": config.dataset, "seed": config.seed, "jets_per_file": config.jets_per_file,
        "cache_key": config.cache_key(), "generator_version": GENERATOR_VERSION,
        "detector": config.detector,
        "pythia8mc": _pythia_version(),
        "classes": list(config.card.classes),
        "files": sorted({*previous.get("files", []), *(c.filename for c in chunks)}),
        "card": dataset_card_text(config.dataset, detector=config.detector),
        "runs": runs,
    }
    tmp = manifest_path.with_name(f"manifest.json.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, manifest_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def bare_pythia_rate(dataset: str, class_name: str, n_events: int = 200, seed: int = 1) -> float:
    """Events per second of Pythia alone (same settings, no clustering or I/O), one core."""
    card = DATASET_CARDS[dataset]
    proc = card.processes[card.classes.index(class_name)]
    pythia = make_pythia(pythia_settings(card, proc, 0, seed))
    t0 = time.perf_counter()
    done = 0
    while done < n_events:
        if pythia.next():
            done += 1
    return n_events / (time.perf_counter() - t0)


def iter_generated_files(config: GenerationConfig, cache_dir) -> Iterator[Path]:
    out_dir = output_dir(config, cache_dir)
    for c in plan_chunks(config):
        yield out_dir / c.filename

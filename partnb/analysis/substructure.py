"""Attention and jet substructure: kT exclusive subjets, η–φ attention graphs, the lepton
attention fraction and the inter-subjet attention fraction (docs/analyses.md#eta-phi-attention-graphs, docs/analyses.md#kt-subjets, docs/analyses.md#lepton-attention-fraction, docs/analyses.md#inter-subjet-attention-fraction).

Wang et al. (ML4PS 2024, Fig. 2–3) and the sparse-attention paper (arXiv 2512.00210) draw the
attention of the last particle block in the (Δη, Δφ) plane with the jet's kT subjets, and ask
two numeric questions:

* does a head of a t→bℓν jet look at the lepton? (lepton attention fraction, docs/analyses.md#lepton-attention-fraction)
* does attention stay inside a prong or cross between prongs? (inter-subjet fraction, docs/analyses.md#inter-subjet-attention-fraction)

Everything streams through :func:`partnb.analysis.stream.stream_attention`: the consumers
below reduce each block's weights of each batch to a few numbers per (jet, layer, head) and
drop the maps; only the n×n maps of the last block of the few jets that are drawn are kept.

The subjets are FastJet's kt algorithm, R = 0.8, E-scheme, on the n real 4-vectors of each
jet, **exclusive jets of the whole clustering sequence** (``exclusive_jets(N)``; docs/pitfalls.md#pitfall-10-kt-subjets-of-a-reclustered-jet:
``inclusive_jets()[0]`` can leave particles unassigned). Particles are mapped to subjets
through the subjets' constituents and their ``user_index`` (the particle's slot in the jet),
not by 4-momentum equality, which fails for identical momenta; unmatched real particles get
−1 (counted and reported).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from partnb.data.generate import quiet_stdout

from .stream import AnalysisError, analysis_inputs, real_pairs, stream_attention

__all__ = [
    "PID_CODES",
    "PID_FLAGS",
    "GraphJet",
    "GraphJetAttention",
    "graph_weight_maps",
    "InterSubjetAttentionFraction",
    "JetType",
    "JetTypeResult",
    "LeptonAttentionFraction",
    "SubjetAssignment",
    "SubstructurePlan",
    "analyse_jet_type",
    "fraction_histogram_rows",
    "fraction_summary",
    "graph_particle_rows",
    "intersubjet_histogram_rows",
    "intersubjet_summary_rows",
    "kt_subjets",
    "lepton_histogram_rows",
    "lepton_summary_rows",
    "particle_types",
    "softmax_over_real_keys",
    "subjet_finding_rows",
    "substructure_plan",
]

#: Particle-type codes used for the markers of the graphs (docs/analyses.md#eta-phi-attention-graphs); -1 = PID unknown.
PID_CODES = {"unknown": -1, "other": 0, "charged hadron": 1, "neutral hadron": 2, "photon": 3,
             "electron": 4, "muon": 5}
#: PID flag branch of each code (the flags of the JetClass layout, docs/datasets.md#jetclass).
PID_FLAGS = {1: "part_isChargedHadron", 2: "part_isNeutralHadron", 3: "part_isPhoton",
             4: "part_isElectron", 5: "part_isMuon"}
#: The kinematic feature-set channels PID is read from when the model's set lacks it.
_PID_FEATURE_SET = "kinpid"


# --------------------------------------------------------------------------------------
# What applies to which dataset
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JetType:
    """A jet type drawn and analysed with ``n_subjets`` kT exclusive subjets (docs/analyses.md#kt-subjets, docs/analyses.md#lepton-attention-fraction, docs/analyses.md#inter-subjet-attention-fraction)."""

    slug: str
    label: str
    class_name: str
    n_subjets: int
    lepton_fraction: bool = False
    intersubjet_fraction: bool = False


@dataclass(frozen=True)
class SubstructurePlan:
    """The jet types of a dataset and one sentence per analysis that does not apply."""

    dataset: str
    jet_types: tuple[JetType, ...]
    notes: tuple[str, ...] = ()

    @property
    def lepton_types(self) -> tuple[JetType, ...]:
        return tuple(t for t in self.jet_types if t.lepton_fraction)

    @property
    def intersubjet_types(self) -> tuple[JetType, ...]:
        return tuple(t for t in self.jet_types if t.intersubjet_fraction)


def substructure_plan(dataset: str) -> SubstructurePlan:
    """What notebook 05 does on ``dataset`` (a key of ``DATASETS``), by the dataset's design.

    JetClass: t→bℓν (2 subjets, lepton fraction), t→bqq' (3) and H→4q (4) with the
    inter-subjet fraction (docs/analyses.md#inter-subjet-attention-fraction). TopLandscape: hadronic top jets (3 subjets). Quark-gluon:
    one quark and one gluon graph with 2 subjets, no fractions. A class the design names but
    the data lack is an error (raised later by :func:`analysis_inputs`), not a skip.
    """
    if dataset == "jetclass":
        return SubstructurePlan(dataset, (
            JetType("tbl", "t→bℓν", "Tbl", 2, lepton_fraction=True),
            JetType("tbqq", "t→bqq'", "Tbqq", 3, intersubjet_fraction=True),
            JetType("h4q", "H→4q", "H4q", 4, intersubjet_fraction=True),
        ))
    if dataset == "toplandscape":
        return SubstructurePlan(dataset, (
            JetType("top", "t→bqq'", "top", 3, intersubjet_fraction=True),
        ), ("Top Landscape holds only hadronic top and QCD jets and no particle identification: "
            "no lepton attention fraction and no H→4q jets; the graphs use circles for every "
            "particle.",))
    if dataset == "quarkgluon":
        return SubstructurePlan(dataset, (
            JetType("quark", "quark", "quark", 2),
            JetType("gluon", "gluon", "gluon", 2),
        ), ("Quark and gluon jets have no prong structure, so the 2 kT subjets only split the "
            "radiation and the inter-subjet and lepton fractions test nothing: they are skipped.",))
    raise AnalysisError(f"no substructure plan for dataset {dataset!r}")


# --------------------------------------------------------------------------------------
# kT exclusive subjets
# --------------------------------------------------------------------------------------


@dataclass
class SubjetAssignment:
    """kT exclusive subjets of a set of jets (docs/analyses.md#kt-subjets, docs/pitfalls.md#pitfall-10-kt-subjets-of-a-reclustered-jet).

    Attributes:
        labels: (B, P) subjet index per particle slot, subjets sorted by pT descending
            (0 = hardest); −1 for unmatched real particles and for padded slots.
        used: (B,) jets with n ≥ N (the others are skipped and have all labels −1).
        n_particles: (B,) real particles per jet.
        n_subjets: N.
        seconds: wall time of the clustering.
    """

    labels: np.ndarray
    used: np.ndarray
    n_particles: np.ndarray
    n_subjets: int
    seconds: float = 0.0

    @property
    def n_skipped(self) -> int:
        return int((~self.used).sum())

    @property
    def uniform_intersubjet_fraction(self) -> np.ndarray:
        """(B,) the inter-subjet fraction of uniform attention: the share of ordered pairs
        i ≠ j of real particles in different subjets (the reference of docs/analyses.md#inter-subjet-attention-fraction); NaN if not used."""
        out = np.full(len(self.used), np.nan)
        for k in np.flatnonzero(self.used & (self.n_particles > 1)):
            n = int(self.n_particles[k])
            sizes = np.unique(self.labels[k, :n], return_counts=True)[1]
            out[k] = 1.0 - float((sizes * (sizes - 1)).sum()) / (n * (n - 1))
        return out

    @property
    def unmatched_fraction(self) -> float:
        """Fraction of the real particles of used jets that belong to no subjet."""
        real = np.arange(self.labels.shape[1])[None, :] < self.n_particles[:, None]
        real &= self.used[:, None]
        total = int(real.sum())
        return float(((self.labels < 0) & real).sum() / total) if total else float("nan")


def kt_subjets(vectors: np.ndarray, n_particles: np.ndarray, n_subjets: int,
               radius: float = 0.8) -> SubjetAssignment:
    """Map every real particle to one of the jet's N kT exclusive subjets (docs/analyses.md#kt-subjets).

    FastJet kt, R = ``radius``, E-scheme, on the n real (px, py, pz, E) of each jet;
    ``exclusive_jets(N)`` of the whole sequence, sorted by pT descending. Each input
    PseudoJet carries its particle slot as ``user_index``, so a subjet's constituents give the
    mapping directly. A loop over jets (≈ 0.3 ms per 60-particle jet, measured: 500 jets in
    0.17 s), which is as fast as the awkward interface needs here.

    Args:
        vectors: (B, 4, P) raw 4-vectors in GeV, zero-padded (``JetInputs.vectors``).
        n_particles: (B,) real particles per jet.
        n_subjets: N; jets with n < N are skipped (``used`` False, labels −1).
        radius: kt radius.
    """
    import fastjet

    t0 = time.perf_counter()
    n_particles = np.asarray(n_particles, dtype=np.int64)
    b, _, p = vectors.shape
    labels = np.full((b, p), -1, dtype=np.int64)
    used = n_particles >= n_subjets
    jetdef = fastjet.JetDefinition(fastjet.kt_algorithm, radius, fastjet.E_scheme)
    with quiet_stdout():
        for k in np.flatnonzero(used):
            n = int(n_particles[k])
            cols = vectors[k, :, :n].astype(np.float64).T.tolist()
            pjs = []
            for i, (px, py, pz, e) in enumerate(cols):
                pj = fastjet.PseudoJet(px, py, pz, e)
                pj.set_user_index(i)
                pjs.append(pj)
            cs = fastjet.ClusterSequence(pjs, jetdef)
            subjets = sorted(cs.exclusive_jets(n_subjets), key=lambda j: -j.pt())
            for s, subjet in enumerate(subjets):
                for c in subjet.constituents():
                    labels[k, c.user_index()] = s
    return SubjetAssignment(labels, used, n_particles, n_subjets, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------
# Particle identification of the analysed jets
# --------------------------------------------------------------------------------------


def _pid_codes_from_features(features: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(B, P) PID code from the raw 0/1 flag channels of a feature array (B, C, P)."""
    codes = np.zeros(features.shape[::2], dtype=np.int64)
    for code, flag in PID_FLAGS.items():
        codes[features[:, list(names).index(flag), :] > 0.5] = code
    return codes


def _jet_key(vectors: np.ndarray, n: int) -> bytes:
    return np.ascontiguousarray(vectors[:, :n]).tobytes()


def particle_types(params, inputs) -> tuple[np.ndarray | None, str]:
    """PID code (see :data:`PID_CODES`) of every particle slot of ``inputs`` (B, P).

    Read from the inputs' own features when the feature set carries the five flags;
    otherwise the test split is read again with the ``kinpid`` set and the jets are matched
    to ``inputs`` by their 4-vectors (byte-exact, so order and selection cannot slip).
    Returns ``(None, reason)`` when the data have no PID branches (generated Top Landscape).

    Returns:
        (codes or None, one sentence saying where the PID comes from).
    """
    from partnb.data.features import FeatureError
    from partnb.data.io import DataError
    from partnb.data.sample import load_split
    from partnb.data.schema import DATASETS
    from partnb.params import params_from_dict

    flags = list(PID_FLAGS.values())
    if all(f in inputs.feature_names for f in flags):
        return (_pid_codes_from_features(inputs.features, inputs.feature_names),
                f"PID from the model's own feature set ({inputs.feature_set})")
    schema = DATASETS[params.dataset.name]
    if not set(flags) <= set(schema.particle_branches):
        return None, (f"no PID: {params.dataset.name} jets carry no particle-identification branches; "
                      f"every particle is drawn as a circle")
    data = params.to_dict()
    data["features"]["set"] = _PID_FEATURE_SET
    pid_params = params_from_dict(data, source=params.source, root=params.root)
    try:
        pid_split = load_split(pid_params, "test")
    except (FeatureError, DataError) as exc:
        return None, f"no PID in these data ({exc}): every particle is drawn as a circle"
    lookup = {_jet_key(v, int(n)): k for k, (v, n) in
              enumerate(zip(pid_split.vectors, pid_split.n_particles, strict=True))}
    pid_codes = _pid_codes_from_features(pid_split.features, pid_split.feature_names)
    codes = np.full(inputs.mask.shape[::2], -1, dtype=np.int64)
    missing = 0
    for k, (v, n) in enumerate(zip(inputs.vectors, inputs.n_particles, strict=True)):
        j = lookup.get(_jet_key(v, int(n)))
        if j is None:
            missing += 1
            continue
        codes[k] = pid_codes[j]
    if missing:
        raise AnalysisError(f"{missing} of {len(inputs)} jets not found when re-reading the test "
                            f"split with PID branches: the two reads disagree")
    return codes, f"PID read again from the test split ({_PID_FEATURE_SET} branches), matched by 4-vectors"


# --------------------------------------------------------------------------------------
# Streaming consumers (docs/analyses.md#lepton-attention-fraction, docs/analyses.md#inter-subjet-attention-fraction)
# --------------------------------------------------------------------------------------


def _crop(per_jet: np.ndarray, batch, width: int) -> torch.Tensor:
    """The rows of a per-jet (N, P) array for this batch, cut to the batch's trimmed P."""
    return torch.as_tensor(per_jet[batch.index][:, :width])


class LeptonAttentionFraction:
    """Lepton attention fraction of the last particle block (docs/analyses.md#lepton-attention-fraction, AW Fig. 3 left).

    For each jet with at least one lepton (electron or muon) and each head,
    F = Σ_i Σ_{j∈leptons} W_ij / Σ_i Σ_j W_ij over real i, j (the denominator is n).
    Also the uniform-attention reference n_leptons / n per jet. Jets without a lepton are
    counted and skipped.

    Args:
        layer: the particle block (the last one).
        is_lepton: (N_jets, P) bool per particle slot of the analysed inputs.
    """

    def __init__(self, layer: int, is_lepton: np.ndarray) -> None:
        self.layer = layer
        self.is_lepton = np.asarray(is_lepton, dtype=bool)
        self._fractions: list[np.ndarray] = []
        self._uniform: list[np.ndarray] = []
        self.jets = 0
        self.jets_without_lepton = 0

    def update(self, key, record, batch) -> None:
        if key != self.layer or "P" not in record:  # "P" absent: the as-coded record
            return
        weights = record["P"].double()
        real = real_pairs(record)
        lepton = _crop(self.is_lepton, batch, weights.shape[-1])
        n_lep = lepton.sum(dim=1)
        has = n_lep > 0
        self.jets += len(batch.index)
        self.jets_without_lepton += int((~has).sum())
        num = (weights * (real & lepton[:, None, None, :])).sum(dim=(-1, -2))
        den = (weights * real).sum(dim=(-1, -2))
        self._fractions.append((num / den)[has].numpy())
        self._uniform.append((n_lep / torch.as_tensor(batch.n))[has].numpy())

    def rows(self, model: str = "model") -> list[dict]:
        """The consumer table (:class:`~partnb.analysis.stream.Consumer`): one row per jet
        with a lepton and head, its fraction and the uniform-attention reference."""
        return [{"model": model, "jet": k, "head": h, "fraction": float(f),
                 "uniform": float(u[0])}
                for k, (row, u) in enumerate(zip(self.fractions, self.uniform, strict=True))
                for h, f in enumerate(row)]

    @property
    def fractions(self) -> np.ndarray:
        """(jets with a lepton, heads)."""
        return np.concatenate(self._fractions) if self._fractions else np.zeros((0, 0))

    @property
    def uniform(self) -> np.ndarray:
        """(jets with a lepton, 1): n_leptons / n, the fraction of uniform attention."""
        return np.concatenate(self._uniform)[:, None] if self._uniform else np.zeros((0, 1))


class InterSubjetAttentionFraction:
    """Inter-subjet attention fraction per (jet, layer, head) (docs/analyses.md#inter-subjet-attention-fraction, AW Fig. 3).

    F = Σ_{i≠j, s_i≠s_j} W_ij / Σ_{i≠j} W_ij over real i, j. The label −1 (particles in no
    subjet) is compared like any other subjet index, so the unmatched particles form one
    separate subjet. Jets not ``used`` (n < N) and heads with a zero denominator give NaN.

    Args:
        subjets: a :class:`SubjetAssignment` of the analysed inputs.
    """

    def __init__(self, subjets: SubjetAssignment) -> None:
        self.subjets = subjets
        self._by_layer: dict[int, list[np.ndarray]] = {}

    def update(self, key, record, batch) -> None:
        if not isinstance(key, int) or "P" not in record:  # "P" absent: the as-coded record
            return
        weights = record["P"].double()
        width = weights.shape[-1]
        labels = _crop(self.subjets.labels, batch, width)
        off_diagonal = ~torch.eye(width, dtype=torch.bool)
        pairs = real_pairs(record) & off_diagonal
        between = (labels[:, :, None] != labels[:, None, :])[:, None]
        den = (weights * pairs).sum(dim=(-1, -2))
        num = (weights * (pairs & between)).sum(dim=(-1, -2))
        frac = torch.where(den > 0, num / den.clamp_min(1e-300), torch.nan).numpy()
        frac[~self.subjets.used[batch.index]] = np.nan
        self._by_layer.setdefault(key, []).append(frac)

    def rows(self, model: str = "model") -> list[dict]:
        """The consumer table (:class:`~partnb.analysis.stream.Consumer`): one row per jet,
        particle block and head with its fraction (NaN for jets not used, n < N, and heads
        with a zero denominator)."""
        f = self.fractions
        layers = sorted(self._by_layer)
        return [{"model": model, "jet": k, "layer": layer, "head": h, "fraction": float(f[k, i, h])}
                for k in range(f.shape[0]) for i, layer in enumerate(layers)
                for h in range(f.shape[2])]

    @property
    def fractions(self) -> np.ndarray:
        """(jets, layers, heads), NaN where skipped."""
        layers = sorted(self._by_layer)
        return np.stack([np.concatenate(self._by_layer[ly]) for ly in layers], axis=1)


def softmax_over_real_keys(a: torch.Tensor, n: int) -> torch.Tensor:
    """The papers' graph variant (TLG, docs/analyses.md#eta-phi-attention-graphs): softmax over the n real keys of the
    pre-softmax A alone (no U, no mask), for a (H, P, P) block cut to (H, n, n)."""
    return torch.softmax(a[:, :n, :n].double(), dim=-1)


@dataclass
class GraphJet:
    """One drawn jet: its particles and the last block's n×n maps per head (docs/analyses.md#eta-phi-attention-graphs)."""

    position: int
    layer: int
    deta: np.ndarray
    dphi: np.ndarray
    log_pt: np.ndarray
    subjet: np.ndarray
    pid: np.ndarray
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.deta)


class GraphJetAttention:
    """Keeps the last block's W and softmax_j(A) (real keys) of chosen jets, n×n per head."""

    def __init__(self, layer: int, positions: Sequence[int]) -> None:
        self.layer = layer
        self.positions = set(int(p) for p in positions)
        self.maps: dict[int, dict[str, np.ndarray]] = {}

    def rows(self) -> list[dict]:
        """The consumer table (:class:`~partnb.analysis.stream.Consumer`): one row per kept
        jet, map, head, query and key with its weight (real particles only)."""
        return [{"jet": pos, "map": name, "head": h, "query": i, "key": j, "weight": float(w[h, i, j])}
                for pos, maps in sorted(self.maps.items()) for name, w in maps.items()
                for h in range(w.shape[0]) for i in range(w.shape[1]) for j in range(w.shape[2])]

    def update(self, key, record, batch) -> None:
        if key != self.layer or "P" not in record:  # "P" absent: the as-coded record
            return
        for k, pos in enumerate(batch.index):
            if int(pos) not in self.positions:
                continue
            n = int(batch.n[k])
            self.maps[int(pos)] = {
                "W": record["P"][k, :, :n, :n].double().numpy(),
                "softmax_A": softmax_over_real_keys(record["A"][k], n).numpy(),
            }


# --------------------------------------------------------------------------------------
# One jet type end to end
# --------------------------------------------------------------------------------------


@dataclass
class JetTypeResult:
    """Everything notebook 05 reports for one jet type."""

    jet_type: JetType
    n_jets: int
    subjets: SubjetAssignment
    pid_note: str
    graph: GraphJet | None
    lepton: dict[str, LeptonAttentionFraction] = field(default_factory=dict)
    intersubjet: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0


def _feature(inputs, name: str) -> np.ndarray:
    if name not in inputs.feature_names:
        raise AnalysisError(f"feature {name} is not in the feature set {inputs.feature_set!r}")
    return inputs.features[:, list(inputs.feature_names).index(name), :]


def _graph_jet(inputs, position: int, layer: int, subjets: SubjetAssignment, pid, maps) -> GraphJet:
    n = int(inputs.n_particles[position])
    pt = np.hypot(inputs.vectors[position, 0, :n], inputs.vectors[position, 1, :n])
    return GraphJet(position, layer, _feature(inputs, "part_deta")[position, :n].copy(),
                    _feature(inputs, "part_dphi")[position, :n].copy(), np.log(pt),
                    subjets.labels[position, :n].copy(),
                    np.full(n, -1) if pid is None else pid[position, :n].copy(), maps)


def analyse_jet_type(params, jet_type: JetType, models: Mapping[str, object], *,
                     n_jets: int | None = None, graph_jet: int = 0, batch_size: int | None = None,
                     progress: bool = False) -> JetTypeResult:
    """Subjets, PID, graph maps and fractions of one jet type for each model (docs/analyses.md#eta-phi-attention-graphs, docs/analyses.md#kt-subjets, docs/analyses.md#lepton-attention-fraction, docs/analyses.md#inter-subjet-attention-fraction).

    Args:
        params: the run's params.
        jet_type: from :func:`substructure_plan`.
        models: name → model; the graph is drawn from the first one (the trained model).
        n_jets: jets of this class (default ``analysis.n_jets``; a seeded subset).
        graph_jet: draw the ``graph_jet``-th jet with n ≥ N (and a lepton, for the lepton
            analysis when PID is known).
        batch_size: default ``analysis.batch_size``.

    Raises:
        AnalysisError: the class is absent from the data.
    """
    t0 = time.perf_counter()
    inputs = analysis_inputs(params, n_jets=n_jets, classes=[jet_type.class_name], progress=progress)
    subjets = kt_subjets(inputs.vectors, inputs.n_particles, jet_type.n_subjets)
    pid, pid_note = particle_types(params, inputs)
    eligible = subjets.used.copy()
    is_lepton = None
    if pid is not None:
        is_lepton = (pid == PID_CODES["electron"]) | (pid == PID_CODES["muon"])
        if jet_type.lepton_fraction:
            eligible &= is_lepton.any(axis=1)
    elif jet_type.lepton_fraction:
        raise AnalysisError(f"the lepton attention fraction needs PID, which the data lack ({pid_note})")
    candidates = np.flatnonzero(eligible)
    position = int(candidates[min(graph_jet, len(candidates) - 1)]) if len(candidates) else None
    graph_position = position
    last = next(iter(models.values())).config["num_layers"] - 1 if models else 0
    result = JetTypeResult(jet_type, len(inputs), subjets, pid_note, None)
    batch_size = batch_size or params.analysis.batch_size
    stream_inputs = inputs
    if not (jet_type.lepton_fraction or jet_type.intersubjet_fraction):
        # graphs only: stream just the drawn jet through the trained model
        models = dict(list(models.items())[:1]) if position is not None else {}
        stream_inputs = inputs.take([position]) if position is not None else inputs
        position = 0 if position is not None else None
    for k, (name, model) in enumerate(models.items()):
        graph = GraphJetAttention(last, [] if position is None or k else [position])
        inter = InterSubjetAttentionFraction(subjets) if jet_type.intersubjet_fraction else None
        lepton = LeptonAttentionFraction(last, is_lepton) if jet_type.lepton_fraction else None
        consumers = [c for c in (graph, inter, lepton) if c is not None]
        stream_attention(model, stream_inputs, consumers, batch_size=batch_size,
                         capture=("A", "P") if k == 0 else ("P",), progress=progress,
                         desc=f"{jet_type.slug} {name}")
        if inter is not None:
            result.intersubjet[name] = inter.fractions
        if lepton is not None:
            result.lepton[name] = lepton
        if position is not None and position in graph.maps:
            result.graph = _graph_jet(inputs, graph_position, last, subjets, pid, graph.maps[position])
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def fraction_summary(values: np.ndarray, *, n_boot: int = 200, seed: int = 0) -> dict[str, float]:
    """Mean, median and fraction above 0.5 of per-(jet, …) fractions, with errors from a
    bootstrap over jets (entries of one jet are correlated, so jets are resampled whole).

    Args:
        values: (jets, …) fractions; NaN entries are skipped (skipped heads/jets).
    """
    v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    v = v[np.isfinite(v).any(axis=1)]
    finite = v[np.isfinite(v)]
    out = {"jets": len(v), "entries": int(finite.size)}
    if not finite.size:
        return out | {k: float("nan") for k in ("mean", "mean_err", "median", "median_err",
                                                "frac_above_0.5", "frac_above_0.5_err")}
    stats = {"mean": np.nanmean, "median": np.nanmedian,
             "frac_above_0.5": lambda x: np.nansum(x > 0.5) / np.isfinite(x).sum()}
    rng = np.random.default_rng(seed)
    boots = {k: [] for k in stats}
    for _ in range(n_boot):
        sample = v[rng.integers(0, len(v), len(v))]
        for k, f in stats.items():
            boots[k].append(f(sample))
    for k, f in stats.items():
        out[k] = float(f(v))
        out[f"{k}_err"] = float(np.std(boots[k], ddof=1)) if len(v) > 1 else float("nan")
    return out


def fraction_histogram_rows(values: Mapping[str, np.ndarray], *, bins: int = 50,
                            extra: Mapping[str, object] | None = None) -> list[dict]:
    """50 bins on [0, 1], density and counts per model (docs/analyses.md#inter-subjet-attention-fraction, docs/analyses.md#lepton-attention-fraction; NaN entries skipped)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    hists = {}
    for name, v in values.items():
        v = np.asarray(v, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        counts, _ = np.histogram(v, bins=edges)
        density = counts / (counts.sum() * np.diff(edges)) if counts.sum() else np.zeros(bins)
        hists[name] = (counts, density)
    rows = []
    for b in range(bins):
        row = dict(extra or {}) | {"bin_lo": float(edges[b]), "bin_hi": float(edges[b + 1])}
        for name, (counts, density) in hists.items():
            row[f"density_{name}"] = float(density[b])
            row[f"count_{name}"] = int(counts[b])
        rows.append(row)
    return rows


def lepton_histogram_rows(result: JetTypeResult) -> list[dict]:
    """Histogram table of the lepton fraction: each model's heads and the uniform reference."""
    values = {name: c.fractions for name, c in result.lepton.items()}
    values["uniform"] = next(iter(result.lepton.values())).uniform
    return fraction_histogram_rows(values, extra={"jet_type": result.jet_type.slug})


def lepton_summary_rows(result: JetTypeResult) -> list[dict]:
    """One row per model (and the uniform reference): mean, median, fraction with F > 0.5."""
    rows = []
    first = next(iter(result.lepton.values()))
    values = {name: c.fractions for name, c in result.lepton.items()} | {"uniform": first.uniform}
    for name, v in values.items():
        rows.append({"jet_type": result.jet_type.slug, "model": name,
                     "jets_analysed": first.jets, "jets_without_lepton": first.jets_without_lepton}
                    | fraction_summary(v))
    return rows


def intersubjet_histogram_rows(results: Sequence[JetTypeResult]) -> list[dict]:
    """Histogram table of the inter-subjet fraction per jet type, last layer and all layers."""
    rows = []
    for r in results:
        uniform = r.subjets.uniform_intersubjet_fraction
        for layers in ("last", "all"):
            values = {name: (f[:, -1] if layers == "last" else f) for name, f in r.intersubjet.items()}
            values["uniform"] = uniform
            rows += fraction_histogram_rows(values, extra={"jet_type": r.jet_type.slug, "layers": layers})
    return rows


def intersubjet_summary_rows(results: Sequence[JetTypeResult]) -> list[dict]:
    """Summary per jet type, model and layer ("all", "last", then each block index), and the
    uniform-attention reference (model "uniform", layer "any": share of pairs between subjets)."""
    rows = []
    for r in results:
        for name, f in r.intersubjet.items():
            selections = {"all": f, "last": f[:, -1]} | {str(ly): f[:, ly] for ly in range(f.shape[1])}
            for layer, v in selections.items():
                rows.append({"jet_type": r.jet_type.slug, "n_subjets": r.jet_type.n_subjets,
                             "model": name, "layer": layer} | fraction_summary(v))
        rows.append({"jet_type": r.jet_type.slug, "n_subjets": r.jet_type.n_subjets, "model": "uniform",
                     "layer": "any"} | fraction_summary(r.subjets.uniform_intersubjet_fraction))
    return rows


def subjet_finding_rows(results: Sequence[JetTypeResult]) -> list[dict]:
    """Jets analysed, jets skipped with n < N, fraction of unmatched particles, time."""
    rows = []
    for r in results:
        s = r.subjets
        rows.append({"jet_type": r.jet_type.slug, "class": r.jet_type.class_name,
                     "n_subjets": s.n_subjets, "jets": r.n_jets, "jets_used": int(s.used.sum()),
                     "jets_skipped_n_below_N": s.n_skipped,
                     "unmatched_particle_fraction": s.unmatched_fraction,
                     "mean_particles": float(s.n_particles.mean()) if len(s.n_particles) else float("nan"),
                     "clustering_seconds": s.seconds, "pid": r.pid_note})
    return rows


def graph_particle_rows(graph: GraphJet) -> list[dict]:
    """The drawn jet's particles: Δη, Δφ, ln pT, subjet, PID code."""
    return [{"particle": i, "deta": float(graph.deta[i]), "dphi": float(graph.dphi[i]),
             "log_pt": float(graph.log_pt[i]), "subjet": int(graph.subjet[i]), "pid": int(graph.pid[i])}
            for i in range(graph.n)]


def graph_weight_maps(graph: GraphJet, variant: str = "W", *, decimals: int = 6) -> dict:
    """The numbers behind a graph figure, compactly: the drawn jet's (head, query, key) weight
    maps of one variant (rows sum to 1 over the n real keys), rounded to ``decimals``; line
    alphas and subjet membership follow from them and the particle table."""
    maps = np.asarray(graph.weights[variant], dtype=np.float64)
    return {"variant": variant, "layer": int(graph.layer), "jet": int(graph.position),
            "n": int(graph.n), "heads": int(maps.shape[0]),
            "weights": np.round(maps, decimals).tolist()}

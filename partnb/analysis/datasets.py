"""Per-class distributions of jets and of their constituents' input features.

Streams over the files in chunks and fills fixed-binning histograms, so the memory used
does not depend on the number of jets. Used by ``notebooks/01_datasets``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

__all__ = ["ClassHistograms", "JET_OBSERVABLES", "jet_histograms", "feature_histograms",
           "histogram_rows", "summary_rows", "truncation_rows", "detector_samples",
           "detector_rows"]

#: Jet observables of the dataset figure: field -> (label, bin edges).
JET_OBSERVABLES = {
    "jet_pt": (r"jet $p_T$ [GeV]", np.linspace(400, 1100, 71)),
    "jet_mass": (r"jet mass [GeV]", np.linspace(0, 300, 61)),
    "jet_sdmass": (r"soft-drop mass [GeV]", np.linspace(0, 300, 61)),
    "jet_nparticles": ("constituents", np.arange(0.5, 160.5, 3.0)),
}


@dataclass
class ClassHistograms:
    """Histograms per class of several variables, with the same binning for every class."""

    classes: tuple[str, ...]
    edges: dict[str, np.ndarray]
    labels: dict[str, str]
    counts: dict[str, np.ndarray] = field(default_factory=dict)  # var -> (n_classes, n_bins)
    n_jets: np.ndarray | None = None
    #: per class, per variable: sum and count of values (for means), under/overflow included
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    entries: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        k = len(self.classes)
        for v, e in self.edges.items():
            self.counts.setdefault(v, np.zeros((k, len(e) - 1), dtype=np.int64))
            self.sums.setdefault(v, np.zeros(k))
            self.entries.setdefault(v, np.zeros(k, dtype=np.int64))
        if self.n_jets is None:
            self.n_jets = np.zeros(k, dtype=np.int64)

    def fill(self, var: str, values: np.ndarray, class_index: np.ndarray) -> None:
        e = self.edges[var]
        values = np.asarray(values, dtype=np.float64)
        class_index = np.asarray(class_index)
        flat = np.clip(np.searchsorted(e, values, side="right") - 1, -1, len(e) - 1)
        inside = (flat >= 0) & (flat < len(e) - 1)
        np.add.at(self.counts[var], (class_index[inside], flat[inside]), 1)
        np.add.at(self.sums[var], class_index, values)
        np.add.at(self.entries[var], class_index, 1)

    def density(self, var: str) -> np.ndarray:
        """Counts normalised to unit area per class (all entries, overflow included)."""
        widths = np.diff(self.edges[var])
        tot = np.maximum(self.entries[var], 1)[:, None]
        return self.counts[var] / tot / widths[None, :]

    def mean(self, var: str) -> np.ndarray:
        return self.sums[var] / np.maximum(self.entries[var], 1)

    def median(self, var: str) -> np.ndarray:
        """Median from the histogram (bin-centre resolution), per class."""
        out = np.full(len(self.classes), np.nan)
        centres = 0.5 * (self.edges[var][1:] + self.edges[var][:-1])
        for c in range(len(self.classes)):
            cum = np.cumsum(self.counts[var][c])
            if cum[-1]:
                out[c] = centres[np.searchsorted(cum, 0.5 * cum[-1])]
        return out


def _limit_per_class(chunk: ak.Array, seen: np.ndarray, limit: int | None) -> ak.Array:
    if limit is None:
        return chunk
    label = np.asarray(chunk.label)
    keep = np.zeros(len(label), dtype=bool)
    for c in np.unique(label):
        idx = np.flatnonzero(label == c)
        room = max(0, limit - int(seen[c]))
        keep[idx[:room]] = True
    return chunk[keep]


def jet_histograms(files, classes: Sequence[str], *, max_jets_per_class: int | None = None,
                   observables: dict | None = None, step_size: int = 50_000) -> ClassHistograms:
    """Histograms of the jet observables per class (streaming over ``files``)."""
    from ..data.io import iterate_jets

    observables = observables or JET_OBSERVABLES
    h = ClassHistograms(tuple(classes), {k: v[1] for k, v in observables.items()},
                        {k: v[0] for k, v in observables.items()})
    for chunk in iterate_jets(files, step_size=step_size):
        chunk = _limit_per_class(chunk, h.n_jets, max_jets_per_class)
        if len(chunk) == 0:
            continue
        label = np.asarray(chunk.label)
        np.add.at(h.n_jets, label, 1)
        for var in observables:
            if var in chunk.fields:
                h.fill(var, np.asarray(chunk[var]), label)
        if max_jets_per_class is not None and np.all(h.n_jets >= max_jets_per_class):
            break
    return h


def feature_histograms(files, classes: Sequence[str], feature_set: str, *, max_particles: int = 128,
                       clip: bool = True, max_jets_per_class: int | None = None,
                       step_size: int = 20_000) -> ClassHistograms:
    """Histograms of each standardized particle input feature over real particles, per class."""
    from ..data.features import FEATURE_SETS, build_inputs, required_branches
    from ..data.io import iterate_jets

    specs = FEATURE_SETS[feature_set]
    edges = {}
    for s in specs:
        if s.name in ("part_deta", "part_dphi"):  # raw angular offsets from the jet axis
            edges[s.name] = np.linspace(-1.0, 1.0, 81)
        elif s.center is None:  # raw: charge, PID flags, tanh(impact parameters)
            edges[s.name] = np.linspace(-1.5, 1.5, 61)
        else:  # standardized and clipped to [lo, hi]
            edges[s.name] = np.linspace(s.lo - 0.5, s.hi + 0.5, 61)
    h = ClassHistograms(tuple(classes), edges, {s.name: s.name for s in specs})
    branches = list(required_branches(feature_set))
    for chunk in iterate_jets(files, step_size=step_size, branches=branches):
        chunk = _limit_per_class(chunk, h.n_jets, max_jets_per_class)
        if len(chunk) == 0:
            continue
        inputs = build_inputs(chunk, feature_set, max_particles=max_particles, clip=clip)
        np.add.at(h.n_jets, inputs.label, 1)
        real = inputs.mask[:, 0, :] > 0
        cls = np.broadcast_to(inputs.label[:, None], real.shape)[real]
        for k, s in enumerate(specs):
            h.fill(s.name, inputs.features[:, k, :][real], cls)
        if max_jets_per_class is not None and np.all(h.n_jets >= max_jets_per_class):
            break
    return h


def histogram_rows(h: ClassHistograms) -> list[dict]:
    """Long-format table of the normalised histograms: variable, class, bin edges, density."""
    rows = []
    for var, e in h.edges.items():
        dens = h.density(var)
        for c, name in enumerate(h.classes):
            for b in range(len(e) - 1):
                rows.append({"variable": var, "class": name, "bin_low": float(e[b]),
                             "bin_high": float(e[b + 1]), "count": int(h.counts[var][c, b]),
                             "density": float(dens[c, b])})
    return rows


def summary_rows(h: ClassHistograms) -> list[dict]:
    """Per class: jets, mean of each variable, median of each variable (histogram median)."""
    rows = []
    for c, name in enumerate(h.classes):
        row = {"class": name, "n_jets": int(h.n_jets[c])}
        for var in h.edges:
            row[f"mean_{var}"] = float(h.mean(var)[c]) if h.entries[var][c] else float("nan")
            row[f"median_{var}"] = float(h.median(var)[c])
        rows.append(row)
    return rows


def truncation_rows(files, classes: Sequence[str], max_particles: int, *,
                    max_jets_per_class: int | None = 2000, step_size: int = 20_000) -> list[dict]:
    """What padding/truncating to ``max_particles`` keeps, per class: the fraction of jets with
    more constituents, and the mean fraction of the jet's scalar pT and of its constituents
    carried by the leading ``max_particles`` (the files hold particles pT-ordered, as ParT
    keeps them)."""
    from ..data.io import iterate_jets

    k = len(classes)
    n_jets = np.zeros(k, np.int64)
    truncated, pt_kept, parts_kept = np.zeros(k), np.zeros(k), np.zeros(k)
    for chunk in iterate_jets(files, step_size=step_size, branches=["part_px", "part_py"]):
        chunk = _limit_per_class(chunk, n_jets, max_jets_per_class)
        if len(chunk) == 0:
            continue
        label = np.asarray(chunk.label)
        pt = np.hypot(chunk.part_px, chunk.part_py)
        pt = ak.sort(pt, axis=1, ascending=False)
        n = np.asarray(ak.num(pt, axis=1))
        total = np.asarray(ak.sum(pt, axis=1))
        kept = np.asarray(ak.sum(pt[:, :max_particles], axis=1))
        np.add.at(n_jets, label, 1)
        np.add.at(truncated, label, n > max_particles)
        np.add.at(pt_kept, label, kept / np.maximum(total, 1e-12))
        np.add.at(parts_kept, label, np.minimum(n, max_particles) / np.maximum(n, 1))
        if max_jets_per_class is not None and np.all(n_jets >= max_jets_per_class):
            break
    denom = np.maximum(n_jets, 1)
    return [{"class": name, "n_jets": int(n_jets[c]), "max_particles": max_particles,
             "frac_jets_truncated": float(truncated[c] / denom[c]),
             "mean_pt_fraction_kept": float(pt_kept[c] / denom[c]),
             "mean_particle_fraction_kept": float(parts_kept[c] / denom[c])}
            for c, name in enumerate(classes)]


# --- particle level against detector level (notebook 01, docs/detector.md) -------------------

#: the observables compared between particle level and the detector emulation
DETECTOR_OBSERVABLES = {k: JET_OBSERVABLES[k] for k in ("jet_nparticles", "jet_mass", "jet_pt")}


def detector_samples(params, jets_per_class: int, *, progress: bool = False,
                     log=None) -> tuple[str, dict[str, ClassHistograms]] | None:
    """The same Pythia events at particle level and through the detector emulation the
    dataset's real files went through (``dataset.detector`` where it is set, else
    :data:`~partnb.data.detector.REAL_DATASET_DETECTOR`): ``jets_per_class`` jets of every
    class in each mode, generated into ``dataset.cache_dir`` (cached like any generated
    sample; one file per class), and their histograms of :data:`DETECTOR_OBSERVABLES`.

    Returns:
        (mode, {"none": histograms, mode: histograms}), or None for a dataset whose real
        files are particle level (Quark-Gluon) or for real data (``source: files``).
    """
    import dataclasses

    from ..data.detector import REAL_DATASET_DETECTOR
    from ..data.generate import GenerationConfig, generate

    ds = params.dataset
    mode = ds.detector if ds.detector != "none" else REAL_DATASET_DETECTOR[ds.name]
    if ds.source != "generate" or mode == "none":
        return None
    base = GenerationConfig.from_params(params, jets_per_class)
    base = dataclasses.replace(base, jets_per_file=jets_per_class)
    out = {}
    for m in ("none", mode):
        config = dataclasses.replace(base, detector=m)
        files = generate(config, ds.cache_dir, workers=ds.workers, progress=progress, log=log)
        out[m] = jet_histograms(files, config.class_names, observables=DETECTOR_OBSERVABLES)
    return mode, out


def detector_rows(dataset: str, samples: dict[str, ClassHistograms]) -> list[dict]:
    """Per class and mode: jets, mean and median of each observable, and the real dataset's
    published mean multiplicity (:data:`~partnb.data.detector.REAL_MULTIPLICITY`) where
    known, with the relative difference of the mean multiplicity from it."""
    from ..data.detector import REAL_MULTIPLICITY

    rows = []
    for mode, h in samples.items():
        for row in summary_rows(h):
            real = REAL_MULTIPLICITY.get((dataset, row["class"]), float("nan"))
            rows.append({"mode": mode, **row, "real_mean_jet_nparticles": real,
                         "relative_to_real": row["mean_jet_nparticles"] / real - 1})
    return rows

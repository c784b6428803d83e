"""Does the attention pattern itself tell signal from background? (docs/analyses.md#attention-statistics-as-a-jet-tagger)

The papers show that sparse heads pick physically meaningful partners (Wang et al., ML4PS 2024,
Fig. 3; arXiv 2512.00210); they do not ask whether the attention pattern of a signal jet
differs from that of a QCD jet, enough that its statistics alone tag the jet. This module
answers it in two steps:

* :class:`JetAttentionFeatures`, a streaming consumer (:class:`~partnb.analysis.stream.Consumer`):
  per jet, over its real particles, per particle block and head, the mean row maximum, the
  fraction of rows with maximum ≥ 0.8 (:data:`~partnb.analysis.sparsity.BINARY_ROW_THRESHOLD`),
  the mean normalised row entropy, the interaction-dependent rate D
  (:func:`~partnb.analysis.interaction.argmax_decisions`), the inter-subjet fraction for
  N = 2, 3, 4 kT subjets and the lepton fraction (docs/analyses.md#inter-subjet-attention-fraction,
  docs/analyses.md#lepton-attention-fraction); also the mass and multiplicity of the particles
  the model sees and the tagger's scores. One row per jet: memory grows only with that table.
  :func:`jet_kinematics` adds the mass and multiplicity of the whole jet (the model sees at
  most ``features.max_particles`` particles).
* :func:`classify_task`: a gradient-boosted classifier (scikit-learn
  ``HistGradientBoostingClassifier``, fixed settings and seed) trained on half of the jets of
  one signal class and the background, on attention statistics alone, on mass and
  multiplicity alone and on both; AUCs on the other half with paired, stratified bootstrap
  errors, beside the tagger's own AUC on the same jets. :func:`attention_verdict` words the
  answer from stated thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .interaction import argmax_decisions
from .sparsity import BINARY_ROW_THRESHOLD, rows_max_column
from .stream import AnalysisError

__all__ = [
    "CLASSIFIER_SETTINGS",
    "INPUT_SETS",
    "KINEMATIC_COLUMNS",
    "MIN_JETS_PER_CLASS",
    "N_BOOTSTRAP",
    "ROW_STATS",
    "SEPARATION_SIGMA",
    "SUBJET_COUNTS",
    "JetAttentionFeatures",
    "TaskAUC",
    "attention_columns",
    "attention_verdict",
    "balanced_inputs",
    "classifier_rows",
    "classify_task",
    "feature_histogram_rows",
    "feature_summary_rows",
    "input_matrices",
    "jet_kinematics",
    "jet_mass",
    "signal_tasks",
    "subjet_assignments",
]

#: Per-row statistics kept per (jet, block, head): mean row maximum, fraction of rows with
#: maximum ≥ 0.8, mean normalised row entropy (entropy / ln n), rate of D.
ROW_STATS = ("row_max_mean", rows_max_column(BINARY_ROW_THRESHOLD), "entropy", "rate_D")
#: kT exclusive subjet counts of the inter-subjet fractions. The same for every jet, whatever
#: its class: a count chosen by the class would hand the classifier the label.
SUBJET_COUNTS = (2, 3, 4)
#: The "obvious" per-jet variables the attention has to beat: mass and multiplicity of the
#: whole jet (:func:`jet_kinematics`); the consumer's ``mass`` and ``multiplicity`` (of the
#: particles the model sees) stand in where those are not given.
KINEMATIC_COLUMNS = ("jet_mass", "jet_multiplicity")
#: Bootstrap resamples of the evaluation jets (errors of the AUCs and their differences).
N_BOOTSTRAP = 200
#: "Beyond errors" means more than this many standard errors.
SEPARATION_SIGMA = 3.0
#: Settings of the classifier, the same for every input set (not tuned per set).
CLASSIFIER_SETTINGS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 15,
                       "min_samples_leaf": 20, "l2_regularization": 1.0, "early_stopping": False,
                       "random_state": 0}
#: A task needs at least this many jets of each of its two classes; below it the task gets a
#: row that says so. Half of them train: 2 x min_samples_leaf per class, so that the training
#: half can make at least one split (with fewer the classifier is a constant, AUC 0.5).
MIN_JETS_PER_CLASS = 2 * CLASSIFIER_SETTINGS["min_samples_leaf"]
#: The classifier's input sets, in table order, with what each holds.
INPUT_SETS = {
    "attention": "attention statistics per particle block, averaged over heads (trained model)",
    "attention_per_head": "attention statistics per particle block and head (trained model)",
    "mass_multiplicity": "jet mass and multiplicity only",
    "attention_mass_multiplicity": "attention statistics per block + mass + multiplicity",
    "random_attention": "attention statistics per block of the never-trained model",
    "random_attention_mass_multiplicity": "never-trained attention statistics + mass + multiplicity",
    "attention_lepton": "attention statistics per block + lepton fraction per block (truth PID)",
}


# --------------------------------------------------------------------------------------
# Jets
# --------------------------------------------------------------------------------------


def jet_mass(vectors: np.ndarray) -> np.ndarray:
    """(B,) invariant mass in GeV of the summed (px, py, pz, E) of zero-padded (B, 4, P)
    4-vectors (the particles the model sees); 0 for a spacelike rounding remainder."""
    p = np.asarray(vectors, dtype=np.float64).sum(axis=-1)
    m2 = p[:, 3] ** 2 - p[:, 0] ** 2 - p[:, 1] ** 2 - p[:, 2] ** 2
    return np.sqrt(np.clip(m2, 0.0, None))


def signal_tasks(dataset: str) -> list[tuple[str, str]]:
    """(signal, background) class names of every task: JetClass each of the nine signal
    classes against QCD (the papers' column order); the binary datasets class 0 against
    class 1 (top vs QCD, quark vs gluon)."""
    from partnb.data.schema import DATASETS, PAPER_COLUMN_ORDER

    classes = DATASETS[dataset].classes
    if dataset == "jetclass":
        return [(c, "QCD") for c in PAPER_COLUMN_ORDER]
    return [(classes[0], classes[1])]


def balanced_inputs(params, per_class: int, *, progress: bool = False):
    """The test jets the analysis runs on: at most ``per_class`` jets of every class (a seeded
    subset, ``params.seed``, in split order), so each signal-vs-background task gets the same
    number of jets of both classes where the split allows.

    Returns:
        (inputs, positions): the :class:`~partnb.data.features.JetInputs` and their positions
        in the test split (for :func:`jet_kinematics`).

    Raises:
        AnalysisError: the test split holds no labelled jet.
    """
    from partnb.data.sample import load_split

    inputs = load_split(params, "test", progress=progress)
    rng = np.random.default_rng(params.seed)
    keep = []
    for c in np.unique(inputs.label):
        if c < 0:
            continue
        where = np.flatnonzero(inputs.label == c)
        keep.append(where[rng.permutation(len(where))[:per_class]])
    if not keep:
        raise AnalysisError(f"the test split of {params.source} holds no labelled jets")
    positions = np.sort(np.concatenate(keep))
    return inputs.take(positions), positions


def jet_kinematics(params, positions: np.ndarray, inputs=None) -> dict[str, np.ndarray]:
    """Mass and multiplicity of the whole jet (all its particles, not only the
    ``features.max_particles`` the model sees) of the test-split jets at ``positions``: the
    ``jet_mass`` and ``jet_nparticles`` fields of the data (derived from the constituents
    where a file lacks them), read in the order of :func:`partnb.data.sample.load_split`.

    Args:
        inputs: the model inputs of the same jets; if given, their multiplicities are checked
            against min(n, max_particles) (the two reads must see the same jets).

    Returns:
        ``{"jet_mass": (N,) GeV, "jet_multiplicity": (N,)}``.

    Raises:
        AnalysisError: the check against ``inputs`` fails.
    """
    import awkward as ak

    from partnb.data.sample import split_chunks

    mass, count = [], []
    for chunk in split_chunks(params, "test", ["jet_mass", "jet_nparticles"]):
        mass.append(ak.to_numpy(chunk["jet_mass"]).astype(np.float64))
        count.append(ak.to_numpy(chunk["jet_nparticles"]).astype(np.int64))
    out = {"jet_mass": np.concatenate(mass)[positions], "jet_multiplicity": np.concatenate(count)[positions]}
    if inputs is not None:
        seen = np.minimum(out["jet_multiplicity"], inputs.mask.shape[-1])
        if len(seen) != len(inputs) or not np.array_equal(seen, inputs.n_particles):
            raise AnalysisError("the jet-level read of the test split does not match the model "
                                "inputs' multiplicities: the two reads disagree")
    return out


def subjet_assignments(inputs, counts: Sequence[int] = SUBJET_COUNTS) -> dict:
    """kT exclusive subjets of every jet for each N in ``counts``
    (:func:`~partnb.analysis.substructure.kt_subjets`, docs/analyses.md#kt-subjets)."""
    from .substructure import kt_subjets

    return {n: kt_subjets(inputs.vectors, inputs.n_particles, n) for n in counts}


# --------------------------------------------------------------------------------------
# The streaming consumer
# --------------------------------------------------------------------------------------


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` of the finite entries; NaN where there is none (no warning)."""
    finite = np.isfinite(x)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    count = finite.sum(axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class JetAttentionFeatures:
    """Per-jet attention statistics of the particle blocks (docs/analyses.md#attention-statistics-as-a-jet-tagger).

    For each jet k, particle block ℓ and head h, over the n real particles (rows i, keys j):

    * ``row_max_mean``: mean over rows of max_j W_ij (uniform attention: 1/n);
    * ``frac_rows_max_ge_0.8``: fraction of rows with max_j W_ij ≥ 0.8;
    * ``entropy``: mean over rows of −Σ_j W_ij ln W_ij / ln n (1 for uniform attention, 0
      for one-hot rows; NaN for n = 1);
    * ``rate_D``: fraction of rows whose argmax over real keys moves when U is added to A
      (:func:`~partnb.analysis.interaction.argmax_decisions`; NaN without U);
    * ``intersubjet_N{N}``: Σ_{i≠j, s_i≠s_j} W_ij / Σ_{i≠j} W_ij with the jet's N kT subjets
      (particles in no subjet form one more, as in
      :class:`~partnb.analysis.substructure.InterSubjetAttentionFraction`; NaN for n < N);
    * ``lepton_fraction``: Σ_i Σ_{j∈leptons} W_ij / Σ_i Σ_j W_ij (as
      :class:`~partnb.analysis.substructure.LeptonAttentionFraction`, every block; NaN
      without a lepton or without PID).

    Also per jet: ``mass`` (:func:`jet_mass` of the real 4-vectors), ``multiplicity`` (real
    particles as the model saw them, at most ``max_particles``) and the tagger's softmax
    scores (``score_<class>``), from ``update_logits``.

    The as-coded record of an ``as_coded=True`` pass and class blocks are skipped; a record
    without ``P`` is skipped too. Results are written at ``batch.index``, so any order of
    batches works.

    Args:
        n_jets: jets of the analysed inputs (the table's length).
        subjets: N → :class:`~partnb.analysis.substructure.SubjetAssignment` of the same
            inputs (optional; no inter-subjet columns without it).
        is_lepton: (n_jets, P) bool per particle slot (optional; lepton fractions NaN without).
        classes: class names, for the score columns (default ``class0`` …).
    """

    def __init__(self, n_jets: int, *, subjets: Mapping[int, object] | None = None,
                 is_lepton: np.ndarray | None = None, classes: Sequence[str] | None = None) -> None:
        self.n_jets = int(n_jets)
        self.subjets = dict(subjets or {})
        self.is_lepton = None if is_lepton is None else np.asarray(is_lepton, dtype=bool)
        self.classes = list(classes) if classes is not None else None
        self.label = np.full(self.n_jets, -1, dtype=np.int64)
        self.mass = np.full(self.n_jets, np.nan)
        self.multiplicity = np.zeros(self.n_jets, dtype=np.int64)
        self.scores: np.ndarray | None = None
        self.seen = np.zeros(self.n_jets, dtype=bool)
        self._head: dict[str, dict[int, np.ndarray]] = {}

    # -- streaming ---------------------------------------------------------------------

    def _store(self, stat: str, layer: int, index: np.ndarray, values: torch.Tensor) -> None:
        table = self._head.setdefault(stat, {})
        if layer not in table:
            table[layer] = np.full((self.n_jets, values.shape[1]), np.nan)
        table[layer][index] = values.numpy()

    def update(self, key, record, batch) -> None:
        if not isinstance(key, int) or "P" not in record or "A_as_coded" in record:
            return
        index = np.asarray(batch.index)
        weights = record["P"].double()
        padding = record["padding_mask"]
        B, H, P, _ = weights.shape
        real = ~padding                                     # (B, P)
        n = real.sum(dim=-1).double()                       # (B,)
        rows = real[:, None, :].double()                    # (B, 1, P) real queries
        w = weights.masked_fill(padding[:, None, None, :], 0.0) * rows[..., None]
        per_jet = n[:, None].clamp_min(1.0)

        row_max = weights.masked_fill(padding[:, None, None, :], -math.inf).amax(dim=-1)
        row_max = torch.where(rows.bool(), row_max, torch.zeros_like(row_max))
        self._store("row_max_mean", key, index, row_max.sum(dim=-1) / per_jet)
        binary = (row_max >= BINARY_ROW_THRESHOLD).double() * rows
        self._store(ROW_STATS[1], key, index, binary.sum(dim=-1) / per_jet)
        entropy = -torch.special.xlogy(w, w).sum(dim=-1) * rows        # (B, H, P)
        log_n = torch.log(n)[:, None]
        self._store("entropy", key, index,
                    torch.where(n[:, None] > 1, entropy.sum(dim=-1) / (per_jet * log_n.clamp_min(1e-300)),
                                torch.full((B, H), math.nan, dtype=torch.float64)))
        if "A" in record and "U" in record:
            d = argmax_decisions(record["A"], record["U"], record["P"], padding)["D"]
            self._store("rate_D", key, index, d.double().sum(dim=-1) / per_jet)
        else:
            self._store("rate_D", key, index, torch.full((B, H), math.nan, dtype=torch.float64))

        row_sum = w.sum(dim=-1)                                        # (B, H, P)
        diagonal = torch.diagonal(w, dim1=-2, dim2=-1)                 # (B, H, P)
        for count, assignment in self.subjets.items():
            labels = torch.as_tensor(assignment.labels[index][:, :P]) + 1  # 0: in no subjet
            onehot = torch.nn.functional.one_hot(labels, count + 1).double() * real[..., None]
            by_subjet = torch.matmul(w, onehot[:, None])               # (B, H, P, N + 1)
            same = by_subjet.gather(-1, labels[:, None, :, None].expand(B, H, P, 1))[..., 0]
            num = (row_sum - same).sum(dim=-1)     # same subjet includes i itself
            den = (row_sum - diagonal).sum(dim=-1)
            frac = torch.where(den > 0, num / den.clamp_min(1e-300),
                               torch.full_like(den, math.nan))
            frac[torch.as_tensor(~assignment.used[index])] = math.nan
            self._store(f"intersubjet_N{count}", key, index, frac)
        if self.is_lepton is not None:
            lepton = torch.as_tensor(self.is_lepton[index][:, :P]) & real
            column_sum = w.sum(dim=-2)                                 # (B, H, P) over rows
            num = (column_sum * lepton[:, None, :].double()).sum(dim=-1)
            frac = num / column_sum.sum(dim=-1).clamp_min(1e-300)
            frac[~lepton.any(dim=-1)] = math.nan
            self._store("lepton_fraction", key, index, frac)

        self.seen[index] = True
        self.label[index] = np.asarray(batch.label)
        self.multiplicity[index] = real.sum(dim=-1).numpy()
        self.mass[index] = jet_mass(np.asarray(batch.inputs.vectors))

    def update_logits(self, logits: torch.Tensor, batch) -> None:
        from partnb.metrics import softmax

        if self.scores is None:
            self.scores = np.full((self.n_jets, logits.shape[-1]), np.nan)
        self.scores[np.asarray(batch.index)] = softmax(logits.double().numpy())

    # -- results -----------------------------------------------------------------------

    @property
    def layers(self) -> list[int]:
        return sorted(next(iter(self._head.values()), {}))

    @property
    def stats(self) -> list[str]:
        """The statistics measured, in column order."""
        order = list(ROW_STATS) + [f"intersubjet_N{c}" for c in self.subjets] + ["lepton_fraction"]
        return [s for s in order if s in self._head]

    def head_values(self, stat: str) -> np.ndarray:
        """(jets, blocks, heads) values of one statistic, NaN where undefined."""
        table = self._head[stat]
        return np.stack([table[layer] for layer in sorted(table)], axis=1)

    def columns(self, *, per_head: Sequence[str] = ROW_STATS) -> dict[str, np.ndarray]:
        """The per-jet table as named columns: ``jet``, ``label``, ``mass``, ``multiplicity``,
        ``score_<class>``; each statistic averaged over blocks and heads (``<stat>``), per block
        averaged over heads (``<stat>_l<block>``) and, for the statistics in ``per_head``, per
        block and head (``<stat>_l<block>_h<head>``). Averages skip NaN entries."""
        out: dict[str, np.ndarray] = {"jet": np.arange(self.n_jets), "label": self.label,
                                      "mass": self.mass, "multiplicity": self.multiplicity}
        if self.scores is not None:
            names = self.classes or [f"class{c}" for c in range(self.scores.shape[1])]
            out.update({f"score_{name}": self.scores[:, c] for c, name in enumerate(names)})
        for stat in self.stats:
            values = self.head_values(stat)                            # (jets, L, H)
            per_block = _nanmean(values, axis=2)
            out[stat] = _nanmean(per_block, axis=1)
            for i, layer in enumerate(self.layers):
                out[f"{stat}_l{layer}"] = per_block[:, i]
            if stat in per_head:
                for i, layer in enumerate(self.layers):
                    for h in range(values.shape[2]):
                        out[f"{stat}_l{layer}_h{h}"] = values[:, i, h]
        return out

    def rows(self, model: str = "model") -> list[dict]:
        """The consumer table (:class:`~partnb.analysis.stream.Consumer`): one row per
        streamed jet with every column of :meth:`columns`."""
        cols = self.columns()
        return [{"model": model} | {name: v[k].item() for name, v in cols.items()}
                for k in np.flatnonzero(self.seen)]


def attention_columns(columns: Mapping[str, np.ndarray], *, per_head: bool = False,
                      lepton: bool = False) -> list[str]:
    """Names of the attention-statistic columns a classifier reads: per block averaged over
    heads (``<stat>_l<block>``), or per block and head for the row statistics with
    ``per_head`` (inter-subjet fractions stay per block); the lepton fraction per block only
    with ``lepton`` (its absence reveals which jets hold a lepton: truth PID, not attention).
    Never mass, multiplicity, scores or the label."""
    import re

    names = []
    for name in columns:
        m = re.fullmatch(r"(.+)_l(\d+)(_h\d+)?", name)
        if not m:
            continue
        stat, head = m.group(1), m.group(3)
        if stat == "lepton_fraction":
            if lepton and head is None:
                names.append(name)
        elif stat in ROW_STATS:
            if (head is not None) == per_head:
                names.append(name)
        elif stat.startswith("intersubjet_N") and head is None:
            names.append(name)
    return names


def input_matrices(trained: Mapping[str, np.ndarray],
                   random_init: Mapping[str, np.ndarray] | None = None,
                   kinematics: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The classifier's input sets (:data:`INPUT_SETS`) as (jets, features) float arrays,
    from the per-jet columns of the trained model's :class:`JetAttentionFeatures` (and of
    the never-trained model's, on the same jets in the same order). ``kinematics``: the
    jets' mass and multiplicity (:func:`jet_kinematics`); default the consumer's, of the
    particles the model sees. ``attention_lepton`` only where some jet has a lepton
    fraction."""
    n_jets = len(trained["jet"])

    def stack(cols, names):
        if not names:
            return np.zeros((n_jets, 0))
        return np.column_stack([np.asarray(cols[c], dtype=np.float64) for c in names])

    if kinematics is None:
        kin = stack(trained, ["mass", "multiplicity"])
    else:
        kin = stack(kinematics, KINEMATIC_COLUMNS)
    attention = stack(trained, attention_columns(trained))
    sets = {"attention": attention,
            "attention_per_head": stack(trained, attention_columns(trained, per_head=True)),
            "mass_multiplicity": kin,
            "attention_mass_multiplicity": np.column_stack([attention, kin])}
    if random_init is not None:
        if not np.array_equal(np.asarray(random_init["jet"]), np.asarray(trained["jet"])):
            raise ValueError("the two tables must hold the same jets in the same order")
        rand = stack(random_init, attention_columns(random_init))
        sets["random_attention"] = rand
        sets["random_attention_mass_multiplicity"] = np.column_stack([rand, kin])
    if "lepton_fraction" in trained and np.isfinite(np.asarray(trained["lepton_fraction"])).any():
        sets["attention_lepton"] = stack(trained, attention_columns(trained, lepton=True))
    return {name: sets[name] for name in INPUT_SETS if name in sets}


# --------------------------------------------------------------------------------------
# Classifier and AUCs
# --------------------------------------------------------------------------------------


def _auc(truth: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (ties count 1/2) by the Mann-Whitney rank sum: the same number as
    ``sklearn.metrics.roc_auc_score``, fast enough for the bootstrap."""
    from scipy.stats import rankdata

    truth = np.asarray(truth, dtype=bool)
    n1 = int(truth.sum())
    n0 = len(truth) - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = rankdata(score)
    return float((ranks[truth].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _half_split(truth: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train and evaluation positions: half of each class (the odd jet out to evaluation)."""
    train, test = [], []
    for cls in (True, False):
        where = np.flatnonzero(truth == cls)
        where = where[rng.permutation(len(where))]
        train.append(where[:len(where) // 2])
        test.append(where[len(where) // 2:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@dataclass
class TaskAUC:
    """AUCs of one signal-vs-background task on its evaluation jets.

    Attributes:
        signal, background: class names.
        n_signal, n_background: jets of each class analysed (train + evaluation).
        n_train, n_eval, n_eval_signal, n_eval_background: the split.
        auc: input set (and ``"tagger"``) → AUC on the evaluation jets.
        boot: the same → AUCs of the ``N_BOOTSTRAP`` stratified resamples (paired: one set of
            resampled jets for all).
        n_features: input set → columns.
        note: why the task was not evaluated ("" when it was).
    """

    signal: str
    background: str
    n_signal: int
    n_background: int
    n_train: int = 0
    n_eval: int = 0
    n_eval_signal: int = 0
    n_eval_background: int = 0
    auc: dict[str, float] = field(default_factory=dict)
    boot: dict[str, np.ndarray] = field(default_factory=dict)
    n_features: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def task(self) -> str:
        return f"{self.signal} vs {self.background}"

    @property
    def evaluated(self) -> bool:
        return not self.note

    def error(self, name: str) -> float:
        b = self.boot.get(name)
        return float(np.std(b, ddof=1)) if b is not None and len(b) > 1 else math.nan

    def difference(self, a: str, b: str) -> tuple[float, float]:
        """AUC(a) − AUC(b) and its paired bootstrap error (NaN if either is missing)."""
        if a not in self.auc or b not in self.auc:
            return math.nan, math.nan
        diff = self.boot[a] - self.boot[b]
        return self.auc[a] - self.auc[b], float(np.std(diff, ddof=1)) if len(diff) > 1 else math.nan


def classify_task(matrices: Mapping[str, np.ndarray], labels: np.ndarray, scores: np.ndarray | None,
                  classes: Sequence[str], signal: str, background: str, *, seed: int = 0,
                  n_boot: int = N_BOOTSTRAP, min_jets: int = MIN_JETS_PER_CLASS,
                  threads: int | None = 1) -> TaskAUC:
    """Train and evaluate the classifier of every input set on one task (docs/analyses.md#attention-statistics-as-a-jet-tagger).

    The jets of the two classes are split at random (``seed``) into halves, class by class:
    each classifier (``HistGradientBoostingClassifier`` with :data:`CLASSIFIER_SETTINGS`;
    missing values handled natively; columns without a value in the training half dropped)
    trains on one half and is scored on the other. The
    tagger's AUC uses the discriminant p_signal / (p_signal + p_background)
    (:func:`partnb.metrics.binary_discriminant`) on the same evaluation jets. Errors: the
    standard deviation over ``n_boot`` resamples of the evaluation jets, drawn with
    replacement within each class, the same resamples for every AUC (so differences get
    paired errors). They hold the evaluation sample's fluctuation, not the training
    sample's.

    Args:
        matrices: input set → (jets, features) over all analysed jets (:func:`input_matrices`).
        labels: (jets,) class indices.
        scores: (jets, classes) tagger probabilities, or None.
        classes: class names (index order).
        signal, background: the task's class names.
        min_jets: fewer jets of either class → not evaluated, ``note`` says why.
        threads: OpenMP threads of the classifier (None: the library's default).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from partnb.metrics import binary_discriminant

    classes = list(classes)
    labels = np.asarray(labels)
    if signal not in classes or background not in classes:
        return TaskAUC(signal, background, 0, 0, note=f"{signal} or {background} is not a class here")
    s, b = classes.index(signal), classes.index(background)
    jets = np.flatnonzero((labels == s) | (labels == b))
    truth = labels[jets] == s
    result = TaskAUC(signal, background, int(truth.sum()), int((~truth).sum()))
    if min(result.n_signal, result.n_background) < min_jets:
        result.note = (f"too few jets: {result.n_signal} {signal} and {result.n_background} "
                       f"{background} (need {min_jets} of each)")
        return result
    rng = np.random.default_rng(seed)
    train, test = _half_split(truth, rng)
    result.n_train, result.n_eval = len(train), len(test)
    result.n_eval_signal = int(truth[test].sum())
    result.n_eval_background = len(test) - result.n_eval_signal
    predictions = {}
    with threadpool_limits(limits=threads):
        for name, matrix in matrices.items():
            x = np.asarray(matrix, dtype=np.float64)[jets]
            # a column with no value in the training half carries nothing (and trips sklearn)
            x = x[:, np.isfinite(x[train]).any(axis=0)]
            result.n_features[name] = x.shape[1]
            if x.shape[1] == 0:
                continue
            clf = HistGradientBoostingClassifier(**CLASSIFIER_SETTINGS)
            clf.fit(x[train], truth[train])
            predictions[name] = clf.predict_proba(x[test])[:, list(clf.classes_).index(True)]
    if scores is not None:
        predictions["tagger"] = binary_discriminant(np.asarray(scores)[jets][test], s, b)
    y = truth[test]
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    resamples = [np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
                 for _ in range(n_boot)]
    for name, p in predictions.items():
        result.auc[name] = _auc(y, p)
        result.boot[name] = np.array([_auc(y[r], p[r]) for r in resamples])
    return result


def classifier_rows(results: Sequence[TaskAUC]) -> list[dict]:
    """The AUC table: one row per task and input set, with the paired gain over mass and
    multiplicity alone and the gap to the tagger on the same evaluation jets; a task that was
    not evaluated gets one row whose ``note`` says why."""
    rows = []
    for r in results:
        base = {"task": r.task, "signal": r.signal, "background": r.background,
                "n_signal": r.n_signal, "n_background": r.n_background}
        if not r.evaluated:
            rows.append(base | {"inputs": "none", "auc": math.nan, "auc_err": math.nan,
                                "n_eval": 0, "tagger_auc": math.nan, "note": r.note})
            continue
        tagger, tagger_err = r.auc.get("tagger", math.nan), r.error("tagger")
        for name in INPUT_SETS:
            if name not in r.auc:
                continue
            gain, gain_err = r.difference(name, "mass_multiplicity")
            gap, gap_err = r.difference("tagger", name)
            rows.append(base | {
                "inputs": name, "n_features": r.n_features[name], "auc": r.auc[name],
                "auc_err": r.error(name), "n_train": r.n_train, "n_eval": r.n_eval,
                "n_eval_signal": r.n_eval_signal, "n_eval_background": r.n_eval_background,
                "tagger_auc": tagger, "tagger_auc_err": tagger_err,
                "gain_over_mass_multiplicity": gain, "gain_over_mass_multiplicity_err": gain_err,
                "tagger_minus_auc": gap, "tagger_minus_auc_err": gap_err, "note": ""})
    return rows


def _beyond(value: float, error: float, sigma: float) -> bool:
    return bool(np.isfinite(value) and np.isfinite(error) and value > sigma * error)


def _task_verdict(r: TaskAUC, sigma: float) -> dict:
    a, a_err = r.auc.get("attention", math.nan), r.error("attention")
    gain, gain_err = r.difference("attention_mass_multiplicity", "mass_multiplicity")
    gap, gap_err = r.difference("tagger", "attention_mass_multiplicity")
    gap_a, gap_a_err = r.difference("tagger", "attention")
    trained, trained_err = r.difference("attention", "random_attention")
    gap_h, gap_h_err = r.difference("tagger", "attention_per_head")
    out = {"task": r.task, "n_eval": r.n_eval,
           "auc_attention": a, "auc_attention_err": a_err,
           "separates": _beyond(a - 0.5, a_err, sigma),
           "auc_mass_multiplicity": r.auc.get("mass_multiplicity", math.nan),
           "auc_mass_multiplicity_err": r.error("mass_multiplicity"),
           "auc_attention_mass_multiplicity": r.auc.get("attention_mass_multiplicity", math.nan),
           "auc_attention_mass_multiplicity_err": r.error("attention_mass_multiplicity"),
           "gain": gain, "gain_err": gain_err, "adds": _beyond(gain, gain_err, sigma),
           "auc_random_attention": r.auc.get("random_attention", math.nan),
           "trained_minus_random": trained, "trained_minus_random_err": trained_err,
           "trained_beats_random": _beyond(trained, trained_err, sigma),
           "tagger_auc": r.auc.get("tagger", math.nan), "tagger_auc_err": r.error("tagger"),
           "tagger_minus_attention": gap_a, "tagger_minus_attention_err": gap_a_err,
           "tagger_minus_attention_mass_multiplicity": gap,
           "tagger_minus_attention_mass_multiplicity_err": gap_err,
           "auc_attention_per_head": r.auc.get("attention_per_head", math.nan),
           "auc_attention_per_head_err": r.error("attention_per_head"),
           "tagger_minus_attention_per_head": gap_h, "tagger_minus_attention_per_head_err": gap_h_err}
    yes = {True: "yes", False: "no"}
    out["sentence"] = (
        f"{r.task} ({r.n_eval} evaluation jets): attention statistics alone reach AUC "
        f"{a:.3f} ± {a_err:.3f} ({_sig(a - 0.5, a_err)} above 0.5: separates {yes[out['separates']]}); "
        f"mass and multiplicity alone {out['auc_mass_multiplicity']:.3f} ± "
        f"{out['auc_mass_multiplicity_err']:.3f}, both together "
        f"{out['auc_attention_mass_multiplicity']:.3f} ± {out['auc_attention_mass_multiplicity_err']:.3f}, "
        f"a gain of {gain:+.3f} ± {gain_err:.3f} (adds beyond mass and multiplicity: "
        f"{yes[out['adds']]}); the never-trained model's attention alone gives "
        f"{out['auc_random_attention']:.3f}; the tagger's own AUC on the same jets is "
        f"{out['tagger_auc']:.3f} ± {out['tagger_auc_err']:.3f}, {abs(gap):.3f} ± {gap_err:.3f} "
        f"{'above' if gap >= 0 else 'below'} attention with mass and multiplicity"
        + (f"; kept per head, attention statistics alone reach {out['auc_attention_per_head']:.3f} ± "
           f"{out['auc_attention_per_head_err']:.3f}." if np.isfinite(out["auc_attention_per_head"]) else "."))
    return out


def _sig(value: float, error: float) -> str:
    if not (np.isfinite(value) and np.isfinite(error)) or error <= 0:
        return "? errors"
    return f"{value / error:.1f} errors"


def _names(tasks: Sequence[dict]) -> str:
    return ", ".join(t["task"].split(" vs ")[0] for t in tasks) or "none"


def attention_verdict(results: Sequence[TaskAUC], sigma: float = SEPARATION_SIGMA) -> dict:
    """The answer in words, from the measured AUCs and a stated rule: attention statistics
    *separate* signal from background when AUC − 0.5 exceeds ``sigma`` errors; they *add*
    to mass and multiplicity when the paired AUC gain of attention + mass + multiplicity over
    mass + multiplicity alone exceeds ``sigma`` errors; the gap to the tagger is the tagger's
    AUC minus that of attention + mass + multiplicity on the same jets. Returns
    ``{"sentence", "rule", "tasks": {task: details}, "skipped": {task: note}}``."""
    done = [r for r in results if r.evaluated and "attention" in r.auc]
    skipped = {r.task: r.note or "no attention classifier" for r in results if r not in done}
    tasks = {r.task: _task_verdict(r, sigma) for r in done}
    rule = (f"separates: AUC(attention) - 0.5 > {sigma:g} errors; adds: AUC(attention + mass + "
            f"multiplicity) - AUC(mass + multiplicity) > {sigma:g} paired errors; errors from "
            f"{N_BOOTSTRAP} stratified bootstrap resamples of the evaluation half")
    if not tasks:
        sentence = ("No task had enough jets to train and evaluate the classifier "
                    f"(at least {MIN_JETS_PER_CLASS} of each class): "
                    + "; ".join(f"{k}: {v}" for k, v in skipped.items()) + ".")
        return {"sentence": sentence, "rule": rule, "tasks": tasks, "skipped": skipped}
    if len(tasks) == 1:
        sentence = next(iter(tasks.values()))["sentence"]
    else:
        t = list(tasks.values())
        sep = [x for x in t if x["separates"]]
        adds = [x for x in t if x["adds"]]
        beats = [x for x in t if x["trained_beats_random"]]
        aucs = [x["auc_attention"] for x in t]
        gaps = [x["tagger_minus_attention_mass_multiplicity"] for x in t]
        background = t[0]["task"].split(" vs ")[1]
        sentence = (
            f"Attention statistics alone separate signal from {background} in {len(sep)} of "
            f"{len(t)} tasks (AUC {min(aucs):.2f}–{max(aucs):.2f}; not beyond {sigma:g} errors: "
            f"{_names([x for x in t if not x['separates']])}); beyond jet mass and "
            f"multiplicity they add information in {len(adds)} of {len(t)}"
            + (": " + ", ".join(f"{x['task'].split(' vs ')[0]} ({x['gain']:+.3f} ± {x['gain_err']:.3f})"
                                for x in adds) if adds else "")
            + f"; trained attention separates better than the never-trained model's in {len(beats)} "
            f"of {len(t)}; the tagger's own AUC on the same jets exceeds that of attention with "
            f"mass and multiplicity by {min(gaps):+.3f} to {max(gaps):+.3f}.")
        per_head = [x for x in t if np.isfinite(x["auc_attention_per_head"])]
        if per_head:
            heads = [x["auc_attention_per_head"] for x in per_head]
            gaps_h = [x["tagger_minus_attention_per_head"] for x in per_head]
            sentence += (f" Kept per head instead of averaged over heads, attention statistics alone "
                         f"reach AUC {min(heads):.2f}–{max(heads):.2f}, {min(gaps_h):+.3f} to "
                         f"{max(gaps_h):+.3f} below the tagger.")
    if skipped:
        sentence += " Not evaluated: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "."
    return {"sentence": sentence, "rule": rule, "tasks": tasks, "skipped": skipped}


# --------------------------------------------------------------------------------------
# Per-class distributions
# --------------------------------------------------------------------------------------


def feature_summary_rows(columns: Mapping[str, np.ndarray], classes: Sequence[str],
                         features: Sequence[str], background: str | None = None) -> list[dict]:
    """Per class and feature: jets with a finite value, median, quartiles, mean, and the
    single-variable AUC of that class against ``background`` (how far the one number alone
    separates them; 0.5 = not at all, below 0.5 = the class lies lower)."""
    labels = np.asarray(columns["label"])
    bkg = list(classes).index(background) if background in classes else None
    rows = []
    for feature in features:
        values = np.asarray(columns[feature], dtype=np.float64)
        for c, name in enumerate(classes):
            v = values[labels == c]
            v = v[np.isfinite(v)]
            row = {"class": name, "feature": feature, "jets": len(v)}
            if len(v):
                q25, q50, q75 = np.percentile(v, [25, 50, 75])
                row |= {"median": q50, "q25": q25, "q75": q75, "iqr": q75 - q25, "mean": float(v.mean())}
            else:
                row |= {k: math.nan for k in ("median", "q25", "q75", "iqr", "mean")}
            auc = math.nan
            if bkg is not None and c != bkg:
                vb = values[labels == bkg]
                vb = vb[np.isfinite(vb)]
                if len(v) and len(vb):
                    auc = _auc(np.r_[np.ones(len(v), bool), np.zeros(len(vb), bool)], np.r_[v, vb])
            row["auc_vs_background"] = auc
            rows.append(row)
    return rows


def feature_histogram_rows(columns: Mapping[str, np.ndarray], classes: Sequence[str],
                           features: Sequence[str], *, bins: int = 40) -> list[dict]:
    """Normalised per-class histograms of each feature on a common axis per feature (the
    0.5–99.5 % quantiles of all jets; values outside are counted in the edge bins)."""
    labels = np.asarray(columns["label"])
    rows = []
    for feature in features:
        values = np.asarray(columns[feature], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if not len(finite):
            continue
        lo, hi = np.percentile(finite, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        for c, name in enumerate(classes):
            v = values[labels == c]
            v = np.clip(v[np.isfinite(v)], lo, hi)
            if not len(v):
                continue
            counts, _ = np.histogram(v, bins=edges)
            density = counts / (counts.sum() * np.diff(edges))
            rows += [{"feature": feature, "class": name, "bin_lo": float(edges[i]),
                      "bin_hi": float(edges[i + 1]), "count": int(counts[i]), "density": float(density[i])}
                     for i in range(bins)]
    return rows

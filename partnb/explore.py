"""An interactive attention explorer for teaching (``notebooks/explore.py``).

Pick a dataset, a jet (by class and index), a particle block, a head and one of four readings
of the attention, and see the jet's η–φ attention graph with its kT subjets beside the n × n
heat map of the same head (docs/analyses.md#eta-phi-attention-graphs,
docs/analyses.md#kt-subjets, docs/analyses.md#attention-heat-maps):

* ``"correct"``: W = softmax(A + U + M), the weights the forward pass uses
  (docs/analyses.md#what-is-captured);
* ``"as coded"``: W′ = softmax(A′ + U + M) of the papers' second attention call on the
  module's own output (docs/analyses.md#the-capture-bug-of-the-papers-scripts), cut to the
  n real particles (the papers' version spans the whole padded P × P map);
* ``"A only"``: softmax over the n real keys of A alone, no U (the sparse-attention paper's
  graphs, :func:`~partnb.analysis.substructure.softmax_over_real_keys`);
* ``"U only"``: softmax over the n real keys of U alone, no A (the pair term's own
  preference; compare docs/analyses.md#setting-a-to-zero).

Every map is an n × n matrix, rows are queries, columns keys, both in pT order. For ParT
(softmax, every committed default) each row sums to 1 over the real keys in all four
variants: padded keys carry −∞ in every variant's logits, the as-coded one included, so
cutting W′ to the real particles loses nothing of its real rows. For a model with another
normaliser (:data:`partnb.model.part.ATTENTION_VARIANTS`) "correct" and "as coded" are that
normaliser's output (the differential forms' P1 − λ·P2 can be negative and its rows sum to
1 − λ), while "A only" and "U only" stay softmaxes of the first map's A and U.

Layers: :class:`Explorer` loads what it needs lazily (per dataset: the trained model and a
small test sample; per jet: one forward pass with an
:class:`~partnb.model.part.AttentionProbe` on every particle block, cached, so moving the
block, head or variant control reruns nothing), :meth:`Explorer.select` returns a
:class:`View`, :func:`render` draws it, and :func:`widgets` wires ipywidgets controls to one
``update()``. The widgets are optional: ``select`` and ``render`` work in any Python.
"""

from __future__ import annotations

import base64
import io
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "CLASS_LABELS",
    "DEFAULT_PARAMS_FILES",
    "GRAPH_CLASS",
    "SUBJETS",
    "VARIANTS",
    "VARIANT_TEXT",
    "Explorer",
    "ExplorerUI",
    "Source",
    "View",
    "load_source",
    "render",
    "show",
    "widgets",
]

_REPO = Path(__file__).resolve().parent.parent
#: The committed default params of the three datasets, loaded when no params are given.
DEFAULT_PARAMS_FILES = tuple(_REPO / "params" / f"{name}.yaml"
                             for name in ("jetclass", "toplandscape", "quarkgluon"))

#: The four readings of one block's attention, in the order the controls offer them.
VARIANTS = ("correct", "as coded", "A only", "U only")
#: One line per variant, for titles and the notebook's narrative.
VARIANT_TEXT = {
    "correct": "W = softmax(A + U + M), the weights the forward pass uses",
    "as coded": "W' = softmax(A' + U + M) of the papers' second call, cut to the n real "
                "particles (the papers' version spans the full padded P x P map)",
    "A only": "softmax over the real keys of A alone, no U (the sparse-attention paper's graphs)",
    "U only": "softmax over the real keys of U alone, no A",
}

#: Readable class names (docs/datasets.md#jetclass; Top Landscape and Quark-Gluon).
CLASS_LABELS = {
    "QCD": "QCD", "Hbb": "H→bb̄", "Hcc": "H→cc̄", "Hgg": "H→gg", "H4q": "H→4q",
    "Hqql": "H→ℓνqq'", "Zqq": "Z→qq̄", "Wqq": "W→qq'", "Tbqq": "t→bqq'", "Tbl": "t→bℓν",
    "top": "top", "quark": "quark", "gluon": "gluon",
}

#: kT exclusive subjets per class: the number of hard visible decay products. t→bℓν 2,
#: t→bqq′ 3, H→4q 4 and Top Landscape's top 3 are the papers' (docs/analyses.md#kt-subjets);
#: the others follow the same rule (H→ℓνqq′: ℓ, q, q′), and QCD, quark and gluon jets get 2,
#: which only splits their radiation.
SUBJETS = {"QCD": 2, "Hbb": 2, "Hcc": 2, "Hgg": 2, "H4q": 4, "Hqql": 3, "Zqq": 2, "Wqq": 2,
           "Tbqq": 3, "Tbl": 2, "top": 3, "quark": 2, "gluon": 2}

#: The class shown first per dataset: the papers' graph jets (docs/analyses.md#eta-phi-attention-graphs).
GRAPH_CLASS = {"jetclass": "Tbl", "toplandscape": "top", "quarkgluon": "quark"}

_LEPTON_CODES = (4, 5)  # electron, muon (partnb.analysis.substructure.PID_CODES)


# --------------------------------------------------------------------------------------
# What is explored: one source per dataset
# --------------------------------------------------------------------------------------


@dataclass
class Source:
    """One dataset as the explorer sees it: a model and a small sample of test jets.

    Attributes:
        name: the name shown in the dataset control (the params' ``name``).
        dataset: the dataset family (``jetclass``, ``toplandscape``, ``quarkgluon``).
        classes: class names in class-index order.
        model: a :class:`~partnb.model.part.ParticleTransformer` in eval mode.
        inputs: the sample's :class:`~partnb.data.features.JetInputs` (zero-padded).
        pid: (jets, P) particle-type codes (:data:`~partnb.analysis.substructure.PID_CODES`),
            or None when the data carry no particle identification.
        pid_note: where the PID comes from, in one sentence.
    """

    name: str
    dataset: str
    classes: tuple[str, ...]
    model: object
    inputs: object
    pid: np.ndarray | None = None
    pid_note: str = ""

    @property
    def blocks(self) -> int:
        """Particle blocks of the model."""
        return len(self.model.blocks)

    @property
    def heads(self) -> int:
        """Heads per block."""
        return int(self.model.config["num_heads"])

    @property
    def attention(self) -> str:
        """The normaliser of the model's particle blocks (``softmax`` for ParT and every
        committed default; see :data:`partnb.model.part.ATTENTION_VARIANTS`)."""
        return str(self.model.config.get("attention", "softmax"))

    @property
    def has_u(self) -> bool:
        """Whether the model has the interaction term U (not ParT-plain)."""
        return getattr(self.model, "pair_embed", None) is not None

    def positions(self, jet_class: str) -> np.ndarray:
        """Positions in the sample of the jets of ``jet_class``, in sample order."""
        return np.flatnonzero(np.asarray(self.inputs.label) == self.classes.index(jet_class))

    def class_counts(self) -> dict[str, int]:
        """Jets per class in the sample (classes without a jet left out)."""
        counts = {c: len(self.positions(c)) for c in self.classes}
        return {c: k for c, k in counts.items() if k}


def _first_jets_per_class(inputs, n_classes: int, n_jets: int) -> np.ndarray:
    """Positions of the first ``n_jets`` jets of every class, in sample order."""
    label = np.asarray(inputs.label)
    keep = [np.flatnonzero(label == c)[:n_jets] for c in range(n_classes)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _unavailable(params) -> str | None:
    """Why the params' trained model or test data cannot be used here, or None."""
    from .data import dataset_files
    from .data.io import DataError
    from .model.factory import checkpoint_path

    path = checkpoint_path(params)
    if not path.exists():
        return f"no checkpoint {path} (train it with `partnb train {params.source}`)"
    try:
        dataset_files(params, generate=False, progress=False)
    except (DataError, OSError) as exc:
        return f"no data: {exc}"
    return None


def load_source(params, *, n_jets: int, progress: bool = False, log=print) -> Source:
    """The trained model of ``params`` and the first ``n_jets`` test jets of each class."""
    from .analysis.substructure import particle_types
    from .data.sample import load_split
    from .data.schema import DATASETS
    from .notebook import trained_model

    t0 = time.perf_counter()
    classes = tuple(DATASETS[params.dataset.name].classes)
    inputs = load_split(params, "test", progress=progress)
    inputs = inputs.take(_first_jets_per_class(inputs, len(classes), n_jets))
    pid, pid_note = particle_types(params, inputs)
    model = trained_model(params, train_if_missing=False)
    log(f"{params.name}: {len(inputs)} test jets ({n_jets} per class at most), "
        f"{len(model.blocks)} blocks x {model.config['num_heads']} heads, loaded in "
        f"{time.perf_counter() - t0:.0f} s; {pid_note}")
    return Source(params.name, params.dataset.name, classes, model, inputs, pid, pid_note)


# --------------------------------------------------------------------------------------
# One selection
# --------------------------------------------------------------------------------------


@dataclass
class View:
    """One jet, block, head and variant: what :func:`render` draws.

    Attributes:
        dataset: the source's name.
        jet_class: the class chosen (its name).
        index: the jet's index among the sample's jets of that class (0-based).
        position: the jet's position in the source's sample.
        block, head: 0-based particle block and head.
        variant: one of :data:`VARIANTS`.
        graph: the jet's particles (Δη, Δφ, ln pT, kT subjet, PID code) as a
            :class:`~partnb.analysis.substructure.GraphJet`; ``graph.weights`` holds the
            block's (H, n, n) maps of every variant.
        weights: (n, n) the chosen head's map, rows = query, columns = key.
        true_class: the jet's label.
        probabilities: class → the model's softmax probability for this jet.
        n_subjets: N of the kT exclusive subjets (0 where n < N and no subjets were found).
        blocks, heads: the model's.
        pid_note: where the particle types come from.
        attention: the model's normaliser (``softmax`` unless the model is one of the
            attention variants of :mod:`partnb.model.part`).
    """

    dataset: str
    jet_class: str
    index: int
    position: int
    block: int
    head: int
    variant: str
    graph: object
    weights: np.ndarray
    true_class: str
    probabilities: dict[str, float]
    n_subjets: int
    blocks: int
    heads: int
    pid_note: str = ""
    attention: str = "softmax"

    @property
    def n(self) -> int:
        """Real particles of the jet."""
        return int(self.weights.shape[0])

    @property
    def predicted_class(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def summary(self) -> dict[str, float]:
        """A few numbers of the chosen map beside uniform attention (every weight 1/n):

        * ``row_max_median``: the median over queries of the row's largest weight
          (uniform: ``1/n``; docs/analyses.md#binary-fractions);
        * ``within_subjet``: the share of the off-diagonal weight that stays inside a
          subjet, and ``within_subjet_uniform`` that of uniform attention (1 − the
          inter-subjet fraction, docs/analyses.md#inter-subjet-attention-fraction); NaN
          without subjets;
        * ``lepton``: the share of the weight on electrons and muons (the lepton attention
          fraction of docs/analyses.md#lepton-attention-fraction) and ``lepton_uniform`` =
          n_leptons / n; NaN without a lepton.
        """
        w, n = self.weights, self.n
        out = {"n": float(n), "row_max_median": float(np.median(w.max(axis=1))),
               "row_max_uniform": 1.0 / n}
        labels = np.asarray(self.graph.subjet)
        off = ~np.eye(n, dtype=bool)
        same = (labels[:, None] == labels[None, :]) & off
        total = float(w[off].sum())
        if self.n_subjets and n > 1 and total > 0:
            out["within_subjet"] = float(w[same].sum()) / total
            out["within_subjet_uniform"] = float(same.sum()) / float(off.sum())
        else:
            out["within_subjet"] = out["within_subjet_uniform"] = float("nan")
        lepton = np.isin(np.asarray(self.graph.pid), _LEPTON_CODES)
        if lepton.any():
            out["lepton"] = float(w[:, lepton].sum()) / n
            out["lepton_uniform"] = float(lepton.sum()) / n
        else:
            out["lepton"] = out["lepton_uniform"] = float("nan")
        return out

    def label(self, jet_class: str | None = None) -> str:
        c = self.jet_class if jet_class is None else jet_class
        return CLASS_LABELS.get(c, c)


class Explorer:
    """The attention of single jets, for any dataset, block, head and variant.

    Args:
        params: what to explore: None (the three committed defaults,
            :data:`DEFAULT_PARAMS_FILES`), one params file or
            :class:`~partnb.params.Params`, or a sequence of them. A dataset whose trained
            checkpoint or test data are missing is skipped with a printed reason
            (:attr:`skipped`); nothing is trained or generated here.
        n_jets: test jets kept per class (the first ones of the test split).
        cache_size: jets whose attention maps are kept (one forward pass each).
        progress: progress bars while reading data.
        log: where the one-line messages go (loading, skipping).

    The model and the sample of a dataset are read on its first use.
    """

    def __init__(self, params=None, *, n_jets: int = 100, cache_size: int = 16,
                 progress: bool = False, log=print) -> None:
        from .params import ParamsError, load_params

        if isinstance(n_jets, bool) or int(n_jets) < 1:
            raise ValueError(f"n_jets = {n_jets!r}: must be a positive number of jets per class")
        self.n_jets = int(n_jets)
        self.progress = progress
        self.log = log
        self._init_cache(cache_size)
        self._params: dict[str, object] = {}
        self.skipped: dict[str, str] = {}
        if params is None:
            params = DEFAULT_PARAMS_FILES
        if isinstance(params, (str, Path)) or not isinstance(params, Sequence):
            params = [params]
        for item in params:
            if isinstance(item, (str, Path)):
                try:
                    item = load_params(item)
                except ParamsError as exc:
                    name = Path(item).stem
                    self.skipped[name] = str(exc)
                    log(f"{name}: skipped: {exc}")
                    continue
            reason = _unavailable(item)
            if reason is not None:
                self.skipped[item.name] = reason
                log(f"{item.name}: skipped: {reason}")
                continue
            self._params[item.name] = item

    def _init_cache(self, cache_size: int) -> None:
        self._sources: dict[str, Source] = {}
        self._maps: OrderedDict[tuple[str, int], dict] = OrderedDict()
        self.cache_size = max(1, int(cache_size))
        #: forward passes run so far (one per jet not in the cache)
        self.forward_calls = 0

    @classmethod
    def from_sources(cls, sources: Sequence[Source] | Mapping[str, Source], *,
                     cache_size: int = 16) -> Explorer:
        """An explorer over sources already in memory (a model and jets of one's own)."""
        self = cls.__new__(cls)
        self.n_jets, self.progress, self.log = 0, False, print
        self._init_cache(cache_size)
        self._params, self.skipped = {}, {}
        items = sources.values() if isinstance(sources, Mapping) else sources
        for source in items:
            self._sources[source.name] = source
        return self

    # ---- what can be chosen ---------------------------------------------------------

    def loaded(self, dataset: str) -> bool:
        """Whether the dataset's model and sample are in memory already."""
        return dataset in self._sources

    @property
    def datasets(self) -> list[str]:
        """Names of the datasets that can be explored (loaded or loadable)."""
        return list(dict.fromkeys([*self._sources, *self._params]))

    def source(self, dataset: str) -> Source:
        """The dataset's model and sample, read on first use."""
        if dataset not in self._sources:
            if dataset not in self._params:
                why = f" (skipped: {self.skipped[dataset]})" if dataset in self.skipped else ""
                raise ValueError(f"dataset = {dataset!r} is not available{why}; choose one of "
                                 f"{', '.join(map(repr, self.datasets)) or 'none'}")
            self._sources[dataset] = load_source(self._params[dataset], n_jets=self.n_jets,
                                                 progress=self.progress, log=self.log)
        return self._sources[dataset]

    def default_selection(self, dataset: str | None = None) -> dict:
        """A first selection to show: the dataset's graph class (t→bℓν, top, quark), its
        first jet with at least N particles (and a lepton for t→bℓν where the PID is known),
        the last block, head 0, the correct weights."""
        if dataset is None:
            if not self.datasets:
                raise ValueError("no dataset is available: " + (
                    "; ".join(f"{k}: {v}" for k, v in self.skipped.items()) or "none was given"))
            dataset = self.datasets[0]
        src = self.source(dataset)
        counts = src.class_counts()
        jet_class = GRAPH_CLASS.get(src.dataset)
        if jet_class not in counts:
            jet_class = next(iter(counts))
        positions = src.positions(jet_class)
        ok = np.asarray(src.inputs.n_particles)[positions] >= SUBJETS.get(jet_class, 2)
        if jet_class == "Tbl" and src.pid is not None:
            ok &= np.isin(src.pid[positions], _LEPTON_CODES).any(axis=1)
        index = int(np.flatnonzero(ok)[0]) if ok.any() else 0
        return {"dataset": dataset, "jet_class": jet_class, "index": index,
                "block": src.blocks - 1, "head": 0, "variant": "correct"}

    # ---- one selection --------------------------------------------------------------

    def select(self, dataset: str, jet_class: str, index: int, block: int, head: int,
               variant: str = "correct", *, n_subjets: int | None = None) -> View:
        """The attention of one jet, block, head and variant.

        Args:
            dataset: a name of :attr:`datasets`.
            jet_class: a class name of the dataset with jets in the sample.
            index: the jet among the sample's jets of that class, 0-based.
            block, head: 0-based particle block and head.
            variant: one of :data:`VARIANTS`.
            n_subjets: override the class's number of kT subjets (:data:`SUBJETS`).

        Raises:
            ValueError: a choice out of range, naming the parameter and the valid range.
        """
        src = self.source(dataset)
        counts = src.class_counts()
        if jet_class not in counts:
            raise ValueError(f"jet_class = {jet_class!r}: {dataset} has jets of "
                             f"{', '.join(map(repr, counts))} in this sample")
        _check_range("index", index, counts[jet_class],
                     f"the sample holds {counts[jet_class]} {CLASS_LABELS.get(jet_class, jet_class)} "
                     f"jets of {dataset}")
        _check_range("block", block, src.blocks, f"the {dataset} model has {src.blocks} particle blocks")
        _check_range("head", head, src.heads, f"the {dataset} model has {src.heads} heads per block")
        if variant not in VARIANTS:
            raise ValueError(f"variant = {variant!r}: choose one of {', '.join(map(repr, VARIANTS))}")
        if variant == "U only" and not src.has_u:
            raise ValueError("variant = 'U only': the model has no interaction term U "
                             "(ParT-plain); choose 'correct', 'as coded' or 'A only'")
        position = int(src.positions(jet_class)[index])
        n_sub = SUBJETS.get(jet_class, 2) if n_subjets is None else int(n_subjets)
        if n_sub < 1:
            raise ValueError(f"n_subjets = {n_subjets!r}: must be at least 1")
        cached = self._jet(dataset, position)
        graph = self._graph(src, position, block, n_sub, cached["maps"][block])
        classes = src.classes
        return View(dataset, jet_class, int(index), position, int(block), int(head), variant, graph,
                    graph.weights[variant][head], classes[int(src.inputs.label[position])],
                    dict(zip(classes, cached["probabilities"].tolist(), strict=True)),
                    n_sub if graph.subjet.max() >= 0 else 0, src.blocks, src.heads, src.pid_note,
                    src.attention)

    def head_table(self, dataset: str, jet_class: str, index: int, block: int,
                   variant: str = "correct") -> list[dict]:
        """:meth:`View.summary` of every head of one block (from the cache: no forward pass
        beyond the jet's first)."""
        heads = self.source(dataset).heads
        return [{"head": h} | self.select(dataset, jet_class, index, block, h, variant).summary()
                for h in range(heads)]

    # ---- the cached forward pass ------------------------------------------------------

    def _jet(self, dataset: str, position: int) -> dict:
        key = (dataset, position)
        if key in self._maps:
            self._maps.move_to_end(key)
            return self._maps[key]
        self._maps[key] = entry = self._forward(self._sources[dataset], position)
        while len(self._maps) > self.cache_size:
            self._maps.popitem(last=False)
        return entry

    def _forward(self, src: Source, position: int) -> dict:
        """One forward pass of one jet with every particle block probed: the four variants'
        (H, n, n) maps per block and the class probabilities."""
        from .analysis.substructure import softmax_over_real_keys
        from .model.part import AttentionProbe

        inputs, model = src.inputs, src.model
        idx = np.array([position])
        n = int(inputs.n_particles[position])
        capture = ("A", "U", "P") if src.has_u else ("A", "P")
        probe = AttentionProbe(capture=capture, as_coded=True, store=True)
        model.eval()
        with torch.no_grad():
            logits = model(torch.as_tensor(inputs.features[idx]), torch.as_tensor(inputs.vectors[idx]),
                           torch.as_tensor(inputs.mask[idx]), probe=probe)
        self.forward_calls += 1
        maps = []
        for block in range(src.blocks):
            rec = probe.records[block]
            m = {"correct": rec["P"][0, :, :n, :n].double().numpy(),
                 "as coded": rec["P_as_coded"][0, :, :n, :n].double().numpy(),
                 "A only": softmax_over_real_keys(rec["A"][0], n).numpy()}
            if "U" in rec:
                m["U only"] = torch.softmax(rec["U"][0, :, :n, :n].double(), dim=-1).numpy()
            maps.append(m)
        probabilities = torch.softmax(logits[0].double(), dim=-1).numpy()
        return {"maps": maps, "probabilities": probabilities}

    def _graph(self, src: Source, position: int, block: int, n_subjets: int, maps: dict):
        from .analysis.substructure import GraphJet, kt_subjets

        inputs = src.inputs
        n = int(inputs.n_particles[position])
        names = list(inputs.feature_names)
        for name in ("part_deta", "part_dphi"):
            if name not in names:
                raise ValueError(f"the feature set {inputs.feature_set!r} has no {name}: "
                                 f"the η–φ graph cannot be drawn")
        deta = inputs.features[position, names.index("part_deta"), :n].astype(np.float64)
        dphi = inputs.features[position, names.index("part_dphi"), :n].astype(np.float64)
        vec = inputs.vectors[position:position + 1]
        pt = np.hypot(vec[0, 0, :n], vec[0, 1, :n]).astype(np.float64)
        subjets = kt_subjets(vec, inputs.n_particles[position:position + 1], n_subjets)
        pid = np.full(n, -1) if src.pid is None else src.pid[position, :n].copy()
        return GraphJet(position, block, deta, dphi, np.log(pt), subjets.labels[0, :n].copy(), pid,
                        dict(maps))


def _check_range(name: str, value, size: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} = {value!r}: must be an integer in 0 … {size - 1} ({what})")
    if not 0 <= int(value) < size:
        raise ValueError(f"{name} = {value}: out of range; {what}, so choose 0 … {size - 1}")


# --------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------


def _title(view: View) -> str:
    probs = sorted(view.probabilities.items(), key=lambda kv: -kv[1])
    pred = ", ".join(f"{CLASS_LABELS.get(c, c)} {p:.2f}" for c, p in probs[:3])
    subjets = f"{view.n_subjets} kT subjets" if view.n_subjets else "no subjets (n < N)"
    s = view.summary()
    numbers = [f"median row max {s['row_max_median']:.2f} (uniform 1/n = {s['row_max_uniform']:.2f})"]
    if np.isfinite(s["within_subjet"]):
        numbers.append(f"within subjets {s['within_subjet']:.2f} (uniform {s['within_subjet_uniform']:.2f})")
    if np.isfinite(s["lepton"]):
        numbers.append(f"on the lepton {s['lepton']:.2f} (uniform {s['lepton_uniform']:.2f})")
    what = f"{view.variant}: {VARIANT_TEXT[view.variant]}"
    if view.attention != "softmax" and view.variant in ("correct", "as coded"):
        what += f" (this model normalises with {view.attention}, not softmax)"
    return "\n".join([
        f"{view.dataset}: {view.label()} jet {view.index} (n = {view.n}, {subjets}) — "
        f"block {view.block} (0…{view.blocks - 1}), head {view.head} (0…{view.heads - 1}), {view.variant}",
        what,
        f"true {view.label(view.true_class)}; model: {pred}",
        "; ".join(numbers),
    ])


def render(view: View, *, min_alpha: float = 0.02, figsize: tuple[float, float] = (13.0, 6.2)):
    """One figure of a :class:`View`: the η–φ attention graph with kT subjets (left,
    :func:`~partnb.plots.graphs.eta_phi_attention_graph`) and the n × n heat map (right; rows =
    query, columns = key, origin lower, viridis; docs/analyses.md#attention-heat-maps), titled
    with the dataset, class, jet, block, head and variant, the variant's definition, the
    model's prediction and :meth:`View.summary`. Returns the (pyplot) figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .plots.graphs import eta_phi_attention_graph

    fig, (ax_graph, ax_map) = plt.subplots(1, 2, figsize=figsize, layout="constrained",
                                           gridspec_kw={"width_ratios": [1.1, 1.0]})
    sm = eta_phi_attention_graph(ax_graph, view.graph, view.weights, min_alpha=min_alpha,
                                 title="η–φ: lines = weights (solid within a subjet, dashed between)")
    cbar = fig.colorbar(sm, ax=ax_graph, fraction=0.046, pad=0.02)
    cbar.set_label("Attention Weight", fontsize=9)
    im = ax_map.imshow(view.weights, origin="lower", cmap="viridis", aspect="equal",
                       interpolation="nearest")
    fig.colorbar(im, ax=ax_map, label="Attention Weight", fraction=0.046, pad=0.02)
    for axis in (ax_map.xaxis, ax_map.yaxis):
        axis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    ax_map.set_xlabel("Particle Index (key)")
    ax_map.set_ylabel("Particle Index (query)")
    stochastic = view.attention in ("softmax", "sparsemax", "entmax15") or view.variant in ("A only", "U only")
    ax_map.set_title("heat map: each row sums to 1 over the real keys" if stochastic else
                     "heat map: rows = queries, columns = keys", fontsize=10)
    fig.suptitle(_title(view), fontsize=10, x=0.02, ha="left")
    return fig


def show(fig) -> None:
    """Display ``fig`` as a cell output in a Jupyter kernel, then close it (so the inline
    backend does not show it a second time, and no figure stays open)."""
    import matplotlib.pyplot as plt

    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with the notebook extra
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(fig)
    plt.close(fig)


def _png(fig, dpi: int) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)  # one draw: the layout is constrained already
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------------
# Widgets
# --------------------------------------------------------------------------------------


class ExplorerUI:
    """ipywidgets controls over an :class:`Explorer` (build with :func:`widgets`).

    Dropdowns ``dataset``, ``jet_class``, ``variant``; IntSliders ``index``, ``block``,
    ``head``; an ``output`` area. Every control calls :meth:`update`, which selects, renders,
    puts the figure into ``output`` as a PNG and closes it: no figure stays open between
    updates (an open pyplot figure made in a widget callback would be shown again, by the
    inline backend, under the next cell the user runs). The class options and the slider
    ranges follow the chosen dataset: the jets of each class in the sample, the model's
    blocks and heads. A choice that cannot be shown (e.g. "U only" for ParT-plain) puts the
    message into ``output`` instead of a figure. A dataset is read on its first choice: the
    output says so meanwhile and then shows the load line under the figure; one that fails to
    load shows why, and the dataset control returns to the previous one.

    Attributes:
        view: the last :class:`View` drawn (None after an error).
        figure: the last figure drawn (closed).
        figures_drawn: how many figures :meth:`update` drew.
    """

    def __init__(self, explorer: Explorer, selection: Mapping | None = None, *, dpi: int = 90,
                 min_alpha: float = 0.02) -> None:
        import ipywidgets as w

        self.explorer = explorer
        self.dpi = dpi
        self.min_alpha = min_alpha
        self.view: View | None = None
        self.figure = None
        self.figures_drawn = 0
        self._quiet = True
        start = dict(selection or explorer.default_selection())
        style = {"description_width": "initial"}
        wide = w.Layout(width="360px")
        self.dataset = w.Dropdown(options=explorer.datasets, value=start["dataset"],
                                  description="dataset", style=style, layout=wide)
        self.jet_class = w.Dropdown(description="class", style=style, layout=wide)
        self.variant = w.Dropdown(options=VARIANTS, value=start.get("variant", "correct"),
                                  description="variant", style=style, layout=wide)
        self.index = w.IntSlider(min=0, description="jet", style=style, layout=wide,
                                 continuous_update=False)
        self.block = w.IntSlider(min=0, description="block", style=style, layout=wide,
                                 continuous_update=False)
        self.head = w.IntSlider(min=0, description="head", style=style, layout=wide,
                                continuous_update=False)
        self.output = w.Output()
        self.box = w.VBox([w.HBox([self.dataset, self.jet_class, self.variant]),
                           w.HBox([self.index, self.block, self.head]), self.output])
        self._follow_dataset(start)
        self.dataset.observe(self._on_dataset, names="value")
        self.jet_class.observe(self._on_class, names="value")
        for control in (self.index, self.block, self.head, self.variant):
            control.observe(self.update, names="value")
        self._quiet = False
        self.update()

    # ---- keeping the controls consistent -------------------------------------------

    def _follow_dataset(self, selection: Mapping | None = None) -> None:
        """Class options and slider ranges of the chosen dataset (no update while set)."""
        quiet, self._quiet = self._quiet, True
        try:
            src = self.explorer.source(self.dataset.value)
            default = selection or self.explorer.default_selection(self.dataset.value)
            counts = src.class_counts()
            self.jet_class.options = [(f"{CLASS_LABELS.get(c, c)} ({k} jets)", c) for c, k in counts.items()]
            self.jet_class.value = default["jet_class"] if default["jet_class"] in counts else next(iter(counts))
            self._follow_class(default.get("index", 0) if self.jet_class.value == default["jet_class"] else 0)
            self.block.max = src.blocks - 1
            self.block.value = min(int(default.get("block", src.blocks - 1)), src.blocks - 1)
            self.head.max = src.heads - 1
            self.head.value = min(int(default.get("head", 0)), src.heads - 1)
        finally:
            self._quiet = quiet

    def _follow_class(self, index: int = 0) -> None:
        count = self.explorer.source(self.dataset.value).class_counts()[self.jet_class.value]
        quiet, self._quiet = self._quiet, True
        try:
            self.index.max = count - 1
            self.index.value = min(int(index), count - 1)
        finally:
            self._quiet = quiet

    def _on_dataset(self, change=None) -> None:
        if self._quiet:
            return
        name = self.dataset.value
        if not self.explorer.loaded(name):
            self._show_text(f"loading {name}: its test jets and its model ...\n", "stdout")
        log, notes = self.explorer.log, []
        self.explorer.log = notes.append  # the load line goes under the figure, not to a log console
        try:
            self._follow_dataset()
        except (ValueError, OSError) as exc:  # data or checkpoint unreadable: back to the previous one
            if change is not None:
                quiet, self._quiet = self._quiet, True
                self.dataset.value = change["old"]
                self._quiet = quiet
            self._show_text(f"{name}: {exc}\n", "stderr")
            return
        finally:
            self.explorer.log = log
        self.update()
        if notes and self.view is not None:
            self.output.outputs += ({"output_type": "stream", "name": "stdout",
                                     "text": "".join(f"{line}\n" for line in notes)},)

    def _on_class(self, _change=None) -> None:
        if self._quiet:
            return
        self._follow_class(0)
        self.update()

    # ---- drawing -----------------------------------------------------------------------

    def _show_text(self, text: str, stream: str) -> None:
        self.output.outputs = ({"output_type": "stream", "name": stream, "text": text},)

    def selection(self) -> dict:
        """The controls' current choice, as :meth:`Explorer.select` arguments."""
        return {"dataset": self.dataset.value, "jet_class": self.jet_class.value,
                "index": int(self.index.value), "block": int(self.block.value),
                "head": int(self.head.value), "variant": self.variant.value}

    def update(self, _change=None) -> View | None:
        """Select, render and show the current choice in ``output`` (replacing what was there)."""
        import matplotlib.pyplot as plt

        if self._quiet:
            return self.view
        try:
            view = self.explorer.select(**self.selection())
        except ValueError as exc:
            self.view = None
            self._show_text(f"{exc}\n", "stderr")
            return None
        if self.figure is not None:
            plt.close(self.figure)
        fig = render(view, min_alpha=self.min_alpha)
        try:
            png = _png(fig, self.dpi)
        finally:
            plt.close(fig)
        self.output.outputs = ({"output_type": "display_data",
                                "data": {"image/png": png, "text/plain": _title(view)},
                                "metadata": {}},)
        self.view, self.figure = view, fig
        self.figures_drawn += 1
        return view

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)


def widgets(explorer: Explorer, selection: Mapping | None = None, **kwargs) -> ExplorerUI:
    """The ipywidgets explorer (display it as a cell's last expression); ``selection``: the
    first choice (default :meth:`Explorer.default_selection`)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError as exc:  # pragma: no cover - ipywidgets is a notebook dependency
        raise ImportError("the explorer's controls need ipywidgets (pip install ipywidgets); "
                          "Explorer.select and render work without it") from exc
    return ExplorerUI(explorer, selection, **kwargs)

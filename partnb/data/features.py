"""Model inputs of the Particle Transformer: particle features, 4-vectors, mask, pair features.

Turns jets (an ``awkward.Array`` of records with JetClass branch names, see
:mod:`partnb.data.schema`) into the dense tensors a ParT takes (docs/model.md#tensor-layout):

* ``features`` (B, C, P): the standardized particle features of a feature set
  (``kin``, ``kinpid``, ``kinpidplus``, ``full``; docs/features.md#feature-sets), standardized as weaver's
  "manual" preprocessing does (docs/features.md#standardisation);
* ``vectors`` (B, 4, P): raw (px, py, pz, E) in GeV;
* ``mask`` (B, 1, P): 1 for real, 0 for padded particles;

and computes the pairwise interaction features [ln kT, ln z, ln Δ, ln m²] from the
4-vectors exactly as weaver's ``pairwise_lv_fts`` (docs/features.md#pair-features, docs/pitfalls.md#pitfall-3-pair-feature-order-and-definitions, docs/pitfalls.md#pitfall-4-padding-must-be-masked-and-excluded, docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise).

Padding is with zeros (as the reference analysis scripts do), not weaver's "wrap"
padding: the ParT output does not depend on the content of padded slots (docs/model.md#invariances), so
both give the same predictions and zeros keep padded slots recognizable.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import awkward as ak
import numpy as np
import numpy.typing as npt
import torch

from partnb.data.schema import (
    IMPACT_PARTICLE_BRANCHES,
    KINEMATIC_PARTICLE_BRANCHES,
    PID_PARTICLE_BRANCHES,
)

__all__ = [
    "DEFAULT_CLIP",
    "FEATURE_SETS",
    "PAIR_EPS",
    "PID_BRANCH",
    "VECTOR_BRANCHES",
    "FeatureError",
    "FeatureSpec",
    "JetInputs",
    "build_inputs",
    "pairwise_features",
    "pairwise_features_lower_triangle",
    "required_branches",
]

#: Floor of every logarithm of the pair features (weaver ``pairwise_lv_fts``, docs/features.md#pair-features).
PAIR_EPS = 1e-8
#: weaver's default clip window of standardized features (docs/features.md#standardisation).
DEFAULT_CLIP = (-5.0, 5.0)
#: Branches that make up ``pf_vectors`` = raw (px, py, pz, E) (docs/features.md#feature-sets).
VECTOR_BRANCHES = KINEMATIC_PARTICLE_BRANCHES[:4]  # part_px, part_py, part_pz, part_energy
#: Integer PDG id of each particle; only the Quark-Gluon ``kinpidplus`` set needs it (docs/features.md#feature-sets).
PID_BRANCH = "part_pid"


class FeatureError(ValueError):
    """The jets lack a branch that the requested feature set needs."""


@dataclass(frozen=True)
class FeatureSpec:
    """One row of a feature-set table (docs/features.md#feature-sets): t(x) = clip((x - center) * scale, lo, hi).

    Attributes:
        name: variable name; a branch of the jets or a derived variable (docs/features.md#derived-particle-variables).
        center: shift; ``None`` means "raw": no shift, no scale and no clip.
        scale: factor applied after the shift.
        lo, hi: clip window; ignored for raw variables.
    """

    name: str
    center: float | None = None
    scale: float = 1.0
    lo: float = DEFAULT_CLIP[0]
    hi: float = DEFAULT_CLIP[1]

    @property
    def is_raw(self) -> bool:
        """True when the variable enters the network untransformed."""
        return self.center is None

    def transform(self, values: np.ndarray, clip: bool = True) -> np.ndarray:
        """Standardize ``values`` as weaver does (docs/features.md#standardisation).

        Args:
            values: the variable's values.
            clip: apply the default ±5 window. A non-default window (d0err, dzerr: [0, 1])
                is applied regardless, as in the reference analysis scripts (docs/features.md#standardisation).

        Returns:
            A new array (or ``values`` itself for a raw variable).
        """
        if self.center is None:
            return values
        out = (values - self.center) * self.scale
        if clip or (self.lo, self.hi) != DEFAULT_CLIP:
            np.clip(out, self.lo, self.hi, out=out)
        return out


# --- derived variables (docs/features.md#derived-particle-variables) -------------------------------------------------------

def _pt(b: Mapping[str, np.ndarray]) -> np.ndarray:
    # two kin features need pT: a _FlatValues batch computes it once
    cache = getattr(b, "derived", None)
    if cache is None:
        return np.hypot(b["part_px"], b["part_py"])
    if "pt" not in cache:
        cache["pt"] = np.hypot(b["part_px"], b["part_py"])
    return cache["pt"]


def _is_charged_hadron_weighted(b: Mapping[str, np.ndarray]) -> np.ndarray:
    apid = np.abs(b[PID_BRANCH])
    return (apid == 211) + 0.5 * (apid == 321) + 0.2 * (apid == 2212)


def _is_neutral_hadron_weighted(b: Mapping[str, np.ndarray]) -> np.ndarray:
    apid = np.abs(b[PID_BRANCH])
    return (apid == 130) + 0.2 * (apid == 2112)


#: derived variable -> (branches it reads, function of those branches' per-particle values)
_DERIVED: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, np.ndarray]], np.ndarray]]] = {
    "part_pt_log": (("part_px", "part_py"), lambda b: np.log(_pt(b))),
    "part_e_log": (("part_energy",), lambda b: np.log(b["part_energy"])),
    "part_logptrel": (
        ("part_px", "part_py", "jet_pt"),
        lambda b: np.log(_pt(b) / b["jet_pt"]),
    ),
    "part_logerel": (
        ("part_energy", "jet_energy"),
        lambda b: np.log(b["part_energy"] / b["jet_energy"]),
    ),
    "part_deltaR": (
        ("part_deta", "part_dphi"),
        lambda b: np.hypot(b["part_deta"], b["part_dphi"]),
    ),
    "part_d0": (("part_d0val",), lambda b: np.tanh(b["part_d0val"])),
    "part_dz": (("part_dzval",), lambda b: np.tanh(b["part_dzval"])),
    "part_isCHad": ((PID_BRANCH,), _is_charged_hadron_weighted),
    "part_isNHad": ((PID_BRANCH,), _is_neutral_hadron_weighted),
}


def _branches_of(variable: str) -> tuple[str, ...]:
    return _DERIVED[variable][0] if variable in _DERIVED else (variable,)


# --- feature sets (the table of docs/features.md#feature-sets) ---------------------------------------------------------

_KIN_STANDARDIZED = (
    FeatureSpec("part_pt_log", 1.7, 0.7),
    FeatureSpec("part_e_log", 2.0, 0.7),
    FeatureSpec("part_logptrel", -4.7, 0.7),
    FeatureSpec("part_logerel", -4.7, 0.7),
    FeatureSpec("part_deltaR", 0.2, 4.0),
)
_ANGLES = tuple(FeatureSpec(name) for name in KINEMATIC_PARTICLE_BRANCHES[4:])  # deta, dphi
# part_charge, part_isChargedHadron, part_isNeutralHadron, part_isPhoton, part_isElectron, part_isMuon
_PID = tuple(FeatureSpec(name) for name in PID_PARTICLE_BRANCHES)
_PID_PLUS = (_PID[0], FeatureSpec("part_isCHad"), FeatureSpec("part_isNHad")) + _PID[3:]
_IMPACT = (
    FeatureSpec("part_d0"),
    FeatureSpec("part_d0err", 0.0, 1.0, 0.0, 1.0),
    FeatureSpec("part_dz"),
    FeatureSpec("part_dzerr", 0.0, 1.0, 0.0, 1.0),
)

#: Feature sets by name, in the channel order of the checkpoints (docs/features.md#feature-sets): ``kin`` (7; also
#: TopLandscape ``top_kin`` and QuarkGluon ``qg_kin``), ``kinpid`` (13; also ``qg_kinpid``),
#: ``kinpidplus`` (13, QuarkGluon ``qg_kinpidplus``: indices 6, 7 are PID-weighted) and ``full`` (17).
FEATURE_SETS: dict[str, tuple[FeatureSpec, ...]] = {
    "kin": _KIN_STANDARDIZED + _ANGLES,
    "kinpid": _KIN_STANDARDIZED + _PID + _ANGLES,
    "kinpidplus": _KIN_STANDARDIZED + _PID_PLUS + _ANGLES,
    "full": _KIN_STANDARDIZED + _PID + _IMPACT + _ANGLES,
}


def _feature_specs(feature_set: str) -> tuple[FeatureSpec, ...]:
    try:
        return FEATURE_SETS[feature_set]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown feature set {feature_set!r}; choose one of {sorted(FEATURE_SETS)}"
        ) from None


def required_branches(feature_set: str) -> tuple[str, ...]:
    """Branches (particle and jet fields) that :func:`build_inputs` reads for a feature set.

    The raw 4-vector branches come first (they are always needed for ``vectors``), then the
    branches of the features in channel order, without repeats (docs/features.md#feature-sets). The ``label``
    field is optional and therefore not listed.

    Args:
        feature_set: a key of :data:`FEATURE_SETS`.

    Returns:
        Branch names, e.g. for ``kin``: the four vector branches, ``jet_pt``, ``jet_energy``,
        ``part_deta``, ``part_dphi``.

    Raises:
        ValueError: unknown feature set.
    """
    names: dict[str, None] = dict.fromkeys(VECTOR_BRANCHES)
    for spec in _feature_specs(feature_set):
        names.update(dict.fromkeys(_branches_of(spec.name)))
    return tuple(names)


def _check_branches(jets: ak.Array, feature_set: str) -> None:
    fields = set(ak.fields(jets))
    missing = [name for name in required_branches(feature_set) if name not in fields]
    if not missing:
        return
    absent = set(missing)
    hints = []
    if absent & set(PID_PARTICLE_BRANCHES):
        hints.append("TopLandscape has no PID branches, use 'kin' there")
    if absent & set(IMPACT_PARTICLE_BRANCHES):
        hints.append("only JetClass has impact parameters (d0, dz)")
    if PID_BRANCH in absent:
        hints.append(f"'kinpidplus' needs the PDG id branch {PID_BRANCH} (QuarkGluon)")
    hint = f" ({'; '.join(hints)})" if hints else ""
    raise FeatureError(
        f"feature set {feature_set!r} needs branch(es) {', '.join(missing)}, which the jets "
        f"lack{hint}; available fields: {', '.join(sorted(fields)) or 'none'}"
    )


# --- dense inputs ------------------------------------------------------------------------


@dataclass
class JetInputs:
    """Dense model inputs of B jets padded/truncated to P particles (docs/model.md#tensor-layout).

    Attributes:
        features: (B, C, P) standardized particle features, zero in padded slots.
        vectors: (B, 4, P) raw (px, py, pz, E) in GeV, zero in padded slots.
        mask: (B, 1, P) 1.0 for real particles, 0.0 for padded slots.
        label: (B,) int64 class index, -1 where the jets carry no ``label``.
        n_particles: (B,) int64 number of real particles kept, min(n, P).
        feature_set: name of the feature set.
        feature_names: the C variable names in channel order.
    """

    features: np.ndarray
    vectors: np.ndarray
    mask: np.ndarray
    label: np.ndarray
    n_particles: np.ndarray
    feature_set: str = ""
    feature_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def take(self, index) -> JetInputs:
        """The jets at ``index`` (integer indices or a boolean mask), in that order: the one
        way every consumer takes a subset."""
        index = np.asarray(index)
        return JetInputs(self.features[index], self.vectors[index], self.mask[index],
                         self.label[index], self.n_particles[index], self.feature_set,
                         self.feature_names)

    @classmethod
    def concat(cls, parts) -> JetInputs:
        """The jets of ``parts`` (JetInputs of one feature set and P) one after the other."""
        parts = list(parts)
        if not parts:
            raise ValueError("JetInputs.concat needs at least one part")
        first = parts[0]
        return cls(np.concatenate([p.features for p in parts]),
                   np.concatenate([p.vectors for p in parts]),
                   np.concatenate([p.mask for p in parts]),
                   np.concatenate([p.label for p in parts]),
                   np.concatenate([p.n_particles for p in parts]),
                   first.feature_set, first.feature_names)

    def to_torch(self, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """The arrays as tensors (sharing memory with the numpy arrays when on CPU).

        Args:
            device: optional target device.

        Returns:
            dict with keys ``features``, ``vectors``, ``mask``, ``label``, ``n_particles``.
        """
        out = {
            "features": torch.from_numpy(self.features),
            "vectors": torch.from_numpy(self.vectors),
            "mask": torch.from_numpy(self.mask),
            "label": torch.from_numpy(self.label),
            "n_particles": torch.from_numpy(self.n_particles),
        }
        if device is not None:
            out = {key: value.to(device) for key, value in out.items()}
        return out


def _to_float64(array: ak.Array) -> np.ndarray:
    values = ak.to_numpy(array, allow_missing=True)
    if isinstance(values, np.ma.MaskedArray):
        values = values.astype(np.float64).filled(np.nan)
    return np.asarray(values, dtype=np.float64)


class _FlatValues(Mapping[str, np.ndarray]):
    """Lazily flattened per-particle values of the kept particles (first P of each jet).

    Jet-level fields are repeated once per kept particle so that every derived variable is a
    plain element-wise numpy expression over the flat list of kept particles.
    """

    def __init__(self, jets: ak.Array, counts: np.ndarray, n_keep: np.ndarray, max_particles: int):
        self._jets = jets
        self._counts = counts
        self._n_keep = n_keep
        self._max_particles = max_particles
        # truncation to the first P particles: a mask over the flat list, made once (slicing
        # each jagged branch as column[:, :P] cost ~10x its flatten)
        self._flat_keep = None
        if counts.size and int(counts.max()) > max_particles:
            starts = np.cumsum(counts) - counts
            position = np.arange(int(counts.sum())) - np.repeat(starts, counts)
            self._flat_keep = position < max_particles
        self._cache: dict[str, np.ndarray] = {}
        #: intermediate values shared by derived variables (e.g. pT), not branches
        self.derived: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            column = self._jets[name]
            if name.startswith("jet_"):
                values = np.repeat(_to_float64(column), self._n_keep)
            else:
                if not np.array_equal(ak.to_numpy(ak.num(column, axis=1)), self._counts):
                    raise ValueError(
                        f"branch {name} has other particle multiplicities than part_px"
                    )
                values = _to_float64(ak.flatten(column, axis=1))
                if self._flat_keep is not None:
                    values = values[self._flat_keep]
            self._cache[name] = values
        return self._cache[name]

    def __iter__(self):
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)


def _evaluate(variable: str, flat: Mapping[str, np.ndarray]) -> np.ndarray:
    if variable in _DERIVED:
        return np.asarray(_DERIVED[variable][1](flat), dtype=np.float64)
    return flat[variable]


def build_inputs(
    jets: ak.Array,
    feature_set: str = "kin",
    max_particles: int = 128,
    clip: bool = True,
    dtype: npt.DTypeLike = np.float32,
) -> JetInputs:
    """Dense ParT inputs of a batch of jets (docs/model.md#tensor-layout, docs/features.md#feature-sets, docs/features.md#standardisation).

    Features are evaluated in float64 on the kept particles only and written into
    zero-initialised arrays, so the whole batch is processed by vectorised awkward/numpy
    operations (no Python loop over jets).

    Padding is with zeros, unlike weaver's ``wrap`` padding which fills padded slots with
    particles of other jets: ParT predictions do not depend on padded content (docs/model.md#invariances),
    and zeros make padded slots easy to spot. Truncation keeps the first ``max_particles``
    particles in stored order (pT-descending in all datasets; docs/features.md#padding).

    NaN values (after standardization, as in weaver) are replaced by 0 in ``features`` and
    ``vectors``, with one :class:`RuntimeWarning` per call naming each affected variable
    and its count (docs/features.md#missing-values-and-labels). Infinities are kept: with ``clip=True`` the standardized
    variables are clipped anyway; with ``clip=False`` a particle with pT = 0 or E = 0 yields
    -inf in the log features, as in the reference scripts.

    Args:
        jets: records with the JetClass branch names (:mod:`partnb.data.schema`); must hold
            :func:`required_branches` of the feature set; ``label`` is read if present.
        feature_set: ``kin``, ``kinpid``, ``kinpidplus`` or ``full`` (docs/features.md#feature-sets).
        max_particles: padded length P (128 for all public models).
        clip: clip standardized features to [-5, 5] as weaver does. ``False`` reproduces the
            reference analysis scripts (TLG ``build_features_and_labels``), which skip that
            clip but still clip d0err and dzerr to [0, 1] (docs/features.md#standardisation).
        dtype: floating dtype of ``features``, ``vectors`` and ``mask``.

    Returns:
        :class:`JetInputs` with ``features`` (B, C, P), ``vectors`` (B, 4, P), ``mask``
        (B, 1, P), ``label`` (B,) and ``n_particles`` (B,).

    Raises:
        FeatureError: the jets lack a required branch (e.g. ``kinpid`` on TopLandscape).
        ValueError: unknown feature set, ``max_particles`` < 1, or particle branches with
            inconsistent multiplicities.
        TypeError: non-floating ``dtype``.
    """
    specs = _feature_specs(feature_set)
    if isinstance(max_particles, bool) or not isinstance(max_particles, int | np.integer):
        raise ValueError(f"max_particles must be a positive integer, got {max_particles!r}")
    if max_particles < 1:
        raise ValueError(f"max_particles must be a positive integer, got {max_particles!r}")
    max_particles = int(max_particles)
    out_dtype = np.dtype(dtype)
    if not np.issubdtype(out_dtype, np.floating):
        raise TypeError(f"dtype must be a floating dtype, got {out_dtype}")
    if not isinstance(jets, ak.Array):
        jets = ak.Array(jets)
    _check_branches(jets, feature_set)

    counts = np.asarray(ak.to_numpy(ak.num(jets["part_px"], axis=1)), dtype=np.int64)
    n_keep = np.minimum(counts, max_particles)
    n_jets = counts.shape[0]
    # the (jet, slot) places of the kept particles; row-major order of True = flat order
    kept = np.arange(max_particles)[None, :] < n_keep[:, None]

    flat = _FlatValues(jets, counts, n_keep, max_particles)
    nan_counts: dict[str, int] = {}

    def fill(names: tuple[str, ...], values_of) -> np.ndarray:
        # each channel is written into its strided (B, P) view of the (B, C, P) buffer by a
        # boolean-mask assignment: about 2x faster than a scatter with flat indices, and
        # faster than filling contiguous (C, B, P) planes and transposing them at the end
        # (the transposing copy alone cost more than all the channels' assignments;
        # benchmarks/generate.json, read part)
        out = np.zeros((n_jets, len(names), max_particles), dtype=out_dtype)
        for channel, name in enumerate(names):
            values = values_of(channel, name)
            nan = np.isnan(values)
            n_nan = int(np.count_nonzero(nan))
            if n_nan:
                nan_counts[name] = nan_counts.get(name, 0) + n_nan
                values = np.where(nan, 0.0, values)
            out[:, channel, :][kept] = values
        return out

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        features = fill(
            tuple(spec.name for spec in specs),
            lambda c, name: specs[c].transform(_evaluate(name, flat), clip=clip),
        )
        vectors = fill(VECTOR_BRANCHES, lambda c, name: flat[name])
    if nan_counts:
        detail = ", ".join(f"{name} ({count})" for name, count in nan_counts.items())
        warnings.warn(
            f"build_inputs({feature_set!r}): replaced NaN by 0 in {detail}",
            RuntimeWarning,
            stacklevel=2,
        )

    mask = kept.astype(out_dtype)[:, None, :]
    if "label" in ak.fields(jets):
        label_values = ak.to_numpy(ak.fill_none(jets["label"], -1))
        label = np.asarray(label_values, dtype=np.int64)
    else:
        label = np.full(n_jets, -1, dtype=np.int64)
    return JetInputs(
        features=features,
        vectors=vectors,
        mask=mask,
        label=label,
        n_particles=n_keep,
        feature_set=feature_set,
        feature_names=tuple(spec.name for spec in specs),
    )


# --- pairwise features (docs/features.md#pair-features) ------------------------------------------------------------


def _as_vectors(vectors: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(vectors, np.ndarray):
        vectors = torch.from_numpy(np.ascontiguousarray(vectors))
    if not isinstance(vectors, torch.Tensor):
        raise TypeError(f"vectors must be a torch.Tensor or numpy array, got {type(vectors)}")
    if not vectors.is_floating_point():
        raise TypeError(f"vectors must have a floating dtype, got {vectors.dtype}")
    if vectors.ndim != 3 or vectors.shape[1] != 4:
        raise ValueError(f"vectors must have shape (B, 4, P), got {tuple(vectors.shape)}")
    return vectors


def _check_pair_args(eps: float, num_features: int) -> None:
    if num_features not in (1, 3, 4):
        raise ValueError(
            f"num_features must be 1, 3 or 4, got {num_features!r} (weaver's 5, 6 and 8 "
            "extra channels are not implemented)"
        )
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")


def _kinematics(v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-particle (px, py, pz, E, pT, y, φ), each (B, P) (weaver ``to_ptrapphim``)."""
    px, py, pz, energy = v.unbind(dim=1)
    pt = torch.sqrt(px.square() + py.square())
    # (E + pz) / (E − pz) > 0 for every physical particle; the outer clamp only keeps an
    # unphysical one (E < |pz|, e.g. a NaN energy replaced by 0 on reading) finite
    rapidity = 0.5 * torch.log((1 + (2 * pz) / (energy - pz).clamp(min=1e-20)).clamp(min=1e-20))
    phi = torch.atan2(py, px)
    return px, py, pz, energy, pt, rapidity, phi


def _pair_values(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...], eps: float,
                 num_features: int) -> list[torch.Tensor]:
    """[ln kT, ln z, ln Δ, ln m²] (or a prefix) for broadcastable particle tuples a, b."""
    px_a, py_a, pz_a, e_a, pt_a, y_a, phi_a = a
    px_b, py_b, pz_b, e_b, pt_b, y_b, phi_b = b
    dphi = torch.remainder(phi_a - phi_b + math.pi, 2 * math.pi) - math.pi
    delta = torch.sqrt((y_a - y_b).square() + dphi.square())
    ln_delta = torch.log(delta.clamp(min=eps))
    if num_features == 1:
        return [ln_delta]
    pt_min = torch.minimum(pt_a, pt_b)
    ln_kt = torch.log((pt_min * delta).clamp(min=eps))
    ln_z = torch.log((pt_min / (pt_a + pt_b).clamp(min=eps)).clamp(min=eps))
    out = [ln_kt, ln_z, ln_delta]
    if num_features == 4:
        m2 = (e_a + e_b).square() - (
            (px_a + px_b).square() + (py_a + py_b).square() + (pz_a + pz_b).square()
        )
        out.append(torch.log(m2.clamp(min=eps)))
    return out


def pairwise_features(
    vectors: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray | None = None,
    eps: float = PAIR_EPS,
    num_features: int = 4,
) -> torch.Tensor:
    """Pairwise interaction features on the full P × P grid (docs/features.md#pair-features, weaver ``pairwise_lv_fts``).

    For particles a (row i) and b (column j): pT = sqrt(px² + py²), rapidity
    y = ½ ln(1 + 2 pz / max(E − pz, 1e-20)) (true rapidity, not η), φ = atan2(py, px),
    Δ = sqrt(Δy² + Δφ²) with Δφ = ((φa − φb + π) mod 2π) − π (floor-mod),
    kT = min(pTa, pTb) Δ, z = min(pTa, pTb) / max(pTa + pTb, eps), m² = (Ea + Eb)² − |pa + pb|².
    Channels in the checkpoints' order (docs/pitfalls.md#pitfall-3-pair-feature-order-and-definitions): [ln max(kT, eps), ln max(z, eps),
    ln max(Δ, eps), ln max(m², eps)]. The self pair gives ln Δ = ln kT = ln eps and
    ln z = ln ½; its ln m² is rounding noise for (near-)massless particles (docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise):
    the computation runs in the dtype of ``vectors``, so pass float64 to study that.

    Args:
        vectors: (B, 4, P) raw (px, py, pz, E) in GeV, torch tensor or numpy array.
        mask: optional (B, 1, P) or (B, P), nonzero for real particles. Pairs involving a
            padded particle are set to 0. With ``None`` (default) they are computed from the
            padded (zero) vectors, as weaver does (finite values, masked later in the model).
        eps: floor of the logarithms (weaver: 1e-8).
        num_features: 1 → [ln Δ]; 3 → [ln kT, ln z, ln Δ]; 4 → all four (the ParT default).

    Returns:
        (B, num_features, P, P) tensor, entry [..., i, j] for the pair (particle i, particle j),
        in the dtype and on the device of ``vectors``.

    Raises:
        ValueError: bad shape, ``num_features`` not in {1, 3, 4}, or eps ≤ 0.
        TypeError: non-floating input.
    """
    v = _as_vectors(vectors)
    _check_pair_args(eps, num_features)
    kin = _kinematics(v)
    a = tuple(x.unsqueeze(2) for x in kin)  # (B, P, 1): particle i
    b = tuple(x.unsqueeze(1) for x in kin)  # (B, 1, P): particle j
    out = torch.stack(_pair_values(a, b, eps, num_features), dim=1)
    if mask is not None:
        real = _as_mask(mask, v)
        pair_real = real.unsqueeze(2) & real.unsqueeze(1)
        out = out.masked_fill(~pair_real.unsqueeze(1), 0.0)
    return out


def _as_mask(mask: torch.Tensor | np.ndarray, v: torch.Tensor) -> torch.Tensor:
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    mask = mask.to(v.device)
    if mask.ndim == 3 and mask.shape[1] == 1:
        mask = mask[:, 0, :]
    if mask.shape != (v.shape[0], v.shape[2]):
        raise ValueError(
            f"mask must have shape (B, 1, P) or (B, P) = {(v.shape[0], v.shape[2])}, "
            f"got {tuple(mask.shape)}"
        )
    return mask != 0


def pairwise_features_lower_triangle(
    vectors: torch.Tensor | np.ndarray,
    eps: float = PAIR_EPS,
    num_features: int = 4,
) -> torch.Tensor:
    """Pairwise features for the pairs i ≥ j only, as weaver embeds them (docs/features.md#pair-features, docs/model.md#pair-embedding-u).

    weaver's ``PairEmbed`` computes the features of (particle i, particle j) for the index
    pairs of ``torch.tril_indices(P, P)`` (diagonal included), embeds them and mirrors the
    result to (j, i). The values equal those of :func:`pairwise_features` at those indices.

    Args:
        vectors: (B, 4, P) raw (px, py, pz, E) in GeV, torch tensor or numpy array.
        eps: floor of the logarithms (weaver: 1e-8).
        num_features: 1, 3 or 4, as in :func:`pairwise_features`.

    Returns:
        (B, num_features, P (P + 1) / 2) tensor in ``torch.tril_indices(P, P)`` order.

    Raises:
        ValueError: bad shape, ``num_features`` not in {1, 3, 4}, or eps ≤ 0.
        TypeError: non-floating input.
    """
    v = _as_vectors(vectors)
    _check_pair_args(eps, num_features)
    n = v.shape[2]
    i, j = torch.tril_indices(n, n, device=v.device)
    kin = _kinematics(v)
    a = tuple(x[:, i] for x in kin)
    b = tuple(x[:, j] for x in kin)
    return torch.stack(_pair_values(a, b, eps, num_features), dim=1)

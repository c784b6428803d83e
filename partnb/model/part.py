"""Particle Transformer (ParT) with the semantics of the official checkpoints (docs/model.md#the-model).

One implementation of weaver-core 0.4.x's ``ParticleTransformer`` ("W04"), written from the
definitions in docs/model.md#the-model, whose ``state_dict()`` keys equal weaver's keys without the ``mod.`` prefix of the
training wrapper, so the JetClass checkpoints load strictly (see
:mod:`partnb.model.checkpoint`). Token tensors are batch-first, (B, P, C), internally.

Besides the plain forward pass the model offers

* a fused path (``torch.nn.functional.scaled_dot_product_attention``, U and the padding
  mask folded into a float ``attn_mask``) used when nothing needs the attention logits;
* an explicit path, numerically equal to the fused one, that :class:`AttentionProbe`
  taps: per particle block it records A = q·k/√d, U, the logits and the post-softmax
  weights of the attention the forward pass really computes (docs/analyses.md#what-is-captured), optionally also the
  reference scripts' buggy second-call A'/W' (``as_coded=True``);
* :class:`Intervention`\\ s: U := 0, U := αU, A := 0 and top-k attention (docs/analyses.md#zero-u-ablation, docs/analyses.md#setting-a-to-zero, docs/analyses.md#top-k-attention),
  per call or via the :meth:`ParticleTransformer.intervene` context manager; top-k either
  masks the P × P logits or (``topk_gather``) gathers the k kept keys of each query
  (docs/analyses.md#top-k-as-a-speed-up);
* :func:`zero_pair_embed_params`, the paper's literal zero-U ablation (docs/analyses.md#zero-u-ablation);
* attention variants of the particle blocks (``attention=``, docs/model.md#attention-variants):
  the softmax of ParT (the default, weaver's function), sparsemax, 1.5-entmax, and two
  differential forms, all with the same probes and interventions;
* :class:`AttentionPenalty`, a sparsity penalty on the attention weights *with* gradient,
  for training.

Deviation from weaver: an empty ``pair_embed_dims`` means "no pair embedding" (ParT-plain)
like ``None``; weaver would build a one-layer pair embedding for ``[]``.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from partnb.data.features import PAIR_EPS, pairwise_features_lower_triangle
from partnb.model.sparse import entmax15, sparsemax

__all__ = [
    "ATTENTION_VARIANTS",
    "GELU_MIN",
    "PENALTY_KINDS",
    "AttentionPenalty",
    "AttentionProbe",
    "Block",
    "Embed",
    "Intervention",
    "MultiHeadAttention",
    "PairEmbed",
    "ParticleTransformer",
    "SequenceTrimmer",
    "attention_of_state",
    "cls_layer_key",
    "gather_keys",
    "gathered_attention",
    "lambda_init",
    "zero_pair_embed_params",
]

#: Minimum of the exact (erf) GELU, reached at x ≈ -0.7518: the lower bound of U (docs/model.md#pair-embedding-u).
GELU_MIN = -0.1699712
_CAPTURABLE = ("A", "U", "L", "P")
#: Attention of the particle blocks (docs/model.md#attention-variants); "softmax" is ParT's.
ATTENTION_VARIANTS = ("softmax", "sparsemax", "entmax15", "differential", "differential_u")
#: The variants whose weights are a difference of two softmax maps.
DIFFERENTIAL = ("differential", "differential_u")
#: Kinds of :class:`AttentionPenalty` (docs/model.md#attention-sparsity-penalty).
PENALTY_KINDS = ("entropy", "l1")
#: State-dict key of a non-softmax model: the variant's name as ASCII bytes (uint8). Softmax
#: models have no such key, so their state dicts stay weaver's.
VARIANT_KEY = "attention_variant"
#: Extra record entries of the differential variants, recorded with their base capture.
_DIFFERENTIAL_EXTRAS = {"A": ("A2",), "U": ("U2",), "L": ("L2",), "P": ("P1", "P2", "lambda")}


def cls_layer_key(index: int) -> str:
    """Record key of class-attention block ``index`` (particle blocks use their int index)."""
    return f"cls{index}"


def lambda_init(num_layers: int) -> float:
    """λ_init = 1 − exp(−1/L) of the differential variants, L = number of particle blocks
    (IAFormer's rule, arXiv:2505.03258; the same for every block, docs/model.md#differential-attention)."""
    return 1.0 - math.exp(-1.0 / num_layers)


def _variant_marker(attention: str) -> Tensor:
    return torch.tensor(list(attention.encode("ascii")), dtype=torch.uint8)


def attention_of_state(state_dict) -> str:
    """The attention variant a (normalised, unprefixed) state dict was saved with: the name in
    its ``attention_variant`` entry, "softmax" without one (every weaver file and every
    checkpoint saved before the variants existed)."""
    marker = state_dict.get(VARIANT_KEY)
    if marker is None:
        return "softmax"
    return bytes(int(b) for b in marker.reshape(-1).tolist()).decode("ascii", errors="replace")


# --- probes and interventions --------------------------------------------------------------


class AttentionProbe:
    """Records the attention of chosen blocks during one forward call (docs/analyses.md#what-is-captured).

    Recorded per block (detached, on the model's device, P = the trimmed length):

    * ``"A"``: q·k/√d, (B, H, P, P) (after ``zero_a`` if that intervention is active);
    * ``"U"``: the interaction term this block used, (B, H, P, P) (the same tensor object
      for all blocks of a call); absent for class blocks and ParT-plain;
    * ``"L"``: the logits entering the softmax, A + U with −∞ on padded keys (and on keys
      removed by top-k);
    * ``"P"``: the post-softmax weights (before attention dropout);
    * always ``"padding_mask"`` (B, P_keys), True = padded key, and ``"n"`` (B,) real
      particles per jet;
    * with ``as_coded=True`` (particle blocks only): ``"A_as_coded"``, ``"P_as_coded"``,
      the quantities the reference scripts record by calling the attention a second time on
      its own output (docs/analyses.md#the-capture-bug-of-the-papers-scripts): A' = (oW_q + b_q)(oW_k + b_k)ᵀ/√d, W' = softmax(A' + U + M).

    Attention variants (docs/model.md#probes-of-the-variants): ``"P"`` is always the weights
    the forward pass uses (for sparsemax / 1.5-entmax their output, with exact zeros; for the
    differential variants the difference P1 − λ·P2, which can be negative) and ``"A"``,
    ``"U"``, ``"L"`` belong to the first map. The differential variants add ``"A2"``,
    ``"U2"``, ``"L2"`` (with ``"A"``, ``"U"``, ``"L"``) and ``"P1"``, ``"P2"``, ``"lambda"``
    (with ``"P"``; λ is a 0-d tensor). ``differential_u`` has no query–key term: its ``"A"``
    and ``"A2"`` are zeros, as under ``zero_a``. The as-coded entries use the variant's own
    normaliser (the differential form as a whole).

    Particle blocks are keyed 0 … L−1, class blocks ``"cls0"``, ``"cls1"`` (their A, L, P
    have shape (B, H, 1, 1 + P); key 0 is the class token, never padded).

    Records hold only the latest forward call (they are reset at its start). With
    ``on_layer`` each block's dict is passed to ``on_layer(key, record)`` as soon as it is
    computed (the as-coded entries in a second call for the same key), and records are kept
    only if ``store=True``, so analyses can stream.

    Args:
        layers: particle-block indices to record (None = all).
        capture: subset of ``("A", "U", "L", "P")``.
        include_cls: also record the class-attention blocks.
        as_coded: additionally record the buggy second-call A'/W' of the reference scripts.
        on_layer: optional callback ``(key, record) -> None``.
        store: keep records in :attr:`records`; default True without ``on_layer``.
    """

    def __init__(
        self,
        layers: Sequence[int] | None = None,
        capture: Sequence[str] = ("A", "U", "P"),
        include_cls: bool = False,
        as_coded: bool = False,
        on_layer: Callable[[int | str, dict[str, Tensor]], None] | None = None,
        store: bool | None = None,
    ) -> None:
        unknown = sorted(set(capture) - set(_CAPTURABLE))
        if unknown:
            raise ValueError(f"cannot capture {unknown}; choose from {list(_CAPTURABLE)}")
        self.layers = None if layers is None else frozenset(int(i) for i in layers)
        self.capture = tuple(capture)
        self.include_cls = include_cls
        self.as_coded = as_coded
        self.on_layer = on_layer
        self.store = on_layer is None if store is None else store
        self.records: dict[int | str, dict[str, Tensor]] = {}

    def wants(self, key: int | str) -> bool:
        """Whether block ``key`` is recorded."""
        if isinstance(key, str):
            return self.include_cls
        return self.layers is None or key in self.layers

    def reset(self) -> None:
        """Drop all records (done at the start of every forward call)."""
        self.records = {}

    def emit(self, key: int | str, record: dict[str, Tensor]) -> None:
        """Hand one block's record to the callback and/or store it."""
        record = {name: value.detach() for name, value in record.items()}
        if self.on_layer is not None:
            self.on_layer(key, record)
        if self.store:
            self.records.setdefault(key, {}).update(record)


class AttentionPenalty:
    """A sparsity penalty on the particle blocks' attention weights, *with* gradient, collected
    during one forward call (docs/model.md#attention-sparsity-penalty).

    Per particle block, head and real query row i with n real keys, on the weights P_i· the
    forward pass uses (for the differential variants: the first map P1, a distribution):

    * ``"entropy"``: −Σ_j P_ij ln P_ij / ln n;
    * ``"l1"``: (Σ_j √P_ij − 1) / (√n − 1), the L1 norm of √P rescaled (Σ_j P_ij itself is 1
      on the simplex); Σ_j √P_ij = exp(H_½ / 2) with H_½ the Rényi entropy of order ½.

    Both are 0 for a one-hot row and 1 for uniform attention over the n real keys, and 0
    for n = 1. :meth:`value` is their mean over blocks, heads and real query rows. Pass the
    collector as ``model(..., penalty=collector)``: the particle blocks then run the
    explicit attention path (the fused one cannot return weights).

    Args:
        kind: ``"entropy"`` or ``"l1"``.
    """

    #: weights below this count as 0 in the penalty's logarithm / square root, so that its
    #: gradient stays finite where the sparse normalisers give exact zeros
    TINY = 1e-12

    def __init__(self, kind: str) -> None:
        if kind not in PENALTY_KINDS:
            raise ValueError(f"unknown attention penalty {kind!r}; choose from {list(PENALTY_KINDS)}")
        self.kind = kind
        self.reset()

    def reset(self) -> None:
        """Forget the previous call (done at the start of every forward call)."""
        self._total: Tensor | None = None
        self._rows = 0

    def add(self, weights: Tensor, padding: Tensor) -> None:
        """Add one block: ``weights`` (B, H, P, P), ``padding`` (B, P) True = padded key."""
        real = ~padding
        n = real.sum(dim=-1).to(weights.dtype)[:, None, None]  # (B, 1, 1)
        positive = weights > self.TINY
        safe = weights.clamp(min=self.TINY)
        if self.kind == "entropy":
            row = -torch.where(positive, weights * safe.log(), 0.0).sum(dim=-1)
            scale = torch.where(n > 1, n.log(), 1.0)
        else:
            row = torch.where(positive, safe.sqrt(), 0.0).sum(dim=-1) - 1.0
            scale = torch.where(n > 1, n.sqrt() - 1.0, 1.0)
        rows = real[:, None, :].expand(row.shape)
        total = torch.where(rows, row / scale, 0.0).sum()
        self._total = total if self._total is None else self._total + total
        self._rows += int(rows.sum())

    def value(self) -> Tensor:
        """Mean penalty over blocks, heads and real query rows of the last call (0-d tensor,
        differentiable; 0 when nothing was added)."""
        if self._total is None or not self._rows:
            return torch.zeros(())
        return self._total / self._rows


@dataclass(frozen=True)
class Intervention:
    """Inference-time modifications of the attention logits L = A + U + M.

    Attributes:
        zero_u: U := 0 (padding mask kept); the cheap, identical form of the zero-U ablation
            (docs/analyses.md#zero-u-ablation; compare :func:`zero_pair_embed_params`).
            Differential variants: U1 and U2.
        scale_u: U := scale_u · U (differential variants: U1 and U2).
        zero_a: A := 0, U kept (a control the papers lack; differential: A1 and A2).
        topk: keep per particle block, head and query row the k largest logits over real
            keys, the others −∞ (docs/analyses.md#top-k-attention); k = 1 is hard (one-hot) attention, k ≥ n leaves the
            row unchanged. Ties are broken by ``torch.topk``. Applied before the variant's
            normaliser; for the differential variants to each of the two maps.
        topk_cls: also restrict the class-attention blocks (over their 1 + n real keys).
        layers: particle blocks the intervention acts on (None = all). Class blocks are only
            touched by ``topk_cls``.
        topk_gather: compute top-k attention by gathering instead of masking
            (docs/analyses.md#top-k-as-a-speed-up): from the logits L = A + U + M take the
            ``torch.topk`` values and indices (B, H, P, k), normalise the k values, gather the
            k value vectors of each query (B, H, P, k, d) and sum them, with no P × P
            normalisation and no P × P product with V. The indices are those of the masked
            form (the same call on the same logits, so ties are broken alike); a padded key
            that ``torch.topk`` picks in a row with fewer than k real keys carries −∞ and gets
            weight 0. Outputs equal the masked form's to float rounding. The masked form runs
            instead where the P × P weights are needed or random: a probe recording the block,
            an :class:`AttentionPenalty`, attention dropout in training; and for k ≥ P.
    """

    zero_u: bool = False
    scale_u: float | None = None
    zero_a: bool = False
    topk: int | None = None
    topk_cls: bool = False
    layers: tuple[int, ...] | None = None
    topk_gather: bool = False

    def __post_init__(self) -> None:
        if self.zero_u and self.scale_u is not None:
            raise ValueError("give either zero_u or scale_u, not both")
        if self.topk is not None and (isinstance(self.topk, bool) or int(self.topk) < 1):
            raise ValueError(f"topk must be a positive integer, got {self.topk!r}")
        if self.topk_cls and self.topk is None:
            raise ValueError("topk_cls needs topk")
        if self.topk_gather and self.topk is None:
            raise ValueError("topk_gather needs topk")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))

    @property
    def touches_u(self) -> bool:
        """Whether the intervention changes U."""
        return self.zero_u or self.scale_u is not None

    def acts_on(self, layer: int) -> bool:
        """Whether the intervention acts on particle block ``layer``."""
        return self.layers is None or layer in self.layers

    def u_factor(self, layer: int) -> float:
        """Factor applied to U in particle block ``layer``."""
        if not self.acts_on(layer):
            return 1.0
        if self.zero_u:
            return 0.0
        return 1.0 if self.scale_u is None else float(self.scale_u)


@dataclass
class _LayerAttention:
    """Everything one block's attention needs besides q, k, v (built per block and call)."""

    key: int | str
    u: Tensor | None  # (B, H, Pq, Pk) as used in this block (U1 of the differential forms), or None
    padding: Tensor  # (B, Pk) True = padded key
    zero_a: bool = False
    topk: int | None = None
    probe: AttentionProbe | None = None
    fused_bias: Tensor | None = None  # cached U + M for the fused path
    dtype: torch.dtype = torch.float32
    attention: str = "softmax"  # the variant of this block (class blocks: always softmax)
    u2: Tensor | None = None  # U2 of the differential variants
    penalty: AttentionPenalty | None = None
    lam: Tensor | None = None  # λ of the differential variants, kept for the as-coded capture
    topk_gather: bool = False  # top-k by gathering the k keys (Intervention.topk_gather)

    @property
    def recording(self) -> bool:
        return self.probe is not None and self.probe.wants(self.key)

    @property
    def explicit(self) -> bool:
        return (self.recording or self.zero_a or self.topk is not None
                or self.attention != "softmax" or self.penalty is not None)

    def bias(self) -> Tensor:
        """Additive float mask U + M, (B, H or 1, Pq or 1, Pk), −∞ on padded keys."""
        if self.fused_bias is None:
            pad = self.padding[:, None, None, :]
            if self.u is None:
                base = torch.zeros(pad.shape, dtype=self.dtype, device=pad.device)
            else:
                base = self.u
            self.fused_bias = base.masked_fill(pad, float("-inf"))
        return self.fused_bias

    def gathers(self, dropout: float) -> bool:
        """Whether top-k runs by gathering (``topk_gather``): not where the P × P weights are
        recorded, penalised or dropped out, nor for k ≥ P (nothing to remove)."""
        return (self.topk_gather and self.topk is not None and self.topk < self.padding.shape[-1]
                and not self.recording and self.penalty is None and dropout == 0)

    def attend(self, q: Tensor | None, k: Tensor | None, v: Tensor, dropout: float,
               second: tuple[Tensor, Tensor] | None = None, lam: Tensor | None = None) -> Tensor:
        """Attention output (B, H, Pq, d) from per-head q, k, v (B, H, P, d); the
        differential variants also take the second map's (q2, k2) and λ (``differential_u``:
        no q, k at all)."""
        if not self.explicit:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias(), dropout_p=dropout)
        if self.gathers(dropout):
            return self._attend_gathered(q, k, v, second, lam)
        self.lam = lam
        values = self._maps(q, k, second, lam, interventions=True)
        weights = values["P"]
        if self.penalty is not None:
            self.penalty.add(values.get("P1", weights), self.padding)
        if self.recording:
            self._record(values)
        return F.dropout(weights, dropout, training=dropout > 0) @ v

    def _scores(self, q: Tensor | None, k: Tensor | None, zero: bool) -> Tensor | None:
        """A = q·k/√d (zeros with ``zero``); None without a query–key term."""
        if q is None:
            return None
        a = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
        return torch.zeros_like(a) if zero else a

    def _logits(self, a: Tensor | None, u: Tensor | None, topk: int | None) -> Tensor:
        """A + U + M (−∞ on padded keys), then top-k."""
        minus_inf = padding_bias(self.padding, self.dtype if a is None else a.dtype)
        if a is None:
            logits = u + minus_inf
        else:
            logits = a + minus_inf if u is None else (a + u).add_(minus_inf)
        if topk is not None and topk < logits.shape[-1]:
            logits = _keep_topk(logits, topk)
        return logits

    def _maps(self, q: Tensor | None, k: Tensor | None, second: tuple[Tensor, Tensor] | None,
              lam: Tensor | None, *, interventions: bool) -> dict[str, Tensor | None]:
        """The block's attention quantities by record name ("A", "U", "L", "P", and for the
        differential variants "A2", "U2", "L2", "P1", "P2", "lambda"). Without
        ``interventions`` (the as-coded capture) zero_a and top-k are not applied."""
        zero_a = self.zero_a and interventions
        topk = self.topk if interventions else None
        a = self._scores(q, k, zero_a)
        logits = self._logits(a, self.u, topk)
        if self.attention == "sparsemax":
            weights = sparsemax(logits)
        elif self.attention == "entmax15":
            weights = entmax15(logits)
        else:
            weights = torch.softmax(logits, dim=-1)
        values = {"A": a, "U": self.u, "L": logits, "P": weights}
        if self.attention in DIFFERENTIAL:
            a2 = self._scores(*second, zero_a) if second is not None else None
            logits2 = self._logits(a2, self.u2, topk)
            second_map = torch.softmax(logits2, dim=-1)
            values.update(P=weights - lam * second_map, P1=weights, P2=second_map, A2=a2,
                          U2=self.u2, L2=logits2)
            values["lambda"] = lam
            if a is None:  # differential_u: no query–key term, recorded as zeros
                values["A"], values["A2"] = torch.zeros_like(logits), torch.zeros_like(logits2)
        return values

    def _attend_gathered(self, q: Tensor | None, k: Tensor | None, v: Tensor,
                         second: tuple[Tensor, Tensor] | None, lam: Tensor | None) -> Tensor:
        """Top-k attention output from the k gathered keys of each query (``topk_gather``);
        the differential variants as P1·V − λ·P2·V, each map with its own top k."""
        a = self._scores(q, k, self.zero_a)
        normalise = {"sparsemax": sparsemax, "entmax15": entmax15}.get(self.attention, _softmax)
        out = gathered_attention(self._logits(a, self.u, None), v, self.topk, normalise)
        if self.attention in DIFFERENTIAL:
            a2 = self._scores(*second, self.zero_a) if second is not None else None
            out = out - lam * gathered_attention(self._logits(a2, self.u2, None), v, self.topk)
        return out

    def _record(self, values: dict[str, Tensor | None]) -> None:
        probe = self.probe
        assert probe is not None
        names = list(probe.capture)
        if self.attention in DIFFERENTIAL:
            names += [extra for name in probe.capture for extra in _DIFFERENTIAL_EXTRAS[name]]
        record = {name: values[name] for name in names if values.get(name) is not None}
        record["padding_mask"] = self.padding
        record["n"] = (~self.padding).sum(dim=-1)
        probe.emit(self.key, record)

    def after_output(self, out: Tensor, attn: MultiHeadAttention) -> None:
        """As-coded capture (docs/analyses.md#the-capture-bug-of-the-papers-scripts): attention recomputed from the module's own output
        through the block's own normaliser (the whole differential form for those variants)."""
        if not (self.recording and self.probe.as_coded and isinstance(self.key, int)):
            return
        with torch.no_grad():
            q, k, second = attn.query_keys(out, out)
            values = self._maps(q, k, second, self.lam, interventions=False)
            self.probe.emit(self.key, {"A_as_coded": values["A"], "P_as_coded": values["P"]})


def padding_bias(padding: Tensor, dtype: torch.dtype) -> Tensor:
    """(B, 1, 1, P) additive key mask: 0 on real keys, −∞ on padded ones (``padding`` (B, P),
    True = padded). ``x + padding_bias(...)`` equals ``x.masked_fill(padded keys, −∞)`` for
    finite x, at a tenth of the cost on CPU (no broadcast boolean mask to expand)."""
    bias = torch.zeros(padding.shape[0], 1, 1, padding.shape[1], dtype=dtype, device=padding.device)
    return bias.masked_fill_(padding[:, None, None, :], float("-inf"))


def _keep_topk(logits: Tensor, k: int) -> Tensor:
    """Set all but the k largest logits of every row to −∞ (−∞ entries stay −∞)."""
    index = logits.topk(k, dim=-1).indices
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, index, True)
    return logits.masked_fill(~keep, float("-inf"))


def _softmax(logits: Tensor) -> Tensor:
    return torch.softmax(logits, dim=-1)


def gather_keys(values: Tensor, index: Tensor) -> Tensor:
    """values (B, H, Pk, d) and key indices (B, H, Pq, k) → the chosen value vectors
    (B, H, Pq, k, d) (one ``index_select`` on the flattened values)."""
    b, h, pk, d = values.shape
    offset = torch.arange(b * h, device=values.device).view(b, h, 1, 1) * pk
    flat = values.reshape(b * h * pk, d).index_select(0, (index + offset).reshape(-1))
    return flat.view(*index.shape, d)


def gathered_attention(logits: Tensor, values: Tensor, k: int,
                       normalise: Callable[[Tensor], Tensor] = _softmax) -> Tensor:
    """Top-k attention by gathering (docs/analyses.md#top-k-as-a-speed-up): Σ over the k
    largest logits of each row (``torch.topk``, as :func:`_keep_topk`) of the normalised
    logit times the key's value vector, (B, H, Pq, d), from logits (B, H, Pq, Pk) (−∞ on
    padded keys, which get weight 0) and values (B, H, Pk, d). Needs k ≤ Pk."""
    top, index = logits.topk(k, dim=-1)
    weights = normalise(top)
    return (weights.unsqueeze(-2) @ gather_keys(values, index)).squeeze(-2)


# --- building blocks ---------------------------------------------------------------------------


class SequenceTrimmer(nn.Module):
    """weaver's ``SequenceTrimmer`` (docs/model.md#sequence-trimmer), including the 5-call no-op quirk.

    The first ``warmup_calls`` forward calls of an enabled trimmer change nothing. Afterwards
    eval mode cuts all tensors to the largest number of real particles in the batch
    (lossless); training mode draws q ~ U(0.9, 1.02) capped at 1, cuts to the q-quantile of
    the particle counts and randomly permutes each jet's real particles first (so particles
    beyond the cut are dropped at random). Uses torch's global RNG.

    Args:
        enabled: trim at all (the model's ``trim`` argument).
        target: range of q in training.
        warmup_calls: number of initial no-op calls (5 in weaver).
    """

    def __init__(self, enabled: bool = True, target: tuple[float, float] = (0.9, 1.02),
                 warmup_calls: int = 5) -> None:
        super().__init__()
        self.enabled = enabled
        self.target = target
        self.warmup_calls = warmup_calls
        self.calls = 0

    def reset(self) -> None:
        """Restart the no-op counter, as for a freshly built weaver model."""
        self.calls = 0

    def forward(self, features: Tensor, vectors: Tensor | None,
                mask: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """Trimmed ``features`` (B, C, P'), ``vectors`` (B, 4, P'), bool ``mask`` (B, 1, P')."""
        if not self.enabled:
            return features, vectors, mask
        if self.calls < self.warmup_calls:
            self.calls += 1
            return features, vectors, mask
        if self.training:
            features, vectors, mask, maxlen = self._shuffle(features, vectors, mask)
        else:
            maxlen = int(mask.sum(dim=-1).max())
        maxlen = max(maxlen, 1)
        if maxlen < mask.shape[-1]:
            features, mask = features[..., :maxlen], mask[..., :maxlen]
            vectors = None if vectors is None else vectors[..., :maxlen]
        return features, vectors, mask

    def _shuffle(self, features: Tensor, vectors: Tensor | None,
                 mask: Tensor) -> tuple[Tensor, Tensor | None, Tensor, int]:
        low, high = self.target
        q = min(1.0, float(torch.empty(()).uniform_(low, high)))
        counts = mask.to(features.dtype).sum(dim=-1)
        maxlen = int(torch.quantile(counts, q).long())
        rand = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)
        perm = rand.argsort(dim=-1, descending=True)
        features = features.gather(-1, perm.expand_as(features))
        if vectors is not None:
            vectors = vectors.gather(-1, perm.expand_as(vectors))
        return features, vectors, mask.gather(-1, perm), maxlen


class Embed(nn.Module):
    """Particle embedding (docs/model.md#particle-embedding): BatchNorm1d, then (LayerNorm → Linear → GELU) per width.

    Keys: ``input_bn.*``, ``embed.{0,1,3,4,6,7}.*`` for three widths.
    """

    def __init__(self, input_dim: int, dims: Sequence[int]) -> None:
        super().__init__()
        self.input_bn = nn.BatchNorm1d(input_dim)
        layers: list[nn.Module] = []
        for dim in dims:
            layers += [nn.LayerNorm(input_dim), nn.Linear(input_dim, dim), nn.GELU()]
            input_dim = dim
        self.embed = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        """(B, C_in, P) features → (B, P, C) tokens."""
        return self.embed(self.input_bn(features).transpose(1, 2))


class PairEmbed(nn.Module):
    """Pair embedding U (docs/model.md#pair-embedding-u, weaver mode "sum", symmetric lower-triangle trick).

    Per pair: BatchNorm1d(pair_input_dim) → [Conv1d(1×1) → BatchNorm1d → GELU] per width; the
    last GELU is dropped if ``use_pre_activation_pair`` (the official checkpoints keep it).
    Features are computed without gradient for the pairs i ≥ j (diagonal included), embedded
    and mirrored. Keys: ``embed.{0,1,2,4,5,7,8,10,11}.*`` for widths (64, 64, 64, H).
    """

    def __init__(self, pair_input_dim: int, dims: Sequence[int],
                 use_pre_activation_pair: bool = False, eps: float = PAIR_EPS) -> None:
        super().__init__()
        if pair_input_dim not in (1, 3, 4):
            raise ValueError(f"pair_input_dim must be 1, 3 or 4, got {pair_input_dim!r}")
        self.pair_input_dim = pair_input_dim
        self.eps = eps
        self.out_dim = dims[-1]
        layers: list[nn.Module] = [nn.BatchNorm1d(pair_input_dim)]
        in_dim = pair_input_dim
        for dim in dims:
            layers += [nn.Conv1d(in_dim, dim, 1), nn.BatchNorm1d(dim), nn.GELU()]
            in_dim = dim
        if use_pre_activation_pair:
            layers.pop()
        self.embed = nn.Sequential(*layers)

    def forward(self, vectors: Tensor) -> Tensor:
        """(B, 4, P) 4-vectors → U (B, out_dim, P, P), symmetric in the last two indices.

        The pair features are computed in the dtype of ``vectors`` (pass float64 to study
        docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise) and then cast to the dtype of the embedding.
        """
        n = vectors.shape[-1]
        dtype = self.embed[0].weight.dtype
        with torch.no_grad():
            fts = pairwise_features_lower_triangle(vectors, self.eps, self.pair_input_dim)
        elements = self.embed(fts.to(dtype))
        i, j = torch.tril_indices(n, n, device=vectors.device)
        u = elements.new_zeros(vectors.shape[0], self.out_dim, n, n)
        u[:, :, i, j] = elements
        u[:, :, j, i] = elements
        return u


class MultiHeadAttention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameter names (docs/model.md#attention-in-a-particle-block).

    ``in_proj_weight`` (3C, C) stacks W_q, W_k, W_v; head h uses channels h·d … h·d + d − 1;
    heads are concatenated channel-major and mapped by ``out_proj``. The attention itself is
    delegated to a :class:`_LayerAttention` (fused or explicit, probes, interventions).

    Differential variants (docs/model.md#differential-attention) add ``lambda_q``,
    ``lambda_k`` (d) with λ = min(1, exp(λ_q·λ_k)·λ_init); ``differential`` adds the second
    query–key projection ``in_proj2_weight`` (2C, C) = [W_q2; W_k2] and ``in_proj2_bias``;
    ``differential_u`` has no query–key term, so its ``in_proj_weight`` (C, C) holds W_v only.

    Args:
        embed_dim, num_heads, dropout: C, H and the attention dropout.
        attention: the variant's parameter layout (softmax, sparsemax and entmax15 share
            ParT's; class blocks are always built with "softmax").
        lambda_init: λ_init of the differential variants (:func:`lambda_init`).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 attention: str = "softmax", lambda_init: float = 0.8) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.attention = attention
        projections = 1 if attention == "differential_u" else 3
        self.in_proj_weight = nn.Parameter(torch.empty(projections * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(projections * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)
        # the variants' own parameters come after ParT's, so a softmax model draws the same
        # initial weights from the same seed as before they existed
        if attention == "differential":
            self.in_proj2_weight = nn.Parameter(torch.empty(2 * embed_dim, embed_dim))
            self.in_proj2_bias = nn.Parameter(torch.zeros(2 * embed_dim))
            nn.init.xavier_uniform_(self.in_proj2_weight)
        if attention in DIFFERENTIAL:
            self.lambda_init = lambda_init
            self.lambda_q = nn.Parameter(torch.empty(self.head_dim).normal_(0.0, 0.1))
            self.lambda_k = nn.Parameter(torch.empty(self.head_dim).normal_(0.0, 0.1))

    def _heads(self, t: Tensor) -> Tensor:
        return t.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def project(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-head q (from ``query``), k, v (from ``key``), each (B, H, T, d)."""
        w_q, w_kv = self.in_proj_weight.split((self.head_dim * self.num_heads,
                                               2 * self.head_dim * self.num_heads))
        b_q, b_kv = self.in_proj_bias.split((w_q.shape[0], w_kv.shape[0]))
        k, v = F.linear(key, w_kv, b_kv).chunk(2, dim=-1)
        return self._heads(F.linear(query, w_q, b_q)), self._heads(k), self._heads(v)

    def query_keys(self, query: Tensor, key: Tensor) -> tuple[
            Tensor | None, Tensor | None, tuple[Tensor, Tensor] | None]:
        """(q, k, (q2, k2)) of the variant: q, k are None for ``differential_u``, the second
        pair is None except for ``differential``."""
        if self.attention == "differential_u":
            return None, None, None
        q, k, _ = self.project(query, key)
        return q, k, self._second(query, key)

    def _second(self, query: Tensor, key: Tensor) -> tuple[Tensor, Tensor] | None:
        if self.attention != "differential":
            return None
        w_q, w_k = self.in_proj2_weight.chunk(2)
        b_q, b_k = self.in_proj2_bias.chunk(2)
        return self._heads(F.linear(query, w_q, b_q)), self._heads(F.linear(key, w_k, b_k))

    def differential_lambda(self) -> Tensor:
        """λ = min(1, exp(λ_q·λ_k)·λ_init) (0-d; differential variants only)."""
        return (torch.exp(torch.dot(self.lambda_q, self.lambda_k)) * self.lambda_init).clamp(max=1.0)

    def forward(self, query: Tensor, key: Tensor, layer: _LayerAttention) -> Tensor:
        """(B, Tq, C) queries, (B, Tk, C) keys = values → (B, Tq, C) (after ``out_proj``)."""
        dropout = self.dropout if self.training else 0.0
        if self.attention == "softmax":
            q, k, v = self.project(query, key)
            attended = layer.attend(q, k, v, dropout)
        elif self.attention == "differential_u":
            v = self._heads(F.linear(key, self.in_proj_weight, self.in_proj_bias))
            attended = layer.attend(None, None, v, dropout, lam=self.differential_lambda())
        else:
            q, k, v = self.project(query, key)
            lam = self.differential_lambda() if self.attention == "differential" else None
            attended = layer.attend(q, k, v, dropout, second=self._second(query, key), lam=lam)
        out = self.out_proj(attended.transpose(1, 2).flatten(2))
        layer.after_output(out, self)
        return out


class Block(nn.Module):
    """Particle- or class-attention block (docs/model.md#particle-attention-block, docs/model.md#class-attention-blocks-and-output), weaver ``Block`` semantics.

    Args:
        embed_dim, num_heads: width C and number of heads H.
        ffn_ratio: FFN width = ffn_ratio · C.
        dropout, attn_dropout, activation_dropout: the three dropout rates.
        w05_head_scaling: scale heads by ``c_attn`` without weaver 0.4's channel
            permutation (weaver ≥ 0.5 semantics, docs/model.md#weaver-05-and-the-fold); False for the checkpoints.
        attention, lambda_init: parameter layout of the attention variant and λ_init
            (:class:`MultiHeadAttention`); class blocks keep "softmax".
    """

    def __init__(self, embed_dim: int = 128, num_heads: int = 8, ffn_ratio: int = 4,
                 dropout: float = 0.1, attn_dropout: float = 0.1,
                 activation_dropout: float = 0.1, w05_head_scaling: bool = False,
                 attention: str = "softmax", lambda_init: float = 0.8) -> None:
        super().__init__()
        ffn_dim = embed_dim * ffn_ratio
        self.w05_head_scaling = w05_head_scaling
        self.pre_attn_norm = nn.LayerNorm(embed_dim)
        self.attn = MultiHeadAttention(embed_dim, num_heads, attn_dropout, attention=attention,
                                       lambda_init=lambda_init)
        self.post_attn_norm = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.pre_fc_norm = nn.LayerNorm(embed_dim)
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.act = nn.GELU()
        self.act_dropout = nn.Dropout(activation_dropout)
        self.post_fc_norm = nn.LayerNorm(ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)
        self.c_attn = nn.Parameter(torch.ones(num_heads))
        self.w_resid = nn.Parameter(torch.ones(embed_dim))

    def forward(self, x: Tensor, layer: _LayerAttention, cls: Tensor | None = None) -> Tensor:
        """Particle block: x (B, P, C) → (B, P, C). Class block (``cls`` (B, 1, C)) → (B, 1, C)."""
        if cls is None:
            residual = x
            z = self.pre_attn_norm(x)
            out = self.attn(z, z, layer)
        else:
            residual = cls
            out = self.attn(cls, self.pre_attn_norm(torch.cat((cls, x), dim=1)), layer)
        x = self.dropout(self.post_attn_norm(self._scale_heads(out))) + residual
        return self._feed_forward(x)

    def _scale_heads(self, out: Tensor) -> Tensor:
        """Multiply channel group h by c_attn[h]; W04 writes channel h·d + i to i·H + h."""
        grouped = out.unflatten(-1, (self.c_attn.shape[0], -1)) * self.c_attn[:, None]
        if not self.w05_head_scaling:
            grouped = grouped.transpose(-1, -2)
        return grouped.flatten(-2)

    def _feed_forward(self, x: Tensor) -> Tensor:
        y = self.act_dropout(self.act(self.fc1(self.pre_fc_norm(x))))
        y = self.dropout(self.fc2(self.post_fc_norm(y)))
        return y + self.w_resid * x


# --- the model ------------------------------------------------------------------------------


class ParticleTransformer(nn.Module):
    """ParT with weaver-core 0.4.x semantics and state-dict keys (without ``mod.``).

    Args:
        input_dim: number of particle features C_in (7 kin, 13 kinpid, 17 full).
        num_classes: number of output logits.
        pair_input_dim: number of pair features (1, 3 or 4; checkpoints: 4).
        embed_dims: widths of the particle embedding; the last one is C.
        pair_embed_dims: hidden widths of the pair embedding; None or empty = ParT-plain.
        num_heads, num_layers, num_cls_layers: H, particle blocks, class blocks.
        dropout, attn_dropout, activation_dropout: particle-block dropouts (class blocks: 0).
        trim: enable the sequence trimmer (weaver ``trim and not for_inference``).
        use_pre_activation_pair: drop U's final GELU (must be False for the checkpoints).
        w05_head_scaling: weaver ≥ 0.5 head scaling (no channel permutation); for converting
            0.5-trained weights only (see :func:`partnb.model.checkpoint.fold_w05_into_w04`).
        attention: the particle blocks' attention, one of :data:`ATTENTION_VARIANTS`
            (docs/model.md#attention-variants): "softmax" (ParT, weaver's function and
            state dict), "sparsemax", "entmax15", "differential" (two query–key maps, each
            with its own U, Diff Transformer's form) or "differential_u" (IAFormer's form:
            both maps from U alone; needs a pair embedding). Class blocks stay softmax.
            Non-softmax models carry an ``attention_variant`` entry in their state dict.

    ``forward(features, vectors, mask, *, probe=None, intervention=None, penalty=None)``
    returns logits (B, num_classes) (no softmax).
    """

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        pair_input_dim: int = 4,
        embed_dims: Sequence[int] = (128, 512, 128),
        pair_embed_dims: Sequence[int] | None = (64, 64, 64),
        num_heads: int = 8,
        num_layers: int = 8,
        num_cls_layers: int = 2,
        dropout: float = 0.1,
        attn_dropout: float = 0.1,
        activation_dropout: float = 0.1,
        trim: bool = True,
        use_pre_activation_pair: bool = False,
        w05_head_scaling: bool = False,
        attention: str = "softmax",
    ) -> None:
        super().__init__()
        if not embed_dims:
            raise ValueError("embed_dims must not be empty")
        pair_dims = tuple(pair_embed_dims or ())
        if attention not in ATTENTION_VARIANTS:
            raise ValueError(f"unknown attention {attention!r}; choose from {list(ATTENTION_VARIANTS)}")
        if attention == "differential_u" and not pair_dims:
            raise ValueError("attention 'differential_u' builds both maps from U alone: it needs "
                             "a pair embedding (pair_embed_dims), this is ParT-plain")
        self.config = dict(
            input_dim=input_dim, num_classes=num_classes, pair_input_dim=pair_input_dim,
            embed_dims=tuple(embed_dims), pair_embed_dims=pair_dims, num_heads=num_heads,
            num_layers=num_layers, num_cls_layers=num_cls_layers, dropout=dropout,
            attn_dropout=attn_dropout, activation_dropout=activation_dropout, trim=trim,
            use_pre_activation_pair=use_pre_activation_pair,
            w05_head_scaling=w05_head_scaling, attention=attention,
        )
        self.attention = attention
        dim = embed_dims[-1]
        block = dict(embed_dim=dim, num_heads=num_heads, w05_head_scaling=w05_head_scaling)
        self.trimmer = SequenceTrimmer(enabled=trim)
        self.embed = Embed(input_dim, embed_dims)
        maps = 2 if attention in DIFFERENTIAL else 1  # U1, U2: one pair channel per head and map
        self.pair_embed = (
            PairEmbed(pair_input_dim, pair_dims + (maps * num_heads,), use_pre_activation_pair)
            if pair_dims else None
        )
        self.blocks = nn.ModuleList(
            Block(dropout=dropout, attn_dropout=attn_dropout,
                  activation_dropout=activation_dropout, attention=attention,
                  lambda_init=lambda_init(num_layers), **block)
            for _ in range(num_layers)
        )
        self.cls_blocks = nn.ModuleList(
            Block(dropout=0.0, attn_dropout=0.0, activation_dropout=0.0, **block)
            for _ in range(num_cls_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Sequential(nn.Linear(dim, num_classes))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02, a=-2.0, b=2.0)
        if attention != "softmax":  # the variant travels with the weights
            self.register_buffer(VARIANT_KEY, _variant_marker(attention))
        self._intervention: Intervention | None = None

    @contextlib.contextmanager
    def intervene(self, intervention: Intervention | None = None,
                  **kwargs) -> Iterator[ParticleTransformer]:
        """Apply an :class:`Intervention` (or its keyword arguments) to calls inside the block."""
        if intervention is None:
            intervention = Intervention(**kwargs)
        elif kwargs:
            raise TypeError("give an Intervention or keyword arguments, not both")
        previous, self._intervention = self._intervention, intervention
        try:
            yield self
        finally:
            self._intervention = previous

    def forward(self, features: Tensor, vectors: Tensor | None = None,
                mask: Tensor | None = None, *, probe: AttentionProbe | None = None,
                intervention: Intervention | None = None,
                penalty: AttentionPenalty | None = None) -> Tensor:
        """Logits (B, num_classes) of jets given as features (B, C_in, P), 4-vectors
        (B, 4, P) and mask (B, 1, P) (nonzero = real; None = all real).

        ``probe`` records attention (forces the explicit path for the blocks it records);
        ``intervention`` overrides one set with :meth:`intervene`; ``penalty`` collects an
        :class:`AttentionPenalty` of the particle blocks (explicit path). Without any of them,
        or with only U interventions, a softmax model's attention runs fused (SDPA); the
        other variants always run the explicit path in their particle blocks.
        """
        iv = intervention if intervention is not None else self._intervention
        self._check_intervention(iv)
        features, vectors, mask = self._prepare(features, vectors, mask)
        features, vectors, mask = self.trimmer(features, vectors, mask)
        padding = ~mask[:, 0]
        x = self.embed(features).masked_fill(padding.unsqueeze(-1), 0.0)
        u = self.pair_embed(vectors) if self.pair_embed is not None else None
        if probe is not None:
            probe.reset()
        if penalty is not None:
            penalty.reset()
        layers = self._particle_layers(u, padding, probe, iv, x.dtype, penalty)
        for block, layer in zip(self.blocks, layers, strict=True):
            x = block(x, layer)
        cls = self.cls_token.expand(x.shape[0], 1, -1)
        cls_padding = torch.cat((torch.zeros_like(padding[:, :1]), padding), dim=1)
        for index, block in enumerate(self.cls_blocks):
            topk = iv.topk if iv is not None and iv.topk_cls else None
            layer = _LayerAttention(cls_layer_key(index), None, cls_padding, topk=topk,
                                    probe=probe, dtype=x.dtype,
                                    topk_gather=topk is not None and iv.topk_gather)
            cls = block(x, layer, cls=cls)
        return self.fc(self.norm(cls[:, 0]))

    def _check_intervention(self, iv: Intervention | None) -> None:
        if iv is not None and iv.touches_u and self.pair_embed is None:
            raise ValueError("zero_u / scale_u need a pair embedding; this is ParT-plain")

    def _prepare(self, features: Tensor, vectors: Tensor | None,
                 mask: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor]:
        dtype = self.embed.input_bn.weight.dtype
        expected = self.config["input_dim"]
        if features.ndim != 3 or features.shape[1] != expected:
            raise ValueError(f"features must have shape (B, {expected}, P), got "
                             f"{tuple(features.shape)}")
        batch, _, length = features.shape
        if vectors is None and self.pair_embed is not None:
            raise ValueError("this model has a pair embedding: vectors (B, 4, P) are required")
        if vectors is not None and tuple(vectors.shape) != (batch, 4, length):
            raise ValueError(f"vectors must have shape {(batch, 4, length)}, "
                             f"got {tuple(vectors.shape)}")
        if mask is None:
            mask = torch.ones(batch, 1, length, dtype=torch.bool, device=features.device)
        if tuple(mask.shape) != (batch, 1, length):
            raise ValueError(f"mask must have shape {(batch, 1, length)}, got {tuple(mask.shape)}")
        return features.to(dtype), vectors, mask.bool()

    def _particle_layers(self, u: Tensor | None, padding: Tensor, probe: AttentionProbe | None,
                         iv: Intervention | None, dtype: torch.dtype,
                         penalty: AttentionPenalty | None = None) -> list[_LayerAttention]:
        """One :class:`_LayerAttention` per particle block; blocks with equal U share U + M
        (and the differential variants' U1, U2: the same tensor objects in every block)."""
        variants: dict[float, _LayerAttention] = {}  # U factor -> holder of U and cached U + M
        heads = self.config["num_heads"]
        layers = []
        for index in range(len(self.blocks)):
            factor = 1.0 if iv is None else iv.u_factor(index)
            if factor not in variants:
                scaled = u if u is None or factor == 1.0 else u * factor
                u1, u2 = scaled, None
                if scaled is not None and self.attention in DIFFERENTIAL:
                    u1, u2 = scaled[:, :heads], scaled[:, heads:]
                variants[factor] = _LayerAttention(index, u1, padding, dtype=dtype, u2=u2)
            shared = variants[factor]
            acts = iv is not None and iv.acts_on(index)
            layer = _LayerAttention(index, shared.u, padding, zero_a=acts and iv.zero_a,
                                    topk=iv.topk if acts else None, probe=probe, dtype=dtype,
                                    attention=self.attention, u2=shared.u2, penalty=penalty,
                                    topk_gather=acts and iv.topk_gather)
            if not layer.explicit:
                layer.fused_bias = shared.bias()
            layers.append(layer)
        return layers


def zero_pair_embed_params(model: ParticleTransformer) -> ParticleTransformer:
    """A copy of ``model`` with every PairEmbed parameter set to zero (docs/analyses.md#zero-u-ablation).

    The final BatchNorm then outputs 0 whatever its running statistics, so U ≡ 0 (GELU(0) = 0):
    in eval mode this equals ``Intervention(zero_u=True)``. The original is not modified.
    """
    if model.pair_embed is None:
        raise ValueError("the model has no pair embedding (ParT-plain)")
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in clone.pair_embed.parameters():
            parameter.zero_()
    return clone


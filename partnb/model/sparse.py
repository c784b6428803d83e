"""Sparse alternatives to the softmax: sparsemax and 1.5-entmax (docs/model.md#attention-variants).

Both map a row of logits z to a probability vector that may hold **exact zeros**:

* **sparsemax** (Martins & Astudillo 2016, arXiv:1602.02068) is the Euclidean projection of
  z onto the probability simplex: p_i = [z_i − τ]₊ with τ chosen so that Σ p = 1;
* **1.5-entmax** (Peters, Niculae & Martins 2019, arXiv:1905.05702) is α-entmax at α = 1.5:
  p_i = [(α − 1) z_i − τ]₊^{1/(α−1)} = [z_i/2 − τ]₊², again with Σ p = 1. It lies between
  the softmax (α → 1) and sparsemax (α = 2).

τ is found exactly by sorting (no bisection): for the k largest entries of the sorted row the
threshold that would normalise them is computed for every k at once with cumulative sums,
and the support is the set of k where that threshold is below the k-th entry.

Masked keys enter as −∞ logits and get exactly 0 weight; a row with one finite logit gets
weight 1 there; equal finite logits share the weight equally. A row with no finite logit
gives NaN, as ``torch.softmax`` does. Both are invariant to adding a constant to a row, so
the row maximum is subtracted first (large logits lose no precision).

The gradients are the closed-form Jacobian–vector products of the papers (custom
``autograd.Function``, first order only): with s = 1[p > 0] (sparsemax) or s = √p
(1.5-entmax), ∂L/∂z = s ⊙ (g − (g·s)/Σs) for the upstream gradient g.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["entmax15", "sparsemax"]


def _sorted_cumulants(z: Tensor) -> tuple[Tensor, Tensor]:
    """Rows sorted descending and 1 … n as a broadcastable tensor of z's dtype."""
    ranks = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    return torch.sort(z, dim=-1, descending=True).values, ranks


def _shifted(z: Tensor) -> Tensor:
    """z minus its row maximum (−∞ entries stay −∞)."""
    return z - z.amax(dim=-1, keepdim=True)


def _sparsemax_forward(z: Tensor) -> Tensor:
    z = _shifted(z)
    ordered, k = _sorted_cumulants(z)
    cumulative = ordered.cumsum(dim=-1)
    # entry k is in the support iff 1 + k·z_(k) > Σ_{j≤k} z_(j) (false for −∞ entries)
    support = (1 + k * ordered) > cumulative
    size = support.sum(dim=-1, keepdim=True).clamp_(min=1)
    tau = (cumulative.gather(-1, size - 1) - 1) / size.to(z.dtype)
    return (z - tau).clamp_(min=0)


def _entmax15_forward(z: Tensor) -> Tensor:
    x = _shifted(z) / 2
    ordered, k = _sorted_cumulants(x)
    mean = ordered.cumsum(dim=-1) / k
    mean_sq = (ordered * ordered).cumsum(dim=-1) / k
    # τ_k solves Σ_{j≤k} (x_(j) − τ)² = 1 (the smaller root); NaN where −∞ entries enter
    spread = k * (mean_sq - mean * mean)
    tau_k = mean - ((1 - spread) / k).clamp(min=0).sqrt()
    support = tau_k <= ordered
    size = support.sum(dim=-1, keepdim=True).clamp_(min=1)
    tau = tau_k.gather(-1, size - 1)
    return (x - tau).clamp_(min=0).square_()


def _project_gradient(grad: Tensor, s: Tensor) -> Tensor:
    """s ⊙ (g − (g·s)/Σs) along the last axis."""
    gs = grad * s
    return gs - s * (gs.sum(dim=-1, keepdim=True) / s.sum(dim=-1, keepdim=True))


class _SparseMap(torch.autograd.Function):
    """Sparsemax or 1.5-entmax of the last axis with the closed-form gradient
    s ⊙ (g − (g·s)/Σs): s = 1[p > 0] for sparsemax, s = √p for 1.5-entmax."""

    @staticmethod
    def forward(ctx, z: Tensor, kind: str) -> Tensor:
        p = _FORWARD[kind](z)
        ctx.save_for_backward(p)
        ctx.kind = kind
        return p

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        (p,) = ctx.saved_tensors
        s = (p > 0).to(grad.dtype) if ctx.kind == "sparsemax" else p.sqrt()
        return _project_gradient(grad, s), None


_FORWARD = {"sparsemax": _sparsemax_forward, "entmax15": _entmax15_forward}


def _along(kind: str, z: Tensor, dim: int) -> Tensor:
    if dim in (-1, z.ndim - 1):
        return _SparseMap.apply(z, kind)
    return _SparseMap.apply(z.transpose(dim, -1), kind).transpose(dim, -1)


def sparsemax(z: Tensor, dim: int = -1) -> Tensor:
    """Sparsemax of ``z`` along ``dim`` (Martins & Astudillo 2016, arXiv:1602.02068).

    Args:
        z: logits; −∞ marks keys that must get weight 0.
        dim: the axis that sums to 1.

    Returns:
        Weights of z's shape and dtype: non-negative, summing to 1 along ``dim``, exactly 0
        wherever z_i ≤ τ (in particular on −∞).
    """
    return _along("sparsemax", z, dim)


def entmax15(z: Tensor, dim: int = -1) -> Tensor:
    """1.5-entmax of ``z`` along ``dim`` (Peters, Niculae & Martins 2019, arXiv:1905.05702):
    p_i = [z_i/2 − τ]₊² with Σ p = 1.

    Args:
        z: logits; −∞ marks keys that must get weight 0.
        dim: the axis that sums to 1.

    Returns:
        Weights of z's shape and dtype: non-negative, summing to 1 along ``dim``, exactly 0
        wherever z_i/2 ≤ τ (in particular on −∞).
    """
    return _along("entmax15", z, dim)

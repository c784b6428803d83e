"""The shared pieces of the streaming analyses: the real-pair layout of a batch and the
reusable buffers (partnb.analysis.stream)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from partnb.analysis.stream import Batch, PairLayout, Scratch, pair_layout


def _padding(n, P):
    return torch.arange(P)[None, :] >= torch.as_tensor(n)[:, None]


@pytest.mark.parametrize("real_only", [True, False])
def test_pair_layout_selects_the_pairs_head_by_head(real_only):
    n, H, P = [3, 0, 5, 1], 2, 5
    padding = _padding(n, P)
    padding[2, 1] = True  # a hole inside a jet: the layout follows the mask, not n
    x = torch.arange(len(n) * H * P * P, dtype=torch.float32).reshape(len(n), H, P, P)
    layout = PairLayout(padding, H, real_only=real_only)
    real = ~padding
    if real_only:
        keep = real[:, :, None] & real[:, None, :]
    else:
        keep = real.any(dim=1)[:, None, None].expand(-1, P, P)
    want = torch.cat([x[:, h][keep] for h in range(H)])  # head by head, then jet by jet
    assert torch.equal(layout.gather(x), want)
    assert torch.equal(layout.gather(x, out=torch.empty(len(layout))), want)
    assert layout.counts.tolist() == [[int(k.sum())] * H for k in keep]
    # per-(jet, head) offsets: a bincount over them counts each (jet, head)'s pairs
    per_bh = torch.bincount(layout.offsets(3), minlength=len(n) * H * 3).reshape(len(n), H, 3)
    assert per_bh[..., 0].tolist() == layout.counts.tolist()
    assert per_bh[..., 1:].sum() == 0
    # a (B, 1, P, P) tensor is broadcast over the heads
    assert torch.equal(layout.gather(x[:, :1]).reshape(H, -1)[1], layout.gather(x[:, :1]).reshape(H, -1)[0])


def test_pair_layout_is_shared_within_a_batch():
    padding = _padding([2, 4], 4)
    batch = Batch(np.arange(2), np.zeros(2, np.int64), np.array([2, 4]), SimpleNamespace())
    record = {"padding_mask": padding}
    first = pair_layout(record, batch, 3)
    assert pair_layout(record, batch, 3) is first
    assert pair_layout(record, batch, 2) is not first
    other = Batch(np.arange(2), np.zeros(2, np.int64), np.array([2, 4]), SimpleNamespace())
    assert pair_layout(record, other, 3) is not first


def test_scratch_reuses_and_grows():
    scratch = Scratch()
    a = scratch("x", 100)
    assert a.shape == (100,) and a.dtype == torch.float32
    b = scratch("x", 80)
    assert b.data_ptr() == a.data_ptr()  # reused
    c = scratch("x", 1000)
    assert c.numel() == 1000
    assert scratch("x", 10, torch.int32).dtype == torch.int32  # a separate buffer per dtype

"""Top-k attention by gathering the k keys (``Intervention(topk=k, topk_gather=True)``,
docs/analyses.md#top-k-as-a-speed-up) against the masked top-k of notebook 07: the same
logits of the whole model with padding and ties, the identity for k ≥ n, no weight on padded
keys, every attention variant, and the places where the masked form must run instead."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_interaction import random_inputs, random_model

from partnb.model import (
    ATTENTION_VARIANTS,
    AttentionPenalty,
    AttentionProbe,
    Intervention,
    ParticleTransformer,
    part,
)
from partnb.model.part import _keep_topk, gathered_attention

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: real particles per jet (P = 9 slots): padding everywhere but the first jet, one jet of 1
COUNTS = np.array([9, 6, 1, 4, 7, 2, 9, 5])
K_VALUES = (1, 2, 4, 8, 16)


def _tensors(inputs):
    return tuple(torch.as_tensor(t) for t in (inputs.features, inputs.vectors, inputs.mask))


def _logits(model, batch, **intervention):
    with torch.no_grad():
        return model(*batch, intervention=Intervention(**intervention) if intervention else None)


def _masked_reference(logits: torch.Tensor, values: torch.Tensor, k: int) -> torch.Tensor:
    """Notebook 07's form: all but the k largest logits −∞, softmax over the row, times V."""
    kept = _keep_topk(logits, k) if k < logits.shape[-1] else logits
    return torch.softmax(kept, dim=-1) @ values


def _tied_logits(seed: int = 0) -> torch.Tensor:
    """(2, 3, 6, 10) logits: rounded to 0.5 (many ties, also at the k-th place), padded keys
    −∞ per batch entry (10, 3 real keys), one row of all-equal real logits."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(2, 3, 6, 10, generator=g, dtype=torch.float64) * 2).round() / 2
    logits[1, ..., 3:] = float("-inf")
    logits[0, 0, 0, :] = 1.5
    return logits


# --- the function ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4, 9, 10])
def test_gathered_attention_equals_the_masked_form_with_ties(k):
    logits = _tied_logits()
    values = torch.randn(2, 3, 10, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    gathered = gathered_attention(logits, values, k)
    torch.testing.assert_close(gathered, _masked_reference(logits, values, k), rtol=0, atol=1e-12)


def test_gathered_attention_gives_padded_keys_no_weight():
    """Rows with 3 real keys and k = 4, 9: torch.topk must pick padded keys, which carry −∞;
    their value vectors (here huge) must not reach the output."""
    logits = _tied_logits()
    values = torch.randn(2, 3, 10, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    poisoned = values.clone()
    poisoned[1, :, 3:] = 1e12
    index = logits.topk(9, dim=-1).indices
    assert (index[1] >= 3).any()  # padded keys are among the picked ones
    for k in (4, 9):
        torch.testing.assert_close(gathered_attention(logits, poisoned, k),
                                   gathered_attention(logits, values, k), rtol=0, atol=1e-12)


def test_gathered_attention_with_queries_unlike_keys():
    """The class-attention shape: one query over 1 + P keys."""
    g = torch.Generator().manual_seed(3)
    logits, values = torch.randn(4, 2, 1, 7, generator=g), torch.randn(4, 2, 7, 3, generator=g)
    logits[2, ..., 4:] = float("-inf")
    for k in (1, 3, 6):
        torch.testing.assert_close(gathered_attention(logits, values, k),
                                   _masked_reference(logits, values, k), rtol=0, atol=1e-6)


# --- the model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_and_batch():
    return random_model(seed=21), _tensors(random_inputs(COUNTS, seed=22))


@pytest.mark.parametrize("k", K_VALUES)
@pytest.mark.parametrize("topk_cls", [False, True])
def test_gather_equals_masked_topk_on_the_model_logits(model_and_batch, k, topk_cls):
    model, batch = model_and_batch
    masked = _logits(model, batch, topk=k, topk_cls=topk_cls)
    gathered = _logits(model, batch, topk=k, topk_cls=topk_cls, topk_gather=True)
    torch.testing.assert_close(gathered, masked, rtol=0, atol=1e-5)


def test_gather_path_really_runs(model_and_batch, monkeypatch):
    """No masked top-k (no P × P ``_keep_topk``) under ``topk_gather`` when nothing needs the
    P × P weights."""
    model, batch = model_and_batch

    def forbidden(*args, **kwargs):
        raise AssertionError("the masked top-k ran")

    masked = _logits(model, batch, topk=2)
    monkeypatch.setattr(part, "_keep_topk", forbidden)
    torch.testing.assert_close(_logits(model, batch, topk=2, topk_gather=True), masked,
                               rtol=0, atol=1e-5)


def test_gather_with_ties_of_duplicated_particles():
    """Ties that matter: particles 1, 2 and 3 of each jet share one 4-vector (so every query
    has equal U towards them) but have different features (different value vectors); with
    A := 0 the logits are U alone, so the k-th largest logit is tied. Both paths break the
    tie with the same torch.topk call and agree."""
    model = random_model(seed=23)
    inputs = random_inputs(COUNTS, seed=24)
    vectors = inputs.vectors.copy()
    vectors[:, :, 2] = vectors[:, :, 1]
    vectors[:, :, 3] = vectors[:, :, 1]
    vectors *= inputs.mask
    batch = (torch.as_tensor(inputs.features), torch.as_tensor(vectors), torch.as_tensor(inputs.mask))
    probe = AttentionProbe(layers=[0], capture=("L",))
    with torch.no_grad():
        model(*batch, probe=probe, intervention=Intervention(zero_a=True))
    row = probe.records[0]["L"][0, :, 0]  # jet 0 (9 real particles), query 0
    assert (row[:, 1] == row[:, 2]).all() and (row[:, 2] == row[:, 3]).all()
    for k in (1, 2, 3):
        masked = _logits(model, batch, zero_a=True, topk=k)
        gathered = _logits(model, batch, zero_a=True, topk=k, topk_gather=True)
        torch.testing.assert_close(gathered, masked, rtol=0, atol=1e-5)


@pytest.mark.parametrize("k", [7, 8, 9, 50])
def test_k_at_least_n_is_the_dense_model(k):
    """Every jet has n ≤ 7: k ≥ n leaves every particle-block row unchanged (k < P = 9 still
    gathers, and picks padded keys); the class blocks have 1 + n real keys, so restricting
    them too is the identity from k = 8 on."""
    model = random_model(seed=25)
    batch = _tensors(random_inputs(np.array([7, 3, 1, 6, 5, 7]), seed=26))
    dense = _logits(model, batch)
    torch.testing.assert_close(_logits(model, batch, topk=k, topk_gather=True), dense,
                               rtol=0, atol=1e-5)
    if k >= 8:
        torch.testing.assert_close(_logits(model, batch, topk=k, topk_cls=True, topk_gather=True),
                                   dense, rtol=0, atol=1e-5)


@pytest.mark.parametrize("k", [1, 4, 8])
def test_padded_keys_get_no_weight_in_the_model(k):
    """Garbage 4-vectors and features in the padded slots change nothing: their keys sit at
    −∞ even where torch.topk picks them (rows with fewer than k real keys)."""
    model = random_model(seed=27)
    inputs = random_inputs(COUNTS, seed=28)
    clean = _tensors(inputs)
    rng = np.random.default_rng(29)
    padded = inputs.mask == 0
    features = np.where(padded, rng.normal(size=inputs.features.shape) * 50, inputs.features)
    vectors = np.where(padded, np.abs(rng.normal(size=inputs.vectors.shape)) * 500, inputs.vectors)
    dirty = (torch.as_tensor(features, dtype=torch.float32),
             torch.as_tensor(vectors, dtype=torch.float32), clean[2])
    want = _logits(model, clean, topk=k, topk_gather=True)
    torch.testing.assert_close(_logits(model, dirty, topk=k, topk_gather=True), want,
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(_logits(model, clean, topk=k), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("attention", ATTENTION_VARIANTS)
def test_gather_equals_masked_for_every_variant(attention):
    torch.manual_seed(31)
    model = ParticleTransformer(7, 3, embed_dims=(16, 32, 16), pair_embed_dims=(8, 8),
                                num_heads=2, num_layers=2, num_cls_layers=1, trim=False,
                                attention=attention).eval()
    batch = _tensors(random_inputs(COUNTS, seed=32))
    for k in (1, 3, 8):
        torch.testing.assert_close(_logits(model, batch, topk=k, topk_gather=True),
                                   _logits(model, batch, topk=k), rtol=0, atol=1e-5)


def test_probe_penalty_and_dropout_run_the_masked_form(model_and_batch):
    """Where the P × P weights are recorded, penalised or dropped out, ``topk_gather`` runs the
    masked form: the probe sees the masked weights, and training-mode outputs equal the
    masked path's under the same seed (the same dropout draws)."""
    model, batch = model_and_batch
    iv = Intervention(topk=2, topk_gather=True)
    probe = AttentionProbe(capture=("L", "P"))
    with torch.no_grad():
        probed = model(*batch, probe=probe, intervention=iv)
    torch.testing.assert_close(probed, _logits(model, batch, topk=2), rtol=0, atol=1e-5)
    assert ((probe.records[0]["P"] > 0).sum(dim=-1) <= 2).all()
    assert (torch.isfinite(probe.records[1]["L"]).sum(dim=-1) <= 2).all()

    penalty = AttentionPenalty("entropy")
    with torch.no_grad():
        model(*batch, intervention=iv, penalty=penalty)
    assert float(penalty.value()) > 0  # the masked form ran and added its weights

    model.train()
    try:
        outputs = []
        for gather in (False, True):
            torch.manual_seed(33)
            with torch.no_grad():
                outputs.append(model(*batch, intervention=Intervention(topk=2, topk_gather=gather)))
    finally:
        model.eval()
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)


def test_topk_gather_needs_topk_and_defaults_off():
    assert Intervention().topk_gather is False and Intervention(topk=3).topk_gather is False
    with pytest.raises(ValueError, match="topk_gather needs topk"):
        Intervention(topk_gather=True)

"""The one data path: batch orders (plain, length-bucketed) and inference that does not
depend on them (docs/datasets.md#length-bucketed-batches, docs/model.md#invariances)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from partnb.data.io import DataError
from partnb.data.sample import BUCKET_BATCHES, batch_indices, load_split
from partnb.model.factory import model_from_params, predict
from partnb.params import load_params, params_from_dict

from conftest import PARAMS, mixed_jets


def _lengths(n=1000, seed=0):
    return np.random.default_rng(seed).integers(1, 65, size=n)


def test_plain_training_order_is_the_legacy_permutation():
    """Runs trained before bucketing used randperm(seed * 100003 + epoch) cut in order: a plain
    run must see exactly those batches, or their resume states would not resume the same."""
    n, bs, seed, epoch = 1000, 128, 42, 3
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).numpy()
    legacy = [perm[b * bs:(b + 1) * bs] for b in range(n // bs)]
    got = batch_indices(_lengths(n), bs, batching="plain", seed=seed, epoch=epoch, drop_last=True)
    assert len(got) == len(legacy)
    for a, b in zip(got, legacy, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bucketed_training_batches_are_full_seeded_and_similar_in_length():
    n_part = _lengths(5000)
    bs = 64
    a = batch_indices(n_part, bs, batching="bucketed", seed=1, epoch=0, drop_last=True)
    again = batch_indices(n_part, bs, batching="bucketed", seed=1, epoch=0, drop_last=True)
    other = batch_indices(n_part, bs, batching="bucketed", seed=1, epoch=1, drop_last=True)
    assert len(a) == 5000 // bs and all(len(b) == bs for b in a)
    flat = np.concatenate(a)
    assert len(np.unique(flat)) == len(flat)                 # no jet twice
    assert all(np.array_equal(x, y) for x, y in zip(a, again, strict=True))  # resumable
    assert not all(np.array_equal(x, y) for x, y in zip(a, other, strict=True))
    plain = batch_indices(n_part, bs, batching="plain", seed=1, epoch=0, drop_last=True)
    spread = np.mean([np.ptp(n_part[b]) for b in a])
    spread_plain = np.mean([np.ptp(n_part[b]) for b in plain])
    # a chunk of BUCKET_BATCHES batches sorted by length: each batch spans ~1/BUCKET_BATCHES
    assert spread < spread_plain / 8, (spread, spread_plain, BUCKET_BATCHES)
    # the order of lengths over the epoch is not sorted: consecutive batches are unrelated
    first_len = np.array([n_part[b].min() for b in a])
    assert abs(np.corrcoef(first_len[:-1], first_len[1:])[0, 1]) < 0.3


def test_inference_orders_cover_every_jet_once():
    n_part = _lengths(1001)
    plain = batch_indices(n_part, 100, batching="plain")
    bucketed = batch_indices(n_part, 100, batching="bucketed")
    np.testing.assert_array_equal(np.concatenate(plain), np.arange(1001))
    flat = np.concatenate(bucketed)
    np.testing.assert_array_equal(np.sort(flat), np.arange(1001))
    assert np.all(np.diff(n_part[flat]) >= 0)
    assert [len(b) for b in bucketed][-1] == 1


@pytest.mark.parametrize("kw, match", [({"batching": "sorted"}, "batching = 'sorted'"),
                                       ({"batch_size": 0}, "batch_size = 0")])
def test_bad_batch_settings_are_named(kw, match):
    args = {"batch_size": 10, **kw}
    with pytest.raises(ValueError, match=match):
        batch_indices(_lengths(10), args.pop("batch_size"), **args)


def test_bucketed_inference_gives_the_plain_logits(one_torch_thread):
    """A jet's logits do not depend on the batch it sits in: bucketed (trimmed short) and
    plain (trimmed to the longest of a mixed batch) agree to float rounding."""
    params = load_params(PARAMS / "tiny.yaml")
    torch.manual_seed(0)
    model = model_from_params(params).eval()
    inputs = mixed_jets()
    plain = predict(model, inputs, batch_size=25, batching="plain")
    bucketed = predict(model, inputs, batch_size=25, batching="bucketed")
    assert model.trimmer.calls >= model.trimmer.warmup_calls  # the trimmer did cut batches
    np.testing.assert_allclose(bucketed, plain, rtol=0, atol=2e-5)
    # and the check can fail: the same logits in another order do not pass
    assert not np.allclose(bucketed, plain[::-1], atol=2e-5)


def test_an_empty_split_is_a_data_error(tmp_path):
    params = load_params(PARAMS / "tiny.yaml")
    data = params.to_dict()
    data["dataset"]["split"] = [1.0, 0.0, 0.0]
    empty = params_from_dict(data, source=params.source, root=params.root)
    with pytest.raises(DataError, match=r"split 'test' of .*tiny.yaml holds no jets"):
        load_split(empty, "test", files=[])

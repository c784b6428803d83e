"""Streaming training: a split's inputs on disk (partnb.data.store) give the rows, the padding
and the trained weights of the in-memory path bit for bit; a killed build leaves nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from partnb.data import store as store_module
from partnb.data.io import DataError
from partnb.data.padding import wrap_pad
from partnb.data.sample import load_split
from partnb.data.store import StoredInputs, split_store
from partnb.params import load_params
from partnb.train import train

SMALL_MODEL = {"embed_dims": [16, 32, 16], "pair_embed_dims": [8, 8], "num_heads": 2,
               "num_layers": 2, "num_cls_layers": 1, "dropout": 0.0}
ARRAYS = ("features", "vectors", "mask", "label", "n_particles")


def _params(tmp_path, files, *, pad_mode="zero", max_particles=32, **train_kw):
    data = {
        "name": "small", "seed": 5,
        "dataset": {"name": "toplandscape", "source": "files", "files": [str(f) for f in files],
                    "split": [0.6, 0.2, 0.2]},
        "features": {"set": "kin", "max_particles": max_particles, "pad_mode": pad_mode},
        "model": SMALL_MODEL,
        "train": {"epochs": 2, "batch_size": 40, "lr": 3e-3, "threads": 1, **train_kw},
        "analysis": {"progress": False},
        "output": {"models": str(tmp_path / "models")},
    }
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_params(path)


def _assert_same(a, b):
    assert len(a) == len(b)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.feature_names == b.feature_names


@pytest.mark.parametrize("split,max_jets", [("train", None), ("train", 150), ("val", None), ("test", None)])
def test_store_rows_equal_load_split(tmp_path, toplandscape_sample, split, max_jets):
    _, files = toplandscape_sample
    params = _params(tmp_path, files)
    stored = split_store(params, split, max_jets=max_jets)
    memory = load_split(params, split, max_jets=max_jets)
    _assert_same(stored.take(np.arange(len(stored))), memory)
    np.testing.assert_array_equal(stored.label, memory.label)
    np.testing.assert_array_equal(stored.n_particles, memory.n_particles)


def test_wrap_store_equals_wrap_pad_over_the_whole_split(tmp_path, toplandscape_sample):
    _, files = toplandscape_sample
    params = _params(tmp_path, files)
    memory = wrap_pad(load_split(params, "train", max_jets=180))
    # chunks much smaller than the split: sources of a chunk's padding lie in other chunks
    stored = split_store(params, "train", max_jets=180, pad_mode="wrap")
    _assert_same(stored.take(np.arange(len(stored))), memory)
    zero = load_split(params, "train", max_jets=180)
    assert not np.array_equal(memory.features, zero.features)  # wrapping did something


def test_wrap_in_small_chunks(tmp_path, toplandscape_sample, monkeypatch):
    _, files = toplandscape_sample
    params = _params(tmp_path, files)
    memory = wrap_pad(load_split(params, "val"))
    original = store_module._wrap_in_place
    monkeypatch.setattr(store_module, "_wrap_in_place", lambda d: original(d, chunk=7))
    stored = split_store(params, "val", pad_mode="wrap")
    _assert_same(stored.take(np.arange(len(stored))), memory)


def test_take_any_order_with_repeats(tmp_path, toplandscape_sample):
    _, files = toplandscape_sample
    params = _params(tmp_path, files)
    stored, memory = split_store(params, "val"), load_split(params, "val")
    index = np.random.default_rng(1).integers(0, len(memory), size=57)
    index[3] = index[10]
    _assert_same(stored.take(index), memory.take(index))
    _assert_same(stored.take(np.array([], dtype=np.int64)), memory.take(np.array([], dtype=np.int64)))
    flags = np.zeros(len(memory), bool)
    flags[::3] = True
    _assert_same(stored.take(flags), memory.take(flags))
    with pytest.raises(IndexError):
        stored.take([len(memory)])


def test_store_is_reused_and_rebuilt_when_settings_change(tmp_path, toplandscape_sample):
    _, files = toplandscape_sample
    params = _params(tmp_path, files)
    lines = []
    first = split_store(params, "val", log=lines.append)
    again = split_store(params, "val", log=lines.append)
    assert first.directory == again.directory and len(lines) == 1
    other = _params(tmp_path, files, max_particles=16)
    rebuilt = split_store(other, "val", log=lines.append)
    assert rebuilt.directory != first.directory and len(lines) == 2
    assert rebuilt.take([0]).features.shape[-1] == 16
    # one store per split setting: the one it replaced is gone
    assert not first.directory.exists()


def test_a_failed_build_leaves_nothing(tmp_path, toplandscape_sample, monkeypatch):
    _, files = toplandscape_sample
    params = _params(tmp_path, files)
    calls = {"n": 0}
    real = store_module._wrap_in_place

    def broken(directory, **kw):
        calls["n"] += 1
        raise OSError("disk full (faked)")

    monkeypatch.setattr(store_module, "_wrap_in_place", broken)
    with pytest.raises(OSError, match="disk full"):
        split_store(params, "train", pad_mode="wrap")
    root = tmp_path / "data" / "generated" / "inputs"
    assert calls["n"] == 1 and not [p for p in root.iterdir()]
    monkeypatch.setattr(store_module, "_wrap_in_place", real)
    assert len(split_store(params, "train", pad_mode="wrap")) > 0


def test_incomplete_store_is_refused(tmp_path):
    (tmp_path / "label.npy").write_bytes(b"")
    with pytest.raises(DataError, match="not a complete input store"):
        StoredInputs(tmp_path)


def test_store_travels_by_its_folder(tmp_path, toplandscape_sample):
    import pickle

    _, files = toplandscape_sample
    stored = split_store(_params(tmp_path, files), "val")
    copy = pickle.loads(pickle.dumps(stored))
    _assert_same(copy.take([0, 2]), stored.take([0, 2]))


@pytest.mark.parametrize("pad_mode", ["wrap", "zero"])
def test_streamed_training_equals_in_memory_training(tmp_path, toplandscape_sample, pad_mode):
    """The store changes where the rows come from, not which: the same weights, bit for bit."""
    _, files = toplandscape_sample
    a_dir, b_dir = tmp_path / "streamed", tmp_path / "memory"
    a_dir.mkdir(), b_dir.mkdir()
    pa = _params(a_dir, files, pad_mode=pad_mode, max_jets=160)
    pb = _params(b_dir, files, pad_mode=pad_mode, max_jets=160)
    streamed = train(pa, log=lambda *a: None)
    memory = train(pb, data=(load_split(pb, "train", max_jets=160), load_split(pb, "val")),
                   log=lambda *a: None)
    a = torch.load(a_dir / "models" / "epoch_002.pt", weights_only=True)
    b = torch.load(b_dir / "models" / "epoch_002.pt", weights_only=True)
    a, b = a.get("state_dict", a), b.get("state_dict", b)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert streamed.log[-1]["val_loss"] == memory.log[-1]["val_loss"]
    assert (a_dir / "data" / "generated" / "inputs").is_dir()


def test_subsets_are_drawn_from_labels_and_equal_the_whole_split_cut(tmp_path, toplandscape_sample):
    """load_split(max_jets) and analysis_inputs build only the jets they keep, and keep the
    jets that cutting the whole split would keep (bit for bit)."""
    from partnb.analysis.stream import analysis_inputs
    from partnb.data.sample import split_labels

    _, files = toplandscape_sample
    params = _params(tmp_path, files)
    whole = load_split(params, "train")
    np.testing.assert_array_equal(split_labels(params, "train"), whole.label)
    keep = np.sort(np.random.default_rng(params.seed).permutation(len(whole))[:77])
    _assert_same(load_split(params, "train", max_jets=77), whole.take(keep))
    test = load_split(params, "test")
    only = np.flatnonzero(test.label == 1)
    pick = np.sort(np.random.default_rng(params.seed).permutation(len(only))[:13])
    from partnb.data.schema import DATASETS
    cls = DATASETS["toplandscape"].classes[1]
    _assert_same(analysis_inputs(params, n_jets=13, classes=[cls]), test.take(only[pick]))
    _assert_same(analysis_inputs(params, n_jets=None), test)
    with pytest.raises(ValueError, match="sorted positions"):
        load_split(params, "test", index=[3, 1])

"""Sharded analysis passes (partnb.analysis.shard, docs/cluster.md#sharded-analysis): the
consumers of notebooks 03, 04 and 06 filled over shards of the jets and merged give the
tables of one pass, on the committed Top Landscape model and generated Top Landscape jets.

The jets are those of the embedded TL dataset when it is on disk (``partnb generate
params/toplandscape.yaml``: read, never generated here); else the session's generated
sample (Pythia, so the tests are then ``slow``).
"""

from __future__ import annotations

import math
import socket
import time

import numpy as np
import pytest
import torch

from partnb.analysis import interaction, magnitude, shard, sparsity, u_structure
from partnb.analysis.stream import AnalysisError, stream_attention
from partnb.params import ParamsError, load_params, params_from_dict

from conftest import PARAMS

N_JETS = 110  # 6 batches of 20, the last one short
BATCH = 20
GROUPS = 7  # not a divisor of the batch size: jackknife groups cut across batches and shards


def _tl_params():
    return load_params(PARAMS / "toplandscape.yaml", {"analysis.progress": False},
                       check_files=False)


def _tl_files_on_disk():
    from partnb.data import dataset_files
    from partnb.data.io import DataError

    try:
        files = dataset_files(_tl_params(), generate=False).files
    except DataError:
        return None
    return [files[0], files[len(files) // 2]]  # the first file of each class


_ON_DISK = _tl_files_on_disk()
#: without the generated TL data on disk the jets come from Pythia: slow
needs_jets = pytest.mark.slow if _ON_DISK is None else (lambda test: test)


@pytest.fixture(scope="module")
def tl_files(request) -> list[str]:
    """One file of each TL class: the embedded dataset's when on disk, else the sample's."""
    if _ON_DISK is not None:
        return [str(f) for f in _ON_DISK]
    _, files = request.getfixturevalue("toplandscape_sample")
    return [str(f) for f in files]


@pytest.fixture(scope="module")
def tl(tl_files):
    """(model, jets): the committed trained TL model and N_JETS jets of both classes in a
    seeded random order (so every batch and shard mixes them)."""
    from partnb.model.checkpoint import CheckpointError
    from partnb.model.factory import load_trained

    params = _tl_params()
    try:
        model = load_trained(params)
    except CheckpointError:
        pytest.skip("the committed models/toplandscape checkpoint is not in this checkout")
    inputs = _jets(params, tl_files)
    assert set(np.unique(inputs.label)) == {0, 1}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared machine: one thread is faster than oversubscribed two
    yield model, inputs
    torch.set_num_threads(threads)


def _jets(params, files):
    from partnb.data.sample import load_split

    inputs = load_split(params, "test", files=[str(f) for f in files])
    return inputs.take(np.random.default_rng(3).permutation(len(inputs))[:N_JETS])


# --- comparing tables ------------------------------------------------------------------------

_MAX_DIFF: dict[str, float] = {}


def assert_same_rows(got: list[dict], want: list[dict], what: str, rel: float = 1e-9) -> float:
    """Every row and column equal: strings and ints exactly, floats within ``rel`` (NaN equal
    to NaN). Returns (and records) the largest absolute difference of the floats."""
    assert len(got) == len(want), what
    largest = 0.0
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w), what
        for key, b in w.items():
            a = g[key]
            if isinstance(b, float) or isinstance(a, float):
                if b is None or a is None:
                    assert a is b, (what, key)
                    continue
                if math.isnan(b):
                    assert math.isnan(a), (what, key, a)
                    continue
                if a == b:  # infinities (open end bins) too
                    continue
                assert a == pytest.approx(b, rel=rel, abs=1e-12), (what, key, a, b)
                largest = max(largest, abs(a - b))
            else:
                assert a == b, (what, key, a, b)
    _MAX_DIFF[what] = max(_MAX_DIFF.get(what, 0.0), largest)
    return largest


def sparsity_tables(acc) -> list[dict]:
    acc.finish()
    return (acc.summary_rows("m") + acc.summary_rows("m", per_class=True)
            + acc.per_head_rows("m") + acc.histogram_rows("m", classes=acc.classes))


def magnitude_tables(acc) -> list[dict]:
    return acc.summary_rows("m") + acc.ratio_histogram_rows("m") + acc.magnitude_rows("m")


def _consumers(model):
    L, H = model.config["num_layers"], model.config["num_heads"]
    return [sparsity.AttentionSparsity(L, H, ["top", "QCD"], groups=GROUPS),
            magnitude.MagnitudeRatio(L, groups=GROUPS),
            interaction.InteractionCounter(), interaction.InteractionCounter(variant="as_coded"),
            u_structure.UStructure(), u_structure.RowVariation()]


def _tables(consumers) -> list[list[dict]]:
    acc, mag, d, d_coded, us, rv = consumers
    return [sparsity_tables(acc), magnitude_tables(mag), d.rows(), d_coded.rows(), us.rows(),
            us.distribution_rows(), rv.rows()]


_NAMES = ["AttentionSparsity", "MagnitudeRatio", "InteractionCounter",
          "InteractionCounter as coded", "UStructure", "UStructure distribution", "RowVariation"]
_PASS = {"capture": ("A", "U", "L", "P"), "as_coded": True, "batch_size": BATCH}


def _one_pass(model, inputs):
    consumers = _consumers(model)
    with sparsity.untrimmed(model):
        logits = stream_attention(model, inputs, consumers, **_PASS)
    return consumers, logits


# --- merge ----------------------------------------------------------------------------------


@needs_jets
def test_merging_two_halves_gives_one_pass(tl):
    """Each consumer fed the first 3 batches, a copy fed the last 3 (global indices), merged:
    every table of one pass, jackknife errors included."""
    model, inputs = tl
    whole, _ = _one_pass(model, inputs)
    first, second = _consumers(model), _consumers(model)
    with sparsity.untrimmed(model):
        stream_attention(model, inputs.take(np.arange(60)), first, **_PASS)
        stream_attention(model, inputs.take(np.arange(60, N_JETS)), second, index_offset=60,
                         **_PASS)
    for c in first + second:
        getattr(c, "finish", getattr(c, "flush", lambda: None))()
    merged = [a.merge(b) for a, b in zip(first, second, strict=True)]
    assert all(m is a for m, a in zip(merged, first, strict=True)), "merge returns self"
    for name, got, want in zip(_NAMES, _tables(merged), _tables(whole), strict=True):
        assert_same_rows(got, want, f"merge {name}")
    # the errors are real jackknife errors over GROUPS groups, not NaN
    row = sparsity_tables(merged[0])[0]
    assert row["n_jets"] == N_JETS and 0 < row["frac_rows_max_ge_0.8_err"] < 1
    assert merged[2].rows()[0]["n_jets"] == N_JETS and merged[2].rows()[0]["rate_D_err"] > 0


@needs_jets
def test_halves_without_global_indices_differ(tl):
    """The control of the test above: the second half streamed with local indices puts its
    jets into other jackknife groups, and the errors change (so the test can fail)."""
    model, inputs = tl
    whole, _ = _one_pass(model, inputs)
    first, second = _consumers(model)[:1], _consumers(model)[:1]
    with sparsity.untrimmed(model):
        stream_attention(model, inputs.take(np.arange(60)), first, **_PASS)
        stream_attention(model, inputs.take(np.arange(60, N_JETS)), second, **_PASS)
    got = sparsity_tables(first[0].merge(second[0]))
    want = sparsity_tables(whole[0])
    errors = [(g[k], w[k]) for g, w in zip(got, want, strict=True) for k in w if k.endswith("_err")]
    assert any(not math.isclose(a, b, rel_tol=1e-6) for a, b in errors if not math.isnan(b))


def test_merge_refuses_other_settings():
    cases = [
        (sparsity.AttentionSparsity(2, 2, ["a", "b"]), sparsity.AttentionSparsity(2, 2, ["a", "c"]),
         "classes"),
        (sparsity.AttentionSparsity(2, 2, ["a"], groups=20),
         sparsity.AttentionSparsity(2, 2, ["a"], groups=10), "groups"),
        (sparsity.AttentionSparsity(2, 2, ["a"]), sparsity.AttentionSparsity(2, 4, ["a"]),
         "num_heads"),
        (magnitude.MagnitudeRatio(4), magnitude.MagnitudeRatio(3), "num_layers"),
        (magnitude.MagnitudeRatio(4, groups=20), magnitude.MagnitudeRatio(4, groups=5), "groups"),
        (interaction.InteractionCounter(), interaction.InteractionCounter(variant="as_coded"),
         "variant"),
        (interaction.InteractionCounter(0.8), interaction.InteractionCounter(0.9), "threshold"),
        (u_structure.UStructure(0), u_structure.UStructure(1), "layer"),
    ]
    for mine, theirs, setting in cases:
        name = type(mine).__name__
        with pytest.raises(ValueError, match=f"cannot merge {name}s built with different {setting}"):
            mine.merge(theirs)
    with pytest.raises(ValueError, match="cannot merge a MagnitudeRatio into a RowVariation"):
        u_structure.RowVariation().merge(magnitude.MagnitudeRatio(2))


# --- the driver -----------------------------------------------------------------------------


def test_shard_bounds_are_whole_batches():
    assert shard.shard_bounds(110, 2, 20) == [(0, 60), (60, 110)]
    assert shard.shard_bounds(110, 4, 20) == [(0, 20), (20, 60), (60, 80), (80, 110)]
    assert shard.shard_bounds(30, 8, 20) == [(0, 20), (20, 30)]  # no empty shard
    assert shard.shard_bounds(0, 2, 20) == []
    for n, k, b in ((1000, 7, 30), (95, 3, 10), (5, 1, 100)):
        bounds = shard.shard_bounds(n, k, b)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a % b == 0 and a < c for a, c in bounds)
        assert all(bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1))


def _notebook_passes(model, inputs, **engine):
    """The passes of notebooks 03, 04 and 06 as the notebooks call them."""
    acc = sparsity.attention_sparsity(model, inputs, ["top", "QCD"], batch_size=BATCH,
                                      groups=GROUPS, **engine)
    mag = magnitude.magnitude_ratio(model, inputs, batch_size=BATCH, groups=GROUPS, **engine)
    us, rv = u_structure.UStructure(), u_structure.RowVariation()
    metrics = interaction.interaction_metrics(model, inputs, batch_size=BATCH,
                                              consumers=[us, rv], **engine)
    coded = interaction.as_coded_interaction_metrics(model, inputs, batch_size=BATCH, **engine)
    return [sparsity_tables(acc), magnitude_tables(mag),
            interaction.interaction_rows([("m", metrics)]), interaction.as_coded_rows(coded),
            us.rows(), rv.rows()]


_NOTEBOOK_NAMES = ["03 sparsity", "04 magnitude", "06 interaction metrics",
                   "06 interaction as coded", "06 U structure", "06 row variation"]


@needs_jets
def test_serial_shards_give_one_pass(tl):
    """The notebooks' passes on 2 serial shards (what analysis.scheduler: serial with
    analysis.shards: 2 runs) against one pass: the same tables; stream_sharded over 3 shards
    (the last one short) gives the tables and logits of one pass too."""
    model, inputs = tl
    model.trimmer.reset()
    want = _notebook_passes(model, inputs)
    model.trimmer.reset()
    got = _notebook_passes(model, inputs, scheduler="serial", shards=2)
    for name, g, w in zip(_NOTEBOOK_NAMES, got, want, strict=True):
        assert_same_rows(g, w, f"serial {name}")
    whole, logits = _one_pass(model, inputs)
    consumers = _consumers(model)
    with sparsity.untrimmed(model):
        sharded_logits = shard.stream_sharded(model, inputs, consumers, shards=3, **_PASS)
    np.testing.assert_array_equal(sharded_logits, logits)
    for name, g, w in zip(_NAMES, _tables(consumers), _tables(whole), strict=True):
        assert_same_rows(g, w, f"stream_sharded {name}")


@needs_jets
def test_params_engine_reaches_the_notebook_passes(tl):
    """analysis.scheduler / analysis.shards travel with the model trained_model hands out, so
    the notebooks' unchanged calls run sharded, with the tables of one pass."""
    from partnb.notebook import _with_engine

    model, inputs = tl
    params = params_from_dict({"analysis": {"scheduler": "serial", "shards": 3}})
    assert params.analysis.scheduler == "serial" and params.analysis.shards == 3
    _with_engine(model, params)
    try:
        assert shard.engine_of(model) == (None, 3) and shard.sharded(*shard.engine_of(model))
        got = magnitude_tables(magnitude.magnitude_ratio(model, inputs, batch_size=BATCH,
                                                         groups=GROUPS))
    finally:
        del model.analysis_engine
    assert shard.engine_of(model) == (None, None) and not shard.sharded(None, None)
    want = magnitude_tables(magnitude.magnitude_ratio(model, inputs, batch_size=BATCH,
                                                      groups=GROUPS))
    assert_same_rows(got, want, "params engine 04 magnitude")


def test_params_schema_of_the_engine_keys():
    ok = params_from_dict({"analysis": {"scheduler": "tcp://10.1.2.3:8786", "shards": 4}})
    assert ok.analysis.scheduler == "tcp://10.1.2.3:8786" and ok.analysis.shards == 4
    default = params_from_dict(None)
    assert default.analysis.scheduler is None and default.analysis.shards is None
    with pytest.raises(ParamsError, match=r"analysis.scheduler = 'dask' must be 'serial'"):
        params_from_dict({"analysis": {"scheduler": "dask"}})
    with pytest.raises(ParamsError, match=r"analysis.shards = 0 must be > 0"):
        params_from_dict({"analysis": {"shards": 0}})
    with pytest.raises(ParamsError, match=r"unknown key 'analysis.schedular'.*scheduler"):
        params_from_dict({"analysis": {"schedular": "local"}})


def _dead_address() -> str:
    """A local port where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def test_dead_scheduler_is_refused_before_any_work():
    """An address with no scheduler: one AnalysisError naming the key and the address, within
    the probe's timeout, before the model runs a single batch."""
    address = _dead_address()
    calls = []

    class Model:  # only to see that nothing runs: the check comes first
        trimmer = None

        def __call__(self, *args, **kwargs):
            calls.append(1)

    start = time.perf_counter()
    with pytest.raises(AnalysisError) as info:
        shard.run_sharded(shard._stream_shard, Model(), list(range(10)), [], {},
                          batch_size=5, scheduler=address)
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert message.startswith(f"analysis.scheduler = {address}: no Dask scheduler answered"), message
    assert "\n" not in message and calls == []
    assert elapsed < 1, "a refused connection needs no timeout"


def test_dead_scheduler_in_params_stops_trained_model(tmp_path):
    """The notebooks' first analysis call, trained_model, checks the address before loading
    or training anything."""
    from partnb.notebook import trained_model

    address = _dead_address()
    params = params_from_dict({"analysis": {"scheduler": address},
                               "output": {"models": str(tmp_path / "models")}}, root=tmp_path)
    with pytest.raises(AnalysisError, match=f"analysis.scheduler = {address}: no Dask"):
        trained_model(params, train_if_missing=True)
    assert not (tmp_path / "models").exists()


def test_not_an_engine_is_refused():
    with pytest.raises(AnalysisError, match="analysis.scheduler = 'dask': not an engine"):
        shard.check_scheduler("dask")


def test_a_consumer_without_merge_cannot_be_sharded():
    from partnb.analysis.emergence import MonitorStats

    with pytest.raises(AnalysisError, match="cannot shard a pass over MonitorStats"):
        shard.stream_sharded(None, [], [MonitorStats()], shards=2)


@pytest.mark.slow
@needs_jets
def test_local_cluster_gives_one_pass(tl):
    """Two Dask worker processes against one pass here, through a running cluster's address
    (the four passes of notebooks 03, 04, 06) and through the "local" engine (notebook 03's):
    the models are rebuilt on the workers from config + state_dict, the consumers merged
    back in shard order."""
    pytest.importorskip("distributed")
    model, inputs = tl
    model.trimmer.reset()
    want = _notebook_passes(model, inputs)
    model.trimmer.reset()
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with Client(address) as client:
            client.wait_for_workers(2)
        got = _notebook_passes(model, inputs, scheduler=address, shards=2)
        # the shards ran as 2 tasks of 60 and 50 jets; their logits are those of one pass
        parts = shard.run_sharded(shard._stream_shard, model, inputs, [], {"batch_size": BATCH},
                                  batch_size=BATCH, scheduler=address, shards=2)
    assert [len(logits) for _, logits in parts] == [60, 50]
    _, logits = _one_pass(model, inputs)
    np.testing.assert_allclose(np.concatenate([lg for _, lg in parts]), logits, rtol=0, atol=1e-5)
    for name, g, w in zip(_NOTEBOOK_NAMES, got, want, strict=True):
        assert_same_rows(g, w, f"dask {name}", rel=1e-6)
    # the "local" engine (analysis.scheduler: local) starts and closes a cluster of its own
    acc = sparsity.attention_sparsity(model, inputs, ["top", "QCD"], batch_size=BATCH,
                                      groups=GROUPS, scheduler="local", shards=2)
    assert_same_rows(sparsity_tables(acc), want[0], "dask local engine 03 sparsity", rel=1e-6)
    elapsed = time.perf_counter() - start
    print(f"2-worker Dask cluster: {elapsed:.1f} s; largest |difference|: "
          + ", ".join(f"{k} {v:.2g}" for k, v in _MAX_DIFF.items() if k.startswith("dask")))


def _gloo_rank(rank: int, world: int, init_file: str, out: str, files: list[str]) -> None:
    """One rank of a 2-process gloo job (what ``torchrun`` starts): the notebooks' passes
    with no scheduler given, its tables written as JSON."""
    import json

    import torch.distributed as dist

    from partnb.model.factory import load_trained

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        params = _tl_params()
        model, inputs = load_trained(params), _jets(params, files)
        assert shard.distributed_world() == (rank, world)
        tables = _notebook_passes(model, inputs)
        # each rank ran its own shard: 3 batches and 2.5, gathered on every rank
        parts = shard.run_sharded(shard._stream_shard, model, inputs, [], {"batch_size": BATCH},
                                  batch_size=BATCH)
        tables.append([{"jets": len(logits)} for _, logits in parts])
    finally:
        dist.destroy_process_group()
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(tables, f)


@pytest.mark.slow
@needs_jets
def test_gloo_ranks_give_one_pass(tl, tl_files, tmp_path):
    """Two processes in a gloo process group (as under torchrun): each runs its shard, the
    consumers are gathered and merged on every rank, and every rank holds the tables of one
    pass here."""
    import json

    import torch.multiprocessing as mp

    model, inputs = tl
    model.trimmer.reset()
    want = json.loads(json.dumps(_notebook_passes(model, inputs)))  # as the ranks' JSON
    start = time.perf_counter()
    mp.spawn(_gloo_rank, args=(2, str(tmp_path / "init"), str(tmp_path), tl_files), nprocs=2)
    elapsed = time.perf_counter() - start
    for rank in range(2):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got.pop() == [{"jets": 60}, {"jets": 50}]
        for name, g, w in zip(_NOTEBOOK_NAMES, got, want, strict=True):
            assert_same_rows(g, w, f"gloo rank {rank} {name}", rel=1e-6)
    print(f"2-process gloo job: {elapsed:.1f} s; largest |difference|: "
          + ", ".join(f"{k} {v:.2g}" for k, v in _MAX_DIFF.items() if k.startswith("gloo")))

"""Sharded analysis passes: the jets cut into contiguous shards, one streamed pass per shard
on Dask workers or ``torchrun`` ranks, the consumers merged (docs/cluster.md#sharded-analysis).

:func:`~partnb.analysis.stream.stream_attention` runs one model over all jets in one
process. Every consumer of the notebooks 03, 04 and 06 (:class:`~partnb.analysis.sparsity.AttentionSparsity`,
:class:`~partnb.analysis.magnitude.MagnitudeRatio`,
:class:`~partnb.analysis.interaction.InteractionCounter`,
:class:`~partnb.analysis.u_structure.UStructure`,
:class:`~partnb.analysis.u_structure.RowVariation`) keeps histograms and counters that add,
so a pass splits into passes over shards of the jets whose consumers are merged
(``consumer.merge(other)``) in shard order. The result is that of one pass:

* **shards are contiguous and start at a batch boundary** (:func:`shard_bounds`), so every
  shard's batches are batches of the one-process pass, and what is kept per batch (the
  papers' per-batch averaged histogram, the as-coded magnitude pairs, which mix the jets of a
  batch) is the same;
* **indices stay global**: each shard streams with ``index_offset`` = its first jet, so
  ``Batch.index`` and ``Batch.number`` count in the whole inputs and the jackknife groups
  (jet index mod groups; batch number mod groups for the as-coded magnitudes) are those of
  one pass; the merged per-group counters give the same jackknife errors;
* the few numbers that are not sums merge as they were accumulated: extremes by min / max,
  the per-batch averages by adding their sums over batches.

Engines (``scheduler``; params key ``analysis.scheduler``):

* ``None`` or ``"serial"``: the shards one after the other in this process (what the tests
  compare with one pass); without ``shards`` either, one plain pass;
* ``"local"``: a ``dask.distributed`` ``LocalCluster`` of ``shards`` single-threaded worker
  processes (default: the cores), closed at the end;
* ``"tcp://HOST:PORT"``: the scheduler of a running Dask cluster (checked with a handshake
  of :data:`SCHEDULER_TIMEOUT` s before any work; default ``shards``: its workers);
* ``torchrun``: used whenever ``torch.distributed`` is initialised with more than one rank
  (whatever ``scheduler`` says): rank r runs shard r of ``world_size``, the consumers are
  gathered with ``all_gather_object`` over a gloo group and merged on every rank.

Dask workers get the model as its constructor settings (``model.config``) and ``state_dict``
tensors and rebuild it (:class:`ModelSpec`); no code or file crosses. Consumers cross as
fresh empty copies (``consumer.empty_like()``) and come back filled.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from partnb.analysis.stream import AnalysisError

__all__ = ["ENGINES", "SCHEDULER_TIMEOUT", "ModelSpec", "check_scheduler", "distributed_world",
           "engine_of", "merge_all", "require_same", "run_sharded", "shard_bounds", "sharded",
           "stream_sharded"]

#: Seconds a scheduler address has to answer before the request is refused.
SCHEDULER_TIMEOUT = 5.0
#: ``analysis.scheduler`` values besides a ``tcp://HOST:PORT`` address (None = serial too).
ENGINES = ("serial", "local")


# --- merging -------------------------------------------------------------------------------


def require_same(consumer: object, other: object, settings: dict[str, Any]) -> None:
    """Refuse to merge ``other`` into ``consumer`` unless both are of one class and built with
    the same settings: ``settings`` maps a setting's name (as the constructor calls it) to
    the attribute that holds it. Raises ValueError naming the class and the setting."""
    name = type(consumer).__name__
    if type(other) is not type(consumer):
        raise ValueError(f"cannot merge a {type(other).__name__} into a {name}")
    for setting, attribute in settings.items():
        mine, theirs = getattr(consumer, attribute), getattr(other, attribute)
        same = (np.array_equal(mine, theirs) if isinstance(mine, np.ndarray | list | tuple)
                else mine == theirs)
        if not same:
            raise ValueError(f"cannot merge {name}s built with different {setting}: "
                             f"{mine!r} here, {theirs!r} in the other")


def merge_all(parts: Sequence[Sequence[object]]) -> list[object]:
    """Merge the consumer lists of several shards, in shard order, into the first's."""
    first, *rest = parts
    for part in rest:
        if len(part) != len(first):
            raise ValueError(f"cannot merge {len(part)} consumers into {len(first)}")
        for mine, theirs in zip(first, part, strict=True):
            mine.merge(theirs)
    return list(first)


# --- shards and the model ------------------------------------------------------------------


def shard_bounds(n_jets: int, shards: int, batch_size: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges covering ``n_jets`` jets in at most ``shards`` shards,
    each starting at a multiple of ``batch_size`` (whole batches; the last may be short),
    as equal in batches as they can be. Empty shards are left out."""
    if shards < 1:
        raise ValueError(f"shards = {shards} must be >= 1")
    n_batches = math.ceil(n_jets / batch_size)
    shards = min(shards, max(n_batches, 1))
    edges = [k * n_batches // shards * batch_size for k in range(shards + 1)]
    return [(a, min(b, n_jets)) for a, b in zip(edges[:-1], edges[1:], strict=True)
            if min(b, n_jets) > a]


@dataclass
class ModelSpec:
    """What rebuilds a :class:`~partnb.model.part.ParticleTransformer` in another process:
    its constructor settings (``model.config``), its ``state_dict`` tensors and the state of
    its sequence trimmer (on or off, warm-up calls made). Tensors and plain values only: no
    code and no file crosses."""

    config: dict
    state: dict
    trim_enabled: bool
    trim_calls: int
    trim_warmup: int

    @classmethod
    def of(cls, model) -> ModelSpec:
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        trimmer = model.trimmer
        return cls(dict(model.config), state, bool(trimmer.enabled), int(trimmer.calls),
                   int(trimmer.warmup_calls))

    def build(self):
        """The model in eval mode, weights loaded strictly, trimmer as it was."""
        from partnb.model.part import ParticleTransformer

        model = ParticleTransformer(**self.config)
        model.load_state_dict(self.state, strict=True)
        trimmer = model.trimmer
        trimmer.enabled, trimmer.calls, trimmer.warmup_calls = (
            self.trim_enabled, self.trim_calls, self.trim_warmup)
        return model.eval()


# --- one shard -----------------------------------------------------------------------------


def _stream_shard(model, inputs, offset: int, templates: Sequence[object], stream_kw: dict):
    """Task of one shard: a streamed pass over ``inputs`` (jets ``offset`` … of the whole)
    into fresh consumers like ``templates``; returns (consumers, logits)."""
    from partnb.analysis.stream import stream_attention

    consumers = [t.empty_like() for t in templates]
    logits = stream_attention(model, inputs, consumers, index_offset=offset, **stream_kw)
    for consumer in consumers:  # close the last batch: what is sent back is complete
        for close in ("finish", "flush"):
            if callable(getattr(consumer, close, None)):
                getattr(consumer, close)()
    return consumers, logits


def _run_task(task: Callable, model, inputs, offset: int, trim_calls: int | None, *args):
    """Run ``task`` on one shard; a :class:`ModelSpec` is rebuilt first (on a worker), with
    one torch thread (a worker process is one core). ``trim_calls``: the sequence trimmer's
    warm-up calls made before this shard in one pass (None: leave the model's)."""
    import torch

    if isinstance(model, ModelSpec):
        torch.set_num_threads(1)
        model = model.build()
    if trim_calls is not None:
        model.trimmer.calls = trim_calls
    with torch.no_grad():
        return task(model, inputs, offset, *args)


def _trim_calls(model, start: int, batch_size: int, calls_per_batch: int) -> int:
    """The trimmer's call count at jet ``start`` of one pass that began with the model's
    present count: weaver's trimmer does nothing in its first calls (docs/model.md#sequence-trimmer),
    so a shard's model must have made as many as the one pass would have."""
    if isinstance(model, ModelSpec):
        enabled, calls, warmup = model.trim_enabled, model.trim_calls, model.trim_warmup
    else:
        trimmer = model.trimmer
        enabled, calls, warmup = trimmer.enabled, trimmer.calls, trimmer.warmup_calls
    if not enabled:  # a switched-off trimmer counts nothing
        return calls
    return min(calls + start // batch_size * calls_per_batch, max(calls, warmup))


# --- engines -------------------------------------------------------------------------------


def distributed_world() -> tuple[int, int] | None:
    """(rank, world size) when ``torch.distributed`` is initialised with more than one rank
    (a ``torchrun`` job), else None."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return None


def check_scheduler(scheduler: str | None, *, key: str = "analysis.scheduler",
                    timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Refuse a scheduler that cannot run, before any work: not ``None``, ``"serial"``,
    ``"local"`` or a ``tcp://HOST:PORT`` (or other Dask comm) address; ``dask.distributed``
    missing; or an address where no scheduler answers within ``timeout`` s. Raises
    :class:`~partnb.analysis.stream.AnalysisError` naming ``key`` and the value."""
    if scheduler is None or scheduler == "serial":
        return
    if scheduler != "local" and "://" not in scheduler:
        raise AnalysisError(f"{key} = {scheduler!r}: not an engine; use null or 'serial' (this "
                            "process), 'local' (a Dask LocalCluster) or the address of a Dask "
                            "scheduler, tcp://HOST:PORT")
    from partnb.data.engines import probe_scheduler, require_distributed
    from partnb.data.generate import GenerationRequestError

    try:
        require_distributed(scheduler)
        if scheduler != "local":
            _refused(scheduler, key, timeout)
            probe_scheduler(scheduler, timeout)
    except GenerationRequestError as exc:
        raise AnalysisError(f"{key} = {scheduler}: {exc.reason}") from None


def _refused(address: str, key: str, timeout: float) -> None:
    """A TCP address where the connection is refused at once is refused at once (the Dask
    handshake would retry until its timeout); a host that does not answer waits for it."""
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    if parts.scheme != "tcp":
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return  # not a port: the handshake names the problem
    if not host or port is None:
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError:
        raise AnalysisError(f"{key} = {address}: no Dask scheduler answered (connection "
                            "refused); is the cluster running, and is this its scheduler "
                            "address?") from None
    except OSError:
        return  # unknown host, silence: the handshake waits and names it


@contextlib.contextmanager
def _dask_client(scheduler: str, workers: int) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if scheduler == "local":
        # preload: Ctrl-C is left to this process, which closes the cluster (as for generation)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               silence_logs=logging.CRITICAL, preload=["partnb.data.engines"])
        try:
            with Client(cluster, set_as_default=False) as client:
                yield client
        finally:
            cluster.close()
    else:
        with Client(scheduler, timeout=SCHEDULER_TIMEOUT, set_as_default=False) as client:
            yield client


def _default_shards(scheduler: str | None) -> int:
    if scheduler is None or scheduler == "serial":
        return 1
    return os.cpu_count() or 1


def run_sharded(task: Callable, model, inputs, *args, batch_size: int,
                scheduler: str | None = None, shards: int | None = None,
                calls_per_batch: int = 1) -> list:
    """Run ``task(model, shard_inputs, offset, *args)`` on contiguous shards of ``inputs``
    and return the tasks' results in shard order.

    ``task`` must be a module-level function of partnb (Dask sends it by name) and ``args``
    picklable. Serially the tasks share ``model`` (its trimmer carries on from shard to
    shard, as in one pass); on Dask workers each task rebuilds it from a :class:`ModelSpec`;
    under ``torchrun`` each rank runs its own shard with its own ``model`` and the results
    of every rank are gathered (``all_gather_object`` over gloo), so every rank returns all.

    Args:
        task: the work of one shard.
        model: the model (a ParticleTransformer).
        inputs: :class:`~partnb.data.features.JetInputs`.
        batch_size: jets per forward pass; shards start at multiples of it.
        scheduler: None / ``"serial"``, ``"local"`` or a Dask scheduler address.
        shards: number of shards (default: 1 serially, the cores for ``"local"``, the workers
            of a remote cluster; the ranks under ``torchrun``).
        calls_per_batch: forward calls ``task`` makes per batch (for the sequence trimmer's
            warm-up count of each shard's model, so that it trims as one pass would).

    Raises:
        AnalysisError: the scheduler cannot run (checked before any work, see
            :func:`check_scheduler`).
    """
    world = distributed_world()
    if world is not None:
        return _run_torchrun(task, model, inputs, args, batch_size, calls_per_batch, *world)
    check_scheduler(scheduler)
    if shards is not None and shards < 1:
        raise AnalysisError(f"analysis.shards = {shards} must be >= 1")
    if scheduler is None or scheduler == "serial":
        bounds = shard_bounds(len(inputs), shards or 1, batch_size)
        return [_run_task(task, model, inputs.take(np.arange(a, b)), a, None, *args)
                for a, b in bounds]
    spec = ModelSpec.of(model)
    with _dask_client(scheduler, shards or _default_shards(scheduler)) as client:
        if shards is None:
            shards = max(len(client.scheduler_info().get("workers", {})), 1)
        bounds = shard_bounds(len(inputs), shards, batch_size)
        spec_future = client.scatter(spec, broadcast=True)
        futures = []
        for a, b in bounds:  # each shard's jets go to the cluster as data, not in the graph
            jets = client.scatter(inputs.take(np.arange(a, b)))
            futures.append(client.submit(
                _run_task, task, spec_future, jets, a,
                _trim_calls(spec, a, batch_size, calls_per_batch), *args,
                key=f"partnb-shard-{task.__name__}-{a}-{b}-{os.getpid()}", pure=False))
        return client.gather(futures)


def _gloo_group():
    import torch.distributed as dist

    if dist.get_backend() == "gloo":
        return None  # the default group
    global _GLOO
    if _GLOO is None:
        _GLOO = dist.new_group(backend="gloo")
    return _GLOO


_GLOO = None


def _run_torchrun(task: Callable, model, inputs, args, batch_size: int, calls_per_batch: int,
                  rank: int, world: int):
    import torch.distributed as dist

    bounds = shard_bounds(len(inputs), world, batch_size)
    mine = None
    if rank < len(bounds):
        a, b = bounds[rank]
        mine = _run_task(task, model, inputs.take(np.arange(a, b)), a,
                         _trim_calls(model, a, batch_size, calls_per_batch), *args)
    gathered: list = [None] * world
    dist.all_gather_object(gathered, mine, group=_gloo_group())
    return [g for g in gathered if g is not None]


# --- the streamed pass -----------------------------------------------------------------------


def stream_sharded(model, inputs, consumers: Sequence[object], *, scheduler: str | None = None,
                   shards: int | None = None, batch_size: int = 100, progress: bool = False,
                   **stream_kw) -> np.ndarray:
    """:func:`~partnb.analysis.stream.stream_attention` over shards of ``inputs``: feeds
    ``consumers`` the merged result of every shard (each shard fills fresh copies,
    ``consumer.empty_like()``, merged into ``consumers`` in shard order) and returns the
    logits in jet order. Engines and ``shards`` as :func:`run_sharded`; the other keywords
    go to ``stream_attention``. With the serial engine and one shard this is one pass.

    Every consumer must have ``empty_like()`` and ``merge(other)``."""
    missing = [type(c).__name__ for c in consumers
               if not (callable(getattr(c, "merge", None)) and callable(getattr(c, "empty_like", None)))]
    if missing:
        raise AnalysisError(f"cannot shard a pass over {', '.join(missing)}: no merge/empty_like")
    stream_kw = {"batch_size": batch_size, **stream_kw}
    if not sharded(scheduler, shards):
        return _stream_one(model, inputs, consumers, stream_kw, progress)
    templates = [c.empty_like() for c in consumers]  # what crosses: empty, small
    results = run_sharded(_stream_shard, model, inputs, templates, stream_kw, batch_size=batch_size,
                          scheduler=scheduler, shards=shards)
    merge_all([list(consumers)] + [parts for parts, _ in results])
    logits = [lg for _, lg in results if len(lg)]
    return np.concatenate(logits) if logits else np.zeros((0, 0), np.float32)


def _stream_one(model, inputs, consumers, stream_kw, progress):
    from partnb.analysis.stream import stream_attention

    return stream_attention(model, inputs, consumers, progress=progress, **stream_kw)


def engine_of(model, scheduler: str | None = None,
              shards: int | None = None) -> tuple[str | None, int | None]:
    """The (scheduler, shards) of an analysis pass over ``model``: the given ones, else what a
    notebook asked for with ``analysis.scheduler`` / ``analysis.shards``, which
    :func:`partnb.notebook.trained_model` records on the models it hands out (attribute
    ``analysis_engine``); (None, None) for any other model. ``"serial"`` reads as None."""
    if scheduler is None and shards is None:
        scheduler, shards = getattr(model, "analysis_engine", (None, None))
    return (None if scheduler == "serial" else scheduler), shards


def sharded(scheduler: str | None, shards: int | None) -> bool:
    """Whether a pass runs over shards (:func:`run_sharded`) rather than as one plain
    :func:`~partnb.analysis.stream.stream_attention` here: a scheduler, a number of shards,
    or a ``torchrun`` job."""
    return (scheduler not in (None, "serial") or shards is not None
            or distributed_world() is not None)

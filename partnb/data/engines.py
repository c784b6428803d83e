"""Generation as the tasks of a ``dask.distributed`` cluster.

:func:`partnb.data.generate.generate` with ``scheduler=`` hands each missing file to a Dask
worker as one task, which calls the same per-file function as every other engine
(:func:`partnb.data.generate.generate_chunk_file`): file *i* of a class is a pure function of
the settings, the seed and *i*, so the jets are the same whichever engine made the file,
and a run picks up the files that any earlier run, array task or Dask task left.

Two kinds of cluster:

- ``"local"``: a ``distributed.LocalCluster`` of single-threaded worker processes on this
  machine, started only when there is something to make and closed at the end;
- an address such as ``tcp://HOST:PORT``: the scheduler of a running cluster (a
  ``dask-jobqueue`` ``SLURMCluster`` or ``HTCondorCluster``, ``dask scheduler`` with
  ``dask worker``s, ...). It is asked for a handshake with a timeout of a few seconds before
  anything is written. Its workers write the files themselves, so the output directory must
  be on a filesystem that they and this process share (checked on both sides).

A worker runs one chunk at a time (a process-wide lock): Pythia and the ``quiet_stdout``
file-descriptor swap are not meant for several threads, so give workers one thread each
(``--nthreads 1``; ``cores == processes`` in dask-jobqueue). ``docs/cluster.md`` has the
recipes. ``dask[distributed]`` is an optional dependency (``pip install 'partnb[cluster]'``);
without it a scheduler request is refused with the pip command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .generate import (
    Chunk,
    ChunkStats,
    GenerationConfig,
    GenerationRequestError,
    _remove_stale_temps,
    generate_chunk_file,
)

__all__ = ["SCHEDULER_TIMEOUT", "DaskEngine", "require_distributed", "probe_scheduler"]

#: Seconds a scheduler address has to answer before the request is refused.
SCHEDULER_TIMEOUT = 5.0

_INSTALL = "pip install 'dask[distributed]' (or pip install -e '.[cluster]' in the repository)"

#: One chunk at a time per worker process, whatever its number of threads (see module doc).
_ONE_CHUNK_AT_A_TIME = threading.Lock()


def require_distributed(scheduler: str) -> None:
    """Raise :class:`GenerationRequestError` naming the package and the pip command if
    ``dask.distributed`` cannot be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise GenerationRequestError(
            "scheduler", scheduler,
            f"needs the package dask.distributed, which is not installed ({exc}): {_INSTALL}",
        ) from None


def probe_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Check that a Dask scheduler answers at ``address`` (a comm handshake, at most
    ``timeout`` seconds); raise :class:`GenerationRequestError` naming it if not.

    A bare probe rather than a ``Client``: a ``Client`` whose connection fails stays behind
    and complains (with a traceback, after another timeout) when Python exits. It runs in
    a thread of its own, so that it works where an event loop runs already (Jupyter).
    """
    import asyncio

    from distributed.comm import connect

    async def handshake() -> None:
        comm = await connect(address, timeout=timeout)
        await comm.close()

    def in_own_loop() -> None:  # a thread of its own: the caller may run a loop (Jupyter)
        asyncio.run(handshake())

    try:
        with ThreadPoolExecutor(1, thread_name_prefix="partnb-probe") as pool:
            pool.submit(in_own_loop).result()
    except ValueError as exc:  # not an address: no port, unknown scheme
        raise GenerationRequestError(
            "scheduler", address, f"not a scheduler address ({exc}); 'local' or tcp://HOST:PORT"
        ) from None
    except OSError:  # refused, unknown host, silent: all time out (TimeoutError too)
        raise GenerationRequestError(
            "scheduler", address,
            f"no Dask scheduler answered within {timeout:g} s; is the cluster running, and is "
            "this its scheduler address?",
        ) from None


def dask_setup(worker) -> None:
    """Preload hook of the local cluster's workers (``preload=["partnb.data.engines"]``):
    Ctrl-C, which the terminal sends to every process of the group, is left to the client,
    which closes the cluster itself, instead of a traceback from each worker (the process
    pool's workers do the same). A worker already ends when its parent dies (distributed
    watches the parent), so ``kill -9`` of the client leaves no worker running."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _chunk_task(config: GenerationConfig, chunk: Chunk, out_dir: str, key: str) -> ChunkStats:
    """One Dask task: the chunk's file, written by the worker into ``out_dir``."""
    with _ONE_CHUNK_AT_A_TIME:
        here = config.cache_key()
        host = socket.gethostname()
        if here != key:
            raise RuntimeError(
                f"worker on {host}: its partnb/pythia8mc would make other jets than the "
                f"client's (cache key {here} != {key}); install the same versions everywhere")
        if not Path(out_dir).is_dir():
            raise RuntimeError(
                f"worker on {host}: {out_dir} is not a directory there; the output directory "
                "must be on a filesystem that the workers and the client share")
        return generate_chunk_file(config, chunk, out_dir, key)


class DaskEngine:
    """A context manager that runs chunks as Dask tasks (see the module docstring).

    Entering checks the request before any work: ``dask.distributed`` importable and, for an
    address, a scheduler answering there (:func:`probe_scheduler`). Leaving closes the
    client and a local cluster; after a run stopped early (Ctrl-C, a failed chunk) the
    temp files of the local workers, killed with their cluster, are removed.

    Args:
        scheduler: ``"local"`` or a scheduler address (``tcp://HOST:PORT``).
        workers: worker processes of a local cluster (0 = all cores; never more than the
            chunks to make); ignored for an address, where the cluster has its own.
        timeout: seconds for the scheduler's answer.
    """

    def __init__(self, scheduler: str, workers: int = 0, timeout: float = SCHEDULER_TIMEOUT):
        self.scheduler, self.workers, self.timeout = scheduler, workers, timeout
        self.local = scheduler == "local"
        self.client = self.cluster = None
        self._out_dir: Path | None = None
        #: workers of the cluster when the run started (0 before)
        self.n_workers = 0

    def __enter__(self) -> DaskEngine:
        require_distributed(self.scheduler)
        if not self.local:
            from distributed import Client

            probe_scheduler(self.scheduler, self.timeout)
            self.client = Client(self.scheduler, timeout=self.timeout, set_as_default=False)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
        if exc_type is not None and self.local and self._out_dir is not None:
            _remove_stale_temps(self._out_dir)  # the workers died with their cluster

    def _start_local(self, n_chunks: int) -> None:
        from distributed import Client, LocalCluster

        n = min(self.workers or os.cpu_count() or 1, n_chunks)
        # silence_logs: the scheduler runs in this process; a task's error reaches us as the
        # exception of its future, and a stop would add "Couldn't gather keys" lines
        self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                    host="127.0.0.1", dashboard_address=None,
                                    silence_logs=logging.CRITICAL, preload=[__name__])
        self.client = Client(self.cluster, set_as_default=False)

    def run(self, config: GenerationConfig, todo: list[Chunk], out_dir: Path,
            key: str) -> Iterator[ChunkStats]:
        """Submit one task per chunk of ``todo`` and yield their statistics as they finish;
        cancel what is left if the caller stops early or a task fails."""
        from distributed import as_completed

        out_dir = Path(out_dir).resolve()
        self._out_dir = out_dir
        if self.client is None:
            self._start_local(len(todo))
        self.n_workers = len(self.client.scheduler_info().get("workers", {}))
        token = uuid.uuid4().hex[:8]
        futures = [
            self.client.submit(_chunk_task, config, c, str(out_dir), key,
                               key=f"partnb-generate-{config.dataset}-{c.filename}-{token}")
            for c in todo
        ]
        try:
            for fut in as_completed(futures, loop=self.client.loop):
                stats = fut.result()
                if not (out_dir / stats.filename).exists():
                    raise RuntimeError(
                        f"{out_dir / stats.filename}: a worker wrote it but it is not there "
                        "for this process; the output directory must be on a filesystem that "
                        "the workers and the client share")
                yield stats
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.cancel(futures)
            raise

"""A split's model inputs on disk, read batch by batch: how training streams.

Training draws each batch from a seeded permutation of the whole training split
(:func:`partnb.data.sample.batch_indices`), so a batch holds jets from anywhere in the split.
Rather than hold the split in memory (its size grows with the number of training jets) or
shuffle within a buffer (which would change the batches of every committed run), partnb
writes the split's model inputs once to a *store*: one ``.npy`` file per array (features,
vectors, mask, labels, multiplicities), rows in split order. A batch then reads its rows
from disk (``os.pread`` of the runs of consecutive rows; no memory map, so the pages read
do not count against the process), and the memory of training is that of one batch and
one file chunk, whatever the number of jets (``benchmarks/train.py``: ``peak_rss_ratio``).

The rows are those of :func:`partnb.data.sample.load_split` with the same ``max_jets``
subset, padded as ``features.pad_mode`` says (weaver's ``wrap`` over the whole split, as
:func:`partnb.data.padding.wrap_pad` does in memory), so a run reads the same batches, bit
for bit, whether its split comes from a store or from memory (``tests/test_store.py``), and
a resumed run sees the same batches as the run it continues.

A store lives under ``<dataset.cache_dir>/inputs/`` in a folder named by the dataset, the
split and a key: the SHA-256 of the data files' bytes, the split fractions, the feature
settings, the subset, the padding and the source code that builds inputs. Any change of
these builds a new store (and removes the one it replaces); a store is written to a temporary
name and renamed when complete, so a killed build leaves nothing that is read later.
``rm -r <cache_dir>/inputs`` reclaims the disk; it costs one pass over the files to rebuild.
See docs/datasets.md#streaming-training.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .io import DataError

__all__ = ["StoredInputs", "split_store", "store_key", "STORE_VERSION"]

#: bumped when the layout of a store changes
STORE_VERSION = 1

#: the modules whose code decides the rows of a store (their source enters the key)
_CODE = ("features.py", "io.py", "kinematics.py", "padding.py", "sample.py", "store.py")

_ARRAYS = ("features", "vectors", "mask", "label", "n_particles")
_IN_MEMORY = ("label", "n_particles")  # 16 bytes a jet: what batching needs


class StoredInputs:
    """The model inputs of one split, in a store on disk (module docstring).

    Behaves as a :class:`~partnb.data.features.JetInputs` for what batching, training and
    inference use: ``len``, ``label`` and ``n_particles`` (in memory), ``feature_set``,
    ``feature_names``, and :meth:`take`, which reads the rows of a batch from disk.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        try:
            meta = json.loads((self.directory / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.directory}: not a complete input store ({exc})") from None
        self.meta = meta
        self.feature_set = meta["feature_set"]
        self.feature_names = tuple(meta["feature_names"])
        self.label = np.load(self.directory / "label.npy")
        self.n_particles = np.load(self.directory / "n_particles.npy")
        self._layout = {}
        for name in ("features", "vectors", "mask"):
            path = self.directory / f"{name}.npy"
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                offset = f.tell()
            if fortran or shape[0] != len(self.label):
                raise DataError(f"{path}: {shape[0]} rows for {len(self.label)} labels")
            self._layout[name] = (path, offset, tuple(shape[1:]), np.dtype(dtype))
        self._fds: dict[str, int] = {}
        self._pid = None

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def __getstate__(self):  # a store travels to other processes by its folder
        return {"directory": str(self.directory)}

    def __setstate__(self, state) -> None:
        self.__init__(state["directory"])

    def _fd(self, name: str) -> int:
        if self._pid != os.getpid():  # file descriptors are not shared across a fork
            self._fds, self._pid = {}, os.getpid()
        if name not in self._fds:
            self._fds[name] = os.open(self._layout[name][0], os.O_RDONLY)
        return self._fds[name]

    def _read_rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (sorted, unique) of array ``name``, reading each run of consecutive
        rows with one ``pread``."""
        path, offset, row_shape, dtype = self._layout[name]
        row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
        out = np.empty((len(rows), *row_shape), dtype=dtype)
        if not len(rows):
            return out
        flat = out.reshape(len(rows), -1).view(np.uint8)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [len(rows)]])
        fd = self._fd(name)
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            want = (b - a) * row_bytes
            data = os.pread(fd, want, offset + int(rows[a]) * row_bytes)
            if len(data) != want:
                raise DataError(f"{path}: truncated (row {int(rows[a])})")
            flat[a:b] = np.frombuffer(data, dtype=np.uint8).reshape(b - a, row_bytes)
        return out

    def take(self, index):
        """The jets at ``index`` (integer indices or a boolean mask), in that order, as an
        in-memory :class:`~partnb.data.features.JetInputs`."""
        from .features import JetInputs

        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False)
        if len(index) and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} jets")
        index = np.where(index < 0, index + len(self), index)
        rows, inverse = np.unique(index, return_inverse=True)
        arrays = {name: self._read_rows(name, rows)[inverse] for name in ("features", "vectors", "mask")}
        return JetInputs(arrays["features"], arrays["vectors"], arrays["mask"], self.label[index],
                         self.n_particles[index], self.feature_set, self.feature_names)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def __del__(self) -> None:
        try:
            if self._pid == os.getpid():
                self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _code_hash() -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _CODE:
        digest.update(name.encode())
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def _split_files(params, split: str) -> list[Path]:
    from . import dataset_files

    if split == "test" and params.dataset.test_files:
        return [Path(f) for f in params.dataset.test_files]
    return list(dataset_files(params).files)


#: file hashes of this process, keyed as provenance keys them (path, size, mtime)
_HASHES: dict[str, str] = {}


def store_key(params, split: str, *, max_jets: int | None, pad_mode: str) -> str:
    """The key of the store of ``split``: what decides its rows (module docstring)."""
    from ..provenance import file_sha256

    files = _split_files(params, split)
    whole = split == "test" and bool(params.dataset.test_files)
    f = params.features
    spec = {
        "version": STORE_VERSION,
        "code": _code_hash(),
        "files": [[p.name, file_sha256(p, _HASHES)] for p in files],
        "split": split,
        "fractions": None if whole else list(params.dataset.split),
        "feature_set": f.set, "max_particles": f.max_particles, "clip": f.clip,
        "max_jets": max_jets, "seed": params.seed if max_jets is not None else None,
        "pad_mode": pad_mode,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


class _ArrayWriter:
    """Rows appended to one ``.npy`` file whose row count is known in advance."""

    def __init__(self, path: Path, n_rows: int) -> None:
        self.path, self.n_rows, self.written, self.file = path, n_rows, 0, None

    def append(self, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        if self.file is None:
            self.file = open(self.path, "wb")
            header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
                      "shape": (self.n_rows, *array.shape[1:])}
            np.lib.format.write_array_header_1_0(self.file, header)
        self.file.write(array.tobytes())
        self.written += len(array)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _build(params, split: str, max_jets: int | None, pad_mode: str, tmp: Path, progress: bool) -> None:
    from .features import build_inputs, required_branches
    from .padding import PAD_MODES
    from .sample import split_chunks, split_labels, subset_index

    if pad_mode not in PAD_MODES:
        raise ValueError(f"unknown pad mode {pad_mode!r}; choose from {', '.join(PAD_MODES)}")
    fs, f = params.features.set, params.features
    n_split = len(split_labels(params, split))
    if n_split == 0:
        raise DataError(f"split {split!r} of {params.source} holds no jets")
    keep = subset_index(n_split, max_jets, params.seed)  # the subset of load_split, in file order
    n_rows = n_split if keep is None else len(keep)
    tmp.mkdir(parents=True)
    writers = {name: _ArrayWriter(tmp / f"{name}.npy", n_rows) for name in _ARRAYS}
    names = ()
    try:
        for chunk in split_chunks(params, split, required_branches(fs), progress=progress, index=keep):
            inputs = build_inputs(chunk, fs, max_particles=f.max_particles, clip=f.clip)
            names = inputs.feature_names
            for name in _ARRAYS:
                writers[name].append(getattr(inputs, name))
    finally:
        for w in writers.values():
            w.close()
    written = writers["label"].written
    if written != n_rows:
        raise DataError(f"split {split!r} of {params.source}: read {written} jets, expected {n_rows} "
                        "(did the files change while reading?)")
    # the folder is only renamed into place when complete, so meta.json may come first: the
    # wrap pass reads the store through it
    (tmp / "meta.json").write_text(json.dumps({
        "feature_set": fs, "feature_names": list(names), "jets": n_rows, "split": split,
        "pad_mode": pad_mode, "max_jets": max_jets, "version": STORE_VERSION}))
    if pad_mode == "wrap":
        _wrap_in_place(tmp)


def _wrap_in_place(directory: Path, chunk: int = 2048) -> None:
    """Weaver's wrap padding (:func:`partnb.data.padding.wrap_pad`) over the whole store,
    chunk by chunk: padded slot s of jet r gets real particle (r·P + s) mod N of the split's
    real particles in flat order. Sources are real slots, which never change, so the padded
    slots are filled in place."""
    store = StoredInputs(directory)
    n_part = store.n_particles.astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_part)])
    total = int(offsets[-1])
    _, _, (_, length), _ = store._layout["mask"]
    if total == 0 or np.all(n_part == length):
        return
    fds = {name: os.open(directory / f"{name}.npy", os.O_WRONLY) for name in ("features", "vectors")}
    try:
        for a in range(0, len(store), chunk):
            rows_all = np.arange(a, min(a + chunk, len(store)))
            part = store.take(rows_all)
            mask = part.mask[:, 0] > 0
            if not np.array_equal(mask.sum(axis=1), part.n_particles) or \
                    not np.array_equal(mask, np.arange(length) < part.n_particles[:, None]):
                raise DataError(f"{directory}: real particles are not the first slots of each jet")
            rows, slots = np.nonzero(~mask)
            if not len(rows):
                continue
            q = ((rows_all[rows] * length + slots) % total).astype(np.int64)
            jet = np.searchsorted(offsets, q, side="right") - 1
            src = store.take(np.unique(jet))
            where = np.searchsorted(np.unique(jet), jet)
            k = q - offsets[jet]
            part.features[rows, :, slots] = src.features[where, :, k]
            part.vectors[rows, :, slots] = src.vectors[where, :, k]
            for name in ("features", "vectors"):
                _, offset, row_shape, dtype = store._layout[name]
                row_bytes = int(np.prod(row_shape)) * dtype.itemsize
                os.pwrite(fds[name], np.ascontiguousarray(getattr(part, name)).tobytes(),
                          offset + a * row_bytes)
    finally:
        for fd in fds.values():
            os.close(fd)
        store.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def split_store(params, split: str, *, max_jets: int | None = None, pad_mode: str = "zero",
                progress: bool = False, log=None, root=None) -> StoredInputs:
    """The store of ``split`` of the params' dataset (built on first use, module docstring).

    Args:
        params: validated params.
        split: ``train``, ``val`` or ``test``.
        max_jets: keep a seeded random subset of this many jets (``params.seed``), in file
            order, as :func:`partnb.data.sample.load_split` does.
        pad_mode: ``zero`` (as read) or ``wrap`` (weaver's padding over the whole split).
        progress: progress bar while building.
        log: a callable taking one line, told when a store is built.
        root: the folder of stores (default ``<dataset.cache_dir>/inputs``).

    Raises:
        DataError: the split holds no jets, or the files changed while being read.
    """
    from .sample import SPLITS

    if split not in SPLITS:
        raise ValueError(f"split = {split!r}: must be one of {', '.join(SPLITS)}")
    key = store_key(params, split, max_jets=max_jets, pad_mode=pad_mode)
    root = Path(params.dataset.cache_dir) / "inputs" if root is None else Path(root)
    stem = f"{params.dataset.name}-{split}-{pad_mode}-{max_jets or 'all'}-"
    target = root / f"{stem}{key[:16]}"
    if (target / "meta.json").exists():
        return StoredInputs(target)
    for stale in root.glob(f".tmp-{target.name}-*"):  # left by a killed build
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-{target.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    if log:
        log(f"writing the {split} split's inputs to {target} (once for these data and settings)")
    try:
        _build(params, split, max_jets, pad_mode, tmp, progress)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "meta.json").exists():  # another process built it: use theirs
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in root.glob(f"{stem}*"):  # the store this one replaces (other data or code)
        if old != target and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return StoredInputs(target)

"""Splits and batches: the one data path of training, evaluation and every analysis.

A dataset is a list of files (generated or real, any supported format: :func:`partnb.data.
dataset_files`). Every file is cut the same way into train / val / test at the params'
``dataset.split`` fractions, class by class (docs/datasets.md#splits-in-partnb), so the splits need no
index file and every split holds every class of a file in proportion. ``dataset.test_files``,
when given, is the test split whole.

Batches come in two orders (docs/datasets.md#length-bucketed-batches):

* ``plain``: consecutive jets (inference) or a seeded permutation (training);
* ``bucketed``: jets of similar multiplicity together. ParT's sequence trimmer cuts each
  batch to its longest jet in eval mode (and to a quantile of its lengths in training), and
  attention and the pair embedding cost grows with P², so a batch of 20-particle jets no
  longer pays for the 64 slots of the longest jet of the sample. A jet's output does not
  depend on the batch it sits in (docs/model.md#invariances), so inference gives the
  same logits up to float rounding; in training the batches differ, so it is a setting of
  the run (``train.batching``).
"""

from __future__ import annotations

import numpy as np

from .io import DataError

__all__ = ["split_chunks", "split_labels", "subset_index", "SPLITS", "split_slice", "split_indices", "file_labels", "split_sizes", "load_split",
           "batch_indices", "BATCHINGS"]

SPLITS = ("train", "val", "test")

#: batch orders of :func:`batch_indices` (and of ``train.batching``)
BATCHINGS = ("plain", "bucketed")

#: batches per bucket in training: the permutation is cut into chunks of this many batches,
#: each sorted by multiplicity, so batch composition stays random at the scale of a chunk
BUCKET_BATCHES = 32


def split_slice(n: int, fractions, split: str) -> slice:
    """The contiguous range of split ``split`` among ``n`` jets of one file.

    Every file is split the same way (first ``fractions[0]`` train, then val, then test), so
    splits are class-balanced for per-class files and stream without an index.
    """
    if split not in SPLITS:
        raise ValueError(f"split = {split!r}: must be one of {', '.join(SPLITS)}")
    bounds = np.round(np.cumsum([0.0, *fractions]) * n).astype(int)
    k = SPLITS.index(split)
    return slice(int(bounds[k]), int(bounds[k + 1]))


def split_indices(labels, fractions, split: str) -> np.ndarray:
    """Indices (in file order) of split ``split`` among the jets of one file, stratified: the
    jets of each class, in file order, are cut at the same fractions, so every split holds
    every class of the file in proportion whatever the order of the file (one sorted by class
    included). A file of one class — every generated file, every JetClass file — is cut
    exactly as :func:`split_slice`."""
    labels = np.asarray(labels)
    parts = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        parts.append(idx[split_slice(len(idx), fractions, split)])
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def file_labels(path) -> np.ndarray:
    """Class index of every jet of one file (the label column only)."""
    from .io import iterate_jets

    chunks = [np.asarray(c.label) for c in iterate_jets([path], branches=[], step_size=200_000)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int64)


def split_sizes(params, *, generate: bool = True) -> dict[str, int]:
    """Jets in each split of the params' dataset (from the files' labels, no features built).

    With ``generate=False`` a generated dataset whose files are not (all) there is counted
    from its plan instead of being generated: every generated file holds ``jets_per_file``
    jets of one class, so the plan gives the same sizes as the files (a test checks it).
    Notebook 10 reads the training-jet counts of its grid points this way, so a fresh clone
    does not generate the grid's datasets to draw them."""
    from . import dataset_files
    from .io import count_jets

    sizes = dict.fromkeys(SPLITS, 0)
    if not generate and params.dataset.source == "generate":
        from .generate import GenerationConfig, iter_generated_files, plan_chunks

        config = GenerationConfig.from_params(params)
        if not all(f.exists() for f in iter_generated_files(config, params.dataset.cache_dir)):
            for chunk in plan_chunks(config):
                for split in SPLITS:
                    cut = split_slice(chunk.n_jets, params.dataset.split, split)
                    sizes[split] += cut.stop - cut.start
            if params.dataset.test_files:
                sizes["test"] = count_jets(list(params.dataset.test_files))
            return sizes
    for f in dataset_files(params).files:
        labels = file_labels(f)
        for split in SPLITS:
            sizes[split] += len(split_indices(labels, params.dataset.split, split))
    if params.dataset.test_files:
        sizes["test"] = count_jets(list(params.dataset.test_files))
    return sizes


def _split_sources(params, split: str, files=None, progress=False):
    """(files, fractions) of a split: the params' files cut at ``dataset.split``, or whole
    files (``dataset.test_files`` for the test split, or ``files`` given)."""
    from . import dataset_files

    if split not in SPLITS:
        raise ValueError(f"split = {split!r}: must be one of {', '.join(SPLITS)}")
    if files is not None:
        return list(files), None
    if split == "test" and params.dataset.test_files:
        return list(params.dataset.test_files), None
    return list(dataset_files(params, progress=progress).files), params.dataset.split


def split_labels(params, split: str, *, files=None) -> np.ndarray:
    """Class index of every jet of one split, in the order of :func:`split_chunks` (only the
    label column is read): what a subset is drawn from before any jet is built."""
    sources, fractions = _split_sources(params, split, files)
    parts = []
    for f in sources:
        labels = file_labels(f)
        parts.append(labels if fractions is None else labels[split_indices(labels, fractions, split)])
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def split_chunks(params, split: str, branches, *, files=None, progress=False, index=None):
    """The jets of one split as awkward chunks of ``branches``, in the file and jet order of
    :func:`load_split` (every consumer of a split reads it through here).

    With ``dataset.test_files`` given, ``split="test"`` reads those files whole; ``files``
    given reads those whole. ``index`` (sorted positions in the split) keeps only those jets:
    chunks are cut to them as they are read, so nothing else is built or held."""
    from .io import iterate_jets

    sources, fractions = _split_sources(params, split, files, progress)
    if index is not None:
        index = np.asarray(index, dtype=np.int64)
        if len(index) > 1 and np.any(np.diff(index) <= 0):
            raise ValueError("index must be sorted positions without repeats")
    pos = 0  # position in the split of the next jet read
    for f in sources:
        keep = None if fractions is None else split_indices(file_labels(f), fractions, split)
        n_read = 0
        for chunk in iterate_jets([f], branches=list(branches), step_size=50_000):
            lo, hi = n_read, n_read + len(chunk)
            n_read = hi
            local = None if keep is None else keep[(keep >= lo) & (keep < hi)] - lo
            n_split = len(chunk) if local is None else len(local)
            if index is not None:
                wanted = index[(index >= pos) & (index < pos + n_split)] - pos
                local = wanted if local is None else local[wanted]
            pos += n_split
            if local is not None:
                if not len(local):
                    continue
                chunk = chunk[local]
            yield chunk


def subset_index(n: int, max_jets: int | None, seed: int) -> np.ndarray | None:
    """The seeded subset of ``max_jets`` of ``n`` jets (sorted positions) that
    :func:`load_split` and the input stores keep; None when all are kept."""
    if max_jets is None or n <= max_jets:
        return None
    return np.sort(np.random.default_rng(seed).permutation(n)[:max_jets])


def load_split(params, split: str, *, max_jets: int | None = None, files=None, progress=False,
               index=None):
    """Model inputs of one split in memory (CPU scale), as :class:`JetInputs`.

    With ``dataset.test_files`` given, ``split="test"`` reads those files whole. ``max_jets``
    keeps a seeded random subset (``params.seed``) in file order; ``index`` (sorted positions
    in the split) keeps those jets. Either way the subset is drawn from the labels first and
    only its jets are built into inputs.

    Raises:
        DataError: the split (or the subset) holds no jets (naming the split and the params file).
    """
    from .features import JetInputs, build_inputs, required_branches

    if max_jets is not None:
        if index is not None:
            raise ValueError("give max_jets or index, not both")
        index = subset_index(len(split_labels(params, split, files=files)), max_jets, params.seed)
    fs = params.features.set
    parts = [build_inputs(chunk, fs, max_particles=params.features.max_particles,
                          clip=params.features.clip)
             for chunk in split_chunks(params, split, required_branches(fs), files=files,
                                       progress=progress, index=index)]
    if not parts:
        raise DataError(f"split {split!r} of {params.source} holds no jets")
    return JetInputs.concat(parts)


def batch_indices(n_particles, batch_size: int, *, batching: str = "plain", seed: int | None = None,
                  epoch: int = 0, drop_last: bool = False) -> list[np.ndarray]:
    """The jets of each batch, as index arrays into ``n_particles``.

    Args:
        n_particles: (N,) real particles of each jet (``JetInputs.n_particles``).
        batch_size: jets per batch.
        batching: ``plain`` or ``bucketed`` (similar multiplicities together).
        seed: None for inference (no shuffling: ``plain`` is file order, ``bucketed`` is
            sorted by multiplicity); for training, the run's seed: the order is a function
            of (seed, epoch) only, so a resumed run sees the same batches.
        epoch: the training epoch (with ``seed``).
        drop_last: drop the incomplete last batch (training: every batch has ``batch_size``).

    ``plain`` with a seed is the permutation ``torch.randperm(N)`` of a generator seeded with
    ``seed * 100003 + epoch``, cut into consecutive batches (the order of every run trained
    before bucketing existed). ``bucketed`` with a seed draws a permutation from the same
    generator, cuts it into chunks of :data:`BUCKET_BATCHES` batches, sorts each chunk by
    multiplicity, cuts it into batches and shuffles the batches.
    """
    if batching not in BATCHINGS:
        raise ValueError(f"batching = {batching!r}: must be one of {', '.join(BATCHINGS)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size = {batch_size!r}: must be a whole number >= 1")
    n_particles = np.asarray(n_particles)
    n = len(n_particles)
    if seed is None:
        order = (np.arange(n) if batching == "plain"
                 else np.argsort(n_particles, kind="stable"))
        batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    else:
        import torch

        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        perm = torch.randperm(n, generator=generator).numpy()
        if batching == "plain":
            batches = [perm[s:s + batch_size] for s in range(0, n, batch_size)]
        else:
            full = (n // batch_size) * batch_size
            head, tail = perm[:full], perm[full:]
            chunk = batch_size * BUCKET_BATCHES
            batches = []
            for s in range(0, full, chunk):
                part = head[s:s + chunk]
                part = part[np.argsort(n_particles[part], kind="stable")]
                batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
            order = torch.randperm(len(batches), generator=generator).numpy()
            batches = [batches[i] for i in order]
            if len(tail):
                batches.append(tail)
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    return batches

"""Streaming attention analyses: one forward pass per batch, consumers fed layer by layer.

Every attention analysis of the papers reduces per-(jet, layer, head) attention maps to
histograms and counters. Holding the maps is what broke the reference scripts (docs/pitfalls.md#pitfall-12-attention-maps-do-not-fit-in-memory:
4 MiB per jet and quantity at P = 128), so here the model runs batch by batch with an
:class:`~partnb.model.part.AttentionProbe` whose records are handed, block by block, to
*consumers* and then dropped. Memory is that of one block of one batch, whatever the number
of jets.

A consumer is any object with a method ``update(key, record, batch)``:

* ``key``: the block (int index of a particle block, ``"cls0"`` … for class blocks);
* ``record``: the probe's record of that block for this batch (``"A"``, ``"U"``, ``"L"``,
  ``"P"``, ``"A_as_coded"``, ``"P_as_coded"``, ``"padding_mask"``, ``"n"``, and for the
  differential attention variants ``"A2"``, ``"U2"``, ``"L2"``, ``"P1"``, ``"P2"``,
  ``"lambda"``, docs/model.md#probes-of-the-variants; tensors on the CPU, P = the trimmed
  length of this batch);
* ``batch``: a :class:`Batch` (which jets, their labels, their inputs).

Consumers may also define ``update_logits(logits, batch)`` to see the model's output.

Only entries with query and key both real particles are meaningful (docs/pitfalls.md#pitfall-4-padding-must-be-masked-and-excluded):
:func:`real_pairs` and :func:`real_queries` give the masks, and :func:`pair_layout` the
positions of those entries, computed once per batch and shared by every block and consumer.

Speed: a block's tensors hold ~10⁶–10⁷ entries, and what a consumer does to each of them is
what the analysis pass costs beyond inference. The consumers therefore gather the real pairs
once (``index_select`` with :class:`PairLayout`, not boolean indexing, which is ~30× slower),
bin by arithmetic on the values (not ``torch.bucketize``, ~100× slower than a multiply and a
floor on one thread), histogram with one ``bincount`` per quantity and work in reusable
:class:`Scratch` buffers (a fresh multi-megabyte tensor per operation costs more in page
faults than the operation itself). ``benchmarks/analysis.py`` measures the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

__all__ = ["AnalysisError", "Batch", "Consumer", "PairLayout", "Scratch", "analysis_inputs", "class_indices", "count_true",
           "pair_layout", "real_pairs", "real_queries", "stream_attention"]


def count_true(flags: Tensor) -> Tensor:
    """Number of True along the last axis of a bool tensor, int32."""
    return flags.view(torch.uint8).sum(dim=-1, dtype=torch.int32)


@runtime_checkable
class Consumer(Protocol):
    """What :func:`stream_attention` feeds: every analysis consumer takes each probed block's
    record with ``update(key, record, batch)`` and gives its results as a table with
    ``rows()`` (a list of flat dicts, what :func:`partnb.outputs.save_table` writes). A
    consumer may offer other views of the same numbers (e.g. histograms for a figure), and
    ``rows`` may take labels for its columns (``rows(model="trained")``)."""

    def update(self, key, record: dict, batch: Batch) -> None: ...

    def rows(self, *args, **kwargs) -> list[dict]: ...


class AnalysisError(ValueError):
    """An analysis cannot run on the given inputs (e.g. a class it needs is missing)."""


@dataclass
class Batch:
    """The jets of one forward pass.

    Attributes:
        index: (B,) positions of the jets in the analysed inputs (of the whole inputs when a
            pass runs over one shard of them, ``stream_attention(index_offset=...)``: the
            jackknife groups of the consumers are taken from it).
        label: (B,) class indices.
        n: (B,) real particles per jet (``min(n, max_particles)``), as the model saw them.
        inputs: the :class:`~partnb.data.features.JetInputs` of these jets (numpy).
        number: the position of this batch among the batches of the whole inputs (0 for the
            first); None for a batch made by hand.
    """

    index: np.ndarray
    label: np.ndarray
    n: np.ndarray
    inputs: object
    number: int | None = None
    #: what consumers share within this batch (e.g. the :class:`PairLayout` of its blocks)
    cache: dict = field(default_factory=dict, repr=False, compare=False)


def analysis_inputs(params, *, n_jets: int | None = None, classes: Sequence[str] | None = None,
                    split: str = "test", progress: bool = False):
    """Model inputs of the jets an analysis runs on: the params' test split (or ``split``),
    at most ``n_jets`` of them (default ``analysis.n_jets``; a seeded subset), optionally only
    the given classes (names as in the dataset's class list).

    Raises:
        AnalysisError: a requested class is not a class of the dataset, or the split holds
            no jet of it (naming the class and what the split holds).
    """
    from partnb.data.sample import load_split, split_labels, subset_index
    from partnb.data.schema import DATASETS

    n_jets = params.analysis.n_jets if n_jets is None else n_jets
    all_classes = list(DATASETS[params.dataset.name].classes)
    # the subset is drawn from the labels alone, so only its jets are read into inputs
    labels = split_labels(params, split)
    positions = np.arange(len(labels))
    if classes:
        wanted = class_indices(all_classes, classes)
        positions = np.flatnonzero(np.isin(labels, wanted))
        if not len(positions):
            present = sorted({all_classes[i] for i in np.unique(labels) if i >= 0})
            raise AnalysisError(
                f"the {split} split of {params.source} holds no {'/'.join(classes)} jets "
                f"(classes present: {', '.join(present)})")
    keep = subset_index(len(positions), n_jets, params.seed)
    if keep is not None:
        positions = positions[keep]
    return load_split(params, split, progress=progress, index=positions)


def class_indices(all_classes: Sequence[str], names: Iterable[str]) -> list[int]:
    """Indices of class ``names`` in ``all_classes``; AnalysisError for an unknown one."""
    out = []
    for name in names:
        if name not in all_classes:
            raise AnalysisError(f"class {name!r} is not a class of this dataset "
                                f"({', '.join(all_classes)})")
        out.append(list(all_classes).index(name))
    return out


def real_queries(record: dict[str, Tensor]) -> Tensor:
    """(B, 1, P) bool: query i is a real particle (for blocks' (B, H, P, ·) tensors)."""
    return (~record["padding_mask"])[:, None, :]


def real_pairs(record: dict[str, Tensor]) -> Tensor:
    """(B, 1, P, P) bool: query i and key j are both real particles (particle blocks)."""
    real = ~record["padding_mask"]
    return (real[:, :, None] & real[:, None, :])[:, None]


class PairLayout:
    """Where the entries that count sit in one batch's (B, H, P, P) attention tensors.

    The entries are those of real query and real key (``real_only=True``), or every entry of
    the jets with at least one real particle (the papers' as-coded reading, padding
    included). They are ordered head by head, then jet by jet, row-major within a jet: the
    same m = M / H pairs for every head, so gathered values reshape to (H, m).

    Attributes:
        flat: (M,) int64 positions in the flattened (B, H, P, P) tensor (``index_select``).
        jet: (m,) int64 the jet of each pair of one head.
        counts: (B, H) int64 numpy, entries per (jet, head).
    """

    def __init__(self, padding: Tensor, heads: int, *, real_only: bool = True) -> None:
        real = ~padding  # (B, P)
        B, P = real.shape
        if real_only:
            pairs = real[:, :, None] & real[:, None, :]
        else:
            pairs = real.any(dim=1)[:, None, None].expand(B, P, P)
        self.shape = (B, heads, P, P)
        per_jet = pairs.reshape(B, P * P).sum(dim=1)
        where = torch.nonzero(pairs.reshape(-1))[:, 0]  # jet-major positions b·P² + ij
        self.jet = where // (P * P)
        base = where + self.jet * ((heads - 1) * P * P)  # b·H·P² + ij
        self.flat = (base[None, :] + torch.arange(heads)[:, None] * (P * P)).reshape(-1)
        self.counts = per_jet[:, None].expand(B, heads).numpy().astype(np.int64)
        self._offsets: dict = {}

    def __len__(self) -> int:
        return int(self.flat.numel())

    @property
    def heads(self) -> int:
        return self.shape[1]

    def offsets(self, bins: int) -> Tensor:
        """(M,) int32 (b·H + h)·bins: add an entry's bin in [0, bins) and ``bincount`` with
        ``minlength = B·H·bins`` to histogram every (jet, head) at once (cached per ``bins``)."""
        if bins not in self._offsets:
            H = self.heads
            per_jet = (self.jet * (H * bins)).to(torch.int32)
            self._offsets[bins] = (per_jet[None, :] + torch.arange(H, dtype=torch.int32)[:, None]
                                   * bins).reshape(-1)
        return self._offsets[bins]

    def gather(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        """The entries of ``x`` (B, H, P, P) (broadcast over H if its H is 1), as (M,)."""
        if x.shape != self.shape:
            x = x.expand(self.shape)
        x = x.contiguous().reshape(-1)
        return torch.index_select(x, 0, self.flat, out=out) if out is not None else x[self.flat]


def pair_layout(record: dict[str, Tensor], batch: Batch, heads: int, *,
                real_only: bool = True) -> PairLayout:
    """The :class:`PairLayout` of this batch's blocks (built once per batch, shape and reading,
    then shared through ``batch.cache``)."""
    padding = record["padding_mask"]
    key = ("pairs", heads, tuple(padding.shape), real_only)
    layout = batch.cache.get(key)
    if layout is None:
        layout = batch.cache[key] = PairLayout(padding, heads, real_only=real_only)
    return layout


class Scratch:
    """Reusable work buffers of a consumer: ``scratch("name", n, dtype)`` is a length-n view of
    a buffer that only grows, so streaming many batches allocates each buffer once."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.dtype], Tensor] = {}

    def __call__(self, name: str, size: int, dtype: torch.dtype = torch.float32) -> Tensor:
        buffer = self._buffers.get((name, dtype))
        if buffer is None or buffer.numel() < size:
            # a quarter extra, so slowly growing batches do not reallocate every time
            buffer = self._buffers[(name, dtype)] = torch.empty(size + size // 4, dtype=dtype)
        return buffer[:size]


def stream_attention(
    model,
    inputs,
    consumers: Sequence[object],
    *,
    batch_size: int = 100,
    capture: Sequence[str] = ("A", "U", "P"),
    layers: Sequence[int] | None = None,
    include_cls: bool = False,
    as_coded: bool = False,
    intervention=None,
    vectors_dtype: torch.dtype | None = None,
    progress: bool = False,
    desc: str = "attention",
    index_offset: int = 0,
) -> np.ndarray:
    """Run ``model`` over ``inputs`` in eval mode, feeding each probed block to the consumers.

    Args:
        model: a :class:`~partnb.model.part.ParticleTransformer`.
        inputs: :class:`~partnb.data.features.JetInputs`.
        consumers: objects with ``update(key, record, batch)`` (and optionally
            ``update_logits(logits, batch)``).
        batch_size: jets per forward pass.
        capture, layers, include_cls, as_coded: what the probe records (see
            :class:`~partnb.model.part.AttentionProbe`).
        intervention: an :class:`~partnb.model.part.Intervention` for every call.
        vectors_dtype: dtype of the 4-vectors the pair features are computed from (float64
            for the precision study of docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise); default float32.
        progress: tqdm bar.
        index_offset: position of ``inputs[0]`` in the whole analysed inputs, when ``inputs``
            is one shard of them (:mod:`partnb.analysis.shard`): ``Batch.index`` and
            ``Batch.number`` count in the whole inputs, so jackknife groups are those of one
            pass. A multiple of ``batch_size``, so the batches are those of one pass too.

    Returns:
        the logits (N, classes) as numpy float32.
    """
    from tqdm.auto import tqdm

    from partnb.model.part import AttentionProbe

    if index_offset < 0 or index_offset % batch_size:
        raise ValueError(f"index_offset = {index_offset} must be a non-negative multiple of "
                         f"batch_size = {batch_size} (a shard starts at a batch boundary)")
    state: dict[str, Batch] = {}

    def on_layer(key, record):
        for consumer in consumers:
            consumer.update(key, record, state["batch"])

    probe = AttentionProbe(layers=layers, capture=capture, include_cls=include_cls,
                           as_coded=as_coded, on_layer=on_layer, store=False)
    model.eval()
    logits_out = []
    starts = range(0, len(inputs), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, disable=not progress, desc=desc, unit="batch", leave=False):
            idx = np.arange(start, min(start + batch_size, len(inputs)))
            x = torch.as_tensor(inputs.features[idx])
            v = torch.as_tensor(inputs.vectors[idx])
            if vectors_dtype is not None:
                v = v.to(vectors_dtype)
            m = torch.as_tensor(inputs.mask[idx])
            n = m.sum(dim=(1, 2)).long().numpy()
            state["batch"] = Batch(idx + index_offset, inputs.label[idx], n, inputs.take(idx),
                                   number=(index_offset + start) // batch_size)
            logits = model(x, v, m, probe=probe, intervention=intervention).float()
            for consumer in consumers:
                if hasattr(consumer, "update_logits"):
                    consumer.update_logits(logits, state["batch"])
            logits_out.append(logits.numpy())
    return np.concatenate(logits_out) if logits_out else np.zeros((0, 0), np.float32)

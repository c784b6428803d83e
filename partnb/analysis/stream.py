"""Streaming attention analyses: one forward pass per batch, consumers fed layer by layer.

Every attention analysis of the papers reduces per-(jet, layer, head) attention maps to
histograms and counters. Holding the maps is what broke the reference scripts (SPEC pitfall
12: 4 MiB per jet and quantity at P = 128), so here the model runs batch by batch with an
:class:`~partnb.model.part.AttentionProbe` whose records are handed, block by block, to
*consumers* and then dropped. Memory is that of one block of one batch, whatever the number
of jets.

A consumer is any object with a method ``update(key, record, batch)``:

* ``key``: the block (int index of a particle block, ``"cls0"`` … for class blocks);
* ``record``: the probe's record of that block for this batch (``"A"``, ``"U"``, ``"L"``,
  ``"P"``, ``"A_as_coded"``, ``"P_as_coded"``, ``"padding_mask"``, ``"n"``; tensors on the
  CPU, P = the trimmed length of this batch);
* ``batch``: a :class:`Batch` (which jets, their labels, their inputs).

Consumers may also define ``update_logits(logits, batch)`` to see the model's output.

Only entries with query and key both real particles are meaningful (SPEC pitfall 4):
:func:`real_pairs` and :func:`real_queries` give the masks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["AnalysisError", "Batch", "analysis_inputs", "class_indices", "real_pairs",
           "real_queries", "stream_attention"]


class AnalysisError(ValueError):
    """An analysis cannot run on the given inputs (e.g. a class it needs is missing)."""


@dataclass
class Batch:
    """The jets of one forward pass.

    Attributes:
        index: (B,) positions of the jets in the analysed inputs.
        label: (B,) class indices.
        n: (B,) real particles per jet (``min(n, max_particles)``), as the model saw them.
        inputs: the :class:`~partnb.data.features.JetInputs` of these jets (numpy).
    """

    index: np.ndarray
    label: np.ndarray
    n: np.ndarray
    inputs: object


def analysis_inputs(params, *, n_jets: int | None = None, classes: Sequence[str] | None = None,
                    split: str = "test", progress: bool = False):
    """Model inputs of the jets an analysis runs on: the params' test split (or ``split``),
    at most ``n_jets`` of them (default ``analysis.n_jets``; a seeded subset), optionally only
    the given classes (names as in the dataset's class list).

    Raises:
        AnalysisError: a requested class is not a class of the dataset, or the split holds
            no jet of it (naming the class and what the split holds).
    """
    from partnb.data.schema import DATASETS
    from partnb.train import load_split

    n_jets = params.analysis.n_jets if n_jets is None else n_jets
    all_classes = list(DATASETS[params.dataset.name].classes)
    inputs = load_split(params, split, progress=progress)
    if classes:
        wanted = class_indices(all_classes, classes)
        keep = np.flatnonzero(np.isin(inputs.label, wanted))
        if not len(keep):
            present = sorted({all_classes[i] for i in np.unique(inputs.label) if i >= 0})
            raise AnalysisError(
                f"the {split} split of {params.source} holds no {'/'.join(classes)} jets "
                f"(classes present: {', '.join(present)})")
        inputs = _take(inputs, keep)
    if n_jets is not None and len(inputs) > n_jets:
        keep = np.sort(np.random.default_rng(params.seed).permutation(len(inputs))[:n_jets])
        inputs = _take(inputs, keep)
    return inputs


def class_indices(all_classes: Sequence[str], names: Iterable[str]) -> list[int]:
    """Indices of class ``names`` in ``all_classes``; AnalysisError for an unknown one."""
    out = []
    for name in names:
        if name not in all_classes:
            raise AnalysisError(f"class {name!r} is not a class of this dataset "
                                f"({', '.join(all_classes)})")
        out.append(list(all_classes).index(name))
    return out


def _take(inputs, keep: np.ndarray):
    from partnb.data.features import JetInputs

    return JetInputs(inputs.features[keep], inputs.vectors[keep], inputs.mask[keep],
                     inputs.label[keep], inputs.n_particles[keep], inputs.feature_set,
                     inputs.feature_names)


def real_queries(record: dict[str, Tensor]) -> Tensor:
    """(B, 1, P) bool: query i is a real particle (for blocks' (B, H, P, ·) tensors)."""
    return (~record["padding_mask"])[:, None, :]


def real_pairs(record: dict[str, Tensor]) -> Tensor:
    """(B, 1, P, P) bool: query i and key j are both real particles (particle blocks)."""
    real = ~record["padding_mask"]
    return (real[:, :, None] & real[:, None, :])[:, None]


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
            for the precision study of SPEC pitfall 5); default float32.
        progress: tqdm bar.

    Returns:
        the logits (N, classes) as numpy float32.
    """
    from tqdm.auto import tqdm

    from partnb.model.part import AttentionProbe

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
            state["batch"] = Batch(idx, inputs.label[idx], n, _take(inputs, idx))
            logits = model(x, v, m, probe=probe, intervention=intervention).float()
            for consumer in consumers:
                if hasattr(consumer, "update_logits"):
                    consumer.update_logits(logits, state["batch"])
            logits_out.append(logits.numpy())
    return np.concatenate(logits_out) if logits_out else np.zeros((0, 0), np.float32)

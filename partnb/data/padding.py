"""Padding of the padded slots of model inputs: zeros, or weaver's ``wrap``.

partnb's readers pad with zeros. weaver's data configurations pad every particle input of
ParT with ``pad_mode: wrap`` (its ``_repeat_pad``): the particles of all jets loaded
together are flattened into one list, the list is tiled, and padded slot s of jet r gets
entry (r·P + s) mod (list length) — a real particle of some other jet, the same entry for
every variable, so a padded slot carries a consistent fake particle (features and 4-vector).
The mask still marks the slot as padding. See docs/features.md#padding.

In eval mode ParT's output does not depend on what the padded slots hold (the invariance
tested in ``tests/test_model.py``), but in training the BatchNorms of the particle and pair
embeddings take their batch statistics over every slot, padded ones included. Zero-padded
slots give pair features at the ε floor (ln kT = ln z = ln m² = ln 1e-8 ≈ −18.4), which pull
the pair-embedding BatchNorm's running mean far below the real pairs' values; wrapped slots
look like real particles. That is why ``features.pad_mode`` matters only for training.

One difference from weaver, stated in the docstring of :func:`wrap_pad`: the list that is
tiled holds the *kept* (first P) particles of each jet, since partnb's inputs are already
truncated; weaver tiles all particles of the loaded jets before truncating. Both fill the
padded slots with real particles of other jets in the same deterministic order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PAD_MODES", "wrap_pad", "pad_inputs"]

#: the values of ``features.pad_mode``
PAD_MODES = ("wrap", "zero")


def wrap_pad(inputs):
    """A copy of ``inputs`` (:class:`~partnb.data.features.JetInputs`) whose padded slots hold
    weaver's ``wrap`` padding (module docstring); real slots, mask, labels are unchanged.

    The jets of ``inputs`` are the "loaded chunk" of weaver's rule: padded slot s of jet r
    gets kept particle number (r·P + s) mod N of the flattened real particles of all jets
    (N of them, in jet order, slot order within a jet). With no real particle at all the
    inputs are returned unchanged (zeros).
    """
    from .features import JetInputs

    mask = np.asarray(inputs.mask[:, 0] > 0)  # (B, P)
    n_jets, length = mask.shape
    total = int(mask.sum())
    if total == 0 or mask.all():
        return inputs
    # real particles in flat order: row-major over (jet, slot) picks jet order, then slot order
    feats = np.moveaxis(inputs.features, 1, 2)  # (B, P, C) view
    vecs = np.moveaxis(inputs.vectors, 1, 2)
    flat_feats, flat_vecs = feats[mask], vecs[mask]  # (N, C), (N, 4)
    rows, slots = np.nonzero(~mask)
    source = (rows.astype(np.int64) * length + slots) % total
    features, vectors = inputs.features.copy(), inputs.vectors.copy()
    features[rows, :, slots] = flat_feats[source]
    vectors[rows, :, slots] = flat_vecs[source]
    return JetInputs(features, vectors, inputs.mask, inputs.label, inputs.n_particles,
                     inputs.feature_set, inputs.feature_names)


def pad_inputs(inputs, mode: str):
    """``inputs`` padded as ``mode`` says (``"zero"``: as read; ``"wrap"``: :func:`wrap_pad`)."""
    if mode == "zero":
        return inputs
    if mode == "wrap":
        return wrap_pad(inputs)
    raise ValueError(f"unknown pad mode {mode!r}; choose from {', '.join(PAD_MODES)}")

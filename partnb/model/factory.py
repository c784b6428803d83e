"""The params' model: building it, finding its checkpoint, loading it, running it.

Nothing here trains: :func:`load_trained` raises when the checkpoint is missing, naming the
command that makes it. Notebooks use :func:`partnb.notebook.trained_model`, which trains
first when allowed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import CheckpointError

__all__ = ["model_from_params", "plain_params", "final_checkpoint", "load_trained",
           "predict", "batch_tensors"]


def model_from_params(params, num_classes: int | None = None):
    """A :class:`ParticleTransformer` sized by the params (input_dim from the feature set),
    with the params' attention variant (``model.attention``)."""
    from ..data.features import FEATURE_SETS
    from ..data.schema import DATASETS
    from .part import ParticleTransformer

    m = params.model
    return ParticleTransformer(
        input_dim=len(FEATURE_SETS[params.features.set]),
        num_classes=num_classes or len(DATASETS[params.dataset.name].classes),
        pair_input_dim=params.features.pair_features or 4,
        embed_dims=tuple(m.embed_dims),
        pair_embed_dims=tuple(m.pair_embed_dims) if params.features.pair_features else (),
        num_heads=m.num_heads, num_layers=m.num_layers, num_cls_layers=m.num_cls_layers,
        dropout=m.dropout, attn_dropout=m.dropout, activation_dropout=m.dropout, trim=m.trim,
        attention=m.attention,
    )


def plain_params(params):
    """The params of ParT-plain (docs/analyses.md#part-plain): the same model and recipe without
    pair features (no U at all), trained into ``<output.models>/plain``. Not an ablation of the
    trained model but a network of its own, as in the ParT paper's "ParT (plain)" row.

    The attention variant is kept, except IAFormer's ``differential_u``, whose maps come from
    U alone: its plain counterpart is ``differential`` (the same difference of two maps,
    from query–key terms only; docs/model.md#attention-variants)."""
    from ..params import params_from_dict

    data = params.to_dict()
    data["features"]["pair_features"] = 0
    if data["model"].get("attention") == "differential_u":
        data["model"]["attention"] = "differential"
    data["model"]["checkpoint"] = None
    data["output"]["models"] = str(Path(data["output"]["models"]) / "plain")
    return params_from_dict(data, source=params.source, root=params.root)


def final_checkpoint(params) -> Path:
    """``model.checkpoint`` if set, else the last epoch of ``train.epochs`` in ``output.models``."""
    if params.model.checkpoint:
        return Path(params.model.checkpoint)
    return Path(params.output.models) / f"epoch_{params.train.epochs:03d}.pt"


def checkpoint_path(params, *, random_init: bool = False) -> Path:
    """The file :func:`load_trained` reads: the final checkpoint, or ``random_init.pt`` (the
    seeded untrained model, saved before the first training step)."""
    return Path(params.output.models) / "random_init.pt" if random_init else final_checkpoint(params)


def load_trained(params, *, random_init: bool = False):
    """The params' model in eval mode from :func:`checkpoint_path`.

    Raises:
        CheckpointError: the checkpoint is missing (naming it and the command that trains
            it) or does not fit the params' model.
    """
    from .checkpoint import load_state_dict_any

    path = checkpoint_path(params, random_init=random_init)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; run `partnb train {params.source}`")
    model = model_from_params(params)
    load_state_dict_any(model, path)
    return model.eval()


def batch_tensors(inputs, idx, device="cpu"):
    """(features, vectors, mask, label) tensors of the jets ``idx`` of a JetInputs (or of a
    :class:`~partnb.data.store.StoredInputs`, which reads just those rows from disk)."""
    part = inputs.take(np.asarray(idx))
    return (torch.from_numpy(part.features).to(device), torch.from_numpy(part.vectors).to(device),
            torch.from_numpy(part.mask).to(device), torch.from_numpy(part.label).to(device))


@torch.no_grad()
def predict(model: nn.Module, inputs, *, batch_size: int = 500, device="cpu",
            batching: str = "bucketed", **forward_kw) -> np.ndarray:
    """Logits of ``inputs`` (a JetInputs) in eval mode, in the order of ``inputs``.

    ``batching="bucketed"`` (default) runs jets of similar multiplicity together, so the
    model's trimmer cuts each batch short (docs/datasets.md#length-bucketed-batches); a jet's
    logits do not depend on its batch (docs/model.md#invariances), so ``"plain"`` gives the
    same numbers up to float rounding, more slowly.
    """
    from ..data.sample import batch_indices

    model.eval()
    out = None
    for idx in batch_indices(inputs.n_particles, batch_size, batching=batching):
        x, v, m, _ = batch_tensors(inputs, idx, device)
        logits = model(x, v, m, **forward_kw).float().cpu().numpy()
        if out is None:
            out = np.empty((len(inputs), logits.shape[1]), dtype=logits.dtype)
        out[idx] = logits
    return out if out is not None else np.zeros((0, 0))

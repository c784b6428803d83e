"""What notebooks call to get a model: above the trainer and the analyses in the layering
(docs/design.md#layout), so it may train.
"""

from __future__ import annotations

__all__ = ["needs_training", "trained_model"]


def needs_training(params, *, random_init: bool = False) -> bool:
    """The checkpoint the params' model is loaded from is missing and is not a given
    ``model.checkpoint``, so :func:`partnb.train.train` would make it."""
    from .model.factory import checkpoint_path

    return not (checkpoint_path(params, random_init=random_init).exists()
                or params.model.checkpoint)


def trained_model(params, *, train_if_missing: bool = True, progress: bool | None = None,
                  random_init: bool = False):
    """The params' model in eval mode: the given checkpoint, the trained default, or (if it
    is missing and ``train_if_missing``) trained now with :func:`partnb.train.train`, which
    resumes a partial run. ``random_init=True`` gives the seeded untrained model.

    Raises:
        CheckpointError: the checkpoint is missing and may not be trained here (a given
            ``model.checkpoint``, or ``train_if_missing=False``).
    """
    from .model.factory import load_trained

    if train_if_missing and needs_training(params, random_init=random_init):
        from .train import train

        train(params, progress=progress)
    return load_trained(params, random_init=random_init)

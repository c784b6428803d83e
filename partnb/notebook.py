"""What notebooks call to get a model: above the trainer and the analyses in the layering
(docs/design.md#layout), so it may train.
"""

from __future__ import annotations

__all__ = ["needs_training", "seeded_model", "trained_model", "trains_plain"]


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
    resumes a partial run. ``random_init=True`` gives the seeded untrained model. The model
    carries ``analysis.scheduler`` / ``analysis.shards`` for the analysis passes
    (:func:`partnb.analysis.shard.engine_of`); a scheduler address is checked first.

    Raises:
        AnalysisError: ``analysis.scheduler`` names a Dask scheduler that does not answer
            (or dask.distributed is missing), before anything is loaded or trained.
        CheckpointError: the checkpoint is missing and may not be trained here (a given
            ``model.checkpoint``, or ``train_if_missing=False``).
    """
    from .analysis.shard import check_scheduler
    from .model.factory import checkpoint_path, load_trained

    check_scheduler(params.analysis.scheduler)  # before any work
    if random_init and params.model.checkpoint and not checkpoint_path(
            params, random_init=True).exists():
        return _with_engine(seeded_model(params), params)
    if train_if_missing and needs_training(params, random_init=random_init):
        from .train import train

        train(params, progress=progress)
    return _with_engine(load_trained(params, random_init=random_init), params)


def _with_engine(model, params):
    """Record ``analysis.scheduler`` and ``analysis.shards`` on the model: the streamed passes
    of notebooks 03, 04 and 06 then run over shards of the jets on that engine
    (:func:`partnb.analysis.shard.engine_of`, docs/cluster.md#sharded-analysis)."""
    model.analysis_engine = (params.analysis.scheduler, params.analysis.shards)
    return model


def seeded_model(params):
    """The params' never-trained model in eval mode, initialised as :func:`partnb.train.train`
    initialises it (``torch.manual_seed(seed)``, then the model is built): the random
    initialisation to compare a given ``model.checkpoint`` with (e.g. an official ParT),
    which comes with no ``random_init.pt`` of its own. The global torch RNG is restored."""
    import torch

    from .model.factory import model_from_params

    state = torch.get_rng_state()
    try:
        torch.manual_seed(params.seed)
        model = model_from_params(params)
    finally:
        torch.set_rng_state(state)
    return model.eval()


def trains_plain(params) -> bool:
    """Whether ParT-plain of ``params`` may be trained when missing: not for a given
    ``model.checkpoint`` (an official ParT has no ParT-plain of the same recipe to train on
    the user's data; its notebook 06 row is skipped unless ``<output.models>/plain`` holds
    one)."""
    return not params.model.checkpoint

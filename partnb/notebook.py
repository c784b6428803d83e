"""What notebooks call to get a model: above the trainer and the analyses in the layering
(docs/design.md#layout), so it may train.
"""

from __future__ import annotations

__all__ = ["needs_training", "seeded_model", "setup", "trained_model", "trains_plain",
           "variant_status"]

#: notebook parameters that are not read from a section of their own name
_ALIASES = {"n_jets": "analysis.n_jets", "progress": "analysis.progress"}
#: notebook parameters that would make a notebook disagree with the others of its run
_REFUSED = {
    "jets_per_class": "set dataset.jets_per_class in the params file instead: a notebook "
                      "override makes a sample (another cache folder) that only this notebook "
                      "sees, while the other notebooks of the run read the params' one",
}
#: notebook parameters that steer the notebook itself (train now or not), not an analysis
_RUN_FLAGS = ("train_if_missing", "train_plain_if_missing")


def _parameter_key(name: str) -> str | None:
    from .params import SCHEMA

    if name in _ALIASES:
        return _ALIASES[name]
    for section in ("analysis", "notebook"):
        if name in SCHEMA[section]:
            return f"{section}.{name}"
    return None


def setup(params_file, **parameters):
    """The params of a notebook run: ``params_file`` loaded and validated with the notebook's
    parameters as overrides, so a parameter behaves the same in every notebook and a bad one
    is one clear message before any work (docs/design.md#notebook-parameters).

    A parameter overrides the params key of its name in ``analysis`` or ``notebook`` (and
    ``n_jets`` / ``progress`` the keys ``analysis.n_jets`` / ``analysis.progress``); ``None``
    keeps the params' value. ``train_if_missing`` and ``train_plain_if_missing`` must be
    true or false. ``analysis.threads`` (when not 0) sets torch's thread count.

    Raises:
        ParamsError: an unknown parameter (with the nearest valid name), a refused one
            (``jets_per_class``: a notebook would see a sample the others do not), or an
            invalid value (naming the parameter and the params key).
    """
    import difflib

    from .params import SCHEMA, ParamsError, load_params

    overrides, keys = {}, {}
    for name, value in parameters.items():
        if name in _REFUSED:
            if value is not None:
                raise ParamsError(f"notebook parameter {name} = {value!r}: {_REFUSED[name]}")
            continue
        if name in _RUN_FLAGS:
            if not isinstance(value, bool):
                raise ParamsError(f"notebook parameter {name} = {value!r}: must be true or false")
            continue
        key = _parameter_key(name)
        if key is None:
            valid = [*_ALIASES, *SCHEMA["analysis"], *SCHEMA["notebook"], *_RUN_FLAGS]
            near = difflib.get_close_matches(name, valid, n=1)
            raise ParamsError(f"unknown notebook parameter {name!r}"
                              + (f" (did you mean {near[0]!r}?)" if near else ""))
        overrides[key], keys[key] = value, name
    try:
        params = load_params(params_file, overrides)
    except ParamsError as exc:
        named = [f"{name} (params key {key})" for key, name in keys.items() if key in str(exc)]
        if named:
            raise ParamsError(f"{exc} — from the notebook parameter {named[0]}") from None
        raise
    if params.analysis.threads:
        import torch

        torch.set_num_threads(params.analysis.threads)
    return params


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


def variant_status(params, variants, skipped, *, label: str = "variant", columns=None) -> list[dict]:
    """The table notebooks 11 and 12 show first: each variant (``[(name, params)]`` of
    :func:`partnb.analysis.variants.compare_variants`) with its checkpoint, whether it is
    trained and the command that trains it, then each left-out file with its reason.
    ``columns(p)`` gives more columns of a variant, placed after its name (empty for the
    left-out files); ``label`` names the first column."""
    import os

    from .model.factory import final_checkpoint

    def rel(path) -> str:
        return os.path.relpath(path, params.root)

    rows = [{label: name, **(columns(p) if columns else {}), "checkpoint": rel(final_checkpoint(p)),
             "status": "not trained" if needs_training(p) else "trained",
             "command": f"partnb train {rel(p.source)}"} for name, p in variants]
    blank = dict.fromkeys(columns(variants[0][1]), "") if columns and variants else {}
    rows += [{label: "—", **blank, "checkpoint": rel(s["file"]), "status": "left out: " + s["reason"],
              "command": ""} for s in skipped]
    return rows

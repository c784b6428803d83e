"""Loading and saving ParT weights in weaver's formats (docs/model.md#state-dict-keys, docs/pitfalls.md#pitfall-1-weaver-05-computes-another-function).

Accepted state dicts (file or mapping):

* weaver-core 0.4.x (the official checkpoints, ``models/ParT_{kin,kinpid,full}.pt``): keys
  ``mod.<name>`` with ``attn.in_proj_weight`` / ``attn.in_proj_bias``;
* weaver-core ≥ 0.5 names ``attn.in_proj.weight`` / ``attn.in_proj.bias`` (renamed on load);
* this package's own unprefixed keys (``ParticleTransformer.state_dict()``).

Attention variants (docs/model.md#checkpoints-of-the-variants): a model whose particle blocks
do not use the softmax carries its variant's name in the state-dict entry
``attention_variant``; weaver and softmax checkpoints have none and load as softmax. Loading
into a model of another variant raises one :class:`CheckpointError` naming both variants and
the file.

Weights *trained* with weaver ≥ 0.5 compute a different function with the same keys: 0.5
scales the heads by ``c_attn`` without 0.4's channel permutation (docs/model.md#weaver-05-and-the-fold). Load them
either into a model built with ``w05_head_scaling=True`` or, after
:func:`fold_w05_into_w04`, into the default model. Nothing in a state dict tells the two
apart, nor reveals ``use_pre_activation_pair`` (docs/pitfalls.md#pitfall-2-the-gelu-on-u-is-a-silent-setting): the loader cannot check them.

:func:`save_checkpoint` writes weaver-0.4.x format (``mod.`` prefix) atomically, so weaver
can load our models.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from partnb.model.part import ParticleTransformer, attention_of_state

__all__ = [
    "CheckpointError",
    "fold_w05_into_w04",
    "infer_config",
    "load_error_reason",
    "load_state_dict_any",
    "normalize_state_dict",
    "read_checkpoint_extra",
    "save_checkpoint",
]

_PREFIXES = ("mod.", "module.")
_W05_RENAMES = {".attn.in_proj.weight": ".attn.in_proj_weight",
                ".attn.in_proj.bias": ".attn.in_proj_bias"}
#: Feature-set names by number of particle features (docs/features.md#feature-sets), for error messages.
_FEATURE_SET_BY_DIM = {7: "kin", 13: "kinpid or kinpidplus", 17: "full"}


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not fit the model it is loaded into."""


def _strip_prefix(key: str) -> str:
    while key.startswith(_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def _rename_w05(key: str) -> str:
    for old, new in _W05_RENAMES.items():
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def normalize_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Unprefixed keys with weaver-0.4 in-projection names, from any accepted format."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        name = _rename_w05(_strip_prefix(str(key)))
        if name in out:
            raise CheckpointError(f"checkpoint holds {name!r} twice (as {key!r} and another key)")
        out[name] = value
    return out


def load_error_reason(error: BaseException, limit: int = 200) -> str:
    """One line saying why ``torch.load(..., weights_only=True)`` failed: for a file holding
    pickled objects (which could run code) the global it refused, else the error's first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    unsafe = [line for line in lines if line.startswith("WeightsUnpickler error:")]
    if unsafe:
        what = unsafe[0].split(":", 1)[1].strip().split(" was not an allowed global")[0]
        return f"it holds pickled objects, not only tensors, refused unread ({what[:limit]})"
    text = lines[0] if lines else ""
    return f"{type(error).__name__}: {text[:limit]}"


def _read(path: Path) -> Mapping[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for broken files
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r} (truncated, corrupt or not a torch file): "
            f"{load_error_reason(error)}"
        ) from error
    for wrapper_key in ("state_dict", "model_state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper_key), Mapping):
            loaded = loaded[wrapper_key]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise CheckpointError(f"checkpoint {str(path)!r} holds no state dict of tensors")
    return loaded


def _dim_name(dim: int) -> str:
    name = _FEATURE_SET_BY_DIM.get(dim)
    return f" (feature set '{name}')" if name else ""


def _shape_message(key: str, got: tuple[int, ...], want: tuple[int, ...]) -> str:
    if key == "embed.input_bn.weight":
        return (f"input_dim mismatch: checkpoint {key} has {got[0]} features{_dim_name(got[0])}, "
                f"model expects {want[0]}{_dim_name(want[0])}")
    if key == "fc.0.weight":
        return f"num_classes mismatch: checkpoint {key} has {got[0]} classes, model expects {want[0]}"
    return f"shape mismatch for {key}: checkpoint {got}, model {want}"


def _summary(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")


def _mismatch_report(state: Mapping[str, Tensor], expected: Mapping[str, Tensor]) -> list[str]:
    problems = []
    shapes = [
        _shape_message(key, tuple(state[key].shape), tuple(value.shape))
        for key, value in expected.items()
        if key in state and tuple(state[key].shape) != tuple(value.shape)
    ]
    # the input_dim / num_classes messages first: they explain most other mismatches
    problems += sorted(shapes, key=lambda message: not message.startswith(("input_dim", "num_")))
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    pair_missing = [key for key in missing if key.startswith("pair_embed.")]
    if pair_missing and len(pair_missing) == sum(k.startswith("pair_embed.") for k in expected):
        problems.append("checkpoint has no pair embedding (ParT-plain?) but the model has one")
    if any(key.startswith("pair_embed.") for key in unexpected) and not any(
            key.startswith("pair_embed.") for key in expected):
        problems.append("checkpoint has a pair embedding but the model is ParT-plain")
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_summary(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_summary(unexpected)}")
    return problems


def load_state_dict_any(model: ParticleTransformer,
                        state_dict_or_path: Mapping[str, Tensor] | str | os.PathLike,
                        ) -> ParticleTransformer:
    """Strictly load weaver-0.4, weaver-0.5 or unprefixed weights into ``model``.

    Files are read with ``torch.load(path, map_location="cpu", weights_only=True)``; a dict
    wrapping the state dict under ``state_dict`` / ``model_state_dict`` / ``model`` is
    unwrapped. Does not change the model's train/eval mode.

    Returns:
        ``model``, loaded.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable file (naming it), weights of another attention variant
            (naming both), or keys / shapes that do not fit the model (listing input_dim /
            num_classes mismatches, missing and unexpected keys).
    """
    source = "state dict"
    if isinstance(state_dict_or_path, str | os.PathLike):
        source = f"checkpoint {str(state_dict_or_path)!r}"
        state_dict_or_path = _read(Path(state_dict_or_path))
    state = normalize_state_dict(state_dict_or_path)
    saved, built = attention_of_state(state), model.config.get("attention", "softmax")
    if saved != built:
        raise CheckpointError(
            f"{source} holds a ParT with attention {saved!r}, but the model was built with "
            f"attention {built!r}; build it with attention={saved!r} (params: "
            f"model.attention: {saved})")
    nonfinite = [k for k, v in state.items()
                 if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise CheckpointError(f"{source} holds NaN/inf weights in {len(nonfinite)} tensor(s): "
                              f"{_summary(nonfinite)} (a diverged training?)")
    problems = _mismatch_report(state, model.state_dict())
    if problems:
        raise CheckpointError(f"{source} does not fit the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    return model


def _to_weaver(model: ParticleTransformer) -> dict[str, Tensor]:
    return {f"mod.{key}": value.detach().cpu().clone() for key, value in model.state_dict().items()}


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _extra_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_checkpoint(model: ParticleTransformer, path: str | os.PathLike,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Save ``model``'s weights in weaver-0.4.x format (``mod.`` keys), atomically.

    The file is a plain state dict, loadable by weaver (``model.load_state_dict``) and by
    :func:`load_state_dict_any`; a non-softmax attention variant adds its
    ``attention_variant`` entry, so weaver (which has only the softmax) refuses it. ``extra`` (JSON-serializable, e.g. feature set, training
    history) goes to a sidecar ``<path>.json`` together with ``model.config``, so the ``.pt``
    file stays weaver-compatible; read it back with :func:`read_checkpoint_extra`.

    Returns:
        The path written.
    """
    path = Path(path)
    state = _to_weaver(model)
    _atomic_write(path, lambda temp: torch.save(state, temp))
    if extra is not None:
        payload = json.dumps({"config": dict(model.config), "extra": dict(extra)}, indent=2)
        _atomic_write(_extra_path(path), lambda temp: Path(temp).write_text(payload))
    return path


def read_checkpoint_extra(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar ``{"config": …, "extra": …}`` written by :func:`save_checkpoint`, or None."""
    sidecar = _extra_path(Path(path))
    if not sidecar.is_file():
        return None
    return json.loads(sidecar.read_text())


def infer_config(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """Architecture arguments of :class:`ParticleTransformer` read off a state dict.

    Dropouts, ``trim`` and ``use_pre_activation_pair`` cannot be inferred (the defaults of
    docs/model.md#configuration-of-the-official-models apply); neither can weaver-0.5 head scaling.
    The attention variant is read from the ``attention_variant`` entry (softmax without one).
    """
    state = normalize_state_dict(state_dict)
    try:
        embed = [state[f"embed.embed.{3 * i + 1}.weight"].shape[0]
                 for i in range(_count(state, "embed.embed.", 3))]
        pair = [state[f"pair_embed.embed.{3 * i + 1}.weight"].shape[0]
                for i in range(_count(state, "pair_embed.embed.", 3))]
        return dict(
            input_dim=state["embed.input_bn.weight"].shape[0],
            num_classes=state["fc.0.weight"].shape[0],
            pair_input_dim=state["pair_embed.embed.0.weight"].shape[0] if pair else 4,
            embed_dims=tuple(embed),
            pair_embed_dims=tuple(pair[:-1]),
            num_heads=state["blocks.0.c_attn"].shape[0],
            num_layers=_count(state, "blocks.", 1),
            num_cls_layers=_count(state, "cls_blocks.", 1),
            attention=attention_of_state(state),
        )
    except KeyError as error:
        raise CheckpointError(f"state dict is not a ParT state dict: no key {error}") from None


def _count(state: Mapping[str, Tensor], prefix: str, stride: int) -> int:
    """Number of Linear/Conv stages (stride 3) or blocks (stride 1) under ``prefix``."""
    indices = {int(key[len(prefix):].split(".")[0]) for key in state if key.startswith(prefix)}
    if not indices:
        return 0
    return (max(indices) + (stride - 1)) // stride if stride > 1 else max(indices) + 1


def fold_w05_into_w04(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Turn weights trained with weaver ≥ 0.5 into weights computing the same function in W04.

    weaver 0.5 multiplies channel h·d + i of ``out_proj``'s output by ``c_attn[h]``; W04
    additionally moves it to channel i·H + h. Folding ``c_attn`` and the inverse permutation
    into ``out_proj`` (new row h·d + i := c_attn[m // d] · old row m, m = i·H + h; same for
    the bias) and setting ``c_attn`` := 1 gives W04 weights with the W05 function.

    Returns:
        A new unprefixed state dict (input tensors are not modified).
    """
    state = normalize_state_dict(state_dict)
    prefixes = sorted({key.rsplit(".c_attn", 1)[0] for key in state if key.endswith(".c_attn")})
    for prefix in prefixes:
        c_attn = state[f"{prefix}.c_attn"]
        heads = c_attn.shape[0]
        width = state[f"{prefix}.attn.out_proj.weight"].shape[0]
        head_dim = width // heads
        m = torch.arange(width).view(head_dim, heads).t().reshape(-1)  # m at row h·d + i
        factor = c_attn[m // head_dim]
        for name in ("weight", "bias"):
            old = state[f"{prefix}.attn.out_proj.{name}"]
            scale = factor.view(-1, *([1] * (old.ndim - 1)))
            state[f"{prefix}.attn.out_proj.{name}"] = old[m] * scale
        state[f"{prefix}.c_attn"] = torch.ones_like(c_attn)
    return state

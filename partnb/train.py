"""Training: seeded, resumable, single process or ``torchrun`` data-parallel.

Recipe of docs/training.md#optimizer-and-schedule by default: "ranger" (RAdam + Lookahead k = 6, alpha = 0.5), a flat
learning rate then a decay over the last 30 % of the epochs to 1 % of it, weight decay only
on weights (not on biases, norms, ``cls_token``). AdamW is an option.

Every epoch writes ``epoch_NNN.pt`` (the model in weaver 0.4.x format, kept: the studies of
how sparsity emerges read them) and ``train_state.pt`` (optimizer, RNG and trimmer state),
both atomically. Killed at any moment, the same command continues after the last complete
epoch and ends with the same weights as an uninterrupted run: each epoch's shuffling is a
function of (seed, epoch) and the RNG state is restored at the epoch boundary.

With ``train.attention_penalty`` ({kind, weight}) the loss is the cross-entropy plus weight ×
the :class:`~partnb.model.part.AttentionPenalty` of the particle blocks
(docs/model.md#attention-sparsity-penalty); the per-epoch log then has an
``attention_penalty`` column (its mean over the epoch's batches, unweighted), and
``train_loss`` stays the cross-entropy.

Data parallel: under ``torchrun`` (``WORLD_SIZE`` > 1) each process takes its contiguous
share of every *global* batch, so N processes see the same batches as one process with the
same ``train.batch_size`` (BatchNorm statistics are per process, as in weaver).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .analysis.emergence import is_monitor_step
from .data.io import stale_temp_files
from .data.padding import pad_inputs
from .data.sample import batch_indices
from .data.store import split_store
from .model.factory import batch_tensors, model_from_params, predict
from .model.part import AttentionPenalty

__all__ = ["TrainingError", "Lookahead", "make_optimizer", "learning_rate", "train", "TrainResult"]


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, a run directory with other settings)."""


# --------------------------------------------------------------------------------------
# Optimizer
# --------------------------------------------------------------------------------------


class Lookahead:
    """Lookahead (Zhang et al. 2019, arXiv:1907.08610) around an inner optimizer: every
    ``k`` steps the slow weights move ``alpha`` of the way to the fast ones, and the fast
    weights restart from there."""

    def __init__(self, inner: torch.optim.Optimizer, k: int = 6, alpha: float = 0.5):
        self.inner, self.k, self.alpha = inner, k, alpha
        self.steps = 0
        self.slow = [[p.detach().clone() for p in g["params"]] for g in inner.param_groups]

    @property
    def param_groups(self):
        return self.inner.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        self.inner.step()
        self.steps += 1
        if self.steps % self.k:
            return
        for group, slow in zip(self.inner.param_groups, self.slow, strict=True):
            for p, s in zip(group["params"], slow, strict=True):
                s.add_(p.detach() - s, alpha=self.alpha)
                p.copy_(s)

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "steps": self.steps, "slow": self.slow}

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])
        self.steps = state["steps"]
        for dst, src in zip(self.slow, state["slow"], strict=True):
            for d, s in zip(dst, src, strict=True):
                d.copy_(s)


def _decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith(".bias") or "cls_token" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, train_params):
    """RAdam + Lookahead ("ranger", docs/training.md#optimizer-and-schedule) or AdamW, with weaver's weight-decay groups."""
    groups = _decay_groups(model, train_params.weight_decay)
    # weaver's RAdam and AdamW shrink the weights directly (w -= lr * wd * w); torch's RAdam
    # adds wd * w to the gradient unless told otherwise, where the adaptive step then
    # rescales it (docs/training.md#optimizer-and-schedule)
    decoupled = train_params.weight_decay_mode == "decoupled"
    if train_params.optimizer == "ranger":
        return Lookahead(torch.optim.RAdam(groups, lr=train_params.lr, betas=(0.95, 0.999),
                                           eps=1e-5, decoupled_weight_decay=decoupled))
    if decoupled:
        return torch.optim.AdamW(groups, lr=train_params.lr)
    return torch.optim.Adam(groups, lr=train_params.lr)  # L2 in the gradient


def learning_rate(epoch: int, epochs: int, base_lr: float, schedule: str) -> float:
    """The "flat+decay" schedule (docs/training.md#optimizer-and-schedule): constant, then x gamma per epoch over the last max(1, int(0.3 E))
    epochs with gamma = 0.01^(1/n_decay), ending at 1 % of ``base_lr``. ``epoch`` from 0."""
    if schedule == "none":
        return base_lr
    n_decay = max(1, int(0.3 * epochs))
    gamma = 0.01 ** (1.0 / n_decay)
    into = epoch - (epochs - n_decay) + 1
    return base_lr * gamma ** max(0, into)


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    model: nn.Module
    log: list[dict]
    directory: Path
    resumed_from: int | None


def training_device(name: str) -> torch.device:
    """The torch device ``train.device`` names. ``auto`` is the GPU when torch sees one, else
    the CPU; under torchrun each process takes the GPU of its ``LOCAL_RANK``.

    Raises:
        TrainingError: a CUDA device asked for where torch sees none (a CPU build of torch,
            no driver, or an index beyond the GPUs), before any data is read.
    """
    from .params import _device_name

    problem = _device_name(name) if isinstance(name, str) else "must be a string"
    if problem:
        raise TrainingError(f"train.device = {name!r}: {problem}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not count:
        raise TrainingError(f"train.device = {name!r}: torch {torch.__version__} sees no CUDA "
                            "device (a CPU build of torch, or no GPU driver); use 'cpu' or "
                            "'auto'")
    if name == "cuda":  # torchrun sets LOCAL_RANK for each of its processes
        index = int(os.environ["LOCAL_RANK"]) if "LOCAL_RANK" in os.environ \
            else torch.cuda.current_device()
    else:
        index = int(name.split(":")[1])
    if index >= count:
        raise TrainingError(f"train.device = {name!r}: torch sees {count} CUDA device(s), "
                            f"numbered 0 to {count - 1}")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def device_description(device: torch.device) -> str:
    """``cpu`` or ``cuda:N <GPU name>``, as the checkpoints' sidecars and logs record it."""
    if device.type != "cuda":
        return str(device)
    return f"{device} {torch.cuda.get_device_name(device)}"


def _dist(backend: str = "gloo"):
    """(rank, world size) under torchrun, after joining its process group (NCCL for GPU
    training, gloo for CPU training); (0, 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


#: Format tag of ``train_state.pt``: tensors and plain containers only, loadable with
#: ``torch.load(..., weights_only=True)`` (the history is JSON text).
TRAIN_STATE_FORMAT = "partnb-train-state/2"
_STATE_TYPES = {"run_key": str, "epoch": int, "optimizer": dict, "rng": torch.Tensor,
                "trimmer_calls": int}


def _json_number(obj):
    if hasattr(obj, "item"):  # numpy / torch scalars in a history row
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} to the training history")


def save_train_state(path: Path, *, run_key: str, epoch: int, optimizer, trimmer_calls: int,
                     history: list[dict], cuda_rng: torch.Tensor | None = None) -> None:
    """Write the resume state atomically: optimizer state dict (tensors and numbers), the
    torch RNG state (a uint8 tensor), counters, and the history as JSON text, so that
    :func:`load_train_state` reads it with ``weights_only=True`` (no pickled objects). A run on
    a GPU adds that device's RNG state (``cuda_rng``), which its dropout draws from."""
    state = {"format": TRAIN_STATE_FORMAT, "run_key": run_key, "epoch": int(epoch),
             "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
             "trimmer_calls": int(trimmer_calls),
             "history_json": json.dumps(history, default=_json_number)}
    if cuda_rng is not None:
        state["cuda_rng"] = cuda_rng.cpu()
    _atomic_torch_save(state, path)


def load_train_state(path: Path) -> dict:
    """The resume state of :func:`save_train_state`, read with ``weights_only=True`` and
    checked key by key: ``{"run_key", "epoch", "optimizer", "rng", "trimmer_calls",
    "history"}``. States of the first format (the history as a list) are accepted too.

    Raises:
        TrainingError: the file cannot be read (truncated, corrupt, or holding anything but
            tensors and plain containers), lacks a key, or has a key of the wrong type (the
            GPU's ``cuda_rng`` included, when present), naming the file and the key.
    """
    remedy = "remove it (and the epoch files) to train from scratch"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for broken or unsafe files
        from .model.checkpoint import load_error_reason

        raise TrainingError(f"{path}: cannot read the resume state (truncated, corrupt or not a "
                            f"plain tensor file: {load_error_reason(error)}); {remedy}") from None
    if not isinstance(state, dict):
        raise TrainingError(f"{path}: not a partnb resume state; {remedy}")
    for name, kind in _STATE_TYPES.items():
        if not isinstance(state.get(name), kind) or (kind is int and isinstance(state[name], bool)):
            raise TrainingError(f"{path}: resume state lacks a valid {name!r}; {remedy}")
    if state["epoch"] < 1 or state["rng"].dtype != torch.uint8:
        raise TrainingError(f"{path}: resume state with epoch {state['epoch']} or an RNG state "
                            f"of dtype {state['rng'].dtype}; {remedy}")
    if isinstance(state.get("history_json"), str):
        try:
            history = json.loads(state["history_json"])
        except ValueError:
            history = None
    else:
        history = state.get("history")  # first format: a list of dicts
    if not (isinstance(history, list) and all(isinstance(r, dict) for r in history)):
        raise TrainingError(f"{path}: resume state lacks a valid 'history'; {remedy}")
    out = {**{k: state[k] for k in _STATE_TYPES}, "history": history}
    if "cuda_rng" in state:  # written only by runs on a GPU; present means it must be valid
        cuda_rng = state["cuda_rng"]
        if not (isinstance(cuda_rng, torch.Tensor) and cuda_rng.dtype == torch.uint8
                and cuda_rng.dim() == 1):
            raise TrainingError(f"{path}: resume state has an invalid 'cuda_rng' (the GPU's RNG "
                                f"state must be a 1-d uint8 tensor); {remedy}")
        out["cuda_rng"] = cuda_rng
    return out


def _remove_stale_temps(out_dir: Path) -> None:
    """Delete ``.<name>.tmp-<pid>`` files of writers that no longer run (a ``kill -9`` between
    writing and renaming); a temp file of a live process is left alone. The checkpoints'
    temp files (``.epoch_NNN.pt.<random>.tmp``, :func:`partnb.model.checkpoint.save_checkpoint`)
    name no process: they are removed too, as only this run writes checkpoints here."""
    for tmp in [*out_dir.glob(".epoch_*.tmp"), *out_dir.glob(".random_init.pt*.tmp")]:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    for tmp in stale_temp_files(out_dir, ".*.tmp-*"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _resume_state(state_path: Path, key: str) -> dict:
    """The checked resume state of ``state_path`` for the run ``key``: readable, of the same
    settings, and its last epoch's checkpoint present."""
    state = load_train_state(state_path)
    out_dir = state_path.parent
    if state["run_key"] != key:
        raise TrainingError(f"{out_dir} holds a training run with other settings "
                            f"(run key {state['run_key']} != {key}); choose another "
                            "output.models or remove it")
    last = out_dir / f"epoch_{state['epoch']:03d}.pt"
    if not last.is_file():
        raise TrainingError(f"{last}: missing, but {state_path} says {state['epoch']} epochs "
                            "are complete; restore it, or remove train_state.pt to train "
                            "from scratch")
    return state


def _check_output_dir(path: Path) -> None:
    """Refuse, before any work, an output directory that cannot be created or written: a
    path through a regular file, or a read-only directory (the nearest existing one)."""
    from .outputs import output_dir_problem

    problem = output_dir_problem(path)
    if problem:
        raise TrainingError(f"output.models = {str(path)!r}: {problem}")


def _run_key(params) -> str:
    """Hash of the settings that change the trained weights, the same in every checkout.
    The sparsity monitor's keys do not change them (a run with the monitor trains to the same
    weights), nor do :data:`_WHERE_KEYS`, which say where the data is read from; data files
    inside the project enter relative to its root. A key of :data:`_LEGACY_VALUES`
    at the value every run had before the key existed is left out, so those runs' resume
    states keep their keys; so is ``train.weight_decay_mode`` without weight decay."""
    from .params import stable_hash

    data = {s: params.to_dict()[s] for s in ("dataset", "features", "model", "train", "seed")}
    for name in _MONITOR_KEYS + ("device",):  # the device changes float rounding only
        data["train"].pop(name, None)
    for name in _WHERE_KEYS:
        data["dataset"].pop(name, None)
    root = Path(params.root).resolve()
    for name in ("files", "test_files"):
        data["dataset"][name] = [_relative_to(f, root) for f in data["dataset"].get(name) or []]
    for (section, name), legacy in _LEGACY_VALUES.items():
        if name in data[section] and data[section][name] == legacy:
            del data[section][name]
    if not data["train"].get("weight_decay"):
        data["train"].pop("weight_decay_mode", None)  # the same training either way
    return stable_hash(data)


#: keys added after runs were committed, with the value those runs had: zero padding, random
#: batches, torch RAdam's coupled weight decay, ParT's softmax attention, no attention penalty
#: and particle-level generated jets
_LEGACY_VALUES = {("features", "pad_mode"): "zero", ("train", "batching"): "plain",
                  ("train", "weight_decay_mode"): "coupled", ("model", "attention"): "softmax",
                  ("train", "attention_penalty"): None, ("dataset", "detector"): "none"}
#: train keys that configure the sparsity monitor only
_MONITOR_KEYS = ("monitor_jets", "monitor_as_coded")
#: dataset keys that say where and how the data is read, not which data: the cache folder is
#: an absolute path that differs between checkouts, and the worker count and file format do
#: not change a jet
_WHERE_KEYS = ("cache_dir", "workers", "format")


def _relative_to(path: str, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside it, else unchanged."""
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def train(params, *, epochs: int | None = None, progress: bool | None = None,
          log: Callable[[str], None] = print, data=None, device: str | None = None) -> TrainResult:
    """Train the params' model; resume if ``output.models`` holds a partial run.

    Args:
        params: validated params.
        epochs: override ``train.epochs``.
        progress: progress bar (default ``analysis.progress``; off on ranks > 0).
        log: where one line per epoch goes.
        data: optional (train, val) JetInputs (tests); default: the params' splits.
        device: override ``train.device`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``).

    Raises:
        TrainingError: NaN loss (naming epoch and batch), a run directory made with
            other settings, or a CUDA device asked for where torch sees none.
    """
    from tqdm.auto import tqdm

    from .metrics import evaluate
    from .model.checkpoint import load_state_dict_any, save_checkpoint

    tp = params.train
    epochs = tp.epochs if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise TrainingError(f"epochs = {epochs!r}: must be a whole number >= 1")
    out_dir = Path(params.output.models)
    _check_output_dir(out_dir)
    device = training_device(tp.device if device is None else device)
    # where the weights are computed, for the logs and sidecars (CPU runs keep the columns
    # and keys they always had)
    where = None if device.type == "cpu" else device_description(device)
    rank, world = _dist("nccl" if device.type == "cuda" else "gloo")
    if tp.threads:
        torch.set_num_threads(tp.threads)
    if tp.batch_size % world:
        raise TrainingError(f"train.batch_size = {tp.batch_size} is not divisible by the "
                            f"{world} processes")
    progress = (params.analysis.progress if progress is None else progress) and rank == 0
    state_path = out_dir / "train_state.pt"
    key = _run_key(params)
    state = _resume_state(state_path, key) if state_path.exists() else None  # before the data
    if data is None:
        # streamed: the splits' inputs are written once to a store on disk and each batch reads
        # its rows (docs/datasets.md#streaming-training); weaver pads training inputs with
        # "wrap", and only the BatchNorm statistics in training see it
        train_data = split_store(params, "train", max_jets=tp.max_jets,
                                 pad_mode=params.features.pad_mode, log=log if rank == 0 else None)
        val_data = split_store(params, "val", log=log if rank == 0 else None)
    else:
        train_data, val_data = data
        train_data = pad_inputs(train_data, params.features.pad_mode)
    if len(train_data) < tp.batch_size:
        # every epoch would skip its only, incomplete batch: the "trained" model = random init
        raise TrainingError(f"train.batch_size = {tp.batch_size} is larger than the training "
                            f"split ({len(train_data)} jets): no batch would be trained; lower "
                            "train.batch_size or give more jets")
    torch.manual_seed(params.seed)
    # initialised on the CPU, so a GPU run starts from the very weights a CPU run starts from
    model = model_from_params(params).to(device)
    optimizer = make_optimizer(model, tp)
    history: list[dict] = []
    start_epoch, resumed = 0, None
    if state is not None:
        load_state_dict_any(model, out_dir / f"epoch_{state['epoch']:03d}.pt")
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and "cuda_rng" in state:  # dropout draws from the GPU's generator
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        model.trimmer.calls = state["trimmer_calls"]
        history = state["history"]
        start_epoch = resumed = state["epoch"]  # epochs completed = index of the next one
        if start_epoch >= epochs:
            return TrainResult(model, history, out_dir, resumed)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)  # only now: a refused run leaves no directory
        _remove_stale_temps(out_dir)
    if rank == 0 and not (out_dir / "random_init.pt").exists():
        # Wang et al. compare with a never-trained ParT: the seeded initial weights
        save_checkpoint(model, out_dir / "random_init.pt", extra={"epoch": 0, "run_key": key,
                                                                  "config": model.config})
    ddp_model = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = nn.CrossEntropyLoss()
    # the sparsity penalty on the attention (docs/model.md#attention-sparsity-penalty): only
    # when asked for, so that a run without it takes the same (fused) path as before
    penalty = AttentionPenalty(tp.attention_penalty["kind"]) if tp.attention_penalty else None
    monitor = _make_monitor(params, val_data) if rank == 0 else None
    monitor_rows = _read_monitor_log(out_dir, start_epoch * (len(train_data) // tp.batch_size)) \
        if monitor is not None and start_epoch else []
    per_rank = tp.batch_size // world
    for epoch in range(start_epoch, epochs):
        lr = learning_rate(epoch, epochs, tp.lr, tp.schedule)
        for g in optimizer.param_groups:
            g["lr"] = lr
        # a function of (seed, epoch): a resumed run sees the same batches
        batches = batch_indices(train_data.n_particles, tp.batch_size, batching=tp.batching,
                                seed=params.seed, epoch=epoch, drop_last=True)
        model.train()
        t0 = time.perf_counter()
        tot_loss, tot_correct, seen, tot_penalty = 0.0, 0, 0, 0.0
        n_batches = len(batches)
        bar = tqdm(range(n_batches), disable=not progress, desc=f"epoch {epoch + 1}/{epochs}",
                   unit="batch", leave=False)
        for b in bar:
            if monitor is not None and is_monitor_step(epoch * n_batches + b):
                _monitor_row(monitor, model, monitor_rows, epoch * n_batches + b, n_batches, lr)
            idx = batches[b][rank * per_rank:(rank + 1) * per_rank]
            x, v, m, y = batch_tensors(train_data, idx, device)
            if penalty is None:
                logits = ddp_model(x, v, m)
                loss = loss_fn(logits, y)
            else:
                logits = ddp_model(x, v, m, penalty=penalty)
                cross_entropy, sparsity = loss_fn(logits, y), penalty.value()
                loss = cross_entropy + tp.attention_penalty["weight"] * sparsity
                tot_penalty += sparsity.item() * len(idx)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"epoch {epoch + 1}, batch {b + 1}: the loss is {loss.item()}; training "
                    f"stopped. Last good checkpoint: "
                    f"{out_dir / f'epoch_{epoch:03d}.pt' if epoch else 'none (first epoch)'}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            tot_loss += (loss if penalty is None else cross_entropy).item() * len(idx)
            tot_correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        seconds = time.perf_counter() - t0
        if monitor is not None:  # at every epoch end
            _monitor_row(monitor, model, monitor_rows, (epoch + 1) * n_batches, n_batches, lr)
        val_logits = predict(model, val_data, device=device)
        val = evaluate(val_data.label, val_logits, params.dataset.name)
        val_loss = float(loss_fn(torch.as_tensor(val_logits), torch.as_tensor(val_data.label)))
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": tot_loss / max(seen, 1),
               "train_accuracy": tot_correct / max(seen, 1), "val_loss": val_loss,
               "val_accuracy": val["accuracy"], "val_auc": val["auc"], "seconds": round(seconds, 2),
               "jets_per_s": round(seen * world / max(seconds, 1e-9), 1)}
        if where:
            row["device"] = where
        if penalty is not None:  # train_loss stays the cross-entropy, comparable across runs
            row["attention_penalty"] = tot_penalty / max(seen, 1)
        history.append(row)
        if rank == 0:
            extra = {"epoch": epoch + 1, "run_key": key, "config": model.config}
            if where:
                extra["device"] = where
            save_checkpoint(model, out_dir / f"epoch_{epoch + 1:03d}.pt", extra=extra)
            save_train_state(state_path, run_key=key, epoch=epoch + 1, optimizer=optimizer,
                             trimmer_calls=model.trimmer.calls, history=history,
                             cuda_rng=torch.cuda.get_rng_state(device)
                             if device.type == "cuda" else None)
            _write_log(out_dir, history)
            if monitor is not None:
                _write_monitor_log(out_dir, monitor_rows)
            log(f"epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f}, val acc "
                f"{row['val_accuracy']:.4f}, val AUC {row['val_auc']:.4f}, {row['jets_per_s']:.0f} jets/s")
        if world > 1:
            torch.distributed.barrier()
    return TrainResult(model, history, out_dir, resumed)


def _make_monitor(params, val_data):
    """The sparsity monitor on a seeded subset of ``train.monitor_jets`` validation jets
    (None when off or when the model has no pair embedding to monitor)."""
    from .analysis.emergence import SparsityMonitor

    tp = params.train
    if not tp.monitor_jets or not params.features.pair_features:
        return None
    n = len(val_data)
    keep = np.arange(n)
    if n > tp.monitor_jets:
        keep = np.sort(np.random.default_rng(params.seed + 1).permutation(n)[:tp.monitor_jets])
    return SparsityMonitor(val_data.take(keep), batch_size=params.analysis.batch_size,
                           as_coded=tp.monitor_as_coded)


def _monitor_row(monitor, model, rows: list[dict], step: int, n_batches: int, lr: float) -> None:
    if rows and rows[-1]["step"] == step:
        return  # a log-spaced step that is also an epoch end
    t0 = time.perf_counter()
    if next(model.parameters()).device.type != "cpu":
        # the monitor's consumers work on CPU tensors: measure a CPU copy of the model
        model = copy.deepcopy(model).cpu()
    row = {"step": step, "epoch": round(step / max(n_batches, 1), 4), "lr": lr,
           **monitor.measure(model)}
    row["monitor_seconds"] = round(time.perf_counter() - t0, 3)
    rows.append(row)


def _read_monitor_log(out_dir: Path, last_step: int) -> list[dict]:
    """Rows of an interrupted run's ``monitor_log.json`` up to the resumed step."""
    from .analysis.emergence import load_monitor_log

    if not (out_dir / "monitor_log.json").is_file():
        return []
    try:
        rows = load_monitor_log(out_dir)
    except ValueError as error:
        raise TrainingError(f"{error}; remove it") from None
    return [r for r in rows if r["step"] <= last_step]


def _write_monitor_log(out_dir: Path, rows: list[dict]) -> None:
    from .outputs import atomic_write_text, save_table

    save_table(rows, out_dir, "monitor_log")
    atomic_write_text(out_dir / "monitor_log.json", json.dumps(rows, indent=1) + "\n")


def _write_log(out_dir: Path, history: list[dict]) -> None:
    from .outputs import atomic_write_text, save_table

    save_table(history, out_dir, "train_log")
    atomic_write_text(out_dir / "train_log.json", json.dumps(history, indent=1) + "\n")

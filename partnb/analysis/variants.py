"""Emergent against explicit sparsity: one ParT trained with each attention variant, measured on
the same jets (notebook 11, docs/analyses.md#emergent-against-explicit-sparsity).

The variants are params files, ``params/variants/<name>_<variant>.yaml``: the params' own
model (softmax attention for the defaults) beside every file that changes only
``model.attention`` (sparsemax, entmax15; the differential forms are notebook 12's,
:mod:`partnb.analysis.differential`) or ``train.attention_penalty``, with
the same data, recipe and budget; :func:`compare_variants` leaves out any other file, naming
the first key that differs. Each variant is an ordinary run (``partnb train FILE``), so every
notebook also runs on it (``partnb run FILE``).

For every trained variant, on the same test jets (:func:`variant_row`):

* the tagger: accuracy (binomial error), AUC (bootstrap error), the background rejections;
* how much it leans on U: the accuracy with U := 0 in every block and its drop;
* sparsity of the correct attention over real keys (:class:`~partnb.analysis.sparsity.AttentionSparsity`):
  the fraction of exact zeros, of rows with maximum >= 0.8 and >= 0.95 (jackknife errors),
  the median row maximum, and the mean normalised row entropy;
* the interaction-dependent and non-binary rates D and N (:class:`~partnb.analysis.interaction.InteractionCounter`);
* what the heads look at (:class:`~partnb.analysis.attention_features.JetAttentionFeatures`,
  last particle block, mean over heads and jets): the lepton fraction over jets with a lepton
  and the inter-subjet fraction of the top class's jets with their three kT subjets;
* speed, measured here side by side: training steps (forward, loss, backward) and inference
  in jets/s; beside them the training speed the run logged (median over its epochs, at
  whatever load the machine had then).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from partnb.model.part import ATTENTION_VARIANTS, DIFFERENTIAL

from .sparsity import BINARY_ROW_THRESHOLD, ROWS_MAX_COLUMNS

__all__ = ["VARIANT_KEYS", "EXPLICIT", "SUBJET_CLASS", "SAME_WITHIN", "variant_name", "variant_files",
           "compare_variants", "training_speed", "variant_row", "variants_verdict"]

#: the params keys a variant may change (besides where its run is written)
VARIANT_KEYS = ("model.attention", "train.attention_penalty")
#: the class whose jets' inter-subjet fraction is measured, with its kT subjet count
SUBJET_CLASS = {"jetclass": ("Tbqq", 3), "toplandscape": ("top", 3)}
#: two accuracies are "the same" when they differ by less than this many combined errors
SAME_WITHIN = 2.0
#: the sections that must agree between the points (the run's own location aside)
_COMPARED = ("dataset", "features", "model", "train", "seed")
#: the attention variants of notebook 11 (the differential forms are notebook 12's)
EXPLICIT = tuple(a for a in ATTENTION_VARIANTS if a not in DIFFERENTIAL)
#: keys that say how a run is watched or where generated jets are cached, not what it trains
_IGNORED = {"train.monitor_jets", "train.monitor_as_coded", "train.threads", "dataset.cache_dir",
            "dataset.workers"}


def variant_name(params) -> str:
    """``softmax``, ``sparsemax``, ``entmax15``, ``differential``..., with ``+ entropy 0.01``
    (kind and weight) when an attention penalty is on."""
    name = params.model.attention
    penalty = params.train.attention_penalty
    if penalty:
        name += f" + {penalty['kind']} {penalty['weight']:g}"
    return name


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in VARIANT_KEYS:
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def variant_files(params) -> list[Path]:
    """``params/variants/<name>_*.yaml`` of the project (``<name>`` the params' ``name``),
    sorted, without the params file itself."""
    folder = Path(params.root) / "params" / "variants"
    own = Path(params.source).resolve() if params.source else None
    return [p for p in sorted(folder.glob(f"{params.name}_*.yaml")) if p.resolve() != own]


def _settings(params) -> dict:
    data = params.to_dict()
    return {k: v for k, v in _flat({s: data[s] for s in _COMPARED}).items() if k not in _IGNORED}


def compare_variants(params, files: Sequence[Path], *, attentions: Sequence[str] | None = None,
                     allow: Sequence[str] = (), weights_in_name: bool = False,
                     ) -> tuple[list[tuple[str, object]], list[dict]]:
    """Split ``files`` into the variants of ``params`` and the rest.

    A file is a variant when its params differ from ``params`` only in :data:`VARIANT_KEYS`
    (and the keys in ``allow``), its attention is one of ``attentions`` (None: any), and it
    is another variant than ``params`` and every earlier file. With ``weights_in_name`` a
    variant whose model differs in size from the params' model gets its trainable weight
    count in its name ("differential, 344k weights").

    Returns:
        ([(variant name, params)], with ``params`` itself first; [{file, reason}] for the
        files left out, the reason naming the first key that differs).

    Raises:
        ParamsError: a file is not a valid params file (naming it and the key).
    """
    from partnb.params import load_params

    ref = _settings(params)
    free = (*VARIANT_KEYS, *allow)
    chosen = [(variant_name(params), params)]
    skipped = []
    for path in files:
        other = load_params(path, check_files=False)
        got = _settings(other)
        diff = next((k for k in sorted(set(ref) | set(got))
                     if k not in free and ref.get(k) != got.get(k)), None)
        name = variant_name(other)
        if attentions is not None and other.model.attention not in attentions:
            where = "notebook 12" if other.model.attention in DIFFERENTIAL else "notebook 11"
            skipped.append({"file": str(path), "reason": f"{name} attention: compared in {where}"})
            continue
        if diff is not None:
            skipped.append({"file": str(path), "reason": f"{diff} = {got.get(diff)!r}, not "
                            f"{ref.get(diff)!r} as in {Path(params.source or '').name}"})
            continue
        if weights_in_name and any(ref.get(k) != got.get(k) for k in allow):
            from partnb.model.factory import model_from_params

            from .differential import n_weights

            name += f", {n_weights(model_from_params(other)) / 1000:.0f}k weights"
        if any(name == n for n, _ in chosen):
            skipped.append({"file": str(path), "reason": f"the same variant ({name}) as another"})
        else:
            chosen.append((name, other))
    return chosen, skipped


def _train_speed(directory: Path) -> float:
    path = directory / "train_log.json"
    if not path.is_file():
        return math.nan
    rows = json.loads(path.read_text())
    speeds = [r["jets_per_s"] for r in rows if r.get("jets_per_s")]
    return float(np.median(speeds)) if speeds else math.nan


def _mean_err(values: np.ndarray) -> tuple[float, float, int]:
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan, 0
    err = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(values.mean()), err, int(len(values))


def training_speed(model, inputs, *, penalty: dict | None = None, batch_size: int = 128,
                   batches: int = 5, seed: int = 0) -> float:
    """Jets/s of training steps (forward, cross-entropy, plus the attention penalty where the
    variant has one, backward; no optimiser step) on a copy of ``model`` in training mode:
    the fastest of ``batches`` random batches of ``inputs`` (the same batches for every
    variant), after one warm-up batch. Measured here, beside the other variants, and the
    fastest repetition, so the ratios between variants hold on a loaded machine."""
    import copy

    import torch

    from partnb.model.factory import batch_tensors
    from partnb.model.part import AttentionPenalty

    net = copy.deepcopy(model).train()
    rng = np.random.default_rng(seed)
    n = min(batch_size, len(inputs))
    times = []
    for k in range(batches + 1):
        idx = np.sort(rng.choice(len(inputs), size=n, replace=False))
        x, v, m, y = batch_tensors(inputs, idx, "cpu")
        t0 = time.perf_counter()
        if penalty:
            collector = AttentionPenalty(penalty["kind"])
            logits = net(x, v, m, penalty=collector)
            loss = torch.nn.functional.cross_entropy(logits, y) + penalty["weight"] * collector.value()
        else:
            loss = torch.nn.functional.cross_entropy(net(x, v, m), y)
        loss.backward()
        net.zero_grad(set_to_none=True)
        if k:  # the first batch warms up
            times.append(time.perf_counter() - t0)
    return n / min(times)


def variant_row(name: str, model, inputs, *, dataset: str, classes: Sequence[str],
                subjets=None, subjet_class: int | None = None, is_lepton: np.ndarray | None = None,
                batch_size: int = 100, train_dir: Path | None = None,
                penalty: dict | None = None, extra_consumers: Sequence[object] = ()) -> dict:
    """Every measure of the module docstring for one trained ``model`` on ``inputs``.

    Args:
        name: the variant (:func:`variant_name`).
        subjets: kT subjet assignments of ``inputs`` (:func:`~partnb.analysis.attention_features.subjet_assignments`)
            with one subjet count; the inter-subjet fraction is averaged over jets of label
            ``subjet_class``.
        is_lepton: (jets, P) lepton flags, or None where the data have no PID.
        train_dir: the run's directory (training speed as logged, ``train_log.json``).
        penalty: the variant's ``train.attention_penalty`` (its training steps include it).
        extra_consumers: more stream consumers fed by the same attention pass (notebook 12's
            :class:`~partnb.analysis.differential.SignedWeights`).
    """
    from partnb.model.factory import predict
    from partnb.model.part import Intervention

    from .ablation import metrics_row
    from .attention_features import JetAttentionFeatures
    from .interaction import InteractionCounter
    from .sparsity import AttentionSparsity
    from .stream import stream_attention

    labels = np.asarray(inputs.label)
    t0 = time.perf_counter()
    logits = predict(model, inputs, batch_size=batch_size)
    infer_s = time.perf_counter() - t0
    row = metrics_row(name, "none", labels, logits, dataset)
    row.pop("intervention")
    row["model"] = name
    zero_u = predict(model, inputs, batch_size=batch_size, intervention=Intervention(zero_u=True))
    acc0 = float((zero_u.argmax(axis=1) == labels).mean())
    row["accuracy_zero_u"] = acc0
    row["accuracy_zero_u_err"] = math.sqrt(acc0 * (1 - acc0) / len(labels))
    row["zero_u_drop"] = row["accuracy"] - acc0

    n_layers, n_heads = len(model.blocks), model.config["num_heads"]
    sparsity = AttentionSparsity(n_layers, n_heads, classes)
    counter = InteractionCounter()
    features = JetAttentionFeatures(len(inputs), subjets=subjets, is_lepton=is_lepton,
                                    classes=classes)
    stream_attention(model, inputs, [sparsity, counter, features, *extra_consumers],
                     batch_size=batch_size, capture=("A", "U", "L", "P"))
    s = sparsity.finish().summary_row("correct")
    for key in ("frac_exact_zero", *ROWS_MAX_COLUMNS):
        row[key], row[key + "_err"] = s[key], s[key + "_err"]
    row["median_row_max"] = s["median_row_max"]
    row["uniform_median_row_max"] = s["uniform_median_row_max"]
    with warnings.catch_warnings():  # a jet of one particle has no entropy (NaN in every head)
        warnings.simplefilter("ignore", RuntimeWarning)
        entropy = np.nanmean(features.head_values("entropy"), axis=(1, 2))
    row["mean_norm_entropy"], row["mean_norm_entropy_err"], _ = _mean_err(entropy)
    inter = counter.result()
    for key in ("rate_D", "rate_N"):
        row[key] = inter[key]
        row[key + "_err"] = inter.get(key + "_err", math.nan)
    last = n_layers - 1
    if is_lepton is not None and np.asarray(is_lepton).any():
        lepton = features.head_values("lepton_fraction")[:, last].mean(axis=1)
        row["lepton_fraction"], row["lepton_fraction_err"], row["lepton_jets"] = _mean_err(lepton)
    if subjets and subjet_class is not None:
        (count,) = subjets
        inter_frac = features.head_values(f"intersubjet_N{count}")[labels == subjet_class, last]
        row[f"intersubjet_N{count}"], row[f"intersubjet_N{count}_err"], row["subjet_jets"] = \
            _mean_err(inter_frac.mean(axis=1))
    row["train_jets_per_s"] = training_speed(model, inputs, penalty=penalty)
    row["infer_jets_per_s"] = len(labels) / infer_s
    row["train_jets_per_s_logged"] = _train_speed(train_dir) if train_dir else math.nan
    row["rows_threshold"] = BINARY_ROW_THRESHOLD
    return row


def variants_verdict(rows: Sequence[dict]) -> dict:
    """The computed answers of notebook 11, from :func:`variant_row` rows (the first is the
    emergent softmax model; a ``seed_spread`` key on a row, the seed-to-seed standard deviation
    of the accuracy, is added to the errors where the study has it).

    Returns a dict: ``n_variants`` (trained variants beside the base); per explicit variant
    its accuracy change, in combined errors, and whether it is the same within
    :data:`SAME_WITHIN` errors; the softmax and sparsemax binary fractions and median row
    maxima; and ``sentence``.
    """
    binary = ROWS_MAX_COLUMNS[0]
    if not rows:
        return {"n_variants": 0, "sentence": "No variant is trained: nothing to compare."}
    base = rows[0]
    spread = base.get("seed_spread", 0.0) or 0.0
    out: dict = {"base": base["model"], "n_variants": len(rows) - 1, "variants": {}}
    parts = []
    for r in rows[1:]:
        err = math.sqrt(base["accuracy_err"] ** 2 + r["accuracy_err"] ** 2 + 2 * spread ** 2)
        delta = r["accuracy"] - base["accuracy"]
        same = abs(delta) < SAME_WITHIN * err
        out["variants"][r["model"]] = {"accuracy_change": delta, "error": err,
                                       "significance": delta / err if err else math.nan,
                                       "same_accuracy": bool(same), binary: r[binary],
                                       "median_row_max": r["median_row_max"]}
        parts.append(f"{r['model']} {r['accuracy']:.3f} ({delta:+.3f} ± {err:.3f}, "
                     + ("the same" if same else ("lower" if delta < 0 else "higher")) + ")")
    if not parts:
        return out | {"sentence": f"Only {base['model']} is trained: no explicit variant to "
                                  "compare with yet."}
    text = (f"Accuracy, {base['model']} {base['accuracy']:.3f}: " + "; ".join(parts)
            + f" (the same: within {SAME_WITHIN:g} combined errors"
            + (", seed spread included" if spread else "") + "). ")
    out["explicit_matches_accuracy"] = bool(all(v["same_accuracy"] or v["accuracy_change"] > 0
                                                for v in out["variants"].values()))
    sparsemax = next((r for r in rows if r["model"] == "sparsemax"), None)
    if sparsemax is not None:
        ratio = sparsemax[binary] / base[binary] if base[binary] > 0 else math.inf
        out["sparsemax_over_softmax_binary"] = ratio
        out["emergent_as_sparse_as_sparsemax"] = bool(
            base[binary] >= sparsemax[binary] - 2 * math.hypot(base[binary + "_err"],
                                                               sparsemax[binary + "_err"]))
        text += (f"Rows with max ≥ {BINARY_ROW_THRESHOLD:g}: {base['model']} "
                 f"{base[binary]:.2%} (median row maximum {base['median_row_max']:.3f}), "
                 f"sparsemax {sparsemax[binary]:.2%} ({sparsemax['median_row_max']:.3f}): the "
                 "emergent attention is "
                 + ("as sparse as" if out["emergent_as_sparse_as_sparsemax"] else
                    f"{ratio:.0f}× less often binary than") + " what sparsemax chooses on the same task.")
    out["sentence"] = text.strip()
    return out

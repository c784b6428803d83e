"""Top-k attention as a speed-up (issue 13, item 5), written to benchmarks/topk.json.

Does binary (top-k) attention make ParT cheaper? Inference jets/s, on ``--threads`` torch
threads (default 1), eval mode, no_grad, plain batches (the trimmer cuts each batch to its
longest jet), for the CPU default model of params/jetclass.yaml (embed 64/256/64, pair
32×3, 4 blocks, 8 heads) and the official ParT size (128/512/128, pair 64×3, 8 blocks), each
at P = 64 and P = 128 slots, random initial weights (the speed does not depend on them), of:

* ``dense_fused``: the model without intervention (SDPA, U + M as a float mask): the baseline;
* ``dense_explicit``: the explicit path without restriction (``Intervention(topk=P)``);
* ``masked_k{k}``: notebook 07's top-k (``Intervention(topk=k)``): all but the k largest
  logits of each row −∞, then the P × P softmax and the P × P product with V;
* ``gather_k{k}``: ``Intervention(topk=k, topk_gather=True)``: ``torch.topk`` on the logits,
  softmax over the k values, the k value vectors of each query gathered and summed;
* ``candidates_{form}_k{k}``: a lower bound, not a model: U computed by the same pair MLP
  for k candidate keys per query only (P·k pairs instead of P(P+1)/2), and the attention
  over those k keys only (A, softmax and the sum over V on P·k pairs; no P × P tensor
  anywhere in the particle blocks), in two forms (``matmul``: per head, batched small
  products; ``elementwise``: the candidates' K, V rows gathered once for all heads), of
  which ``candidates_over_dense`` takes the faster. The candidates are given (here: the k
  keys after the query, cyclic over the jet's real particles) and their choice is not
  timed: an exact top-k of A + U needs U for every pair, so no such model computes what
  ParT computes. Checked against the model with every key a candidate
  (``max_abs_logit_difference``);
* ``pair_all`` / ``pair_candidates_k{k}``: the pair embedding alone (features + MLP) on all
  P(P+1)/2 pairs (as the model: mirrored into (B, H, P, P)) and on P·k pairs;

for k = 1, 4, 16, all timed interleaved on the same batches (the order rotating by repeat),
rates from the median seconds over ``repeats`` (≥ 5). Headline keys are ratios to
``dense_fused`` (``gather_over_dense``, ``masked_over_dense``, ``candidates_over_dense``; > 1:
faster than dense), each the median over repeats of the ratio within one repeat (the load of
the shared machine shifts between repeats more than within one). A separate pass with
timers around the model's parts gives the time shares of each path: pair embedding, the
top-k selection (``torch.topk``), the rest of the particle blocks' attention core (logits
A + U + M, normalisation, sum over V), its q/k/v/out projections, FFN, and the rest. Jets: the test split of params/jetclass.yaml's generated JetClass-like jets
(real Pythia + FastJet, the multiplicity spread the notebooks see) when generated, else
synthetic jets (benchmarks/model.py's ``make_jets`` with n ~ Poisson(55)); the JSON says which.

    python benchmarks/topk.py [--threads 1] [--quick] [--parts cpu_default:64,...]
                              [--out benchmarks/topk.json]

``--parts`` runs only some cases; the others are kept from an existing ``--out`` file. Each
case records when it ran and the 1-minute load average at its start and end: the machine
is shared, so the ratios, measured side by side, are what the benchmark is for.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
PARAMS = REPO / "params" / "jetclass.yaml"
K_VALUES = (1, 4, 16)
CASES = ("cpu_default:64", "cpu_default:128", "official:64", "official:128")
#: mean multiplicity of the synthetic fallback (the generated JetClass-like jets: 54–62)
SYNTHETIC_MEAN_PARTICLES = 55.0


def _bench_model():
    """benchmarks/model.py as a module (its model builders and synthetic jets)."""
    spec = importlib.util.spec_from_file_location("partnb_bench_model", REPO / "benchmarks" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- jets -----------------------------------------------------------------------------------


def load_batches(bm, length: int, batch: int, count: int) -> tuple[list[tuple], dict]:
    """``count`` plain batches of ``batch`` jets with ``length`` slots: generated test jets of
    params/jetclass.yaml if present (never generated here), else synthetic."""
    from partnb.data import dataset_files
    from partnb.data.io import DataError
    from partnb.data.sample import load_split
    from partnb.params import load_params

    params = load_params(PARAMS, overrides={"features.max_particles": length,
                                             "analysis.progress": False})
    try:
        files = dataset_files(params, generate=False)
    except DataError as exc:
        why = str(exc)
    else:
        inputs = load_split(params, "test", max_jets=batch * count)
        order = np.random.default_rng(1).permutation(len(inputs))[:batch * count]
        batches = []
        for s in range(0, len(order) - batch + 1, batch):
            idx = torch.as_tensor(order[s:s + batch])
            batches.append(tuple(torch.as_tensor(t)[idx] for t in
                                 (inputs.features, inputs.vectors, inputs.mask)))
        source = {"kind": "generated", "split": "test",
                  "directory": str(Path(files.files[0]).parent.relative_to(REPO))
                  if Path(files.files[0]).is_relative_to(REPO) else str(Path(files.files[0]).parent)}
        return batches, source
    bm.MEAN_PARTICLES = SYNTHETIC_MEAN_PARTICLES
    batches = [b[:3] for b in bm.make_batches(count, batch, length, seed=2)]
    return batches, {"kind": "synthetic", "mean_particles": SYNTHETIC_MEAN_PARTICLES,
                     "why": why}


# --- the lower bound: U and attention on k candidate pairs per query --------------------------


def candidate_index(mask: torch.Tensor, k: int) -> torch.Tensor:
    """(B, P, k) candidate keys of each query: the k particles after it, cyclic over the jet's
    real particles (repeated when n < k), so every candidate is a real key."""
    n = mask.sum(dim=(1, 2)).long().clamp(min=1)  # (B,)
    length = mask.shape[-1]
    i = torch.arange(length)[None, :, None]
    r = torch.arange(k)[None, None, :]
    return (i + r) % n[:, None, None]


def candidate_pair_embed(pair_embed, vectors: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """U on the candidate pairs only: (B, H, P, k) from the same features and MLP as
    :class:`partnb.model.part.PairEmbed` (which embeds all P(P+1)/2 pairs i ≥ j)."""
    from partnb.data.features import _kinematics, _pair_values

    b, length, k = index.shape
    kin = _kinematics(vectors)  # each (B, P)
    flat = index.reshape(b, length * k)
    query = tuple(x.repeat_interleave(k, dim=1) for x in kin)
    key = tuple(x.gather(1, flat) for x in kin)
    with torch.no_grad():
        fts = torch.stack(_pair_values(query, key, pair_embed.eps, pair_embed.pair_input_dim), dim=1)
    u = pair_embed.embed(fts.to(pair_embed.embed[0].weight.dtype))  # (B, H, P·k)
    return u.view(b, -1, length, k)


def _attend_candidates_matmul(q, keys, values, u, index):
    """Per head: the k candidate keys and values gathered as (B, H, P, k, d), logits and sum
    by batched (1 × d)(d × k) and (1 × k)(k × d) products; u (B, H, P, k). → (B, P, C)."""
    from partnb.model.part import gather_keys

    b, heads, length, _ = q.shape
    key_index = index[:, None].expand(b, heads, *index.shape[1:])
    logits = ((q * q.shape[-1] ** -0.5).unsqueeze(-2)
              @ gather_keys(keys, key_index).transpose(-1, -2)).squeeze(-2) + u
    weights = torch.softmax(logits, dim=-1)
    attended = (weights.unsqueeze(-2) @ gather_keys(values, key_index)).squeeze(-2)
    return attended.transpose(1, 2).flatten(2)


def _attend_candidates_elementwise(q, keys, values, u, index):
    """Token layout: the candidates shared by the heads, so K and V rows are gathered once
    per (query, candidate) as (B, P, k, H, d); logits and sum elementwise; u (B, P, k, H)."""
    b, heads, length, d = q.shape
    kk = index.shape[-1]
    flat = (index + (torch.arange(b) * length).view(b, 1, 1)).reshape(-1)

    def rows(t):  # (B, H, P, d) -> the candidates' rows (B, P, k, H, d)
        return t.transpose(1, 2).reshape(b * length, heads * d).index_select(0, flat).view(
            b, length, kk, heads, d)

    query = (q * d ** -0.5).transpose(1, 2).unsqueeze(2)  # (B, P, 1, H, d)
    weights = torch.softmax((query * rows(keys)).sum(-1) + u, dim=2)  # (B, P, k, H)
    return (weights.unsqueeze(-1) * rows(values)).sum(2).flatten(2)


CANDIDATE_FORMS = {"matmul": _attend_candidates_matmul, "elementwise": _attend_candidates_elementwise}


@torch.no_grad()
def candidate_forward(model, features, vectors, mask, k: int | None = None,
                      index: torch.Tensor | None = None, form: str = "matmul") -> torch.Tensor:
    """Logits of ``model`` with every particle block attending over k candidate keys per query
    (``candidate_index`` unless ``index`` (B, P, k) is given), U computed for those pairs only
    and the attention in one of :data:`CANDIDATE_FORMS`; class blocks, embedding and FFN as in
    the model (softmax models, eval mode). With every key a candidate (``index`` = 0 … P−1 in
    every row) it is the model itself."""
    from partnb.model.part import _LayerAttention, cls_layer_key, padding_bias

    features, vectors, mask = model.trimmer(features, vectors, mask.bool())
    padding = ~mask[:, 0]
    x = model.embed(features).masked_fill(padding.unsqueeze(-1), 0.0)
    if index is None:
        index = candidate_index(mask, k)
    b, length, kk = index.shape
    u = candidate_pair_embed(model.pair_embed, vectors, index)  # (B, H, P, k)
    minus_inf = padding_bias(padding, x.dtype)[:, :, 0].expand(b, 1, length)  # (B, 1, P keys)
    u = u + minus_inf.gather(-1, index.reshape(b, 1, length * kk)).view(b, 1, length, kk)
    if form == "elementwise":
        u = u.permute(0, 2, 3, 1).contiguous()  # (B, P, k, H)
    attend = CANDIDATE_FORMS[form]
    for block in model.blocks:
        z = block.pre_attn_norm(x)
        out = block.attn.out_proj(attend(*block.attn.project(z, z), u, index))
        x = block.dropout(block.post_attn_norm(block._scale_heads(out))) + x
        x = block._feed_forward(x)
    cls = model.cls_token.expand(x.shape[0], 1, -1)
    cls_padding = torch.cat((torch.zeros_like(padding[:, :1]), padding), dim=1)
    for i, block in enumerate(model.cls_blocks):
        cls = block(x, _LayerAttention(cls_layer_key(i), None, cls_padding, dtype=x.dtype), cls=cls)
    return model.fc(model.norm(cls[:, 0]))


def trimmed(model, batch):
    """(features, vectors, mask) cut as the eval-mode trimmer cuts them."""
    features, vectors, mask = batch
    n = max(int(mask.sum(dim=-1).max()), 1)
    return features[..., :n], vectors[..., :n], mask[..., :n]


# --- timed calls ----------------------------------------------------------------------------


def calls_of(model, length: int) -> dict:
    """name → fn(batch) of every timed path."""
    from partnb.model import Intervention

    def forward(iv):
        @torch.no_grad()
        def fn(batch):
            return model(*batch, intervention=iv)
        return fn

    def pair_all(batch):
        with torch.no_grad():
            return model.pair_embed(trimmed(model, batch)[1])

    def pair_candidates(k):
        def fn(batch):
            _, vectors, mask = trimmed(model, batch)
            with torch.no_grad():
                return candidate_pair_embed(model.pair_embed, vectors, candidate_index(mask, k))
        return fn

    calls = {"dense_fused": forward(None), "dense_explicit": forward(Intervention(topk=length))}
    for k in K_VALUES:
        calls[f"masked_k{k}"] = forward(Intervention(topk=k))
        calls[f"gather_k{k}"] = forward(Intervention(topk=k, topk_gather=True))
        for form in CANDIDATE_FORMS:
            calls[f"candidates_{form}_k{k}"] = (
                lambda batch, k=k, form=form: candidate_forward(model, *batch, k=k, form=form))
    calls["pair_all"] = pair_all
    for k in K_VALUES:
        calls[f"pair_candidates_k{k}"] = pair_candidates(k)
    return calls


def interleaved_seconds(calls: dict, batches: list, repeats: int) -> dict[str, list[float]]:
    """Seconds of each call over all batches, per repeat; the order rotates by repeat."""
    for fn in calls.values():  # warm-up (first calls allocate)
        fn(batches[0])
    names = list(calls)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = (r * 5) % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            for batch in batches:
                calls[name](batch)
            seconds[name].append(time.perf_counter() - t0)
    return seconds


@contextlib.contextmanager
def part_timers(totals: dict[str, float]):
    """Add the seconds spent in the model's parts to ``totals`` (timers around the class
    methods, removed on exit): pair embedding, particle-block attention module and its core
    (``_LayerAttention.attend``), the top-k selection inside it (``Tensor.topk``), FFN."""
    from partnb.model import part

    def timed(cls, method: str, name, particle_only: bool):
        original = getattr(cls, method)

        def wrapper(self, *args, **kwargs):
            layer = args[-1] if method == "forward" and cls is part.MultiHeadAttention else self
            t0 = time.perf_counter()
            out = original(self, *args, **kwargs)
            if not particle_only or isinstance(layer.key, int):
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - t0
            return out
        return original, wrapper

    patches = [(part.PairEmbed, "forward", "pair_embed", False),
               (part.MultiHeadAttention, "forward", "attention_module", True),
               (part._LayerAttention, "attend", "attention_core", True),
               (part.Block, "_feed_forward", "ffn", False),
               (torch.Tensor, "topk", "topk_selection", False)]
    saved = []
    try:
        for cls, method, name, particle_only in patches:
            original, wrapper = timed(cls, method, name, particle_only)
            saved.append((cls, method, original))
            setattr(cls, method, wrapper)
        yield totals
    finally:
        for cls, method, original in saved:
            setattr(cls, method, original)


def time_shares(calls: dict, names: list[str], batches: list, repeats: int) -> dict:
    """Per path, median over repeats of each part's share of the forward time."""
    shares: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    for _ in range(repeats):
        for name in names:
            totals: dict[str, float] = {}
            with part_timers(totals):
                t0 = time.perf_counter()
                for batch in batches:
                    calls[name](batch)
                total = time.perf_counter() - t0
            topk = totals.get("topk_selection", 0.0)
            parts = {"pair_embed": totals.get("pair_embed", 0.0),
                     "topk_selection": topk,
                     "attention_core": totals.get("attention_core", 0.0) - topk,
                     "attention_projections": totals.get("attention_module", 0.0)
                     - totals.get("attention_core", 0.0),
                     "ffn": totals.get("ffn", 0.0)}
            parts["rest"] = total - sum(parts.values())
            for part_name, value in parts.items():
                shares[name].setdefault(part_name, []).append(value / total)
    return {name: {p: round(statistics.median(v), 3) for p, v in parts.items()}
            for name, parts in shares.items()}


# --- one case ---------------------------------------------------------------------------------


def _block0_output(model, batch, iv) -> torch.Tensor:
    """Output of the first particle block (its input does not depend on the attention path)."""
    store = []
    handle = model.blocks[0].register_forward_hook(lambda module, args, out: store.append(out))
    try:
        with torch.no_grad():
            model(*batch, intervention=iv)
    finally:
        handle.remove()
    return store[0]


def run_case(bm, name: str, config: dict, length: int, sizes: dict, jets_cache: dict) -> dict:
    from partnb.model import Intervention

    if length not in jets_cache:
        jets_cache[length] = load_batches(bm, length, sizes["load_jets"], 1)
    (every_jet,), source = jets_cache[length]
    batches = [tuple(t[s:s + sizes["batch"]] for t in every_jet)
               for s in range(0, sizes["batch"] * sizes["batches"], sizes["batch"])]
    torch.manual_seed(0)
    model = bm.build_partnb(config).eval()
    for _ in range(6):  # past the trimmer's 5 no-op calls
        with torch.no_grad():
            model(*batches[0])
    load_start = os.getloadavg()[0]
    t_start = time.time()
    calls = calls_of(model, length)
    seconds = interleaved_seconds(calls, batches, sizes["repeats"])
    jets = sum(len(b[0]) for b in batches)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    rate = {k: jets / v for k, v in median.items()}
    forward_names = [n for n in calls if not n.startswith("pair_")]
    shares = time_shares(calls, ["dense_fused", "dense_explicit"]
                         + [f"{kind}_k{k}" for kind in ("masked", "gather") for k in K_VALUES],
                         batches, sizes["share_repeats"])

    # the same function: gather against masked (the model's logits, and the first block's
    # output, whose input is the same for both), candidate forward with every key against the model
    check = batches[0]
    with torch.no_grad():
        dense = model(*check)
        diffs = {}
        for k in K_VALUES:
            masked = calls[f"masked_k{k}"](check)
            diffs[f"gather_vs_masked_k{k}"] = float((calls[f"gather_k{k}"](check) - masked).abs().max())
            diffs[f"gather_vs_masked_block0_k{k}"] = float(
                (_block0_output(model, check, Intervention(topk=k, topk_gather=True))
                 - _block0_output(model, check, Intervention(topk=k))).abs().max())
        _, _, mask = trimmed(model, check)
        n = mask.shape[-1]
        every_key = torch.arange(n).expand(len(mask), n, n)
        for form in CANDIDATE_FORMS:
            diffs[f"candidates_{form}_every_key_vs_dense"] = float(
                (candidate_forward(model, *check, index=every_key, form=form) - dense).abs().max())

    lengths = [trimmed(model, b)[2].shape[-1] for b in batches]
    n_real = torch.cat([b[2].sum(dim=(1, 2)) for b in batches])
    out = {
        "config": name, "P": length,
        "model": {key: config[key] for key in ("embed_dims", "pair_embed_dims", "num_heads",
                                                 "num_layers", "num_cls_layers")},
        "jets_source": source, "batch": sizes["batch"], "batches": len(batches), "jets": jets,
        "repeats": sizes["repeats"], "mean_n": round(float(n_real.mean()), 1),
        "mean_trimmed_length": round(float(np.mean(lengths)), 1),
        "pairs_all": int(np.mean([t * (t + 1) // 2 for t in lengths])),
        "pairs_candidates": {str(k): int(np.mean([t * k for t in lengths])) for k in K_VALUES},
        "jets_per_s": {k: round(rate[k], 1) for k in forward_names},
        "seconds_per_repeat": {k: [round(s, 4) for s in v] for k, v in seconds.items()},
    }
    dense_s = median["dense_fused"]

    def ratio(num: str, den: str) -> float:
        """Median over repeats of seconds[num] / seconds[den] in the same repeat (paired: the
        load of the shared machine changes between repeats, much less within one)."""
        return round(statistics.median(a / b for a, b in zip(seconds[num], seconds[den], strict=True)), 3)

    out["over_dense"] = {k: ratio("dense_fused", k) for k in forward_names}
    for kind in ("masked", "gather"):
        out[f"{kind}_over_dense"] = {str(k): out["over_dense"][f"{kind}_k{k}"] for k in K_VALUES}
    # the lower bound: the faster of the two forms of candidate attention
    out["candidates_form"] = {str(k): max(CANDIDATE_FORMS, key=lambda f: out["over_dense"][f"candidates_{f}_k{k}"])
                              for k in K_VALUES}
    out["candidates_over_dense"] = {
        str(k): out["over_dense"][f"candidates_{out['candidates_form'][str(k)]}_k{k}"] for k in K_VALUES}
    out["gather_over_masked"] = {str(k): ratio(f"masked_k{k}", f"gather_k{k}")
                                 for k in K_VALUES}
    out["explicit_over_dense"] = out["over_dense"]["dense_explicit"]
    out["pair_embed"] = {
        "all_pairs_ms_per_jet": round(1e3 * median["pair_all"] / jets, 3),
        "candidates_ms_per_jet": {str(k): round(1e3 * median[f"pair_candidates_k{k}"] / jets, 3)
                                  for k in K_VALUES},
        "all_pairs_share_of_dense_fused": ratio("pair_all", "dense_fused"),
        "candidates_over_all_pairs_time": {
            str(k): ratio(f"pair_candidates_k{k}", "pair_all") for k in K_VALUES},
        # the model without its pair embedding, and with it on the candidates only
        "rest_of_dense_fused_ms_per_jet": round(1e3 * (dense_s - median["pair_all"]) / jets, 3),
    }
    out["time_shares"] = shares
    out["max_abs_logit_difference"] = diffs
    out["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start))
    out["minutes"] = round((time.time() - t_start) / 60, 2)
    out["load_1min"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="one small batch, 2 repeats (a smoke run)")
    ap.add_argument("--parts", default=",".join(CASES),
                    help="comma-separated subset of " + ", ".join(CASES) + "; the others are "
                    "kept from an existing --out file")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "topk.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(CASES))
    if unknown or not parts:
        ap.error(f"--parts {args.parts!r}: unknown {', '.join(unknown) or 'empty'}; choose from {', '.join(CASES)}")
    # jets per repeat (one batch) so that each case takes about a minute on one loaded core
    sizes = {"cpu_default:64": dict(batch=50), "cpu_default:128": dict(batch=25),
             "official:64": dict(batch=20), "official:128": dict(batch=10)}
    for s in sizes.values():
        s.update(batches=1, repeats=7, share_repeats=2)
        if args.quick:
            s.update(batch=min(s["batch"], 10), repeats=2, share_repeats=1)
    for case, s in sizes.items():  # the jets are read once per P, as many as its largest case needs
        s["load_jets"] = max(t["batch"] for c, t in sizes.items() if c.split(":")[1] == case.split(":")[1])
    out_path = Path(args.out)
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    result.setdefault("cases", [])
    result["machine"] = {"python": platform.python_version(), "torch": torch.__version__,
                         "threads": args.threads, "cpus": os.cpu_count()}
    result["k"] = list(K_VALUES)
    result["quick"] = args.quick
    result["notes"] = {
        "ratios": "X_over_dense = median over repeats of (seconds of dense_fused / seconds of X "
                  "in the same repeat), > 1: X is faster; all paths timed interleaved on the "
                  "same jets; jets_per_s from the median seconds",
        "candidates": "lower bound, not a model: U and attention on P*k given candidate pairs "
                      "per query (their choice not timed); an exact top-k of A + U needs U for "
                      "all pairs; the faster of two forms (candidates_form)",
        "time_shares": "separate pass with timers around PairEmbed.forward, the particle "
                       "blocks' MultiHeadAttention.forward and _LayerAttention.attend, "
                       "Tensor.topk and Block._feed_forward; attention_core excludes topk_selection",
        "weights": "random initial weights (speed does not depend on them)",
    }
    bm = _bench_model()
    configs = {"cpu_default": bm.cpu_default_config()[0], "official": bm.official_config()[0]}
    jets_cache: dict = {}
    for case in parts:
        print(f"{case} ...", flush=True)
        name, length = case.split(":")
        entry = run_case(bm, name, configs[name], int(length), sizes[case], jets_cache)
        entry["sizes"] = sizes[case]
        result["cases"] = [e for e in result["cases"]
                           if (e["config"], e["P"]) != (name, int(length))] + [entry]
        print(json.dumps({k: entry[k] for k in ("config", "P", "gather_over_dense", "masked_over_dense",
                                                "candidates_over_dense", "load_1min")}), flush=True)
    result["cases"].sort(key=lambda e: (e["config"] != "cpu_default", e["P"]))
    result["summary"] = summary(result["cases"])
    tmp = out_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out_path)
    print(f"wrote {out_path}")


def summary(cases: list[dict]) -> list[dict]:
    """One row per case: jets/s of dense fused and the ratios to it, the shares of the dense path."""
    rows = []
    for e in cases:
        shares = e["time_shares"]["dense_fused"]
        rows.append({"config": e["config"], "P": e["P"], "mean_trimmed_length": e["mean_trimmed_length"],
                     "dense_fused_jets_per_s": e["jets_per_s"]["dense_fused"],
                     "explicit_over_dense": e["explicit_over_dense"],
                     "masked_over_dense": e["masked_over_dense"],
                     "gather_over_dense": e["gather_over_dense"],
                     "candidates_over_dense": e["candidates_over_dense"],
                     "pair_embed_share_dense": e["pair_embed"]["all_pairs_share_of_dense_fused"],
                     "dense_shares": shares, "load_1min": e["load_1min"]})
    return rows


if __name__ == "__main__":
    main()

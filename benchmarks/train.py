"""Length-bucketed against plain batches, written to benchmarks/train.json.

On the generated JetClass-like jets of params/jetclass.yaml (the train split, real Pythia +
FastJet jets, so the multiplicity spread is the one the notebooks see), on ``--threads``
torch threads:

1. **training** jets/s (AdamW step, batch 128; 32 at the official size) with the batches of
   ``partnb.data.sample.batch_indices`` in ``plain`` and in ``bucketed`` order on two copies
   of one initial model: every batch of one epoch timed once, in rounds that alternate the
   two orders (the epoch's jets over its time; key ``bucketed_over_plain``), for the CPU default (P = 64), the same on the CMS-like
   detector-level jets (``cpu_default_detector``: JetClass's multiplicity, fewer jets fill the
   64 slots) and the official ParT size (P = 128, the particle-level jets read with 128 slots);
2. **inference** jets/s (batch 100, the analyses' batch size) of ``partnb.model.factory.predict`` with ``batching="plain"`` and
   ``"bucketed"``, and of weaver-core 0.4.17's model (same state dict) on plain batches:
   ``partnb_bucketed_over_weaver``. weaver is read from ``.weaver-0.4.17`` as in
   benchmarks/model.py; without it the weaver columns are null and the reason recorded;
3. **peak RSS** (VmHWM) of the training data path (the input stores of the train split,
   ``max_jets = N`` with wrap padding, and of the val split, in a temporary folder; 10
   bucketed training steps read from the store; one prediction over the val split) for
   N = 4k and 40k jets (the issue asks 10k vs 100k, the same factor; 50k are generated),
   each in a fresh subprocess: ``peak_rss_ratio``.

    python benchmarks/train.py [--threads 1] [--quick] [--parts training:cpu_default,...]
                               [--out benchmarks/train.json]

Rates are medians over rounds; the machine load (1-minute load average) is recorded, since
the ratios are what the benchmark is for.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
PARAMS = REPO / "params" / "jetclass.yaml"


def _bench_model():
    """benchmarks/model.py as a module (its model builders and weaver loader)."""
    spec = importlib.util.spec_from_file_location("partnb_bench_model", REPO / "benchmarks" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_jets(max_particles: int, n_jets: int, detector: str = "none"):
    from partnb.data.sample import load_split
    from partnb.params import load_params

    params = load_params(PARAMS, overrides={"features.max_particles": max_particles,
                                             "dataset.detector": detector,
                                             "analysis.progress": False})
    return params, load_split(params, "train", max_jets=n_jets)


def _batches(inputs, order: str, batch: int, seed: int = 1):
    from partnb.data.sample import batch_indices
    from partnb.model.factory import batch_tensors

    idx = batch_indices(inputs.n_particles, batch, batching=order, seed=seed, epoch=0,
                        drop_last=True)
    return [batch_tensors(inputs, i) for i in idx], float(np.mean([inputs.n_particles[i].max() for i in idx]))


def training(bm, name: str, config: dict, length: int, sizes: dict, detector: str = "none") -> dict:
    batch = sizes["batch"]
    _, inputs = load_jets(length, sizes["train_jets"], detector)
    torch.manual_seed(0)
    state = bm.build_partnb(config).state_dict()
    runs = {}
    for order in ("plain", "bucketed"):
        model = bm.build_partnb(config, copy.deepcopy(state)).train()
        batches, mean_max = _batches(inputs, order, batch)
        runs[order] = {"model": model, "opt": torch.optim.AdamW(model.parameters(), lr=1e-3),
                       "batches": batches, "mean_batch_max_n": mean_max}
        for i in range(6):  # past weaver's 5 no-op trimmer calls
            bm.train_step(model, runs[order]["opt"], batches[i % len(batches)])
    # every batch of the epoch is timed once, in `rounds` consecutive chunks, the two orders
    # alternating chunk by chunk: bucketed batches differ in length, so timing a few of them
    # would measure whichever lengths those few happen to have
    rates = {order: [] for order in runs}
    seconds = {order: 0.0 for order in runs}
    rounds = sizes["rounds"]
    for run in runs.values():
        run["chunks"] = np.array_split(np.arange(len(run["batches"])), rounds)
    for r in range(rounds):
        for order in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            run = runs[order]
            t0 = time.perf_counter()
            for i in run["chunks"][r]:
                bm.train_step(run["model"], run["opt"], run["batches"][i])
            took = time.perf_counter() - t0
            seconds[order] += took
            rates[order].append(len(run["chunks"][r]) * batch / took)
    out = {"config": name, "P": length, "jets": len(inputs), "batch": batch, "detector": detector,
           "mean_n": round(float(inputs.n_particles.mean()), 2),
           "fraction_at_P": round(float((inputs.n_particles >= length).mean()), 4)}
    for order, run in runs.items():  # the whole epoch's jets over its time
        out[f"{order}_jets_per_s"] = round(len(run["batches"]) * batch / seconds[order], 1)
        out[f"{order}_jets_per_s_rounds"] = [round(v, 1) for v in rates[order]]
        out[f"{order}_mean_batch_max_n"] = round(run["mean_batch_max_n"], 2)
    out["bucketed_over_plain"] = round(out["bucketed_jets_per_s"] / out["plain_jets_per_s"], 3)
    return out


def inference(bm, name: str, config: dict, length: int, sizes: dict, weaver_class, why) -> dict:
    from partnb.model.factory import predict

    _, inputs = load_jets(length, sizes["infer_jets"])
    torch.manual_seed(0)
    state = bm.build_partnb(config).state_dict()
    models = bm.build_pair(config, state, weaver_class)
    for m in models.values():
        m.eval()
    b = sizes["infer_batch"]
    weaver_batches = [(torch.as_tensor(inputs.features[s:s + b]), torch.as_tensor(inputs.vectors[s:s + b]),
                       torch.as_tensor(inputs.mask[s:s + b]), None)
                      for s in range(0, len(inputs), b)]

    def weaver_all():
        with torch.no_grad():
            for b in weaver_batches:
                models["weaver"](b[0], b[1], b[2])

    calls = {"plain": lambda: predict(models["partnb"], inputs, batch_size=sizes["infer_batch"], batching="plain"),
             "bucketed": lambda: predict(models["partnb"], inputs, batch_size=sizes["infer_batch"], batching="bucketed")}
    if "weaver" in models:
        calls["weaver_plain"] = weaver_all
    for fn in calls.values():  # warm-up, past the trimmers' no-op calls
        fn()
    rates = {k: [] for k in calls}
    for r in range(sizes["rounds"]):
        for k in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            t0 = time.perf_counter()
            calls[k]()
            rates[k].append(len(inputs) / (time.perf_counter() - t0))
    same = predict(models["partnb"], inputs, batch_size=sizes["infer_batch"], batching="plain")
    diff = float(np.abs(predict(models["partnb"], inputs, batch_size=sizes["infer_batch"], batching="bucketed") - same).max())
    out = {"config": name, "P": length, "jets": len(inputs), "max_abs_logit_difference": diff}
    for k in calls:
        out[f"{k}_jets_per_s"] = round(statistics.median(rates[k]), 1)
        out[f"{k}_jets_per_s_rounds"] = [round(v, 1) for v in rates[k]]
    out["bucketed_over_plain"] = round(out["bucketed_jets_per_s"] / out["plain_jets_per_s"], 3)
    if "weaver_plain" in calls:
        out["partnb_bucketed_over_weaver"] = round(out["bucketed_jets_per_s"] / out["weaver_plain_jets_per_s"], 3)
        out["partnb_plain_over_weaver"] = round(out["plain_jets_per_s"] / out["weaver_plain_jets_per_s"], 3)
    else:
        out["weaver_unavailable"] = why
    return out


def memory_case(n_jets: int) -> dict:
    """Peak RSS of training's data path on ``n_jets`` training jets (run in a fresh process):
    the stores of the train split (``max_jets = n_jets``, wrap padding) and of the val split
    built as ``partnb train`` builds them, 10 bucketed training steps read from the store, and
    one prediction over the val split (what every epoch end does)."""
    import tempfile

    from partnb.data.sample import batch_indices
    from partnb.data.store import split_store
    from partnb.model.factory import batch_tensors, model_from_params, predict
    from partnb.params import load_params

    bm = _bench_model()
    params = load_params(PARAMS, overrides={"analysis.progress": False})
    stages = {}
    with tempfile.TemporaryDirectory() as root:
        inputs = split_store(params, "train", max_jets=n_jets, pad_mode="wrap", root=root)
        val = split_store(params, "val", root=root)
        stages["stores_built"] = round(bm.peak_rss_kb()[0] / 1024, 1)
        model = model_from_params(params).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        # the same 10 batches of 128 jets in both cases (the first jets of the store), so the
        # activations of the steps are the same and what differs is the data path alone
        order = np.arange(min(len(inputs), 1280))
        for idx in batch_indices(inputs.n_particles[order], 128, batching="bucketed", seed=1, drop_last=True)[:10]:
            bm.train_step(model, opt, batch_tensors(inputs, order[idx]))
        stages["after_10_steps"] = round(bm.peak_rss_kb()[0] / 1024, 1)
        predict(model, val)
        n = len(inputs)
    peak, source = bm.peak_rss_kb()
    return {"jets": n, "peak_rss_mb": round(peak / 1024, 1), "peak_by_stage_mb": stages, "source": source,
            "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_")}


def memory(cases: tuple[int, int], threads: int) -> dict:
    """Each case in a fresh process, with glibc's default allocator settings and with
    ``MALLOC_MMAP_THRESHOLD_=131072`` (as the analysis memory benchmarks)."""
    out = {}
    for label, extra in (("glibc_default", {}), ("mmap_threshold_131072", {"MALLOC_MMAP_THRESHOLD_": "131072"})):
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"} | extra
        runs = {}
        for n in cases:
            proc = subprocess.run([sys.executable, __file__, "--memory-case", str(n), "--threads", str(threads)],
                                  capture_output=True, text=True, check=True, env=env)
            runs[str(n)] = json.loads(proc.stdout.strip().splitlines()[-1])
        small, large = (runs[str(n)]["peak_rss_mb"] for n in cases)
        out[label] = {"cases": runs, "peak_rss_ratio": round(large / small, 3)}
    return {**out, "jets_ratio": round(cases[1] / cases[0], 1),
            "peak_rss_ratio": out["glibc_default"]["peak_rss_ratio"], "target": 1.10,
            "note": "training streams its split from an input store on disk (partnb.data.store): "
                    "memory of one batch and one file chunk; the same 10 training batches in both "
                    "cases"}


PARTS = ("training:cpu_default", "training:cpu_default_detector", "inference:cpu_default",
         "training:official", "inference:official", "memory")
#: the jets a config reads: particle level, or through the CMS-like detector emulation
#: (docs/detector.md), whose jets have JetClass's multiplicity (fewer fill the 64 slots)
DETECTOR = {"cpu_default_detector": "cms-like"}


def _stamp(entry: dict) -> dict:
    entry["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    entry["load_1min"] = round(os.getloadavg()[0], 2)
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="fewer rounds and jets (a smoke run)")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help="comma-separated subset of " + ", ".join(PARTS) + "; the others are "
                    "kept from an existing --out file")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "train.json"))
    ap.add_argument("--memory-case", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_case is not None:
        print(json.dumps(memory_case(args.memory_case)))
        return
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        ap.error(f"--parts {args.parts!r}: unknown {', '.join(unknown) or 'empty'}; choose from {', '.join(PARTS)}")
    sizes = ({"train_jets": 1000, "infer_jets": 500, "rounds": 2, "batch": 128,
              "infer_batch": 100}
             if args.quick else
             {"train_jets": 4000, "infer_jets": 1000, "rounds": 4, "batch": 128,
              "infer_batch": 100})
    # the official size: batch 32 in training (a step at 128 x P = 128 needs several GB), fewer
    # rounds and jets (a few jets/s on one core)
    official_sizes = dict(sizes, rounds=2, batch=32, train_jets=sizes["train_jets"] // 4,
                          infer_jets=max(100, sizes["infer_jets"] // 5))
    out_path = Path(args.out)
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    result.setdefault("training", [])
    result.setdefault("inference", [])
    result["machine"] = {"python": platform.python_version(), "torch": torch.__version__,
                         "threads": args.threads, "cpus": os.cpu_count()}
    result["sizes"] = {"cpu_default": sizes, "official": official_sizes}
    bm = _bench_model()
    weaver_class, why = bm.load_weaver(bm.WEAVER_DIR)
    configs = {"cpu_default": bm.cpu_default_config(), "official": bm.official_config(),
               "cpu_default_detector": bm.cpu_default_config()}
    for part in parts:
        print(f"{part} ...", flush=True)
        if part == "memory":
            result["memory"] = _stamp(memory((1000, 4000) if args.quick else (4000, 40000), args.threads))
            print(json.dumps(result["memory"]), flush=True)
            continue
        kind, name = part.split(":")
        config, length = configs[name]
        sz = official_sizes if name == "official" else sizes
        entry = _stamp(training(bm, name, config, length, sz, DETECTOR.get(name, "none"))
                       if kind == "training"
                       else inference(bm, name, config, length, sz, weaver_class, why))
        result[kind] = [e for e in result[kind] if e.get("config") != name] + [entry]
        print(json.dumps(entry), flush=True)
    tmp = out_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out_path)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

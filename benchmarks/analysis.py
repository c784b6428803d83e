"""Analysis speed and memory, written to benchmarks/analysis.json.

On the default JetClass model (``params/jetclass.yaml``, committed checkpoint) and its test
split, on ``--threads`` torch threads:

1. jets/s of the full streaming analysis pass — one probed forward pass capturing A, U, L and
   the softmax weights of every particle block, feeding the consumers of notebooks 03, 04 and
   06 (attention distribution, |A|/|U|, interaction-dependent and non-binary counts, U
   structure, row variation) — against plain inference on the fused attention path; beside
   it the probed pass with no consumer and each notebook's own pass (its consumers and
   captures, trimmed); all timed interleaved in rounds (median), plus the seconds spent in
   each consumer inside the full pass. Target: probes <= 2x plain.
2. peak RSS (VmHWM) of that pass over 10k and over 100k jets (the test split cycled), each in
   a fresh subprocess: target flat within 10 %. Run with glibc's default malloc and with
   ``MALLOC_MMAP_THRESHOLD_=131072`` (see benchmarks/model.py for why both).

    python benchmarks/analysis.py [--threads 2] [--quick] [--parts throughput,memory]
                                  [--rounds 5] [--out benchmarks/analysis.json]

``--parts`` runs only some parts and keeps the others from an existing ``--out`` file; ``parts``
in the JSON records when, on how many threads and at what load each part was measured (the
memory part is insensitive to load, the throughput ratio less so: both passes are timed
interleaved).
"""

from __future__ import annotations

import argparse
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
ALLOCATORS = {"glibc_default": {}, "mmap_threshold_128k": {"MALLOC_MMAP_THRESHOLD_": "131072"}}


def setup(max_jets: int | None = None):
    from partnb.analysis.stream import analysis_inputs
    from partnb.data.schema import DATASETS
    from partnb.notebook import trained_model
    from partnb.params import load_params

    params = load_params(PARAMS)
    model = trained_model(params, train_if_missing=False)
    inputs = analysis_inputs(params, n_jets=max_jets)
    return params, model, inputs, list(DATASETS[params.dataset.name].classes)


def consumers(model, classes):
    from partnb.analysis.interaction import InteractionCounter
    from partnb.analysis.magnitude import MagnitudeRatio
    from partnb.analysis.sparsity import AttentionSparsity
    from partnb.analysis.u_structure import RowVariation, UStructure

    cfg = model.config
    return [AttentionSparsity(cfg["num_layers"], cfg["num_heads"], classes),
            MagnitudeRatio(cfg["num_layers"]), InteractionCounter(), UStructure(), RowVariation()]


def cycled(inputs, n_jets: int):
    """``inputs`` repeated to ``n_jets`` jets (views batch by batch, nothing copied up front)."""
    reps = int(np.ceil(n_jets / len(inputs)))
    index = np.tile(np.arange(len(inputs)), reps)[:n_jets]
    return inputs.take(index) if n_jets <= len(inputs) else _Cycled(inputs, index)


class _Cycled:
    """A JetInputs-like view that materialises only the rows a batch asks for."""

    def __init__(self, inputs, index):
        self.inputs, self.index = inputs, index
        self.feature_set, self.feature_names = inputs.feature_set, inputs.feature_names

    def __len__(self):
        return len(self.index)

    def take(self, idx):
        return self.inputs.take(self.index[np.asarray(idx)])

    def __getattr__(self, name):
        if name in ("features", "vectors", "mask", "label", "n_particles"):
            return _Rows(getattr(self.inputs, name), self.index)
        raise AttributeError(name)


class _Rows:
    def __init__(self, array, index):
        self.array, self.index = array, index

    def __getitem__(self, idx):
        return self.array[self.index[idx]]


CAPTURE = ("A", "U", "L", "P")


def full_pass(model, inputs, classes, batch: int, consumers_=None):
    from partnb.analysis.stream import stream_attention

    return stream_attention(model, inputs, consumers(model, classes) if consumers_ is None
                            else consumers_, batch_size=batch, capture=CAPTURE)


def notebook_passes(model, classes):
    """The consumers and captures of each notebook's own pass (trimmed, correct readings)."""
    from partnb.analysis.interaction import InteractionCounter
    from partnb.analysis.magnitude import MagnitudeRatio
    from partnb.analysis.sparsity import AttentionSparsity
    from partnb.analysis.u_structure import RowVariation, UStructure

    cfg = model.config
    return {
        "03_sparsity": (lambda: [AttentionSparsity(cfg["num_layers"], cfg["num_heads"], classes)],
                        ("P",)),
        "04_magnitude": (lambda: [MagnitudeRatio(cfg["num_layers"])], ("A", "U")),
        "06_interaction": (lambda: [InteractionCounter(), UStructure(), RowVariation()], CAPTURE),
    }


def plain_pass(model, inputs, batch: int):
    from partnb.model.factory import predict

    return predict(model, inputs, batch_size=batch)


class _Timed:
    """A consumer wrapped to add the seconds spent in it to ``seconds[name]``."""

    def __init__(self, consumer, seconds: dict):
        self.consumer, self.seconds = consumer, seconds
        self.name = type(consumer).__name__

    def update(self, key, record, batch):
        t0 = time.perf_counter()
        self.consumer.update(key, record, batch)
        self.seconds[self.name] = self.seconds.get(self.name, 0.0) + time.perf_counter() - t0

    def update_logits(self, logits, batch):
        if hasattr(self.consumer, "update_logits"):
            t0 = time.perf_counter()
            self.consumer.update_logits(logits, batch)
            self.seconds[self.name] += time.perf_counter() - t0


def throughput(model, inputs, classes, batch: int, rounds: int) -> dict:
    from partnb.analysis.stream import stream_attention

    for _ in range(6):  # past the trimmer's 5 untrimmed calls
        plain_pass(model, cycled(inputs, batch), batch)
    plain_pass(model, inputs, batch)  # the first full pass after loading is slow: not timed
    passes = notebook_passes(model, classes)
    rates: dict[str, list[float]] = {"plain": [], "analysis": [], "probe_only": [],
                                     **{name: [] for name in passes}}
    spent: list[dict] = []
    for _ in range(rounds):
        for name in rates:
            t0 = time.perf_counter()
            if name == "plain":
                plain_pass(model, inputs, batch)
            elif name == "analysis":  # every consumer in one pass, each timed inside it
                spent.append({})
                full_pass(model, inputs, classes, batch,
                          [_Timed(c, spent[-1]) for c in consumers(model, classes)])
            elif name == "probe_only":
                full_pass(model, inputs, classes, batch, [])
            else:
                make, capture = passes[name]
                stream_attention(model, inputs, make(), batch_size=batch, capture=capture)
            rates[name].append(len(inputs) / (time.perf_counter() - t0))
    median = {k: statistics.median(v) for k, v in rates.items()}
    plain = median["plain"]
    seconds_plain = len(inputs) / plain
    return {"jets": len(inputs), "batch": batch, "rounds": rounds,
            "plain_jets_per_s": round(plain, 1), "analysis_jets_per_s": round(median["analysis"], 1),
            "time_ratio_analysis_over_plain": round(plain / median["analysis"], 3),
            "time_ratio_over_plain": {k: round(plain / v, 2) for k, v in median.items()
                                      if k != "plain"},
            "consumer_seconds_in_full_pass_over_plain_seconds": {
                k: round(statistics.median(s[k] for s in spent) / seconds_plain, 3)
                for k in spent[0]},
            "rounds_jets_per_s": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
            "target": "<= 2"}


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_case(n_jets: int, batch: int) -> dict:
    params, model, inputs, classes = setup()
    peak_before = peak_rss_mb()
    t0 = time.perf_counter()
    full_pass(model, cycled(inputs, n_jets), classes, batch)
    seconds = time.perf_counter() - t0
    return {"jets": n_jets, "batch": batch, "seconds": round(seconds, 1),
            "jets_per_s": round(n_jets / seconds, 1), "peak_before_mb": round(peak_before, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def memory(cases: tuple[int, int], batch: int, threads: int, allocators) -> list[dict]:
    out = []
    for name in allocators:
        extra = ALLOCATORS[name]
        row: dict = {"allocator": name, "env": extra}
        for n in cases:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-case", str(n),
                   "--batch", str(batch), "--threads", str(threads)]
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                                 env=os.environ | extra)
            row[f"jets_{n}"] = (json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0
                                else {"error": res.stderr[-2000:]})
        small, large = (row[f"jets_{n}"] for n in cases)
        if "error" not in small and "error" not in large:
            row["peak_ratio_large_over_small"] = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
            row["target"] = "flat within 10 %: ratio <= 1.10"
            row["cases"] = list(cases)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    ap.add_argument("--memory-case", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the throughput part")
    ap.add_argument("--parts", default="throughput,memory")
    ap.add_argument("--memory-cases", default="10000,100000",
                    help="the two jet counts whose peak memory is compared")
    ap.add_argument("--allocators", default=",".join(ALLOCATORS), help="allocator variants to run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_case is not None:
        print(json.dumps(memory_case(args.memory_case, args.batch)), flush=True)
        return
    params, model, inputs, classes = setup(max_jets=500 if args.quick else 2000)
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "threads": args.threads, "load_average_at_start": os.getloadavg()},
        "date": time.strftime("%Y-%m-%d"), "quick": args.quick, "params": str(PARAMS.relative_to(REPO)),
        "model": {k: v for k, v in model.config.items() if k in ("embed_dims", "pair_embed_dims",
                                                                 "num_heads", "num_layers")},
        "max_particles": params.features.max_particles,
        "consumers": [type(c).__name__ for c in consumers(model, classes)],
    }
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    result["parts"] = previous.get("parts", {})
    for part in ("throughput", "memory"):
        if part not in parts:
            if part in previous:
                result[part] = previous[part]
            continue
        result["parts"][part] = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads,
                                 "load_average_1min_at_start": os.getloadavg()[0]}
        if part == "throughput":
            result[part] = throughput(model, inputs, classes, args.batch, 2 if args.quick else args.rounds)
            print(json.dumps(result[part]), flush=True)
        else:
            cases = (1000, 4000) if args.quick else tuple(int(x) for x in args.memory_cases.split(","))
            result[part] = memory(cases, args.batch, args.threads, args.allocators.split(","))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

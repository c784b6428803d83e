"""Generation and reading throughput, written to benchmarks/generate.json.

For every class of the three generated datasets, on one core:
- partnb's rate: one chunk of ``--jets`` jets through ``generate_chunk`` (Pythia + FastJet +
  truth matching + substructure), as jets/s and as Pythia events/s;
- the bare Pythia rate: the same settings and seed, ``Pythia.next()`` alone, events/s.
Their ratio (events/s of partnb over bare) is the cost of everything that is not Pythia.
Then the parallel speed-up of ``generate`` with 2 workers over 1, and the rate of reading
the generated ROOT files into padded feature arrays (``iterate_jets`` + ``build_inputs``).

    python benchmarks/generate.py [--jets 200] [--out benchmarks/generate.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def class_rates(jets: int) -> list[dict]:
    from partnb.data.cards import DATASET_CARDS
    from partnb.data.generate import (
        GenerationConfig,
        bare_pythia_rate,
        chunk_seed,
        generate_chunk,
        plan_chunks,
    )

    rows = []
    for dataset in DATASET_CARDS:
        config = GenerationConfig(dataset, jets_per_class=jets, jets_per_file=jets, seed=11)
        for chunk in plan_chunks(config):
            _, stats = generate_chunk(config, chunk)
            seed = chunk_seed(config, chunk)
            bare = bare_pythia_rate(dataset, chunk.class_name, n_events=max(stats.n_events, 100),
                                    seed=seed)
            ev_rate = stats.n_events / stats.seconds
            row = {
                "dataset": dataset, "class": chunk.class_name, "jets": stats.n_jets,
                "events": stats.n_events, "seconds": round(stats.seconds, 3),
                "jets_per_s": round(stats.n_jets / stats.seconds, 2),
                "events_per_s": round(ev_rate, 2),
                "bare_pythia_events_per_s": round(bare, 2),
                "ratio_to_bare": round(ev_rate / bare, 3),
                "jets_per_event": round(stats.n_jets / stats.n_events, 3),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def parallel_speedup(jets_per_file: int, n_files: int) -> dict:
    from partnb.data.generate import GenerationConfig, generate

    config = GenerationConfig("jetclass", jets_per_class=jets_per_file * n_files,
                              jets_per_file=jets_per_file, seed=3, classes=("Tbqq", "QCD"))
    out = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate(config, tmp, workers=workers, progress=False)
            out[f"seconds_{workers}_workers"] = round(time.perf_counter() - t0, 2)
    out["jets"] = 2 * jets_per_file * n_files
    out["speedup_2_over_1"] = round(out["seconds_1_workers"] / out["seconds_2_workers"], 3)
    print(json.dumps(out), flush=True)
    return out


def read_rate(jets_per_class: int, total_jets: int = 200_000, step_size: int = 10_000) -> dict:
    """Read a ``total_jets`` JetClass-layout file of generated jets into padded arrays."""
    import awkward as ak

    from partnb.data.features import build_inputs, required_branches
    from partnb.data.generate import GenerationConfig, generate
    from partnb.data.io import iterate_jets
    from partnb.data.writer import write_jetclass_root

    config = GenerationConfig("jetclass", jets_per_class=jets_per_class, jets_per_file=jets_per_class,
                              seed=4, classes=("Tbqq", "QCD"))
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(config, tmp, workers=2, progress=False)
        import uproot

        arrays = [uproot.open(f)["tree"].arrays(library="ak") for f in files]
        one = ak.concatenate(arrays)
        big = ak.concatenate([one] * (total_jets // len(one)))
        path = Path(tmp) / "big.root"
        write_jetclass_root(path, {k: big[k] for k in big.fields})
        out = {"jets_in_file": len(big), "step_size": step_size}
        for fs in ("kin", "full"):
            for p in (128, 64):
                t0 = time.perf_counter()
                n = 0
                for chunk in iterate_jets([path], step_size=step_size,
                                          branches=list(required_branches(fs))):
                    n += len(build_inputs(chunk, fs, max_particles=p))
                dt = time.perf_counter() - t0
                out[f"{fs}_P{p}_jets_per_s"] = round(n / dt, 1)
        t0 = time.perf_counter()
        n = sum(len(c) for c in iterate_jets([path], step_size=50_000,
                                             branches=list(required_branches("full"))))
        out["read_only_full_branches_jets_per_s"] = round(n / (time.perf_counter() - t0), 1)
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jets", type=int, default=200, help="jets per class for the per-class rates")
    ap.add_argument("--parallel-jets", type=int, default=500,
                    help="jets per file in the 1-vs-2-worker comparison (8 files)")
    ap.add_argument("--only", choices=("classes", "parallel", "read"), default=None,
                    help="run one part and merge it into the existing JSON")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    path = Path(args.out)
    result = json.loads(path.read_text()) if args.only and path.exists() else {}
    result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                         "python": platform.python_version()}
    result["date"] = time.strftime("%Y-%m-%d")
    if args.only in (None, "classes"):
        result["per_class_one_core"] = class_rates(args.jets)
    if args.only in (None, "parallel"):
        result["parallel"] = parallel_speedup(jets_per_file=args.parallel_jets, n_files=4)
    if args.only in (None, "read"):
        result["read_generated_root_to_padded_features"] = read_rate(2000)
    rows = result["per_class_one_core"]
    result["summary"] = {
        "min_ratio_to_bare": min(r["ratio_to_bare"] for r in rows),
        "median_ratio_to_bare": float(np.median([r["ratio_to_bare"] for r in rows])),
        "targets": {"ratio_to_bare": 0.8, "speedup_2_workers": 1.8, "read_jets_per_s": 100_000},
    }
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

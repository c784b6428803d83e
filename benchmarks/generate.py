"""Generation and reading throughput, written to benchmarks/generate.json.

For every class of the three generated datasets, on one core:
- partnb's rate: one chunk of ``--jets`` jets through ``generate_chunk`` (Pythia + FastJet +
  truth matching + substructure), as jets/s and as Pythia events/s;
- the bare Pythia rate: the same settings and seed, ``Pythia.next()`` alone, events/s.
Their ratio (events/s of partnb over bare) is the cost of everything that is not Pythia.
Then the parallel speed-up of ``generate`` with 2 workers over 1, the rate of reading
the generated ROOT files into padded feature arrays (``iterate_jets`` + ``build_inputs``), and
the cost of the detector emulation (``dataset.detector``): the same Pythia events processed at
particle level and in each detector mode, side by side, with the detector step timed alone.

    python benchmarks/generate.py [--jets 200] [--out benchmarks/generate.json]
    python benchmarks/generate.py --only detector [--detector-batches 10]
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


def detector_cost(n_batches: int) -> dict:
    """Per class: ``n_batches`` batches of Pythia events made once, then turned into jets at
    particle level and in each detector mode (the same events). ``generation_s`` is Pythia
    plus the particle-level batch processing (clustering, selection, truth matching; the
    per-file substructure and writing are left out, so the ratio is an upper bound);
    ``detector_step_s`` is :func:`apply_detector` alone on the batches' visible particles;
    ``ratio`` = detector_step_s / generation_s (target <= 0.2)."""
    from partnb.data.cards import DATASET_CARDS
    from partnb.data.detector import DETECTOR_MODES, apply_detector
    from partnb.data.generate import (
        _EVENTS_PER_BATCH,
        GenerationConfig,
        _charges,
        _flat_event_record,
        _jets_from_batch,
        _visible,
        chunk_seed,
        make_pythia,
        plan_chunks,
        pythia_settings,
    )

    rows = []
    load_before = os.getloadavg()
    for dataset, classes in (("jetclass", ("QCD", "Hbb", "Tbqq")), ("toplandscape", ("top", "QCD")),
                             ("quarkgluon", ("quark", "gluon"))):
        card = DATASET_CARDS[dataset]
        for name in classes:
            proc = card.processes[card.classes.index(name)]
            config = GenerationConfig(dataset, jets_per_class=100, jets_per_file=100, seed=11,
                                      classes=(name,))
            pythia = make_pythia(pythia_settings(card, proc, 0, chunk_seed(config, plan_chunks(config)[0])))
            t0 = time.perf_counter()
            batches = [pythia.nextBatch(_EVENTS_PER_BATCH) for _ in range(n_batches)]
            t_pythia = time.perf_counter() - t0
            t0 = time.perf_counter()
            got = [_jets_from_batch(b, card, proc, pythia) for b in batches]
            t_none = time.perf_counter() - t0
            row = {"dataset": dataset, "class": name, "events": n_batches * _EVENTS_PER_BATCH,
                   "pythia_s": round(t_pythia, 3), "particle_level_batches_s": round(t_none, 3),
                   "generation_s": round(t_pythia + t_none, 3),
                   "jets_none": sum(len(g["jet_pt"]) for g in got if g is not None)}
            for mode in DETECTOR_MODES[1:]:
                rng = np.random.default_rng(1)
                t_step = 0.0
                for b in batches:
                    flat, counts = _flat_event_record(b.prt)
                    visible = _visible(flat, card, proc)
                    fin = {k: flat[k][visible] for k in ("px", "py", "pz", "e", "id")}
                    fin_counts = np.bincount(np.repeat(np.arange(len(counts)), counts)[visible],
                                             minlength=len(counts))
                    t0 = time.perf_counter()
                    apply_detector(mode, fin, fin_counts, _charges(fin["id"], pythia), rng)
                    t_step += time.perf_counter() - t0
                rng = np.random.default_rng(1)
                t0 = time.perf_counter()
                got = [_jets_from_batch(b, card, proc, pythia, mode, rng) for b in batches]
                t_mode = time.perf_counter() - t0
                row[mode] = {"detector_step_s": round(t_step, 3),
                             "batches_with_detector_s": round(t_mode, 3),
                             "jets": sum(len(g["jet_pt"]) for g in got if g is not None),
                             "ratio": round(t_step / (t_pythia + t_none), 4)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    ratios = [r[m]["ratio"] for r in rows for m in DETECTOR_MODES[1:]]
    return {"per_class": rows, "max_ratio": max(ratios), "median_ratio": float(np.median(ratios)),
            "target_max_ratio": 0.2,
            "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "note": "1-minute load average of the machine before and after; the cores were "
                    "shared with other jobs, which slows every part alike"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jets", type=int, default=200, help="jets per class for the per-class rates")
    ap.add_argument("--parallel-jets", type=int, default=500,
                    help="jets per file in the 1-vs-2-worker comparison (8 files)")
    ap.add_argument("--detector-batches", type=int, default=10,
                    help="batches of 50 Pythia events per class in the detector comparison")
    ap.add_argument("--only", choices=("classes", "parallel", "read", "detector"), default=None,
                    help="run one part and merge it into the existing JSON")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    path = Path(args.out)
    result = json.loads(path.read_text()) if args.only and path.exists() else {}
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version()}
    if args.only not in ("detector", "read"):  # those parts stamp their own date and machine
        result["machine"], result["date"] = machine, time.strftime("%Y-%m-%d")
    if args.only in (None, "classes"):
        result["per_class_one_core"] = class_rates(args.jets)
    if args.only in (None, "parallel"):
        result["parallel"] = parallel_speedup(jets_per_file=args.parallel_jets, n_files=4)
    if args.only in (None, "read"):
        result["read_generated_root_to_padded_features"] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine,
            "load_1min_before": round(os.getloadavg()[0], 2), **read_rate(2000)}
    if args.only in (None, "detector"):
        result["detector_vs_particle_level"] = {
            "date": time.strftime("%Y-%m-%d"), "machine": machine,
            **detector_cost(args.detector_batches)}
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

"""Model speed and memory, written to benchmarks/model.json.

All on synthetic jets (pT-ordered particles of random 4-vectors around a random jet axis,
n ~ Poisson(40) capped at P, zero padding, the 7 ``kin`` features computed from the
4-vectors and standardized as in docs/features.md#feature-sets), on ``--threads`` torch threads:

1. training (AdamW step, batch 128) and inference (eval, no_grad, batch 256) jets/s of
   partnb's ParticleTransformer and of weaver-core 0.4.17's, same configuration and same
   state dict, for the official ParT (P = 128) and the CPU default of params/jetclass.yaml
   (P = 64); both models are warmed up past weaver's 5 no-op trimmer calls and timed
   interleaved, in rounds (rates are medians over rounds). weaver is read from
   ``.weaver-0.4.17`` (``pip install --no-deps --target .weaver-0.4.17 weaver-core==0.4.17``);
   without it the weaver columns are null and the reason is recorded;
2. the probe path (AttentionProbe capturing A, U, P of every block, streamed through an
   ``on_layer`` callback that fills a histogram of the attention weights and drops the
   tensors) against plain (fused) inference: time ratio, target <= 2;
3. peak RSS (VmHWM) of streamed probe inference over 10k and over 100k jets (CPU default
   config, P = 64, batch 500), each in a fresh subprocess (``--memory-case N``), jets
   generated batch by batch: the two peaks should be equal (ratio ~ 1). Run twice: with
   glibc's default malloc (whose dynamic mmap threshold lets the heap grow and fragment
   under the varying trimmed shapes) and with ``MALLOC_MMAP_THRESHOLD_=131072`` (fixed
   threshold: large tensors go straight to mmap), which separates allocator growth from
   memory the code keeps; live tensors are counted before and after as a direct check.

    python benchmarks/model.py [--threads 2] [--quick] [--parts throughput,probe,memory]
                               [--out benchmarks/model.json]

``--parts`` runs only some parts; the others are kept from an existing ``--out`` file, and
``parts`` in the JSON records when, on how many threads and at what machine load (1-minute
load average at the start of the part) each part was measured.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import json
import logging
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
WEAVER_DIR = REPO / ".weaver-0.4.17"
WEAVER_FILE = Path("weaver") / "nn" / "model" / "ParticleTransformer.py"
PARAMS = REPO / "params" / "jetclass.yaml"
NUM_CLASSES = 10
MEAN_PARTICLES = 40.0
HIST_BINS = 50

# (center, scale) of the five standardized kin features (partnb.data.features, docs/features.md#feature-sets)
KIN_STANDARDIZATION = ((1.7, 0.7), (2.0, 0.7), (-4.7, 0.7), (-4.7, 0.7), (0.2, 4.0))


# --- synthetic jets ---------------------------------------------------------------------------


def make_jets(batch: int, length: int, generator: torch.Generator):
    """Padded jets: features (B, 7, P) [kin set], vectors (B, 4, P) [px, py, pz, E], mask (B, 1, P).

    Particles are pT-ordered; softer particles spread wider around the jet axis; 2/3 carry the
    pion mass. Padded slots are zero everywhere.
    """
    n = torch.poisson(torch.full((batch,), MEAN_PARTICLES), generator=generator)
    n = n.clamp(1, length).long()
    real = torch.arange(length)[None] < n[:, None]  # (B, P)
    jet_pt = 500.0 + 500.0 * torch.rand(batch, 1, generator=generator)
    jet_eta = 4.0 * torch.rand(batch, 1, generator=generator) - 2.0
    jet_phi = 2 * math.pi * torch.rand(batch, 1, generator=generator) - math.pi
    # momentum fractions: squared exponentials (a few hard particles, many soft), sorted
    weight = torch.empty(batch, length).exponential_(generator=generator).square() * real
    z = (weight / weight.sum(dim=1, keepdim=True)).sort(dim=1, descending=True).values
    pt = (z * jet_pt).clamp(min=0.05)
    spread = 0.02 + 0.2 * (1.0 - (z / z[:, :1]).sqrt())
    deta = (torch.randn(batch, length, generator=generator) * spread).clamp(-0.8, 0.8)
    dphi = (torch.randn(batch, length, generator=generator) * spread).clamp(-0.8, 0.8)
    mass = 0.13957 * (torch.rand(batch, length, generator=generator) < 2 / 3)
    eta, phi = jet_eta + deta, jet_phi + dphi
    px, py, pz = pt * phi.cos(), pt * phi.sin(), pt * eta.sinh()
    energy = (px.square() + py.square() + pz.square() + mass.square()).sqrt()
    vectors = torch.stack((px, py, pz, energy), dim=1) * real[:, None]

    pt_sum = (pt * real).sum(dim=1, keepdim=True)
    e_sum = (energy * real).sum(dim=1, keepdim=True)
    raw = (pt.log(), energy.log(), (pt / pt_sum).log(), (energy / e_sum).log(),
           torch.hypot(deta, dphi))
    standardized = [((x - c) * s).clamp(-5.0, 5.0)
                    for x, (c, s) in zip(raw, KIN_STANDARDIZATION, strict=True)]
    features = torch.stack((*standardized, deta, dphi), dim=1) * real[:, None]
    return features, vectors, real[:, None].float()


def make_batches(count: int, batch: int, length: int, seed: int) -> list[tuple]:
    """``count`` distinct batches (features, vectors, mask, labels), generated in advance."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        features, vectors, mask = make_jets(batch, length, generator)
        labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
        out.append((features, vectors, mask, labels))
    return out


# --- models -----------------------------------------------------------------------------------


def load_weaver(weaver_dir: Path):
    """(weaver's ParticleTransformer class, None) or (None, why it is unavailable)."""
    path = weaver_dir / WEAVER_FILE
    if not path.is_file():
        return None, (f"{path} not found; install with `.venv/bin/pip install --no-deps "
                      f"--target .weaver-0.4.17 weaver-core==0.4.17` in the repository root")
    if str(weaver_dir) not in sys.path:
        sys.path.insert(0, str(weaver_dir))  # the file imports weaver.utils.logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec = importlib.util.spec_from_file_location("weaver.nn.model.ParticleTransformer",
                                                          path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
    except Exception as exc:  # any import failure is reported, not fatal
        return None, f"importing {path} failed: {type(exc).__name__}: {exc}"
    logging.getLogger("weaver").setLevel(logging.WARNING)  # it logs its config on stdout
    return module.ParticleTransformer, None


def official_config() -> tuple[dict, int]:
    """partnb ParticleTransformer kwargs of the official ParT (kin features), and P."""
    return dict(input_dim=7, num_classes=NUM_CLASSES, embed_dims=(128, 512, 128),
                pair_embed_dims=(64, 64, 64), num_heads=8, num_layers=8, num_cls_layers=2), 128


def cpu_default_config() -> tuple[dict, int]:
    """The model of params/jetclass.yaml as ``partnb.model.factory.model_from_params`` builds it, and P."""
    from partnb.model.factory import model_from_params
    from partnb.params import load_params

    params = load_params(PARAMS, check_files=False)
    config = dict(model_from_params(params, num_classes=NUM_CLASSES).config)
    return config, int(params.features.max_particles)


def weaver_kwargs(config: dict) -> dict:
    """weaver ParticleTransformer kwargs equivalent to a partnb config."""
    return dict(
        input_dim=config["input_dim"], num_classes=config["num_classes"],
        pair_input_dim=config.get("pair_input_dim", 4), use_pre_activation_pair=False,
        embed_dims=list(config["embed_dims"]), pair_embed_dims=list(config["pair_embed_dims"]),
        num_heads=config["num_heads"], num_layers=config["num_layers"],
        num_cls_layers=config["num_cls_layers"],
        block_params=dict(dropout=config.get("dropout", 0.1),
                          attn_dropout=config.get("attn_dropout", 0.1),
                          activation_dropout=config.get("activation_dropout", 0.1)),
        trim=config.get("trim", True), for_inference=False,
    )


def build_partnb(config: dict, state: dict | None = None):
    from partnb.model import ParticleTransformer

    keys = ("input_dim", "num_classes", "pair_input_dim", "embed_dims", "pair_embed_dims",
            "num_heads", "num_layers", "num_cls_layers", "dropout", "attn_dropout",
            "activation_dropout", "trim", "use_pre_activation_pair")
    model = ParticleTransformer(**{k: config[k] for k in keys if k in config})
    if state is not None:
        model.load_state_dict(state)
    return model


def build_pair(config: dict, state: dict, weaver_class) -> dict:
    """Fresh {"partnb": model, "weaver": model} holding the same state dict."""
    models = {"partnb": build_partnb(config, state)}
    if weaver_class is not None:
        weaver = weaver_class(**weaver_kwargs(config))
        weaver.load_state_dict(state)  # same keys, strict
        models["weaver"] = weaver
    return models


# --- timing -----------------------------------------------------------------------------------


def train_step(model, optimizer, batch) -> None:
    features, vectors, mask, labels = batch
    loss = F.cross_entropy(model(features, vectors, mask), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@torch.no_grad()
def infer(model, batch, **kwargs) -> torch.Tensor:
    features, vectors, mask, _ = batch
    return model(features, vectors, mask, **kwargs)


def interleaved_rates(calls: dict, batches: list, warmup: int, rounds: int,
                      per_round: int) -> dict[str, list[float]]:
    """Jets/s of each ``calls[name](batch)`` per round, the names alternating in order."""
    for fn in calls.values():
        for i in range(warmup):
            fn(batches[i % len(batches)])
    names = list(calls)
    rates: dict[str, list[float]] = {name: [] for name in names}
    jets = per_round * len(batches[0][0])
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            for i in range(per_round):
                calls[name](batches[(r * per_round + i) % len(batches)])
            rates[name].append(jets / (time.perf_counter() - t0))
    return rates


def summarize(rates: dict[str, list[float]], base: str, other: str) -> dict:
    out = {}
    for name, values in rates.items():
        out[f"{name}_jets_per_s"] = round(statistics.median(values), 1)
        out[f"{name}_jets_per_s_rounds"] = [round(v, 1) for v in values]
    if other in rates:
        out[f"ratio_{base}_over_{other}"] = round(
            statistics.median(rates[base]) / statistics.median(rates[other]), 3)
    return out


def throughput(name: str, config: dict, length: int, weaver_class, sizes: dict) -> list[dict]:
    """Training and inference rows for one configuration."""
    torch.manual_seed(0)
    state = copy.deepcopy(build_partnb(config).state_dict())
    base = dict(config=name, P=length, embed_dims=list(config["embed_dims"]),
                pair_embed_dims=list(config["pair_embed_dims"]), num_heads=config["num_heads"],
                num_layers=config["num_layers"], num_cls_layers=config["num_cls_layers"])
    rows = []

    # training: AdamW step, dropout on, trimmer shuffling
    batches = make_batches(sizes["distinct"], sizes["train_batch"], length, seed=1)
    models = build_pair(config, state, weaver_class)
    calls = {}
    for key, model in models.items():
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        calls[key] = lambda b, m=model, o=optimizer: train_step(m, o, b)
    torch.manual_seed(1)
    rates = interleaved_rates(calls, batches, sizes["warmup"], sizes["rounds"],
                              sizes["train_per_round"])
    row = base | dict(mode="train", optimizer="AdamW", batch=sizes["train_batch"],
                      batches_per_round=sizes["train_per_round"], rounds=sizes["rounds"],
                      mean_particles=round(_mean_n(batches), 1))
    row |= summarize(rates, "partnb", "weaver")
    if weaver_class is None:
        row["weaver_jets_per_s"] = None
    print(json.dumps(row), flush=True)
    rows.append(row)

    # inference: eval mode, no_grad, lossless trimming to the longest jet of the batch
    batches = make_batches(sizes["distinct"], sizes["infer_batch"], length, seed=2)
    models = build_pair(config, state, weaver_class)
    for model in models.values():
        model.eval()
    calls = {key: (lambda b, m=model: infer(m, b)) for key, model in models.items()}
    rates = interleaved_rates(calls, batches, sizes["warmup"], sizes["rounds"],
                              sizes["infer_per_round"])
    row = base | dict(mode="inference", batch=sizes["infer_batch"],
                      batches_per_round=sizes["infer_per_round"], rounds=sizes["rounds"],
                      mean_particles=round(_mean_n(batches), 1))
    row |= summarize(rates, "partnb", "weaver")
    if weaver_class is None:
        row["weaver_jets_per_s"] = None
    else:  # both are past their trimmer warm-up: the same function of the same weights
        logits = {key: infer(model, batches[0]) for key, model in models.items()}
        row["max_abs_logit_diff"] = float((logits["partnb"] - logits["weaver"]).abs().max())
    print(json.dumps(row), flush=True)
    rows.append(row)
    return rows


def _mean_n(batches: list) -> float:
    return float(torch.cat([b[2].sum(dim=(1, 2)) for b in batches]).mean())


# --- probe path -------------------------------------------------------------------------------


class AttentionHistogram:
    """``on_layer`` callback: histogram of the attention weights P over real (query, key) pairs,
    per block; A, U and P are dropped as soon as the block is done."""

    def __init__(self, bins: int = HIST_BINS) -> None:
        self.bins = bins
        self.counts: dict[int | str, torch.Tensor] = {}

    def __call__(self, key, record) -> None:
        weights = record.get("P")
        if weights is None:
            return
        real_keys = ~record["padding_mask"]  # (B, Pk)
        valid = real_keys[:, None, None, :]
        if weights.shape[-2] == weights.shape[-1]:  # particle block: real queries too
            valid = valid & real_keys[:, None, :, None]
        values = weights.masked_select(valid)
        hist = torch.histc(values, bins=self.bins, min=0.0, max=1.0)
        self.counts[key] = self.counts.get(key, 0) + hist


def make_probe(histogram: AttentionHistogram):
    from partnb.model import AttentionProbe

    return AttentionProbe(layers=None, capture=("A", "U", "P"), include_cls=True,
                          on_layer=histogram)


def probe_overhead(name: str, config: dict, length: int, sizes: dict) -> dict:
    """Time ratio of streamed probe inference over fused inference (same model, same jets)."""
    torch.manual_seed(0)
    model = build_partnb(config).eval()
    batches = make_batches(sizes["distinct"], sizes["infer_batch"], length, seed=3)
    histogram = AttentionHistogram()
    calls = {"fused": lambda b: infer(model, b),
             "probe": lambda b: infer(model, b, probe=make_probe(histogram))}
    rates = interleaved_rates(calls, batches, sizes["warmup"], sizes["rounds"],
                              sizes["infer_per_round"])
    fused, probed = statistics.median(rates["fused"]), statistics.median(rates["probe"])
    row = dict(config=name, P=length, batch=sizes["infer_batch"],
               batches_per_round=sizes["infer_per_round"], rounds=sizes["rounds"],
               captured=["A", "U", "P"], blocks=f"{config['num_layers']} particle + "
                                                 f"{config['num_cls_layers']} class",
               fused_jets_per_s=round(fused, 1), probe_jets_per_s=round(probed, 1),
               time_ratio_probe_over_fused=round(fused / probed, 3), target_max=2.0)
    row["meets_target"] = row["time_ratio_probe_over_fused"] <= 2.0
    print(json.dumps(row), flush=True)
    return row


# --- memory -----------------------------------------------------------------------------------


def peak_rss_kb() -> tuple[int, str]:
    """Peak resident set size of this process in KiB and where it was read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]), "VmHWM"
    except OSError:
        pass
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (usage // 1024 if sys.platform == "darwin" else usage), "ru_maxrss"


def current_rss_kb() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss // 1024
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def live_tensors() -> int:
    """Number of tensors the garbage collector can see."""
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def memory_case(n_jets: int, batch: int) -> dict:
    """Streamed probe inference over ``n_jets`` jets (run in a fresh process)."""
    config, length = cpu_default_config()
    torch.manual_seed(0)
    model = build_partnb(config).eval()
    generator = torch.Generator().manual_seed(5)
    histogram = AttentionHistogram()
    tensors_before = live_tensors()
    rss_before = current_rss_kb()
    peak_before, source = peak_rss_kb()
    done = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        while done < n_jets:
            size = min(batch, n_jets - done)
            features, vectors, mask = make_jets(size, length, generator)
            model(features, vectors, mask, probe=make_probe(histogram))
            done += size
    seconds = time.perf_counter() - t0
    peak, _ = peak_rss_kb()
    entries = int(sum(float(c.sum()) for c in histogram.counts.values()))
    return dict(jets=done, batch=batch, P=length, seconds=round(seconds, 2),
                jets_per_s=round(done / seconds, 1), rss_before_mb=round(rss_before / 1024, 1),
                peak_before_mb=round(peak_before / 1024, 1), peak_rss_mb=round(peak / 1024, 1),
                peak_delta_mb=round((peak - rss_before) / 1024, 1), source=source,
                histogram_entries=entries, live_tensors_before=tensors_before,
                live_tensors_after=live_tensors())


#: allocator variants of the memory cases: name -> extra environment
ALLOCATORS = {"glibc_default": {}, "mmap_threshold_128k": {"MALLOC_MMAP_THRESHOLD_": "131072"}}


def memory_flatness(cases: tuple[int, int], batch: int, threads: int, allocator: str) -> dict:
    """Run both cases in fresh subprocesses and compare their peaks."""
    out: dict = dict(config="cpu_default", batch=batch, allocator=allocator,
                     env=ALLOCATORS[allocator], streamed="probe A, U, P -> histogram")
    env = os.environ | ALLOCATORS[allocator]
    for n in cases:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-case", str(n),
               "--batch", str(batch), "--threads", str(threads)]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
        if res.returncode != 0:
            out[f"jets_{n}"] = {"error": res.stderr[-2000:]}
            continue
        out[f"jets_{n}"] = json.loads(res.stdout.strip().splitlines()[-1])
    small, large = (out[f"jets_{n}"] for n in cases)
    if "error" not in small and "error" not in large:
        out["peak_ratio_large_over_small"] = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
        out["peak_delta_ratio_large_over_small"] = round(
            large["peak_delta_mb"] / max(small["peak_delta_mb"], 1e-9), 3)
        out["target"] = "flat: peak ratio ~ 1"
    print(json.dumps(out), flush=True)
    return out


# --- main -------------------------------------------------------------------------------------


def sizes_for(quick: bool) -> dict:
    if quick:
        return dict(train_batch=8, infer_batch=16, warmup=6, rounds=1, train_per_round=1,
                    infer_per_round=1, distinct=1, memory_cases=(200, 800), memory_batch=100)
    return dict(train_batch=128, infer_batch=256, warmup=6, rounds=3, train_per_round=3,
                infer_per_round=4, distinct=4, memory_cases=(10_000, 100_000), memory_batch=500)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a benchmark")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    ap.add_argument("--weaver-dir", default=str(WEAVER_DIR),
                    help="directory holding weaver-core 0.4.17's `weaver` package")
    ap.add_argument("--memory-case", type=int, default=None, metavar="N",
                    help="internal: stream N jets, print one JSON line (run in a subprocess)")
    ap.add_argument("--batch", type=int, default=500, help="batch of --memory-case")
    ap.add_argument("--parts", default="throughput,probe,memory",
                    help="comma-separated parts to run (others kept from --out)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_case is not None:
        print(json.dumps(memory_case(args.memory_case, args.batch)), flush=True)
        return

    sizes = sizes_for(args.quick)
    weaver_class, reason = load_weaver(Path(args.weaver_dir))
    warnings.filterwarnings("ignore", category=FutureWarning)  # weaver's torch.cuda.amp.autocast
    warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")  # weaver
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "threads": args.threads},
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "weaver": None if weaver_class is None else {"version": "0.4.17",
                                                     "dir": str(args.weaver_dir)},
    }
    if reason:
        result["weaver_unavailable"] = reason
        print(json.dumps({"weaver": None, "reason": reason}), flush=True)
    configs = {"official": official_config(), "cpu_default": cpu_default_config()}
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    result["parts"] = previous.get("parts", {})
    for part in ("throughput", "probe", "memory"):
        key = "probe_overhead" if part == "probe" else part
        if part not in parts:
            if key in previous:
                result[key] = previous[key]
            continue
        result["parts"][part] = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads,
                                 "load_average_1min_at_start": os.getloadavg()[0]}
        if part == "throughput":
            result[key] = []
            for name, (config, length) in configs.items():
                result[key] += throughput(name, config, length, weaver_class, sizes)
        elif part == "probe":
            result[key] = [probe_overhead(name, config, length, sizes)
                           for name, (config, length) in configs.items()]
        else:
            result[key] = [memory_flatness(sizes["memory_cases"], sizes["memory_batch"],
                                           args.threads, allocator) for allocator in ALLOCATORS]
    result["summary"] = {
        "partnb_over_weaver": {f"{r['config']}_{r['mode']}": r.get("ratio_partnb_over_weaver")
                               for r in result.get("throughput", [])},
        "probe_over_fused": {r["config"]: r["time_ratio_probe_over_fused"]
                             for r in result.get("probe_overhead", [])},
        "memory_peak_ratio": {m["allocator"]: m.get("peak_ratio_large_over_small")
                              for m in result.get("memory", [])},
        "targets": {"probe_over_fused_max": 2.0, "memory_peak_ratio": 1.0},
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

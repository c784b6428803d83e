# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: partnb
#     language: python
#     name: partnb
# ---

# %% [markdown]
# # 09 — When does attention become sparse? Sparsity over training
#
# Neither paper follows the attention while the model trains: the sparse-attention paper
# (arXiv 2512.00210) names this as a limitation. Here the sparsity monitor of `partnb train`
# (docs/training.md#the-sparsity-monitor) measures, at log-spaced optimiser steps
# (0, 10, 30, 100, …) and at every epoch end, on a fixed probe set of 500 validation jets:
# the fraction of attention rows whose largest weight is ≥ 0.8 or ≥ 0.95, the median row
# maximum, the normalised row entropy, the gap between a row's two largest logits, the
# magnitudes |A|, |U| and the interaction-dependent and non-binary rates D and N — for the
# attention the forward pass computes ("correct") and for the papers' as-coded capture
# (A′ from a second attention call on the module's output,
# docs/analyses.md#the-capture-bug-of-the-papers-scripts).
#
# The run shown is `params/study/<dataset>_emergence.yaml` when it exists: the default model
# and data, weaver's wrap padding, 20 epochs (the committed defaults stop at 6, with the
# validation loss still falling). Its monitor log is committed, so this notebook only reads.
#
# | params file | what runs | time on 2 cores |
# |---|---|---|
# | `params/tiny.yaml` | the tiny model's own 2-epoch run (trained by 02) | seconds |
# | `params/toplandscape.yaml`, `quarkgluon.yaml`, `jetclass.yaml` | reads the committed emergence run | ~20 s; retraining it: 1–3 h on one core |

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
emergence_params = ""  # params of the run to show ("": params/study/<name>_emergence.yaml, else params_file)
train_if_missing = False  # train that run now if its monitor log is missing (hours; resumable)
progress = True
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
import json
from pathlib import Path

from IPython.display import Markdown, display

from partnb import plots
from partnb.analysis import emergence
from partnb.analysis.stream import stream_attention
from partnb.data.sample import load_split
from partnb.model.factory import load_trained
from partnb.notebook import setup, trained_model
from partnb.outputs import figure_dir, markdown_table, save_figure, save_json, save_table
from partnb.params import load_params
from partnb.plots.emergence import runs_compared, sparsity_over_training
from partnb.study import load_study, point_status
from partnb.train import train

params = setup(params_file, progress=progress, threads=threads, train_if_missing=train_if_missing)
out = figure_dir(params)
plots.use_style()
run_file = Path(emergence_params) if emergence_params else (emergence.emergence_params_file(params)
                                                           or Path(params_file))
run = load_params(run_file, {"analysis.progress": progress})
models_dir = Path(run.output.models)
if not (models_dir / "monitor_log.json").exists() and train_if_missing:
    train(run, progress=progress)
rows = emergence.load_monitor_log(models_dir)
epoch_rows = json.loads((models_dir / "train_log.json").read_text())
steps_per_epoch = round(rows[-1]["step"] / rows[-1]["epoch"]) if rows[-1]["epoch"] else None
print(f"{run_file}: {len(rows)} monitor points, {len(epoch_rows)} of {run.train.epochs} epochs done, "
      f"{steps_per_epoch} steps per epoch, pad_mode {run.features.pad_mode}, probe set of "
      f"{run.train.monitor_jets} jets")
print(f"trained on {emergence.training_devices(epoch_rows)}")

# %% [markdown]
# ## The curves
# Left to right, top to bottom: the binary-row fractions (band: jackknife error over the
# probe jets), the median row maximum and normalised entropy, the median top-two logit gap
# (dotted: the gap a row needs for a maximum of 0.8 over 50 keys), the magnitudes, D and N,
# and the accuracy. Blue is the attention the model computes, red the papers' as-coded
# capture. Watch for a plateau followed by a jump (as reported for toy models by Zucchet et
# al., arXiv 2505.17863) or a gradual rise, and for the red curves leaving the blue ones.

# %%
save_table([{"dataset": params.dataset.name, **r} for r in rows], out, "09_sparsity_emergence")
save_figure(sparsity_over_training(rows, epoch_rows, steps_per_epoch=steps_per_epoch,
                                   title=f"{params.name}: attention over training ({run_file.name})"),
            out, "09_sparsity_emergence")

# %% [markdown]
# ## When, and how
# Computed from the monitor log: the shape of the binary-row fraction's curve (a rise, or a
# rise and fall when its peak lies more than three combined errors above its last point), its
# peak, the step by which half of its rise happened, the same for the accuracy (and when it
# reached 90 % of its gain), the largest share of the rise between two consecutive monitor
# points, first and last values.

# %%
summary = emergence.emergence_summary(rows)
verdict = emergence.emergence_verdict(summary, dataset=params.name)
binary, strict = emergence.BINARY_COLUMN, emergence.STRICT_COLUMN  # rows_max_ge_0.8, rows_max_ge_0.95
keys = ["n_points", "last_step", "net_change", "shape", f"peak_{binary}", f"step_peak_{binary}",
        f"fall_{binary}_sigma", f"step_half_{binary}", "largest_jump_share", "onset",
        "step_half_accuracy", "step_90_accuracy"]
table = [{"quantity": k, "value": summary[k]} for k in keys]
for column in (binary, f"{binary}_as_coded", strict,
               "median_row_max", "median_row_max_as_coded", "median_logit_gap",
               "median_logit_gap_as_coded", "mean_norm_entropy", "median_abs_A",
               "median_abs_A_as_coded", "median_abs_U", "D_rate", "D_rate_as_coded", "N_rate",
               "N_rate_as_coded", "probe_accuracy"):
    table.append({"quantity": column, "first": summary[f"first_{column}"],
                  "last": summary[f"last_{column}"],
                  "last_err": summary.get(f"last_{column}_err", float("nan"))})
table.append({"quantity": "monitor_share_of_wall_time",
              "value": emergence.monitor_overhead(rows, epoch_rows)})
save_table(table, out, "09_emergence_summary")
save_json({"verdict": verdict, **summary}, out, "09_emergence_verdict")
display(Markdown(markdown_table(table)))
display(Markdown(f"**Verdict.** {verdict}"))

# %% [markdown]
# ## Padding in training
# Training batches are padded as weaver pads them (`features.pad_mode: wrap`, docs/features.md#padding):
# padded slots hold particles of other jets instead of zeros. In eval mode that changes
# nothing, but the BatchNorms of the pair embedding take their statistics over every slot in
# training. The table compares what the first pair BatchNorm learnt (running mean and
# standard deviation per pair feature) with the real pairs' own mean and spread: a
# `compression` above 1 means real pairs reach U squeezed by that factor. Beside this run: the
# params' own model when it was padded otherwise, and the study grid's base point and its
# `padding-zero` point (same data, jets and recipe, one padding each) where both are trained.

# %%
val = load_split(run, "val")
latest, latest_epoch = emergence.latest_model(run)
models = {f"{run.features.pad_mode}-padded ({run_file.stem}, epoch {latest_epoch})": latest}
if run_file != Path(params_file) and params.features.pad_mode != run.features.pad_mode:
    models[f"{params.features.pad_mode}-padded ({Path(params_file).stem})"] = trained_model(
        params, train_if_missing=False)
grid_file = Path(params.root) / "params" / "study" / f"{params.name}_grid.yaml"
if grid_file.is_file():
    grid = load_study(grid_file)
    pair = [p for p in grid.points if p.name in ("base-seed42", "padding-zero")]
    if len(pair) == 2 and all(point_status(p) == "done" for p in pair):
        for point in pair:
            models[f"{point.params.features.pad_mode}-padded (grid {point.name})"] = load_trained(
                point.params)
bn_rows = emergence.pair_normalisation_rows(models, val)
save_table(bn_rows, out, "09_pair_normalisation")
display(Markdown(markdown_table(bn_rows, digits=3)))

# %% [markdown]
# ## Head by head: where the query–key term went
# The monitor pools every block and head. Here the latest checkpoint of the run and its
# seeded initialisation (`random_init.pt`) are measured head by head on the same validation
# jets as the padding table: the medians of |A| (query–key term) and |U| (pair term) over real
# pairs, and the fraction of rows with maximum ≥ 0.8. A head that kept a large A while the
# others lost theirs, or one head that carries the binary rows, shows up here.

# %%
probe = val.take(range(min(len(val), run.train.monitor_jets or 500)))
head_table = []
for name, model in (("random_init", load_trained(run, random_init=True)),
                    (f"epoch_{latest_epoch:03d}", latest)):
    heads = emergence.HeadMagnitudes(model.config["num_layers"], model.config["num_heads"])
    stream_attention(model, probe, [heads], batch_size=params.analysis.batch_size,
                     capture=("A", "U", "P"))
    head_table += emergence.head_rows(heads, name)
save_table(head_table, out, "09_heads")
last = [r for r in head_table if r["model"] != "random_init"]
largest = max(last, key=lambda r: r["median_abs_A"])
sparsest = max(last, key=lambda r: r[binary])
display(Markdown(markdown_table([r for r in head_table if r["head"] in (0, 1) or r is largest
                                 or r is sparsest], digits=3)))
print(f"latest checkpoint: the largest median |A| is {largest['median_abs_A']:.3g} (block "
      f"{largest['layer']}, head {largest['head']}; its median |U| {largest['median_abs_U']:.3g}); "
      f"the most binary head has {sparsest[binary]:.1%} of its rows >= 0.8 (block "
      f"{sparsest['layer']}, head {sparsest['head']}); "
      f"{sum(r['median_abs_A'] < 0.01 * r['median_abs_U'] for r in last)} of {len(last)} heads "
      "have median |A| below 1 % of their median |U|")

# %% [markdown]
# ## Other runs of this dataset
# Variants of the emergence run that change one setting (`params/study/<dataset>_emergence_*.yaml`,
# e.g. weight decay applied as weaver does, decoupled, instead of torch RAdam's coupled L2:
# docs/sparsity_study.md#weight-decay-and-the-query-key-term) are drawn beside it, each as far as
# its monitor log goes. `09_runs_compared.csv` has each run at the last step all of them reached and at its own last
# monitor point.

# %%
variants = {run_file.stem: (run, rows)}  # name -> (params, monitor log)
for path in sorted(run_file.parent.glob(f"{run_file.stem}_*.yaml")):
    variant = load_params(path, {"analysis.progress": progress})
    if (Path(variant.output.models) / "monitor_log.json").exists():
        variants[path.stem] = (variant, emergence.load_monitor_log(variant.output.models))
    else:
        print(f"{path}: no monitor log yet (`partnb train {path}` makes it)")
# each run at the last step every run reached (the same monitor steps: same data and batch),
# and at its own last step
common = min(run_rows[-1]["step"] for _, run_rows in variants.values())
compared = []
for name, (variant, run_rows) in variants.items():
    mode = variant.train.weight_decay_mode
    at_common = max((r for r in run_rows if r["step"] <= common), key=lambda r: r["step"])
    for point, r in (("common step", at_common), ("last", run_rows[-1])):
        compared.append({"run": name, "weight_decay_mode": mode, "point": point,
                         **{k: r.get(k) for k in ("step", "epoch", binary, f"{binary}_err",
                                                  "median_abs_A",
                                                  "median_abs_U", "median_row_max",
                                                  "probe_accuracy")}})
save_table(compared, out, "09_runs_compared")
display(Markdown(markdown_table(compared, digits=4)))
if len(variants) > 1:
    logs = {name: run_rows for name, (_, run_rows) in variants.items()}
    save_figure(runs_compared(logs, title=f"{params.name}: runs compared"), out, "09_runs_compared")

# %% [markdown]
# ## Questions
# 1. In `09_emergence_summary.csv`, did the fraction of rows with max ≥ 0.8 rise before or
#    after the probe accuracy reached 90 % of its gain (`step_half_rows_max_ge_0.8` against
#    `step_90_accuracy`)? Was the rise sudden or gradual (`onset`, `largest_jump_share`)?
#    Did the fraction keep its peak, or fall back (`shape`, `peak_rows_max_ge_0.8`,
#    `fall_rows_max_ge_0.8_sigma`)?
# 2. At the last point, how far is the median top-two logit gap from the ~5 a binary row
#    needs over ~50 keys? How fast was it still growing over the last decade of steps
#    (`09_sparsity_emergence.csv`)?
# 3. Does the as-coded capture (red) become more binary than the true attention (blue)? Compare
#    `median_abs_A_as_coded` with `median_abs_A`: which of the two grows with training?
# 4. In `09_pair_normalisation.csv`, by what factor does zero padding compress ln kT of real
#    pairs compared with wrap padding?
# 5. In `09_heads.csv`, did every head lose its query–key term, or does some head keep a
#    median |A| comparable with its |U|? Are the binary rows spread over the heads or
#    concentrated in a few?
# 6. In `09_runs_compared.csv`, at the same step, how do the binary-row fraction and the median
#    |A| of the decoupled-weight-decay run compare with those of the coupled one?

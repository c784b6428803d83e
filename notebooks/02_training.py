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
# # 02 — Training ParT and how well it tags
#
# Both papers analyse a *trained* Particle Transformer (ParT paper, arXiv:2202.03772, Tables
# 2–4). This notebook trains the params' model (or loads the committed default checkpoint,
# or the one `model.checkpoint` names, e.g. an official ParT state dict), shows the loss and
# accuracy per epoch, the ROC curves, and the metrics table in the papers' layout beside the
# published ParT numbers.
#
# | params file | jets (train/val/test) | run time on 2 cores |
# |---|---|---|
# | `params/tiny.yaml` | 200/100/100 | ~30 s (trains) |
# | `params/jetclass.yaml` | 40k/5k/5k | ~1 min with the committed checkpoint; ~30 min to train |
# | `params/toplandscape.yaml` | 16k/2k/2k | ~1 min; ~12 min to train |
# | `params/quarkgluon.yaml` | 16k/2k/2k | ~1 min; ~12 min to train |

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
train_if_missing = True  # train now when no checkpoint exists (else fail)
progress = True
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
import csv
import json
from pathlib import Path

from IPython.display import Markdown, display

from partnb import plots
from partnb.analysis import datasets, performance
from partnb.data import dataset_files
from partnb.data.sample import load_split, split_sizes
from partnb.metrics import evaluate, softmax
from partnb.model.factory import final_checkpoint, predict
from partnb.notebook import setup, trained_model
from partnb.outputs import figure_dir, markdown_table, save_figure, save_json, save_table
from partnb.reference import PART_PUBLISHED

params = setup(params_file, progress=progress, threads=threads, train_if_missing=train_if_missing)
out = figure_dir(params)
plots.use_style()
data = dataset_files(params)

# %% [markdown]
# ## The model
# Trained from the params' `train` section ([the published recipe](../docs/training.md#the-published-recipes): RAdam + Lookahead, flat then
# decaying learning rate) unless a checkpoint exists; every epoch's weights are kept.

# %%
model = trained_model(params, train_if_missing=train_if_missing, progress=progress)
checkpoint = final_checkpoint(params)
n_params = sum(p.numel() for p in model.parameters())
print(f"{checkpoint}: {n_params:,} parameters, config {model.config}")

# %% [markdown]
# ## Why this size
# The papers use ParT at full size (d = 128, 8 blocks, 128 particles). On a laptop CPU the
# defaults shrink it to d = 64, 4 blocks and the leading 64 particles. The first table shows
# what the particle cut keeps (nearly all of the jet's pT even where it drops particles); the
# second the measured training rates of both sizes (`benchmarks/model.json`, same machine, one
# run) and what the params' training budget would cost at each rate.

# %%
display(Markdown(markdown_table(trunc := datasets.truncation_rows(
    data.files, data.classes, params.features.max_particles))))
save_table(trunc, out, "02_truncation")
bench = Path(params.root) / "benchmarks" / "model.json"
if bench.exists() and final_checkpoint(params).parent == Path(params.output.models):
    log_rows = json.loads((Path(params.output.models) / "train_log.json").read_text())
    sizes = performance.model_size_rows(json.loads(bench.read_text()), split_sizes(params)["train"],
                                        params.train.epochs, log_rows)
    save_table(sizes, out, "02_model_size")
    display(Markdown(markdown_table(sizes)))

# %% [markdown]
# ## Learning curves
# Training and validation loss should fall together; a validation loss that rises while the
# training loss falls would mean over-fitting at this data size.

# %%
log_path = Path(params.output.models) / "train_log.csv"
if log_path.exists():
    log_rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(open(log_path))]
    save_table(log_rows, out, "02_training_curves")
    save_figure(plots.training_curves(log_rows), out, "02_training_curves")
else:
    print(f"no training log next to {checkpoint} (external checkpoint): no curves")

# %% [markdown]
# ## Performance on the test split
# Accuracy, AUC (weaver's macro one-vs-one; Wang et al.'s one-vs-rest beside it) and the
# background rejection at the papers' signal efficiencies ([metrics](../docs/metrics.md#background-rejection)). The published values come
# from 100M (JetClass) or ~1.5M (TL, QG) detector-level jets and the full-size ParT; ours from
# a few ten thousand generated particle-level jets and a small ParT, so expect lower
# rejections — with an uncertainty given by the few background jets that pass.

# %%
test = load_split(params, "test")
logits = predict(model, test, batch_size=params.analysis.batch_size)
result = evaluate(test.label, logits, params.dataset.name)
save_json(result, out, "02_metrics")
rows = performance.metrics_rows(result, params.dataset.name, PART_PUBLISHED[params.dataset.name])
save_table(rows, out, "02_metrics_table")
display(Markdown(markdown_table(rows, [k for k in rows[0] if k != "auc_ovr"])))

# %% [markdown]
# ## ROC curves
# Each line is one signal class against QCD (or top vs QCD, quark vs gluon). The higher the
# curve, the better; classes with a distinctive mass (top, W, Z, H) separate best.

# %%
curves = performance.roc_curves(test.label, softmax(logits), data.classes, params.dataset.name)
save_table(performance.roc_rows(curves), out, "02_roc")
save_figure(plots.roc_curves(curves, title=f"{params.name}: test split"), out, "02_roc")

# %% [markdown]
# ## Questions
# 1. Which class has the highest rejection at 50 % signal efficiency, and which jet property
#    from notebook 01 explains it?
# 2. How many QCD jets does a rejection of 1000 at 50 % efficiency need for a 10 % error, and
#    how many does the test split hold (`02_metrics.json`, `n_background`)?
# 3. Does the validation loss in `02_training_curves.csv` still fall at the last epoch? What
#    would you change first: more epochs or more jets?

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
# # 12 — Differential attention
#
# Beyond the papers (issue 13). IAFormer (Esmail, Hammad & Nojiri, arXiv 2505.03258) replaces
# ParT's attention by a *differential* one, after the Diff Transformer (Ye et al., arXiv
# 2410.05258): two softmax maps, the second subtracted with a learnt weight λ,
# P = softmax(A₁ + U₁) − λ·softmax(A₂ + U₂), meant to cancel attention noise. Is that attention
# sparser than ParT's, does it lean on U less, and what does it give at the same number of
# weights? Here the same ParT is trained on the same jets with the same recipe and budget,
# once with softmax and once per differential variant
# ([the two forms and how they differ from IAFormer's](../docs/model.md#differential-attention)),
# and measured on the same test jets. Each variant is a params file
# `params/variants/<dataset>_<variant>.yaml` whose attention is `differential` (ParT's A and U
# in both maps) or `differential_u` (IAFormer's maps from U alone) and which may differ in
# the model's size (for the variant at the softmax model's weight count) but in nothing else
# ([definitions](../docs/analyses.md#differential-attention)).
#
# | params file | jets | run time on 2 cores |
# |---|---|---|
# | `params/tiny.yaml` | 100 (no variant file: the softmax model alone) | seconds |
# | `params/toplandscape.yaml` | 2 000 test jets, every trained variant | ~1 min per model |
# | `params/jetclass.yaml`, `quarkgluon.yaml` | 2 000 test jets | the softmax model alone until variant files are trained |
#
# A differential map is signed: rows sum to 1 − λ and entries can be negative. "Rows with
# max ≥ 0.8" and the median row maximum read the weights as they are; the exact-zero
# fraction counts a negative weight as zero. Errors: binomial for accuracies, bootstrap for
# AUCs, jackknife over jet groups for the fractions. They are statistical errors of the test
# jets; the seed-to-seed spread of a training (notebook 10) is not in them.

# %% tags=["parameters"]
params_file = "../params/toplandscape.yaml"
progress = True
n_jets = None  # test jets; None means analysis.n_jets
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
import pandas as pd
from IPython.display import Markdown, display

from partnb.analysis import differential as di
from partnb.analysis.sparsity import ROWS_MAX_COLUMNS
from partnb.analysis.stream import analysis_inputs
from partnb.data.schema import DATASETS
from partnb.model.factory import final_checkpoint, model_from_params
from partnb.notebook import needs_training, setup, trained_model, variant_status
from partnb.outputs import figure_dir, markdown_table, save_figure, save_json, save_table
from partnb.plots import use_style
from partnb.plots.differential import ablation_bars, signed_weights

params = setup(params_file, progress=progress, n_jets=n_jets, threads=threads)
out = figure_dir(params)
use_style()
classes = list(DATASETS[params.dataset.name].classes)

# %% [markdown]
# ## The models
# The params' own model first, then every differential variant file of this dataset, with
# its weight count; a file that differs in anything but the attention and the model's size
# is left out, with the key that differs.

# %%
variants, skipped = di.differential_variants(params)
status = variant_status(params, variants, skipped, label="model", columns=lambda p: {
    "attention": p.model.attention, "weights": di.n_weights(model_from_params(p)),
    "embed_dims": str(list(p.model.embed_dims))})
display(Markdown(markdown_table(status)))
trained = [(name, p) for name, p in variants if not needs_training(p)]

# %% [markdown]
# ## The same jets through every model
# Per model: the tagger (accuracy, AUC, rejections), its weight count, the accuracy with
# U := 0 and with A := 0 in every block, the sparsity of its attention over real keys, the
# fraction of negative weights, the negative mass per row, the mean row sum and λ, D and N,
# and speed (training steps and inference, measured here one model after the other).

# %%
inputs = analysis_inputs(params, progress=progress)
print(f"{len(inputs)} test jets")
rows, blocks, hist = [], [], []
for name, p in trained:
    model = trained_model(p, train_if_missing=False)
    row, signed = di.differential_row(name, model, inputs, dataset=params.dataset.name,
                                      classes=classes, batch_size=params.analysis.batch_size,
                                      train_dir=final_checkpoint(p).parent,
                                      penalty=p.train.attention_penalty)
    rows.append(row)
    blocks += signed.block_rows(name)
    hist += signed.histogram_rows(name)
    print(f"{name}: {row['n_weights']:,} weights, accuracy {row['accuracy']:.4f}, "
          f"negative weights {row['frac_negative']:.2%}")
save_table(rows, out, "12_differential")
shown = ["model", "n_weights", "accuracy", "accuracy_err", "auc", "zero_u_drop", "zero_a_drop",
         ROWS_MAX_COLUMNS[0], ROWS_MAX_COLUMNS[0] + "_err", "median_row_max", "frac_negative",
         "negative_mass_per_row", "lambda_mean", "rate_D", "rate_N", "train_jets_per_s",
         "infer_jets_per_s"]
pd.DataFrame(rows)[[c for c in shown if rows and c in rows[0]]].round(4) if rows else None

# %% [markdown]
# ## The signed weights, block by block
# Per particle block: the fraction of negative entries, the negative mass per row
# (Σ_j min(W_ij, 0)), the mean row sum (1 − λ for a differential map, 1 for softmax), rows
# with max ≥ 0.8, and λ.

# %%
save_table(blocks, out, "12_blocks")
pd.DataFrame(blocks).round(4) if blocks else None

# %% [markdown]
# Left: how the weights are distributed (bins of 0.01, all blocks): a softmax map fills
# [0, 1]; a differential map reaches below zero where the second map outweighs the first.
# Right: λ of each block of the differential models.

# %%
if hist:
    save_table(hist, out, "12_signed_weights")
    save_figure(signed_weights(hist, blocks, title=f"{params.name}: signed attention weights"),
                out, "12_signed_weights")

# %% [markdown]
# ## How much each model needs U and A
# The accuracy as trained, with U := 0 (no interaction term in any block) and with A := 0
# (no query–key term, U kept). ParT-like attention that "needs U less" loses less when U goes.

# %%
if rows:
    ablation = [{k: r[k] for k in ("model", "n_weights", "accuracy", "accuracy_err",
                                   "accuracy_zero_u", "accuracy_zero_u_err", "zero_u_drop",
                                   "accuracy_zero_a", "accuracy_zero_a_err", "zero_a_drop")}
                for r in rows]
    save_table(ablation, out, "12_ablation")
    save_figure(ablation_bars(ablation, title=f"{params.name}: accuracy with U := 0 and A := 0"),
                out, "12_ablation")
    display(pd.DataFrame(ablation).round(4))

# %% [markdown]
# ## The answer
# Against the params' own model: accuracy, sparsity (rows with max ≥ 0.8) and the zero-U drop
# differ when they are more than two combined statistical errors apart.

# %%
verdict = di.differential_verdict(rows)
save_json(verdict, out, "12_verdict")
display(Markdown(verdict["sentence"]))

# %% [markdown]
# ## Questions
# 1. In `12_differential.csv`, how many weights does each model have, and does the
#    differential model at the softmax model's weight count keep its accuracy?
# 2. Is the differential attention sparser than softmax (rows with max ≥ 0.8, median row
#    maximum), once negative weights are read as they are?
# 3. What fraction of the differential weights is negative, and how large is λ in each block
#    (`12_blocks.csv`)? Does the subtracted map cancel much?
# 4. Does the differential model need U less: is its zero-U drop smaller than softmax's
#    beyond the errors? What does A := 0 cost each model?
# 5. What does the second query–key map cost in training and inference speed?

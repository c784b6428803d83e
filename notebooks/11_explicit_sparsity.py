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
# # 11 — Emergent against explicit sparsity
#
# Beyond the papers (issue 13). ParT's attention becomes sparse, as far as it does, by itself:
# softmax training. Attention can also be sparse by construction — sparsemax (Martins &
# Astudillo, arXiv 1602.02068) and 1.5-entmax (Peters et al., arXiv 1905.05702) give exact
# zeros — or pushed towards sparsity by a penalty on the rows' entropy. Here the same ParT,
# trained on the same jets with the same recipe and budget, once per attention variant
# ([the variants](../docs/model.md#attention-variants)), is measured on the same test jets:
# does sparsity by construction cost accuracy, and is the emergent attention as sparse as what
# sparsemax chooses when it is free to choose? Each variant is a params file
# `params/variants/<dataset>_<variant>.yaml` that changes only `model.attention` or
# `train.attention_penalty` ([definitions](../docs/analyses.md#emergent-against-explicit-sparsity)).
#
# | params file | jets | run time on 2 cores |
# |---|---|---|
# | `params/tiny.yaml` | 100 (no variant file: the softmax model alone) | seconds |
# | `params/toplandscape.yaml` | 2 000 test jets, every trained variant | ~1 min per variant |
# | `params/jetclass.yaml`, `quarkgluon.yaml` | 2 000 test jets | the softmax model alone until variant files are trained |
#
# Errors: binomial for accuracies, bootstrap for AUCs, jackknife over jet groups for the
# sparsity fractions and D/N, standard error over jets for the entropy and the head fractions.
# They are statistical errors of the test jets; the seed-to-seed spread of a training (notebook
# 10: on Top Landscape-like 4k-jet runs, 1 % in the binary fraction) is not in them.

# %% tags=["parameters"]
params_file = "../params/toplandscape.yaml"
progress = True
n_jets = None  # test jets; None means analysis.n_jets
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
import pandas as pd
from IPython.display import Markdown, display

from partnb.analysis import attention_features as af
from partnb.analysis import variants as va
from partnb.analysis.sparsity import ROWS_MAX_COLUMNS
from partnb.analysis.stream import analysis_inputs
from partnb.analysis.substructure import PID_CODES, particle_types
from partnb.data.schema import DATASETS
from partnb.model.factory import final_checkpoint
from partnb.notebook import needs_training, setup, trained_model, variant_status
from partnb.outputs import figure_dir, markdown_table, save_figure, save_json, save_table
from partnb.plots import use_style
from partnb.plots.variants import accuracy_vs_sparsity

params = setup(params_file, progress=progress, n_jets=n_jets, threads=threads)
out = figure_dir(params)
use_style()
classes = list(DATASETS[params.dataset.name].classes)

# %% [markdown]
# ## The variants
# The params' own model first, then every variant file of this dataset; a file that differs
# in anything but the attention is left out, with the key that differs.

# %%
variants, skipped = va.compare_variants(params, va.variant_files(params), attentions=va.EXPLICIT)
display(Markdown(markdown_table(variant_status(params, variants, skipped))))
trained = [(name, p) for name, p in variants if not needs_training(p)]

# %% [markdown]
# ## The same jets through every variant
# Per variant: the tagger (accuracy, AUC, rejections), the accuracy with U := 0, the sparsity
# of the correct attention over real keys, D and N, the lepton fraction of the last block over
# jets with a lepton, the inter-subjet fraction of the top class's jets with their three kT
# subjets, and speed: training steps (forward, loss, backward; the fastest of 5 batches of 128
# jets) and inference, measured here one variant after the other, so their ratios hold on a
# loaded machine; the training speed each run logged is kept beside them.

# %%
inputs = analysis_inputs(params, progress=progress)
subjet_class = va.SUBJET_CLASS.get(params.dataset.name)
subjets = af.subjet_assignments(inputs, counts=(subjet_class[1],)) if subjet_class else None
pid, pid_note = particle_types(params, inputs)
is_lepton = None if pid is None else (pid == PID_CODES["electron"]) | (pid == PID_CODES["muon"])
print(f"{len(inputs)} test jets; {pid_note}")
rows = []
for name, p in trained:
    model = trained_model(p, train_if_missing=False)
    rows.append(va.variant_row(
        name, model, inputs, dataset=params.dataset.name, classes=classes, subjets=subjets,
        subjet_class=classes.index(subjet_class[0]) if subjet_class else None,
        is_lepton=is_lepton, batch_size=params.analysis.batch_size,
        train_dir=final_checkpoint(p).parent, penalty=p.train.attention_penalty))
    print(f"{name}: accuracy {rows[-1]['accuracy']:.4f}, rows max ≥ 0.8 "
          f"{rows[-1][ROWS_MAX_COLUMNS[0]]:.2%}")
save_table(rows, out, "11_variants")
shown = ["model", "accuracy", "accuracy_err", "auc", "zero_u_drop", "frac_exact_zero",
         ROWS_MAX_COLUMNS[0], ROWS_MAX_COLUMNS[0] + "_err", "median_row_max", "mean_norm_entropy",
         "rate_D", "rate_N", "train_jets_per_s", "infer_jets_per_s"]
pd.DataFrame(rows)[[c for c in shown if rows and c in rows[0]]].round(4) if rows else None

# %% [markdown]
# ## Accuracy against sparsity
# Left: accuracy against the fraction of rows whose largest weight is ≥ 0.8 (log axis);
# right: against the median row maximum, with uniform attention over the real particles as
# the dotted line. A variant to the right at the same height is sparser at no cost.

# %%
if rows:
    plotted = [{k: r[k] for k in ("model", "accuracy", "accuracy_err", ROWS_MAX_COLUMNS[0],
                                  ROWS_MAX_COLUMNS[0] + "_err", "median_row_max",
                                  "uniform_median_row_max")} for r in rows]
    save_table(plotted, out, "11_accuracy_vs_sparsity")
    save_figure(accuracy_vs_sparsity(plotted, title=f"{params.name}: accuracy against attention sparsity"),
                out, "11_accuracy_vs_sparsity")

# %% [markdown]
# ## What the heads look at, and how much they need U
# The zero-U drop is the accuracy lost when U := 0 in every block (notebook 06 for the
# softmax model); the lepton and inter-subjet fractions are those of notebook 05, computed per
# jet.

# %%
heads = ["model", "accuracy_zero_u", "zero_u_drop", "rate_D", "rate_D_err", "rate_N",
         "lepton_fraction", "lepton_fraction_err", "intersubjet_N3", "intersubjet_N3_err"]
pd.DataFrame(rows)[[c for c in heads if rows and c in rows[0]]].round(4) if rows else None

# %% [markdown]
# ## The answer
# Accuracies count as the same within two combined errors; the emergent attention is "as
# sparse as sparsemax" when its binary fraction is not below sparsemax's by more than two
# combined errors.

# %%
verdict = va.variants_verdict(rows)
save_json(verdict, out, "11_verdict")
display(Markdown(verdict["sentence"]))

# %% [markdown]
# ## Questions
# 1. In `11_variants.csv`, does any sparse variant lose accuracy beyond its errors against
#    softmax? Which one is the sparsest (exact zeros, rows with max ≥ 0.8)?
# 2. Sparsemax chooses how many keys each row keeps. How does its median row maximum compare
#    with softmax's, and what does that say about how far the emergent attention is from
#    what the task allows?
# 3. Does explicit sparsity change how much the model leans on U (`zero_u_drop`, D)?
# 4. Do the sparse variants look at the same places (lepton fraction, inter-subjet fraction),
#    or does sparsity move the heads' attention?
# 5. What does each variant cost in training and inference speed against softmax?

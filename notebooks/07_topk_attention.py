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
# # 07 — Top-k attention: how many keys does each particle need?
#
# Reproduces Table 1 of Wang et al., "Interpreting Transformers for Jet Tagging" (ML4PS 2024;
# [top-k](../docs/analyses.md#top-k-attention)): the trained ParT evaluated, without retraining, with every attention row of the
# particle blocks restricted to its k largest logits A + U (k = 1: hard attention), for
# k ∈ {1, 2, 3, 4, 6, 10, 20, 30, all}, beside the paper's numbers, and the inference speed of
# each pass. If attention is nearly binary, a handful of keys should recover the baseline.
#
# | params file | jets analysed | run time on 2 cores |
# |---|---|---|
# | `params/tiny.yaml` | 100 | ~25 s measured |
# | `params/jetclass.yaml` | 2 000 | 2 min measured (10 passes, 1 thread) |
# | `params/toplandscape.yaml` | 2 000 | 3.4 min measured |
# | `params/quarkgluon.yaml` | 2 000 | 2 min measured |

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
progress = True
n_jets = None  # None means analysis.n_jets of the params
k_values = None  # "all" means no restriction (the paper used 128); None: notebook.k_values (1, 2, 3, 4, 6, 10, 20, 30, "all")
restrict_class_blocks = None  # also restrict the class-attention blocks (not stated in the paper); None: notebook.restrict_class_blocks (false)
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
import pandas as pd
import torch

from partnb.analysis import topk
from partnb.analysis.stream import analysis_inputs
from partnb.notebook import setup, trained_model
from partnb.outputs import figure_dir, save_figure, save_table
from partnb.plots import ablation as ablation_plots
from partnb.plots import use_style
from partnb.reference import TOPK_PUBLISHED

params = setup(params_file, progress=progress, n_jets=n_jets, threads=threads, k_values=k_values,
               restrict_class_blocks=restrict_class_blocks)
k_values, restrict_class_blocks = params.notebook.k_values, params.notebook.restrict_class_blocks
out = figure_dir(params)
use_style()
dataset = params.dataset.name

# %% [markdown]
# ## Model and jets
# The trained default model on the test split; the class-attention blocks are left
# unrestricted unless `restrict_class_blocks` is set.

# %%
model = trained_model(params, train_if_missing=False)
inputs = analysis_inputs(params)
print(f"{len(inputs)} test jets of {params.name}; {torch.get_num_threads()} torch threads")

# %% [markdown]
# ## Accuracy, AUC and rejection against k
# Ours with statistical errors (binomial for accuracy, bootstrap for AUC, Poisson on the
# passing background for rejections). Only JetClass has published top-k numbers (100M
# detector-level jets, full-size ParT); Top Landscape and Quark-Gluon have none, so their
# tables hold our rows only.

# %%
rows, timing = topk.topk_evaluation(model, inputs, dataset, k_values,
                                    batch_size=params.analysis.batch_size,
                                    restrict_class_blocks=restrict_class_blocks, progress=progress)
if dataset == "jetclass":
    rows += topk.published_topk_rows(TOPK_PUBLISHED, k_values)
else:
    print(f"no published top-k numbers for {dataset} (Wang et al. Table 1 is JetClass only)")
save_table(rows, out, "07_topk")
save_figure(ablation_plots.topk_accuracy(rows, title=f"{params.name}: top-k attention"), out, "07_topk")
pd.DataFrame(rows).drop(columns=[c for c in rows[0] if "_err" in c])

# %% [markdown]
# ## Inference speed per k
# Jets per second of each pass; the baseline is the fused attention path (k = all), and the
# explicit path without restriction separates the cost of leaving the fused kernel from that of
# the top-k selection. The machine is shared with other jobs: take ratios, not absolute rates.

# %%
save_table(timing, out, "07_topk_timing")
pd.DataFrame(timing)

# %% [markdown]
# ## Questions
# 1. From `07_topk.csv`: what is the smallest k whose accuracy is within one statistical error
#    of the unrestricted model? How does it compare with the paper's?
# 2. How much accuracy does hard attention (k = 1) lose here and in the paper? What does that
#    say about how binary the attention rows are?
# 3. From `07_topk_timing.csv`: is top-k attention faster or slower than the baseline, and
#    why (think of what the fused path can skip)?

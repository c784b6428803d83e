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
# # 08 — The papers' claim across datasets
#
# arXiv:2512.00210 compares datasets: ParT's attention is nearly binary on JetClass and on
# Quark-Gluon but not on Top Landscape, and the interaction term U decides where it looks.
# Each `partnb run` covers one dataset; this notebook reads the tables that the runs of
# notebooks 03, 04, 06 and 07 wrote for several params files and lays them side by side in
# `figures/comparison/`. Nothing is recomputed.
#
# `partnb compare params/jetclass.yaml params/toplandscape.yaml params/quarkgluon.yaml`, or
# `partnb run ... --compare` after the three runs.
#
# | params file | run time on 2 cores |
# |---|---|
# | the three default params files | ~15 s (reads tables only) |
# | `params/tiny.yaml` (tests: one dataset) | ~10 s |

# %% tags=["parameters"]
params_files = ["../params/jetclass.yaml", "../params/toplandscape.yaml", "../params/quarkgluon.yaml"]
output_dir = None  # None: figures/comparison beside the first params' figures
progress = True

# %%
from pathlib import Path

from IPython.display import Markdown, display

from partnb.analysis import comparison
from partnb.analysis.sparsity import ROWS_MAX_COLUMNS
from partnb.outputs import markdown_table, save_figure, save_json, save_table
from partnb.params import load_params
from partnb.plots import comparison as comparison_plots
from partnb.plots import use_style
from partnb.reference import INTERACTION_PUBLISHED
from partnb.runner import comparison_dir

params_list = [load_params(p) for p in params_files]
dirs = comparison.figure_dirs(params_list)
out = Path(output_dir) if output_dir else comparison_dir(params_list)[0]
out.mkdir(parents=True, exist_ok=True)
use_style()
missing: list[str] = []
print("comparing", ", ".join(f"{k} ({v})" for k, v in dirs.items()), "->", out)

# %% [markdown]
# ## The attention distributions
# Post-softmax weights between real particles, all blocks and heads, log-binned. A binary
# attention would pile up near 1 (one key per query) and near 0; a trained model that is only
# *sparser* than at initialisation (dashed) moves weight into the lowest bins without building
# a peak at 1.

# %%
hist = comparison.attention_histogram_rows(dirs, missing)
if hist:
    save_table(hist, out, "08_attention_distributions")
    save_figure(comparison_plots.attention_distributions(hist, title="post-softmax attention, real pairs"),
                out, "08_attention_distributions")

# %% [markdown]
# ## How binary is it?
# The fraction of query rows whose largest weight is at least 0.8 (0.95) says directly how
# often a head attends to one particle. The papers' ordering is JetClass and Quark-Gluon above
# Top Landscape.

# %%
binary = comparison.binary_rows(dirs, missing)
if binary:
    save_table(binary, out, "08_binary_fractions")
    save_figure(comparison_plots.binary_fractions(binary, title="query rows with one dominant key"),
                out, "08_binary_fractions")
    save_json(ordering := comparison.binary_ordering(binary), out, "08_binary_ordering")
    display(Markdown(markdown_table(binary, ["dataset", "model", "n_jets", *ROWS_MAX_COLUMNS,
                                             "median_row_max"])))
    print(ordering["sentence"])

# %% [markdown]
# ## Pre-softmax magnitudes
# The papers report |A|/|U| peaking at 10⁴–10⁵ (JetClass, TL "comparable"). Paired element by
# element over real particles, our ratios sit near 1 on every dataset (notebook 04 explains
# why the papers' unpaired recipe differs).

# %%
ratio = comparison.ratio_rows(dirs, missing)
ratio_hist = comparison.ratio_histogram_rows(dirs, missing)
if ratio and ratio_hist:
    save_table(ratio, out, "08_ratio_summary")
    save_table(ratio_hist, out, "08_ratio_distributions")
    save_figure(comparison_plots.ratio_distributions(ratio_hist, title="|A|/|U|, trained, real pairs"),
                out, "08_ratio_distributions")
    display(Markdown(markdown_table(ratio, ["dataset", "variant", "q10_ratio", "q50_ratio", "q90_ratio",
                                            "frac_ratio_gt_1e4", "median_abs_a", "median_abs_u"])))

# %% [markdown]
# ## Interaction-dependent computation and the ablations
# Per dataset: how often U changes a head's argmax (D) and how often a row is not binary (N),
# their token coverages and correlation, the accuracy with U := 0, with A := 0, of ParT-plain,
# and with hard (k = 1) attention. The stars are the paper's JetClass values.

# %%
inter = comparison.interaction_rows(dirs, missing)
if inter:
    save_table(inter, out, "08_interaction")
    save_figure(comparison_plots.interaction_summary(inter, INTERACTION_PUBLISHED,
                                                     title="interaction-dependent (D), non-binary (N)"),
                out, "08_interaction")
    display(Markdown(markdown_table(inter)))

# %% [markdown]
# ## What was missing
# Tables that a dataset's run has not written (that dataset is left out of the section).

# %%
print("\n".join(missing) if missing else "nothing: every table was there")
if not (hist or binary or ratio or inter):
    raise comparison.ComparisonError(f"no tables of notebooks 03-07 under {', '.join(map(str, dirs.values()))}: "
                                     "run `partnb run <params>` first")

# %% [markdown]
# ## Questions
# 1. Which dataset has the largest fraction of rows with a maximum weight ≥ 0.8
#    (`08_binary_fractions.csv`)? Does the papers' ordering hold (`08_binary_ordering.json`),
#    and is attention binary in absolute terms anywhere?
# 2. On which dataset does U := 0 cost the most accuracy (`08_interaction.csv`), and does
#    A := 0 cost as much there?
# 3. Compare the D rate of `08_interaction.csv` with the paper's 3.6 %: what in the definition
#    makes it so sensitive to the size of U relative to A?

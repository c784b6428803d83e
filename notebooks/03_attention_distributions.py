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
# # 03 — Is ParT's attention binary? The post-softmax attention distribution
#
# Reproduces the attention-score histogram of "Why Is Attention Sparse in Particle
# Transformer?" (arXiv 2512.00210, sparsity figure) and Wang et al., "Interpreting Transformers
# for Jet Tagging" (ML4PS 2024, Fig. 1 left: distribution; Fig. 1 centre/right: heat maps) —
# [attention distribution](../docs/analyses.md#attention-distribution) and [heat maps](../docs/analyses.md#attention-heat-maps). Two readings side by side:
#
# * **correct**: the weights W the forward pass really uses, query and key real particles only;
# * **as coded**: what the papers' scripts histogram — the weights W' of a second attention
#   call on the module's own output ([the capture bug](../docs/analyses.md#the-capture-bug-of-the-papers-scripts)), every entry of the P × P map, padded keys (exact
#   zeros) and padded query rows included, P = `max_particles` (the trimmer is switched off).
#
# A histogram alone does not say "binary", so the notebook also counts rows whose largest weight
# is ≥ 0.8 and ≥ 0.95, beside uniform attention (every weight 1/n) as a reference, and repeats
# everything for the never-trained (seeded random-initialisation) model.
#
# | params file | jets | run time on 2 cores (shared) |
# |---|---|---|
# | `params/tiny.yaml` | 100 (test split) | 36 s |
# | `params/jetclass.yaml` | 2 000 | 34 s measured, one notebook at a time |
# | `params/toplandscape.yaml` | 2 000 | 28 s measured, one notebook at a time |
# | `params/quarkgluon.yaml` | 2 000 | 26 s measured, one notebook at a time |

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
progress = True
n_jets = None  # None: analysis.n_jets of the params
heatmap_head = None  # head of the last particle block in the heat maps; None: analysis.heatmap_head (1)
jackknife_groups = None  # jet groups for the statistical errors; None: analysis.jackknife_groups (20)
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
from IPython.display import Markdown, display

from partnb import plots
from partnb.analysis import sparsity
from partnb.analysis.stream import analysis_inputs
from partnb.data.schema import DATASETS
from partnb.notebook import setup, trained_model
from partnb.outputs import figure_dir, markdown_table, save_figure, save_table
from partnb.plots import attention as attention_plots

params = setup(params_file, progress=progress, n_jets=n_jets, threads=threads,
               heatmap_head=heatmap_head, jackknife_groups=jackknife_groups)
out = figure_dir(params)
plots.use_style()
classes = DATASETS[params.dataset.name].classes

# %% [markdown]
# ## One streamed pass per model
# Each batch of jets runs once through the trained model and once through the random-init
# model; every particle block's W and W' is histogrammed and dropped (memory does not grow
# with the number of jets). Probabilities are counts / total count; the papers' per-batch
# average is kept in the column `probability_batch_avg` of the histogram table.

# %%
inputs = analysis_inputs(params, progress=progress)
models = {"trained": trained_model(params, train_if_missing=False),
          "random_init": trained_model(params, random_init=True, train_if_missing=False)}
acc = {name: sparsity.attention_sparsity(m, inputs, classes, batch_size=params.analysis.batch_size,
                                         groups=params.analysis.jackknife_groups, progress=progress, desc=name)
       for name, m in models.items()}
print(f"{len(inputs)} jets, mean n = {inputs.n_particles.mean():.1f} of P = {inputs.mask.shape[-1]}")

# %% [markdown]
# ## The distribution of attention weights
# Left: the papers' 20 linear bins on [0, 1] (numpy convention: a weight of exactly 1 lands in
# [0.95, 1], exact zeros in [0, 0.05)). Right: log bins, which show where the mass really is.
# The as-coded curves carry a large first bin made of the padded keys' exact zeros: that spike
# is padding, not sparsity.

# %%
hist_rows = [r for name, a in acc.items() for r in a.histogram_rows(name, classes=classes)]
save_table(hist_rows, out, "03_attention_histograms")
save_figure(attention_plots.attention_distribution(hist_rows, title=f"{params.name}: all blocks and heads"),
            out, "03_attention_histograms")

# %% [markdown]
# ## Is it binary? Rows dominated by one key, per block
# If attention were binary, most query rows would put ≥ 0.8 (or ≥ 0.95) of their weight on one
# key and the median row maximum would be near 1. The dotted line is uniform attention (1/n).
# Errors: jackknife over groups of jets. Watch the as-coded lines: if they barely change from
# block to block, the second-call A' is nearly constant along each row (the module output it
# is computed from is small), so W' ≈ softmax(U + M) — the same for every block.

# %%
summary = [r for name, a in acc.items() for r in a.summary_rows(name)]
save_table(summary, out, "03_attention_summary")
save_figure(attention_plots.binary_fractions_per_layer(summary, title=params.name), out,
            "03_attention_summary")
binary_col, strict_col = sparsity.ROWS_MAX_COLUMNS  # frac_rows_max_ge_0.8, frac_rows_max_ge_0.95
display(Markdown(markdown_table([r for r in summary if r["layer"] == "all"], [
    "model", "variant", sparsity.ABOVE_COLUMN, binary_col, f"{binary_col}_err", strict_col,
    "median_row_max", "uniform_median_row_max", "frac_real_pairs"])))

# %% [markdown]
# ## Per head
# Heads can specialise: a single "binary" head would show up here even if the average over
# heads does not look binary.

# %%
per_head = [r for name, a in acc.items() for r in a.per_head_rows(name)]
save_table(per_head, out, "03_attention_per_head")
save_figure(attention_plots.per_head_map(per_head, binary_col, title=f"{params.name}: rows with max "
                                         f"weight ≥ {sparsity.BINARY_ROW_THRESHOLD:g}"),
            out, "03_attention_per_head")

# %% [markdown]
# ## Per class
# The papers histogram one class at a time (JetClass: t→bqq' only, and QCD only; TopLandscape:
# one class). Here every class of the dataset, all blocks and heads.

# %%
per_class = [r for name, a in acc.items() for r in a.summary_rows(name, per_class=True)]
save_table(per_class, out, "03_attention_per_class")
save_figure(attention_plots.binary_fractions_per_class(per_class, title=params.name), out,
            "03_attention_per_class")

# %% [markdown]
# ## Heat maps of one jet
# One jet of the class the papers show (t→bqq' for JetClass, top for TopLandscape, quark for
# Quark-Gluon; the jet closest to the class's median multiplicity, at most 30 particles so the
# map stays readable), last particle block, one head.
# Rows are queries, columns keys, particles in pT order. Compare the correct W with the
# as-coded W' of the same jet: the second-call capture shows a different pattern.

# %%
jet = sparsity.heatmap_jet(inputs, list(classes).index(sparsity.HEATMAP_CLASS[params.dataset.name]))
for name, m in models.items():
    maps = sparsity.attention_heatmaps(m, inputs, jet)
    head = params.analysis.heatmap_head
    last = len(m.blocks) - 1
    save_table(sparsity.heatmap_rows(maps, head, model=name, jet=jet, layer=last), out, f"03_heatmap_{name}")
    title = (f"{sparsity.HEATMAP_CLASS[params.dataset.name]} Attention Heat Map ({name}): "
             f"jet {jet}, n = {inputs.n_particles[jet]}, block {last}, head {head}")
    save_figure(attention_plots.attention_heatmap_pair(maps, head, title=title), out, f"03_heatmap_{name}")

# %% [markdown]
# ## Questions
# 1. In `03_attention_summary.csv`, what fraction of query rows of the trained model puts
#    ≥ 0.8 of its weight on a single particle (correct variant, all blocks)? Is that "binary"
#    attention? How does it compare with the random-initialisation model?
# 2. What fraction of the as-coded entries are real (query, key) pairs (`frac_real_pairs`)?
#    How much of the as-coded histogram's first bin is therefore padding? What would change at
#    the papers' P = 128?
# 3. In the heat maps, do the correct W and the as-coded W' of the same jet and head single
#    out the same keys? Which of the two did the papers' figures show?

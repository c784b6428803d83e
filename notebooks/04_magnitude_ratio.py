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
# # 04 — Which term dominates the attention logits: A or U?
#
# Reproduces the pre-softmax magnitude ratio |A|/|U| of "Why Is Attention Sparse in Particle
# Transformer?" (arXiv 2512.00210: decade-bin bar charts, JetClass peaking at 10⁴–10⁵) —
# [definitions](../docs/analyses.md#magnitude-ratio-of-a-and-u). The attention logits are L = A + U: A = q·k/√d from the particles, U from the pair
# features. Two readings side by side:
#
# * **correct**: r = |A_ℓhij| / |U_hij| paired element by element over real particles i, j,
#   every block ℓ and head h; pairs with U = 0 exactly are excluded and counted;
# * **as coded**: the papers' recipe — A' from the buggy second attention call ([the capture bug](../docs/analyses.md#the-capture-bug-of-the-papers-scripts)) and
#   U + M at P = `max_particles`, flattened, non-finite values dropped from each separately,
#   cut to the shorter length (no longer element-aligned), |U| > 0 kept.
#
# Also the distributions of |A| and |U| themselves (the upper tail of r is driven by |U| ≈ 0:
# U is a GELU output), and the never-trained model for comparison.
#
# | params file | jets | run time on 2 cores (shared) |
# |---|---|---|
# | `params/tiny.yaml` | 100 (test split) | 60 s |
# | `params/jetclass.yaml` | 2 000 | 34 s measured, one notebook at a time |
# | `params/toplandscape.yaml` | 2 000 | 29 s measured, one notebook at a time |
# | `params/quarkgluon.yaml` | 2 000 | 25 s measured, one notebook at a time |

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
progress = True
n_jets = None  # None: analysis.n_jets of the params
jackknife_groups = None  # jet groups (correct) or batch groups (as coded) for the errors; None: analysis.jackknife_groups (20)
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
from IPython.display import Markdown, display

from partnb import plots
from partnb.analysis import magnitude
from partnb.analysis.stream import analysis_inputs
from partnb.notebook import setup, trained_model
from partnb.outputs import figure_dir, markdown_table, save_figure, save_table
from partnb.plots import attention as attention_plots

params = setup(params_file, progress=progress, n_jets=n_jets, threads=threads,
               jackknife_groups=jackknife_groups)
out = figure_dir(params)
plots.use_style()

# %% [markdown]
# ## One streamed pass per model
# A, U and the as-coded A' of every particle block, batch by batch, into fixed log10 bins of
# 0.05 dex (the resolution of the medians and quantiles quoted below).

# %%
inputs = analysis_inputs(params, progress=progress)
models = {"trained": trained_model(params, train_if_missing=False),
          "random_init": trained_model(params, random_init=True, train_if_missing=False)}
acc = {name: magnitude.magnitude_ratio(m, inputs, batch_size=params.analysis.batch_size,
                                       groups=params.analysis.jackknife_groups, progress=progress, desc=name)
       for name, m in models.items()}
print(f"{len(inputs)} jets, mean n = {inputs.n_particles.mean():.1f} of P = {inputs.mask.shape[-1]}")

# %% [markdown]
# ## The papers' decade bins
# The sparse-attention paper reports a peak at 10⁴–10⁵ (|A| four orders of magnitude above
# |U|) with r < 1 rare. Look where the bars of the correct pairing peak, and whether the
# as-coded recipe moves them.

# %%
hist_rows = [r for name, a in acc.items() for r in a.ratio_histogram_rows(name)]
save_table(hist_rows, out, "04_ratio_histogram")
save_figure(attention_plots.ratio_decades(hist_rows, title=f"{params.name}: |A|/|U|, all blocks"),
            out, "04_ratio_histogram")

# %% [markdown]
# ## The full distribution of log10 r
# The decade bins hide the shape: here the ratio in 0.05-dex bins. The grey band is where the
# paper puts the peak.

# %%
save_figure(attention_plots.ratio_log10(hist_rows, title=params.name), out, "04_ratio_log10")
save_table([r for r in hist_rows if r["binning"] == "log10_ratio"], out, "04_ratio_log10")

# %% [markdown]
# ## |A| and |U| separately
# A ratio can be large because |A| is large or because |U| is tiny. The medians (dotted) tell
# which: compare them with the ratio's median below.

# %%
summary = [r for name, a in acc.items() for r in a.summary_rows(name)]
save_table(summary, out, "04_ratio_summary")
mag_rows = [r for name, a in acc.items() for r in a.magnitude_rows(name)]
save_table(mag_rows, out, "04_magnitudes")
save_figure(attention_plots.magnitude_distributions(mag_rows, summary, title=params.name), out,
            "04_magnitudes")

# %% [markdown]
# ## Per block, with statistical errors
# Median r and its 10–90 % range per particle block; the table gives the fractions r < 1 and
# r > 10⁴ with jackknife errors, the number of pairs with U = 0 exactly, and the medians of |A|
# and |U|.

# %%
save_figure(attention_plots.ratio_per_layer(summary, title=params.name), out, "04_ratio_summary")
display(Markdown(markdown_table([r for r in summary if r["layer"] == "all"], [
    "model", "variant", "q10_ratio", "q50_ratio", "median_ratio_err", "q90_ratio",
    "frac_ratio_lt_1", "frac_ratio_gt_1e4", "n_u_zero", "median_abs_a", "median_abs_u"])))

# %% [markdown]
# ## Does the 10⁴–10⁵ peak reproduce?
# The verdict below is computed from the decade table of the trained model. Why it can differ
# from the paper: with the correct, element-wise pairing r compares the two terms the softmax
# really adds; a peak at 10⁴–10⁵ would need |A| ≈ 10⁴·|U| for most pairs, i.e. logits far
# beyond what fp16 training tolerates (6.5e4, [pitfall 13](../docs/pitfalls.md#pitfall-13-fused-attention-returns-no-weights)) or |U| ≈ 0 for most pairs — compare
# the medians of |A| and |U| above. The as-coded recipe pairs A' of the first blocks with U of
# unrelated pairs; it spreads r but keeps |A'| and |U| at their own scales. A prototype of this
# study measured median r ≈ 1 (10th percentile 0.07, 90th 13).

# %%
display(Markdown(magnitude.ratio_peak_statement(hist_rows) + " "
                 + magnitude.ratio_peak_statement(hist_rows, model="random_init")))

# %% [markdown]
# ## Questions
# 1. In `04_ratio_summary.csv`, what are the median and the 10–90 % range of |A|/|U| for the
#    trained model (correct pairing, all blocks)? Which term dominates the logits?
# 2. Compare `median_abs_a` and `median_abs_u`: does training grow A, U or both (trained vs
#    random init)? In which block is the ratio largest?
# 3. How many pairs have U = 0 exactly (`n_u_zero`), and what would those pairs do to the ratio
#    if they were not excluded?

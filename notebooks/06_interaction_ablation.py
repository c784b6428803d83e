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
# # 06 — What the interaction term U does: zero-U ablation, interaction-dependent computation
#
# Reproduces the zero-U ablation table and the interaction-dependent / non-binary computation
# statistics (rates, token coverage, PCC) of arXiv:2512.00210 ("Why Is Attention Sparse in
# Particle Transformer?"; [zero-U ablation](../docs/analyses.md#zero-u-ablation), [interaction-dependent and non-binary computation](../docs/analyses.md#interaction-dependent-and-non-binary-computation)), beside ParT-plain (ParT paper, trained without pair
# features). Added controls the paper lacks: A := 0 with U kept, the float32 vs float64
# sensitivity of the argmax decisions ([pitfall 5](../docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise)), the never-trained model, and the
# structure of U itself (self pairs against the others; how much of each attention row's
# variation comes from A and how much from U).
#
# | params file | jets analysed | run time on 2 cores |
# |---|---|---|
# | `params/tiny.yaml` | 100 | ~20 s measured (+ a few s to train the tiny ParT-plain) |
# | `params/jetclass.yaml` | 2 000 | 67 s measured, one notebook at a time (+ ~45 min to train ParT-plain if missing) |
# | `params/toplandscape.yaml` | 2 000 | 63 s measured, one notebook at a time |
# | `params/quarkgluon.yaml` | 2 000 | 65 s measured, one notebook at a time |
#
# Statistical errors: binomial (accuracy), bootstrap (AUC), Poisson on the background jets that
# pass (rejection), jackknife over 10 jet groups (interaction metrics).

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
progress = True
n_jets = None  # None means analysis.n_jets of the params
train_plain_if_missing = True  # train ParT-plain now when its checkpoint is missing (else skip its row)
compare_float64 = None  # rerun the interaction metrics with float64 pair features (docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise); None: notebook.compare_float64 (true)
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
import pandas as pd
from IPython.display import Markdown, display

from partnb import reference
from partnb.analysis import ablation, interaction
from partnb.analysis.stream import analysis_inputs
from partnb.analysis.u_structure import RowVariation, UStructure
from partnb.model import CheckpointError
from partnb.model.factory import plain_params
from partnb.notebook import setup, trained_model, trains_plain
from partnb.outputs import figure_dir, save_figure, save_json, save_table
from partnb.plots import ablation as ablation_plots
from partnb.plots import use_style

params = setup(params_file, progress=progress, n_jets=n_jets, threads=threads,
               compare_float64=compare_float64, train_plain_if_missing=train_plain_if_missing)
out = figure_dir(params)
use_style()
dataset = params.dataset.name

# %% [markdown]
# ## Models and jets
# The trained model, its seeded never-trained twin, and ParT-plain: a separate network with the
# same recipe but no pair features (not an ablation of this checkpoint, see [ParT-plain](../docs/analyses.md#part-plain)).

# %%
model = trained_model(params, train_if_missing=False)
random_model = trained_model(params, random_init=True, train_if_missing=False)
try:
    plain_model = trained_model(plain_params(params), progress=progress,
                                train_if_missing=train_plain_if_missing and trains_plain(params))
except CheckpointError as error:
    plain_model = None
    print(f"ParT-plain row skipped: {error}")
inputs = analysis_inputs(params)
print(f"{len(inputs)} test jets of {params.name}, batch size {params.analysis.batch_size}")

# %% [markdown]
# ## The zero-U ablation and its control
# If U mattered alone, U := 0 would collapse the tagger while A := 0 would not. Both forms of
# the zero-U ablation (U := 0 in the forward pass, PairEmbed parameters zeroed) must give the
# same row. Published rows (JetClass, 100M detector-level jets, full-size ParT) are grey.

# %%
published = [("published ParT", reference.PART_PUBLISHED[dataset])]
if dataset == "jetclass":
    published += [("published zero-U", {"source": "arXiv:2512.00210", **reference.ZERO_U_PUBLISHED}),
                  ("published ParT plain", reference.PART_PLAIN_PUBLISHED["jetclass"])]
rows = ablation.ablation_rows(model, inputs, dataset, batch_size=params.analysis.batch_size,
                                 plain_model=plain_model, published=published, progress=progress)
save_table(rows, out, "06_ablation")
save_figure(ablation_plots.ablation_bars(rows, title=f"{params.name}: ablations"), out, "06_ablation")
pd.DataFrame(rows).drop(columns=[c for c in rows[0] if "_err" in c])

# %% [markdown]
# What the two ablations together say (the thresholds are stated in the sentence):

# %%
verdict = ablation.ablation_verdict(rows, inputs.label)
save_json(verdict, out, "06_ablation_verdict")
display(Markdown(f"**{verdict['verdict']}** — {verdict['sentence']}"))

# %% [markdown]
# ## Interaction-dependent and non-binary computation ([definitions](../docs/analyses.md#interaction-dependent-and-non-binary-computation))
# Per (jet, layer, head, real query): D = 1 when adding U moves the argmax key, N = 1 when the
# largest weight is below 0.8. A trained model should show D well above the never-trained one
# if it learned to use U; the float64 rows show how many decisions hang on rounding of the
# pair features (the self-pair ln m² is floating-point noise, [pitfall 5](../docs/pitfalls.md#pitfall-5-the-self-pair-mass-is-rounding-noise)). Errors: jackknife
# over 10 jet groups.

# %%
u_structure, row_variation = UStructure(), RowVariation()
trained_metrics = interaction.interaction_metrics(
    model, inputs, batch_size=params.analysis.batch_size, compare_float64=params.notebook.compare_float64,
    consumers=[u_structure, row_variation], progress=progress)
random_metrics = interaction.interaction_metrics(
    random_model, inputs, batch_size=params.analysis.batch_size, compare_float64=False,
    progress=progress)
metric_rows = interaction.interaction_rows(
    [("trained", trained_metrics), ("random init", random_metrics)],
    reference.INTERACTION_PUBLISHED if dataset == "jetclass" else None)
save_table(metric_rows, out, "06_interaction_metrics")
pd.DataFrame(metric_rows)[["model", "pair_features", "rate_D", "coverage_D", "rate_N",
                           "coverage_N", "pcc_phi", "pcc_token_counts"]]

# %% [markdown]
# Fraction of computations whose decision differs between float32 and float64 pair features:

# %%
trained_metrics["flips"]

# %% [markdown]
# ## D and N as the papers' scripts would have counted them
# The papers' attention analyses recorded A′ and W′ from a second attention call on the
# module's own output (docs/analyses.md#the-capture-bug-of-the-papers-scripts). Counting D′
# (does U move the argmax of A′?) and N′ (is max W′ below 0.8?) on that capture, over the same
# real queries and keys, tells whether the bug can explain the published 3.6 % and 0.88 %.

# %%
coded_metrics = interaction.as_coded_interaction_metrics(
    model, inputs, batch_size=params.analysis.batch_size, progress=progress)
coded_rows = interaction.as_coded_rows(
    coded_metrics, reference.INTERACTION_PUBLISHED if dataset == "jetclass" else None)
save_table(coded_rows, out, "06_interaction_as_coded")
coded_verdict = interaction.as_coded_sentence(coded_metrics, reference.INTERACTION_PUBLISHED)
save_json(coded_verdict, out, "06_interaction_as_coded_verdict")
display(Markdown(coded_verdict["sentence"]))
pd.DataFrame(coded_rows)[["reading", "rate_D", "coverage_D", "rate_N", "coverage_N", "pcc_phi",
                          "pcc_token_counts"]]

# %% [markdown]
# ## The structure of U
# U is the same in every block. If U suppressed self-attention, the self pairs (red) would sit
# below the other pairs and the self rank would be near 0 (½ by chance, 1 = the self pair has
# the row's largest U).

# %%
u_rows = u_structure.rows()
save_table(u_rows, out, "06_u_structure")
save_table(u_structure.distribution_rows(), out, "06_u_distribution")
save_figure(ablation_plots.u_distribution(u_structure.distribution_rows(), title=params.name),
            out, "06_u_distribution")
pd.DataFrame(u_rows)[["head", "mean_diag", "median_diag", "mean_offdiag", "median_offdiag",
                      "self_rank_mean", "frac_self_lowest"]]

# %% [markdown]
# ## Does A or U shape the attention rows?
# Per block, the spread over the real keys of A, of U and of their sum, averaged over query
# rows: where std U is far below std A, U can only tip near-ties — which is what D counts.

# %%
variation_rows = row_variation.rows()
save_table(variation_rows, out, "06_row_variation")
save_figure(ablation_plots.row_variation(variation_rows, title=params.name), out, "06_row_variation")
pd.DataFrame([r for r in variation_rows if r["head"] == "all"])

# %% [markdown]
# ## Questions
# 1. In `06_ablation.csv`, how much accuracy does U := 0 cost, and how much A := 0? What does
#    the comparison say about reading the zero-U collapse as "U dominates"?
# 2. Compare the D rate of the trained and the random-init model in `06_interaction_metrics.csv`,
#    and the fraction of decisions that flip between float32 and float64 pair features. How many
#    of the "interaction-dependent" decisions could be rounding noise?
# 3. From `06_u_structure.csv`: is U on the self pairs lower or higher than on the other pairs,
#    head by head? Does U push attention away from or towards the particle itself?
# 4. In `06_interaction_as_coded.csv`, does counting on the as-coded capture move D and N towards
#    the paper's 3.6 % and 0.88 % or away from them? What does that say about where the
#    published numbers could come from?

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
# # Explore — the attention of one jet, interactively
#
# Pick a dataset, a jet (by class and index), a particle block, a head and a reading of the
# attention; the η–φ graph of the jet with its kT subjets (left) and the n × n heat map of
# the same head (right) follow. Both figures are those of notebooks 05 and 03
# ([graphs](../docs/analyses.md#eta-phi-attention-graphs), [subjets](../docs/analyses.md#kt-subjets),
# [heat maps](../docs/analyses.md#attention-heat-maps)), for any jet instead of one. The four readings:
#
# * **correct**: W = softmax(A + U + M), the weights the forward pass uses
#   ([what is captured](../docs/analyses.md#what-is-captured));
# * **as coded**: W′ = softmax(A′ + U + M), what the papers' scripts recorded by calling the
#   attention a second time on its own output ([the capture bug](../docs/analyses.md#the-capture-bug-of-the-papers-scripts)).
#   Shown on the n real particles; the papers' version spans the whole padded map;
# * **A only**: softmax over the real keys of the query–key term A alone, no U: the variant
#   the sparse-attention paper draws in its graphs ([graphs](../docs/analyses.md#eta-phi-attention-graphs));
# * **U only**: softmax over the real keys of the pair term U alone, no A: what U would
#   choose by itself ([A := 0](../docs/analyses.md#setting-a-to-zero) runs the model that way).
#
# Every map is row-stochastic: row i (a query) sums to 1 over the keys j. The title's last line
# compares the map with uniform attention (every weight 1/n): the median row maximum
# ([binary fractions](../docs/analyses.md#binary-fractions)), the share of weight that stays
# inside a subjet ([inter-subjet](../docs/analyses.md#inter-subjet-attention-fraction)) and, where
# the jet has an electron or muon, the share on it ([lepton](../docs/analyses.md#lepton-attention-fraction)).
# This notebook is not part of `partnb run`: it writes no figures or tables.
#
# | params file | first choice of a dataset (reads its test split and model) | a new jet | block, head or variant |
# |---|---|---|---|
# | `params/tiny.yaml` | ~3 s | < 0.5 s | ~1 s (drawing only) |
# | `params/jetclass.yaml` | ~20 s measured (the test split is read twice: the model's features, then the particle types) | ~1 s | ~1 s |
# | `params/toplandscape.yaml` | ~3 s measured | ~1 s | ~1 s |
# | `params/quarkgluon.yaml` | ~3 s (PID from the model's own features) | ~1 s | ~1 s |

# %% tags=["parameters"]
params_files = ["../params/jetclass.yaml", "../params/toplandscape.yaml", "../params/quarkgluon.yaml"]
n_jets = 100  # test jets kept per class and dataset (the first ones of the test split)
progress = True
# the fixed view drawn below the controls; None: the explorer's default
dataset = None  # None: the first dataset that loads
jet_class = None  # None: t→bℓν (JetClass), top (Top Landscape), quark (Quark-Gluon)
index = None  # None: the class's first jet with at least N particles (and a lepton for t→bℓν)
block = None  # None: the last particle block
head = 0
variant = "correct"  # correct | as coded | A only | U only

# %%
import pandas as pd
from IPython.display import display

from partnb import explore
from partnb.plots import use_style

use_style()
explorer = explore.Explorer(params_files, n_jets=n_jets, progress=progress)
if not explorer.datasets:
    raise RuntimeError("nothing to explore: every dataset was skipped (reasons above); train a "
                       "model with `partnb train params/<dataset>.yaml` or set params_files")
start = explorer.default_selection(dataset)
start |= {key: value for key, value in {"jet_class": jet_class, "index": index, "block": block,
                                        "head": head, "variant": variant}.items() if value is not None}
if jet_class is not None and index is None:
    start["index"] = 0
print("datasets:", ", ".join(explorer.datasets), "| first view:", start)

# %% [markdown]
# ## The explorer
# Move a control and the figure follows. A new jet runs the model once (every block at once);
# block, head and variant only redraw. Particles are coloured by kT subjet, with a marker per
# particle type where the data have one (Top Landscape has none: circles). Darker lines are
# larger weights, solid inside a subjet and dashed between subjets; the heat map shows the
# same numbers, rows = queries, columns = keys, particles in pT order (0 = hardest). A head
# that mostly attends to each particle itself draws a bright diagonal and almost no lines
# (the graph leaves out i = j).

# %%
ui = explore.widgets(explorer, start)
display(ui)

# %% [markdown]
# ## A fixed view, and every head of its block
# The controls need a live kernel; an executed copy of this notebook (papermill, nbconvert)
# keeps only what follows: the view chosen in the parameters cell, drawn once, and the
# title's numbers for every head of that block (row = head). A head whose median row maximum
# is far above 1/n picks out few keys; within-subjet shares above the uniform value keep
# attention inside prongs.

# %%
view = explorer.select(**start)
explore.show(explore.render(view))
table = explorer.head_table(view.dataset, view.jet_class, view.index, view.block, view.variant)
display(pd.DataFrame(table).set_index("head").round(3))

# %% [markdown]
# ## Questions
# 1. JetClass, t→bℓν, last block, correct: which head puts the largest share of its attention on
#    the lepton (the cross or X marker; "on the lepton" in the title), and how does it compare
#    with the uniform share? Switch that head to **A only** and **U only**: which of the two terms
#    makes it look at the lepton?
# 2. Same jet and head, **correct** against **as coded**: do the two heat maps single out the same
#    keys? Now move the block slider in **as coded**: does W′ change from block to block as much as
#    W does — and how close is it to **U only**?
# 3. Top Landscape, a top jet (3 subjets): in which block do the heads keep their attention inside
#    the subjets (within-subjet share above its uniform value, mostly solid lines), and in which
#    do they link the prongs (dashed lines)? Is the answer the same for a QCD jet?

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
# # 05 — Attention in the η–φ plane, kT subjets, lepton and inter-subjet attention
#
# Reproduces the η–φ attention graphs of the sparse-attention paper (arXiv 2512.00210,
# attention-graph figure) and of Wang et al. (ML4PS 2024, Fig. 2), and Wang et al.'s Fig. 3:
# the attention a t→bℓν jet pays to its lepton, and the fraction of attention that crosses
# between the kT subjets of t→bqq′ and H→4q jets, for the trained model against a
# never-trained one ([graphs](../docs/analyses.md#eta-phi-attention-graphs), [subjets](../docs/analyses.md#kt-subjets), [lepton](../docs/analyses.md#lepton-attention-fraction) and [inter-subjet](../docs/analyses.md#inter-subjet-attention-fraction) fractions). Subjets: FastJet kt, R = 0.8, E-scheme, exclusive
# jets of the whole sequence (N = 2, 3, 4), particles mapped through the subjets'
# constituents by their `user_index`.
#
# | params file | jets per jet type | run time on 2 cores |
# |---|---|---|
# | `params/tiny.yaml` | 10 per type (t→bℓν, t→bqq′, H→4q) | ~45 s |
# | `params/jetclass.yaml` | 500 per type (all of the test split: t→bℓν, t→bqq′, H→4q) | 2 min measured |
# | `params/toplandscape.yaml` | ~1 000 top jets | 1 min measured |
# | `params/quarkgluon.yaml` | ~1 000 quark, ~1 000 gluon jets (subjets; graphs of one jet each) | 0.4 min measured |

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
n_jets = None  # jets per jet type; None: analysis.n_jets of the params (capped by the test split)
graph_jet = None  # draw the k-th jet of each type with at least N particles (and a lepton for Tbl); None: notebook.graph_jet (0)
min_alpha = None  # lines with min-max-normalised weight below this are not drawn (the JSON holds all); None: notebook.min_alpha (0.02)
train_if_missing = True  # train now when no checkpoint exists (else fail)
progress = True
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
import pandas as pd
from IPython.display import display

from partnb.analysis import substructure
from partnb.notebook import setup, trained_model
from partnb.outputs import figure_dir, save_figure, save_json, save_table
from partnb.plots import graphs, use_style

params = setup(params_file, progress=progress, n_jets=n_jets, threads=threads, graph_jet=graph_jet,
               min_alpha=min_alpha, train_if_missing=train_if_missing)
out = figure_dir(params)
use_style()
plan = substructure.substructure_plan(params.dataset.name)
print("jet types:", ", ".join(f"{t.label} ({t.n_subjets} subjets)" for t in plan.jet_types))
for note in plan.notes:
    print(note)

# %% [markdown]
# ## Models and subjets
# The trained model and the seeded never-trained one (same architecture, PyTorch default
# initialisation; TLG's "Untrained ParT") see the same jets. The table says how many jets
# had fewer particles than subjets (skipped) and which fraction of particles ended in no
# subjet — with exclusive jets of the whole kt sequence it should be zero.

# %%
models = {"trained": trained_model(params, train_if_missing=train_if_missing, progress=progress),
          "random_init": trained_model(params, train_if_missing=train_if_missing, random_init=True)}
results = [substructure.analyse_jet_type(params, jet_type, models, n_jets=params.analysis.n_jets, graph_jet=params.notebook.graph_jet,
                                         progress=progress) for jet_type in plan.jet_types]
finding = substructure.subjet_finding_rows(results)
save_table(finding, out, "05_subjet_finding")
display(pd.DataFrame(finding))

# %% [markdown]
# ## η–φ attention graphs, last particle block, every head
# Each panel is one head: particles coloured by kT subjet, marker by particle type, darker
# lines for larger weights (solid within a subjet, dashed between subjets). A head that
# looks at one particle from everywhere draws a star; a head that stays inside prongs draws
# solid clusters. The second figure per jet type is the papers' variant: softmax over the
# real keys of A alone (no interaction term U), which the sparse-attention paper draws.

# %%
for r in results:
    if r.graph is None:
        print(f"{r.jet_type.label}: no jet with n >= {r.jet_type.n_subjets} to draw")
        continue
    stem = f"05_subjet_graph_{r.jet_type.slug}"
    save_table(substructure.graph_particle_rows(r.graph), out, f"{stem}_particles")
    for variant, suffix in (("W", ""), ("softmax_A", "_tlg")):
        save_json(substructure.graph_weight_maps(r.graph, variant), out, stem + suffix)
        fig = graphs.eta_phi_attention_grid(r.graph, variant, jet_label=r.jet_type.label,
                                            min_alpha=params.notebook.min_alpha)
        save_figure(fig, out, stem + suffix, dpi=100)
    print(f"{r.jet_type.label}: jet {r.graph.position} of {r.n_jets}, n = {r.graph.n}; {r.pid_note}")

# %% [markdown]
# ## Attention to the lepton of t→bℓν jets
# F is the share of a head's attention (summed over all queries) that lands on the
# electron or muon. Uniform attention gives n_leptons/n (dashed); a head specialised on
# the lepton has F close to 1. Compare the trained and the never-trained model.

# %%
lepton = [r for r in results if r.lepton]
for r in lepton:
    hist, summary = substructure.lepton_histogram_rows(r), substructure.lepton_summary_rows(r)
    save_table(hist, out, "05_lepton_attention")
    save_table(summary, out, "05_lepton_attention_summary")
    save_figure(graphs.fraction_histograms(hist, panel_by=["jet_type"], xlabel="Lepton Attention Fraction",
                                           titles={("tbl",): "t→bℓν: attention to the lepton"}),
                out, "05_lepton_attention")
    display(pd.DataFrame(summary))
if not lepton:
    print("No t→bℓν jets in this dataset's design: the lepton attention fraction is skipped.")

# %% [markdown]
# ## Attention between subjets
# F is the share of a head's off-diagonal attention that connects particles of different
# subjets, per jet, layer and head. Uniform attention gives the share of particle pairs that
# lie in different subjets (dashed, "uniform"); a head below it keeps attention inside
# prongs, a head above it links the prongs.
# Left: last particle block (Wang et al.); right: all blocks (TLG).

# %%
inter = [r for r in results if r.intersubjet]
if inter:
    hist, summary = substructure.intersubjet_histogram_rows(inter), substructure.intersubjet_summary_rows(inter)
    save_table(hist, out, "05_intersubjet_attention")
    save_table(summary, out, "05_intersubjet_attention_summary")
    titles = {(r.jet_type.slug, ly): f"{r.jet_type.label} Attention Ratios ({ly} layer{'s' if ly == 'all' else ''})"
              for r in inter for ly in ("last", "all")}
    save_figure(graphs.fraction_histograms(hist, panel_by=["jet_type", "layers"], titles=titles,
                                           labels={"random_init": "Untrained ParT", "trained": "ParT",
                                                   "uniform": "uniform attention"},
                                           xlabel="Sum of Attention Between Subjets / Sum of Attention"),
                out, "05_intersubjet_attention")
    display(pd.DataFrame(summary).query("layer in ('all', 'last', 'any')"))
else:
    print("No multi-prong jet type in this dataset's design: the inter-subjet fraction is skipped.")

# %% [markdown]
# ## Questions
# 1. In `05_lepton_attention_summary.csv`, how does the mean lepton fraction of the trained
#    model compare with the uniform reference n_leptons/n and with the never-trained model?
#    Does any head single out the lepton (F > 0.5)?
# 2. In `05_intersubjet_attention_summary.csv`, is the inter-subjet fraction of the trained
#    model lower than that of the untrained one (attention kept inside prongs) or not? Does
#    the answer change between H→4q (4 subjets) and t→bqq′ (3)?
# 3. Compare a head in `05_subjet_graph_<type>.png` with the same head in
#    `05_subjet_graph_<type>_tlg.png` (and their tables): what does leaving out the
#    interaction term U change — is the largest weight of a row more or less extreme?

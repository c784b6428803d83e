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
# # 01 — The datasets: what the jets look like
#
# Both papers analyse ParT on three datasets: **JetClass** (10 classes), **Top Landscape**
# (top vs QCD) and **Quark-Gluon** (quark vs gluon jets). This notebook shows the jets a run
# uses: the dataset card, per-class jet $p_T$, mass, soft-drop mass and multiplicity, and the
# distributions of the standardized particle features the network sees ([feature sets](../docs/features.md#feature-sets)).
# By default the jets are generated on the spot with Pythia 8 + FastJet at particle level
# (no detector simulation); pointing `dataset.files` in the params at the real files shows
# the real datasets with the same code.
#
# | params file | jets | run time on 2 cores (generation included, first run) |
# |---|---|---|
# | `params/tiny.yaml` | 400 | ~40 s |
# | `params/jetclass.yaml` | 50 000 | ~15 min (cached afterwards: ~1 min) |
# | `params/toplandscape.yaml` | 20 000 | ~5 min |
# | `params/quarkgluon.yaml` | 20 000 | ~10 min |

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
jets_per_class = None  # refused unless None: set dataset.jets_per_class in the params file (02-07 read it too)
max_jets_per_class = None  # jets per class entering the histograms; None: notebook.max_jets_per_class (5000)
detector_jets_per_class = None  # jets per class in each mode of the detector comparison; None: notebook.detector_jets_per_class (200); 0 skips it
progress = True
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
from IPython.display import Markdown, display

from partnb import plots
from partnb.analysis import datasets as dists
from partnb.data import dataset_files, summarize
from partnb.data.detector import REAL_MULTIPLICITY
from partnb.notebook import setup
from partnb.outputs import figure_dir, markdown_table, save_figure, save_json, save_table

params = setup(params_file, progress=progress, threads=threads, jets_per_class=jets_per_class,
               max_jets_per_class=max_jets_per_class, detector_jets_per_class=detector_jets_per_class)
max_jets_per_class = params.notebook.max_jets_per_class
out = figure_dir(params)
plots.use_style()

# %% [markdown]
# ## The dataset card
# Where the jets come from, the selection, the label convention, and how they differ from
# the real dataset.

# %%
data = dataset_files(params)
display(Markdown(data.card))

# %% [markdown]
# ## How many jets, per class
# The table counts the jets of every file, with the mean number of constituents and the
# median jet mass per class; it is written to `01_summary.json`.

# %%
summary = summarize(data.files)
save_json(summary, out, "01_summary")
display(Markdown("| class | jets | mean multiplicity | median mass [GeV] |\n|---|---|---|---|\n" + "\n".join(
    f"| {c['name']} | {c['n_jets']} | {c['mean_multiplicity']} | {c['median_mass']} |"
    for c in summary["classes"])))

# %% [markdown]
# ## Jet observables
# The next figure should show the resonances: top jets peak near 175 GeV in mass, W and Z
# jets near 80–90 GeV, H jets near 125 GeV (H→ℓνqq′ lower, the neutrino escapes), while the
# QCD mass falls steeply; gluon jets have more constituents than quark jets.

# %%
jets = dists.jet_histograms(data.files, data.classes, max_jets_per_class=max_jets_per_class)
save_table(dists.histogram_rows(jets), out, "01_jet_observables")
save_table(dists.summary_rows(jets), out, "01_jet_observables_summary")
fig = plots.class_histogram_grid(jets, logy=("jet_pt",), title=f"{params.name}: jets per class")
save_figure(fig, out, "01_jet_observables")

# %% [markdown]
# ## The particle features the network sees
# Standardized as weaver does ([standardisation](../docs/features.md#standardisation)): $\ln p_T$, $\ln E$, their ratios to the jet, and
# $\Delta R$ shifted and scaled, clipped to $[-5, 5]$; charge and PID flags raw. Differences
# between classes here are what the embedding can use before any attention.

# %%
feats = dists.feature_histograms(
    data.files, data.classes, params.features.set, max_particles=params.features.max_particles,
    clip=params.features.clip, max_jets_per_class=max_jets_per_class)
save_table(dists.histogram_rows(feats), out, "01_constituent_features")
fig = plots.class_histogram_grid(feats, ncols=3, title=f"{params.name}: particle features ({params.features.set})")
save_figure(fig, out, "01_constituent_features")

# %% [markdown]
# ## Particle level against detector level
# The real JetClass and Top Landscape jets went through Delphes (the CMS and the ATLAS card);
# the generated ones are particle level unless `dataset.detector` says otherwise
# ([detector emulation](../docs/detector.md)). The same Pythia events, `detector_jets_per_class`
# per class, at particle level (dashed) and through the emulation of the real dataset's
# detector (solid): tracking losses, calorimeter towers that merge neutral particles and
# thresholds leave fewer, coarser constituents — fewer keys in every attention row. The dotted
# ticks are the real datasets' mean multiplicities where known. Quark-Gluon is particle level
# in reality too: nothing to compare.

# %%
compared = (dists.detector_samples(params, params.notebook.detector_jets_per_class, progress=progress)
            if params.notebook.detector_jets_per_class else None)
if compared is None:
    print(f"{params.name}: no detector comparison (real {params.dataset.name} jets are particle level, "
          "the data are given files, or detector_jets_per_class is 0)")
else:
    mode, samples = compared
    det_rows = dists.detector_rows(params.dataset.name, samples)
    save_table(det_rows, out, "01_detector_level")
    real = {c: v for (d, c), v in REAL_MULTIPLICITY.items() if d == params.dataset.name}
    fig = plots.detector_overlay(samples, ["jet_nparticles", "jet_mass"], real=real,
                                 title=f"{params.name}: particle level (dashed) and {mode} (solid)")
    save_figure(fig, out, "01_detector_level")
    half = len(det_rows) // 2
    display(Markdown(markdown_table([
        {"class": a["class"], "multiplicity, particle level": a["mean_jet_nparticles"],
         f"multiplicity, {mode}": b["mean_jet_nparticles"], "real": b["real_mean_jet_nparticles"],
         "median mass, particle level [GeV]": a["median_jet_mass"],
         f"median mass, {mode} [GeV]": b["median_jet_mass"]}
        for a, b in zip(det_rows[:half], det_rows[half:], strict=True)], digits=3)))

# %% [markdown]
# ## Questions
# 1. Which classes can a cut on the jet mass alone separate, and which pairs overlap? Use
#    `01_jet_observables_summary.csv`.
# 2. Why is the H→ℓνqq′ mass peak below 125 GeV, and why would a detector simulation broaden
#    every peak in the figure?
# 3. Which class has the most constituents on average, and what does that say about the
#    length of the sequences the transformer attends over?
# 4. In `01_detector_level.csv`, by how much does the detector emulation cut the number of
#    constituents per class, and does it bring the generated jets to the real datasets'
#    multiplicities? What does that do to the number of keys an attention row spreads over?

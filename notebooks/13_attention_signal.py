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
# # 13 — Does the attention pattern tell signal from background?
#
# Beyond the papers (issue 13, item 4). Sparse heads pick physically meaningful partners — the
# lepton of t→bℓν ([notebook 05](05_eta_phi_attention.ipynb), Wang et al. Fig. 3) — but is the
# attention pattern of a signal jet itself different from that of a QCD jet, enough that a
# simple classifier on attention statistics alone separates them? Per jet, over its real
# particles, this notebook measures the mean row maximum, the fraction of rows with maximum
# ≥ 0.8, the normalised row entropy, the interaction-dependent rate D, the inter-subjet
# fraction (2, 3 and 4 kT subjets) and the lepton fraction, per particle block
# ([definitions](../docs/analyses.md#attention-statistics-as-a-jet-tagger)). A gradient-boosted
# classifier is trained on half of the jets of each signal class and the background, on
# (a) these statistics alone, (b) the mass and multiplicity of the whole jet alone, (c) both, and on the
# same statistics of the never-trained model; its AUC on the other half is shown beside the
# tagger's own AUC on the same jets.
#
# | params file | jets | run time on 2 cores |
# |---|---|---|
# | `params/tiny.yaml` | 100 (10 per class: too few to train, every task's row says so) | 24 s measured |
# | `params/jetclass.yaml` | 5 000 (all 500 test jets per class: 1 000 per task) | 2.3 min measured (4.2 min beside a training) |
# | `params/toplandscape.yaml` | 2 000 (1 000 top, 1 000 QCD) | 0.9 min measured (1.5 min beside a training) |
# | `params/quarkgluon.yaml` | 2 000 (1 000 quark, 1 000 gluon) | not measured (about as TL) |
#
# Statistical errors: standard deviation over 200 stratified bootstrap resamples of the
# evaluation half, the same resamples for every AUC, so differences of AUCs have paired errors.
# They hold the evaluation sample's fluctuation, not that of the training half.

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
progress = True
n_jets = None  # jets per signal-background pair; None means analysis.n_jets. Half of it per class, capped by the test split
train_if_missing = True  # train the params' model now when its checkpoint is missing (else fail)
threads = None  # torch and classifier threads; None: analysis.threads of the params (0: all cores)

# %%
import time

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from partnb.analysis import attention_features as af
from partnb.analysis.stream import stream_attention
from partnb.analysis.substructure import PID_CODES, particle_types
from partnb.data.schema import DATASETS
from partnb.notebook import setup, trained_model
from partnb.outputs import figure_dir, save_figure, save_json, save_table
from partnb.plots import signal as signal_plots
from partnb.plots import use_style

params = setup(params_file, progress=progress, n_jets=n_jets, threads=threads,
               train_if_missing=train_if_missing)
out = figure_dir(params)
use_style()
classes = list(DATASETS[params.dataset.name].classes)
tasks = af.signal_tasks(params.dataset.name)
background = tasks[0][1]
per_class = params.analysis.n_jets // 2
print("tasks:", ", ".join(f"{s} vs {b}" for s, b in tasks))

# %% [markdown]
# ## Models and jets
# The trained model and its seeded never-trained twin see the same jets: up to `n_jets / 2`
# jets of every class, so each task (one signal class against the background) gets as many
# jets of both classes as the test split allows. Subjets: FastJet kt, R = 0.8, exclusive jets
# N = 2, 3, 4 for every jet whatever its class (choosing N by class would hand the classifier
# the label). Leptons come from the particle-identification flags where the data have them.

# %%
models = {"trained": trained_model(params, train_if_missing=train_if_missing, progress=progress),
          "random_init": trained_model(params, train_if_missing=train_if_missing, random_init=True)}
t0 = time.perf_counter()
inputs, positions = af.balanced_inputs(params, per_class, progress=progress)
kinematics = af.jet_kinematics(params, positions, inputs)  # mass and multiplicity of the whole jet
subjets = af.subjet_assignments(inputs)
pid, pid_note = particle_types(params, inputs)
is_lepton = None if pid is None else (pid == PID_CODES["electron"]) | (pid == PID_CODES["muon"])
counts = {name: int((inputs.label == c).sum()) for c, name in enumerate(classes)}
print(f"{len(inputs)} test jets of {params.name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
print(f"jets with more particles than the model sees ({inputs.mask.shape[-1]}): "
      f"{np.mean(kinematics['jet_multiplicity'] > inputs.mask.shape[-1]):.0%}")
print(pid_note)
print(f"subjets and PID: {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## Per-jet attention statistics
# One streamed pass per model; per jet, block and head the consumer keeps a handful of numbers
# and drops the maps.

# %%
tables = {}
for name, model in models.items():
    t0 = time.perf_counter()
    consumer = af.JetAttentionFeatures(len(inputs), subjets=subjets, is_lepton=is_lepton, classes=classes)
    stream_attention(model, inputs, [consumer], batch_size=params.analysis.batch_size,
                     capture=("A", "U", "P"), progress=progress, desc=name)
    tables[name] = consumer.columns() | kinematics
    print(f"{name}: {len(inputs)} jets, {time.perf_counter() - t0:.1f} s")
features = [*af.ROW_STATS, *(f"intersubjet_N{n}" for n in af.SUBJET_COUNTS)]
if is_lepton is not None and np.isfinite(tables["trained"]["lepton_fraction"]).any():
    features.append("lepton_fraction")
features += [*af.KINEMATIC_COLUMNS, "multiplicity"]

# %% [markdown]
# ## Is the pattern different per class?
# Each panel is one per-jet statistic of the trained model, averaged over blocks and heads;
# the background is filled grey, every signal class a line. Where the lines sit on top of the
# grey area the statistic says nothing about the class; the last panels are the "obvious"
# variables the attention has to beat, mass and multiplicity of the whole jet, and the
# multiplicity the model sees (at most `features.max_particles`, so many jets pile up at the
# cap: the attention statistics never see the particles beyond it). The summary
# table gives each class's median and interquartile range, for both models, and the AUC of
# the single statistic against the background.

# %%
summary = [{"model": name} | row for name, cols in tables.items()
           for row in af.feature_summary_rows(cols, classes, features, background)]
save_table(summary, out, "13_attention_features_summary")
hist = af.feature_histogram_rows(tables["trained"], classes, features)
save_table(hist, out, "13_attention_features")
save_figure(signal_plots.feature_distributions(hist, background=background,
                                               title=f"{params.name}: per-jet attention statistics (trained)"),
            out, "13_attention_features")
(pd.DataFrame(summary).query("model == 'trained'")
 .pivot(index="feature", columns="class", values="auc_vs_background").round(3))

# %% [markdown]
# ## A classifier on attention statistics alone
# Gradient-boosted trees (scikit-learn `HistGradientBoostingClassifier`, the same settings
# and seed for every input set) trained on one half of each task's jets, AUC on the other
# half. Bars: the input sets; black bar: the tagger's own AUC on the same evaluation jets.
# If attention only re-encoded the jet's mass and multiplicity, "attention + mass +
# multiplicity" would not rise above "mass + multiplicity"; if training taught the heads
# nothing class-specific, the never-trained model's statistics would do as well.

# %%
matrices = af.input_matrices(tables["trained"], tables["random_init"], kinematics)
t0 = time.perf_counter()
scores = np.column_stack([tables["trained"][f"score_{c}"] for c in classes])  # the tagger's softmax
results = [af.classify_task(matrices, inputs.label, scores, classes, s, b, seed=params.seed,
                            threads=params.analysis.threads or None)
           for s, b in tasks]
auc_rows = af.classifier_rows(results)
save_table(auc_rows, out, "13_classifier_auc")
save_figure(signal_plots.auc_bars(auc_rows, title=f"{params.name}: signal vs {background} from attention statistics"),
            out, "13_classifier_auc")
print(f"classifiers: {time.perf_counter() - t0:.1f} s")
pd.DataFrame(auc_rows)[["task", "inputs", "auc", "auc_err", "n_eval", "tagger_auc", "note"]].round(4)

# %% [markdown]
# ## The answer
# The rule is stated in the sentence: attention separates signal from background when its
# AUC lies more than 3 errors above 0.5, and adds to mass and multiplicity when the paired
# AUC gain is more than 3 errors.

# %%
verdict = af.attention_verdict(results)
save_json(verdict, out, "13_verdict")
display(Markdown(verdict["sentence"]))
print(verdict["rule"])

# %% [markdown]
# ## Questions
# 1. In `13_classifier_auc.csv`, which signal classes do attention statistics alone separate
#    from the background best, and is that ordering the same as that of mass and
#    multiplicity alone?
# 2. Compare `attention` with `random_attention`: how much of the separation would a
#    never-trained ParT's attention already give, and why can an untrained model's attention
#    carry information about the jet at all?
# 3. For the tasks where attention + mass + multiplicity beats mass + multiplicity, which
#    single statistic separates most in `13_attention_features_summary.csv`
#    (`auc_vs_background`), and is it one of the sparsity measures or a geometric one
#    (inter-subjet, lepton fraction)?
# 4. How far below the tagger does the best attention classifier stay (`tagger_minus_auc`)?
#    What does that say about how much of the tagger's decision is visible in where the
#    heads look, rather than in what the value vectors carry?

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
# # 10 — What drives sparsity: one knob at a time, and what the trend predicts at scale
#
# The sparse-attention paper (arXiv 2512.00210) leaves open whether dataset size or the number
# of classes makes JetClass attention more binary than Top Landscape's. Here a grid of
# training runs (`params/study/<dataset>_grid.yaml`, `partnb study`) turns one knob at a time
# from a base point — training jets ×1/×4/×16, optimiser steps at fixed data (epochs
# ×1/×4/×16), model width, training padding, and for JetClass-like the number of classes at
# equal jets per class — with two seeds at the base point for the seed-to-seed spread. Each
# point's sparsity is the last reading of its training monitor (500 validation jets;
# docs/training.md#the-sparsity-monitor). Fits against training jets (the grid) and optimiser
# steps (notebook 09's long run) are carried to the papers' scale: **predictions with 68 %
# intervals, not results** (docs/sparsity_study.md#fits-and-extrapolation).
#
# | params file | what runs | time on 2 cores |
# |---|---|---|
# | `params/toplandscape.yaml`, `jetclass.yaml` | reads the committed grid points' logs | ~10 s; each point: 3–40 min on one core (`partnb study ... --point NAME`) |
# | others (no grid file) | the steps extrapolation of the params' own run only | seconds |

# %% tags=["parameters"]
params_file = "../params/jetclass.yaml"
study_file = ""  # "": params/study/<name>_grid.yaml if it exists
progress = True
threads = None  # torch threads; None: analysis.threads of the params (0: all cores)

# %%
import os
from pathlib import Path

from IPython.display import Markdown, display

from partnb import plots
from partnb.analysis import emergence, scaling
from partnb.data.schema import DATASETS
from partnb.notebook import setup
from partnb.outputs import figure_dir, markdown_table, save_figure, save_json, save_table
from partnb.params import load_params
from partnb.plots.emergence import extrapolation_plot, knob_panels
from partnb.study import STUDY_METRICS, load_study, point_status, study_rows

params = setup(params_file, progress=progress, threads=threads)
out = figure_dir(params)
plots.use_style()
dataset = params.dataset.name
grid_file = Path(study_file) if study_file else Path(params.root) / "params" / "study" / f"{params.name}_grid.yaml"
study = load_study(grid_file) if grid_file.is_file() else None
status = [{"point": p.name, "knob": p.knob, "value": str(p.value), "seed": p.seed,
           "status": point_status(p)} for p in study.points] if study else []
rows = study_rows(study) if study else []
print(f"{grid_file}: " + (f"{len(rows)} of {len(status)} points finished" if study else "no grid"))
if status:
    save_table(status, out, "10_points")
    display(Markdown(markdown_table(status)))

# %% [markdown]
# ## Each knob on its own
# Every panel turns one knob from the base point (error bars: the probe set's jackknife error
# and the base point's seed-to-seed spread in quadrature). A knob that drives sparsity moves
# the curve by more than the bars.

# %%
knobs = sorted({r["knob"] for r in rows} - {"base"})
n_classes = len(DATASETS[dataset].classes)
if rows:
    save_table(rows, out, "10_study_points")
    for metric in (emergence.BINARY_COLUMN, "median_logit_gap"):
        series = {k: scaling.knob_series(rows, k, metric, n_classes=n_classes) for k in knobs}
        save_figure(knob_panels(series, metric, title=f"{params.name}: {metric} per knob"),
                    out, f"10_knobs_{metric.replace('.', '')}")
effects = [e for m in STUDY_METRICS for e in scaling.knob_effects(rows, knobs, m, n_classes=n_classes)]
if effects:
    save_table(effects, out, "10_knob_effects")
    display(Markdown(markdown_table([e for e in effects if e["metric"] == emergence.BINARY_COLUMN])))

# %% [markdown]
# ## Carried to the papers' scale (a prediction)
# A power law (never saturates: the optimistic reading) and a logistic in log x (saturates:
# the conservative one), fitted to the sparsity measures against training jets and against
# optimiser steps, evaluated at the papers' training jets and steps. Dashed: extrapolated, with
# the 68 % band.

# %%
run_file = emergence.emergence_params_file(params) or Path(params_file)
run = load_params(run_file)
try:
    emergence_rows = emergence.load_monitor_log(run.output.models)
except FileNotFoundError as error:
    emergence_rows = []
    print(error)
extrap, panels = scaling.extrapolations(rows, emergence_rows, dataset)
if extrap:
    save_table(extrap, out, "10_extrapolation")
    display(Markdown(markdown_table(extrap, ["metric", "knob", "fit", "n_points", "prediction",
                                              "lo", "hi", "at", "notes"], digits=3)))
if panels:
    save_figure(extrapolation_plot(panels, title=f"{params.name}: extrapolation (prediction)"),
                out, "10_extrapolation")

# %% [markdown]
# ## Verdict
# Which knob moves the binary-row fraction beyond three combined errors, whether any
# extrapolation reaches "binary" (half of all rows with a maximum ≥ 0.8), and which fits the
# points themselves reject (χ²/dof above 3 with the points' errors: a single run whose fraction
# rises and falls again follows neither form):

# %%
verdict = scaling.drivers_verdict([e for e in effects if e["metric"] == emergence.BINARY_COLUMN],
                                  [x for x in extrap if x["metric"] == emergence.BINARY_COLUMN])
save_json({"verdict": verdict, "grid": os.path.relpath(grid_file, params.root) if study else None,
           "points_finished": len(rows), "points": len(status)}, out, "10_verdict")
display(Markdown(f"**Verdict.** {verdict}"))

# %% [markdown]
# ## Questions
# 1. In `10_knob_effects.csv`, which knob changes `rows_max_ge_0.8` the most in units of its
#    error: training jets, optimiser steps, width, padding (or, for JetClass-like, classes)?
# 2. In `10_extrapolation.csv`, how far apart are the power-law and the logistic predictions at
#    the papers' scale, and does either 68 % interval reach 0.5? What does that say about how
#    much an extrapolation over several decades can tell?
# 3. Compare the steps extrapolation with the jets one: is the papers' sparsity more plausibly a
#    matter of longer training or of more data?

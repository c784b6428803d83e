"""Notebook parameters are params keys: partnb.notebook.setup validates them through the
schema, so a bad one is one message naming it before any work, in every notebook alike."""

from __future__ import annotations

import ast
import re

import pytest
import torch

from partnb.notebook import setup
from partnb.params import SCHEMA, ParamsError

from conftest import REPO

TINY = REPO / "params" / "tiny.yaml"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
#: parameters that name inputs of the notebook rather than settings
_INPUTS = {"params_file", "params_files", "output_dir", "emergence_params", "study_file"}


def _parameters(path) -> dict:
    """The assignments of a notebook's parameters cell."""
    text = path.read_text()
    cell = re.search(r'# %% tags=\["parameters"\]\n(.*?)\n# %%', text, re.S).group(1)
    values = {}
    for node in ast.parse(cell).body:
        if isinstance(node, ast.Assign):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_none_keeps_the_params_value_and_a_value_overrides():
    params = setup(TINY, n_jets=None, heatmap_head=None, k_values=None)
    assert params.analysis.n_jets == 200  # tiny.yaml
    assert params.analysis.heatmap_head == SCHEMA["analysis"]["heatmap_head"].default
    assert params.notebook.k_values == SCHEMA["notebook"]["k_values"].default
    params = setup(TINY, n_jets=50, jackknife_groups=5, k_values=[1, "all"], progress=False)
    assert (params.analysis.n_jets, params.analysis.jackknife_groups) == (50, 5)
    assert params.notebook.k_values == [1, "all"] and params.analysis.progress is False


def test_a_params_file_sets_notebook_keys_for_a_whole_run(tmp_path):
    text = TINY.read_text() + "notebook:\n  k_values: [2, 4]\n  min_alpha: 0.1\n"
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    params = setup(path, k_values=None, min_alpha=None)
    assert params.notebook.k_values == [2, 4] and params.notebook.min_alpha == 0.1
    assert setup(path, k_values=[3]).notebook.k_values == [3]  # the notebook's value wins


@pytest.mark.parametrize("kwargs,message", [
    ({"heatmap_haed": 1}, r"unknown notebook parameter 'heatmap_haed' \(did you mean 'heatmap_head'\?\)"),
    ({"n_jets": 0}, r"analysis.n_jets = 0 must be > 0 — from the notebook parameter n_jets"),
    ({"jackknife_groups": 1}, r"analysis.jackknife_groups = 1 must be >= 2"),
    ({"heatmap_head": 2}, r"analysis.heatmap_head = 2 must be < model.num_heads = 2"),
    ({"threads": -1}, r"analysis.threads = -1 must be >= 0 — from the notebook parameter threads"),
    ({"k_values": [0, "all"]}, r"notebook.k_values .* whole numbers >= 1 or 'all'"),
    ({"min_alpha": 2.0}, r"notebook.min_alpha = 2.0 must be in \[0, 1\]"),
    ({"compare_float64": "yes"}, r"notebook.compare_float64"),
    ({"train_if_missing": "no"}, r"notebook parameter train_if_missing = 'no': must be true or false"),
    ({"jets_per_class": 100}, r"jets_per_class = 100: set dataset.jets_per_class in the params file"),
])
def test_bad_parameters_are_one_clear_message(kwargs, message):
    with pytest.raises(ParamsError, match=message):
        setup(TINY, **kwargs)


def test_jets_per_class_none_is_accepted():
    assert setup(TINY, jets_per_class=None).dataset.jets_per_class == 40


def test_threads_set_torch():
    before = torch.get_num_threads()
    try:
        setup(TINY, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_parameter_is_known_to_setup(path):
    """Each notebook's own defaults pass through setup (so every parameter is a params key or
    a run flag) and the notebook calls setup with each of them."""
    values = {k: v for k, v in _parameters(path).items() if k not in _INPUTS}
    if path.stem == "08_dataset_comparison":  # several params files, no analysis settings
        assert set(values) == {"progress"}
        return
    before = torch.get_num_threads()
    try:
        setup(TINY, **values)
    finally:
        torch.set_num_threads(before)
    call = re.search(r"params = setup\(params_file, (.*?)\)\n", path.read_text(), re.S).group(1)
    passed = set(re.findall(r"(\w+)=\1\b", call))
    assert passed == set(values), f"{path.name}: setup gets {sorted(passed)}, cell has {sorted(values)}"


def test_papermill_stops_in_the_first_cell_naming_the_parameter(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(str(REPO / "notebooks" / "03_attention_distributions.ipynb"),
                            str(tmp_path / "out.ipynb"), kernel_name="partnb", progress_bar=False,
                            parameters={"params_file": str(TINY), "heatmap_head": 5},
                            cwd=str(REPO / "notebooks"))
    assert "analysis.heatmap_head = 5 must be < model.num_heads = 2" in str(info.value)
    # the first cell after the parameters (and papermill's injected copy) is where it stops
    assert info.value.exec_count == 3 and "params = setup(" in info.value.source

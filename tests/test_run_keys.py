"""The committed resume states still resume under today's params: a new params key that
changes the run key of an old run would make `partnb train` refuse the committed runs
(and every notebook that trains if missing). Each state's run key is checked against the
params file that made it."""

from __future__ import annotations

from pathlib import Path

import pytest

from partnb.model.factory import plain_params
from partnb.params import load_params, params_from_dict
from partnb.train import _run_key, load_train_state

from conftest import PARAMS, REPO

RUNS = {
    "models/jetclass/train_state.pt": ("jetclass.yaml", False),
    "models/toplandscape/train_state.pt": ("toplandscape.yaml", False),
    "models/quarkgluon/train_state.pt": ("quarkgluon.yaml", False),
    "models/jetclass/plain/train_state.pt": ("jetclass.yaml", True),
    "models/toplandscape/plain/train_state.pt": ("toplandscape.yaml", True),
    "models/quarkgluon/plain/train_state.pt": ("quarkgluon.yaml", True),
    "models/jetclass/emergence/train_state.pt": ("study/jetclass_emergence.yaml", False),
    "models/toplandscape/emergence/train_state.pt": ("study/toplandscape_emergence.yaml", False),
    "models/quarkgluon/emergence/train_state.pt": ("study/quarkgluon_emergence.yaml", False),
    "models/toplandscape/emergence_decoupled/train_state.pt": (
        "study/toplandscape_emergence_decoupled.yaml", False),
}
# the attention variants of notebooks 11 and 12: each params/variants file trains into its
# own output.models, so a new variant file is checked without an entry here
for _file in sorted((PARAMS / "variants").glob("*.yaml")):
    _models = Path(load_params(_file, check_files=False).output.models)
    RUNS[str(_models.relative_to(REPO) / "train_state.pt")] = (f"variants/{_file.name}", False)


def test_every_committed_state_is_listed():
    committed = {str(p.relative_to(REPO)) for p in (REPO / "models").rglob("train_state.pt")
                 if "tiny" not in p.parts and "study" not in p.parts}
    assert committed <= set(RUNS)


@pytest.mark.parametrize("state", sorted(RUNS))
def test_committed_state_matches_its_params(state):
    path = REPO / state
    if not path.exists():
        pytest.skip(f"{state} is not in this checkout")
    params_file, plain = RUNS[state]
    params = load_params(PARAMS / params_file, check_files=False)
    if plain:
        params = plain_params(params)
    assert load_train_state(path)["run_key"] == _run_key(params)


def test_run_key_is_the_same_in_another_checkout(tmp_path):
    """CI checks the repository out elsewhere: a key that hashed the absolute cache folder
    refused every committed run there. A copy of params/ in another folder gives the same
    keys; a changed setting still changes them."""
    import shutil

    copy = tmp_path / "elsewhere" / "params"
    shutil.copytree(PARAMS, copy)
    for name in ("jetclass.yaml", "toplandscape.yaml", "study/toplandscape_emergence.yaml"):
        here = load_params(PARAMS / name, check_files=False)
        there = load_params(copy / name, check_files=False)
        assert here.dataset.cache_dir != there.dataset.cache_dir
        assert _run_key(there) == _run_key(here)
        changed = here.to_dict()
        changed["train"]["lr"] *= 2
        assert _run_key(params_from_dict(changed, source=here.source, root=here.root)) != \
            _run_key(here)


def test_data_files_enter_the_key_relative_to_the_project(tmp_path):
    """A user's own files: the same files under two checkouts give one key; other files
    give another."""
    keys = []
    for checkout in ("a", "b"):
        root = tmp_path / checkout
        data = {"dataset": {"name": "toplandscape", "source": "files",
                            "files": ["data/train.root"]}}
        params = params_from_dict(data, root=root, check_files=False)
        assert params.dataset.files[0].startswith(str(root))
        keys.append(_run_key(params))
    other = params_from_dict({"dataset": {"name": "toplandscape", "source": "files",
                                          "files": ["data/other.root"]}}, root=tmp_path / "a",
                           check_files=False)
    assert keys[0] == keys[1] != _run_key(other)

"""The params schema: every shipped params file loads; every kind of mistake gives one clear error."""

from __future__ import annotations

import pytest
import yaml

from partnb.params import ParamsError, load_params, params_from_dict

from conftest import PARAMS


@pytest.mark.parametrize("name", ["jetclass", "toplandscape", "quarkgluon", "tiny"])
def test_shipped_params_load(name):
    p = load_params(PARAMS / f"{name}.yaml")
    assert p.name == name
    assert p.dataset.source == "generate"
    # relative paths resolve against the project directory, not the working directory
    assert p.dataset.cache_dir == str(PARAMS.parent / "data" / "generated")
    assert p.output.figures == str(PARAMS.parent / "figures" / name)


def _write(tmp_path, data, name="p.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"dataset": {"jets_per_clas": 10}}, "dataset.jets_per_clas"),
        ({"dataset": {"jets_per_clas": 10}}, "did you mean 'jets_per_class'"),
        ({"datset": {}}, "did you mean 'dataset'"),
        ({"dataset": {"jets_per_class": "many"}}, "dataset.jets_per_class must be an integer"),
        ({"dataset": {"jets_per_class": 1.5}}, "dataset.jets_per_class must be an integer"),
        ({"dataset": {"jets_per_class": -3}}, "dataset.jets_per_class = -3 must be > 0"),
        ({"train": {"lr": -1e-3}}, "train.lr = -0.001 must be a finite number > 0"),
        ({"train": {"optimizer": "sgd"}}, "train.optimizer = 'sgd' must be one of"),
        ({"features": {"set": "kinpd"}}, "features.set = 'kinpd' must be one of"),
        ({"features": {"clip": "yes"}}, "features.clip must be true or false"),
        ({"dataset": {"split": [0.5, 0.5, 0.5]}}, "must sum to 1"),
        ({"dataset": {"classes": ["Tbqq", "Hbbb"]}}, "'Hbbb' is not a class of jetclass"),
        ({"model": {"embed_dims": [64, 128, 60], "num_heads": 8}}, "not divisible"),
        ({"dataset": {"source": "files"}}, "dataset.files is empty"),
        ({"seed": True}, "seed must be an integer"),
        ([1, 2], "must hold a mapping"),
    ],
)
def test_bad_params_name_the_key(tmp_path, data, expected):
    path = _write(tmp_path, data)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_missing_input_file_named(tmp_path):
    path = _write(tmp_path, {"dataset": {"source": "files", "files": ["nowhere/*.root"]}})
    with pytest.raises(ParamsError, match=r"dataset.files: .*nowhere/\*.root matches no file"):
        load_params(path)
    path = _write(tmp_path, {"model": {"checkpoint": "missing.pt"}})
    with pytest.raises(ParamsError, match=r"model.checkpoint: .*missing.pt does not exist"):
        load_params(path)


def test_missing_and_unparsable_file(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: {name: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_overrides_and_hash_stability(tmp_path):
    path = _write(tmp_path, {"dataset": {"jets_per_class": 100}, "analysis": None})
    a = load_params(path)
    b = load_params(path, {"dataset.jets_per_class": 100, "analysis.progress": True})
    c = load_params(path, {"dataset.jets_per_class": 200})
    assert a.hash() == b.hash()
    assert a.hash() != c.hash()
    assert c.dataset.jets_per_class == 200
    # the hash of one section ignores the others
    d = load_params(path, {"analysis.n_jets": 17})
    assert a.hash("dataset") == d.hash("dataset")
    assert a.hash() != d.hash()
    with pytest.raises(ParamsError, match="unknown key 'dataset.nope'"):
        load_params(path, {"dataset.nope": 1})


def test_defaults_fill_everything():
    p = params_from_dict(None, root="/tmp")
    assert p.dataset.name == "jetclass"
    assert p.features.set == "kin"
    assert p.model.num_layers == 8
    assert p.to_dict()["dataset"]["split"] == [0.8, 0.1, 0.1]

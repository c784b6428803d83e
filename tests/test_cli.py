"""The ``partnb`` command: generate and info end to end, and one clear error for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from conftest import PARAMS


def partnb(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "partnb.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.slow  # Pythia in a subprocess: ~11 s on 2 loaded cores
def test_generate_then_info_json(tmp_path):
    params = yaml.safe_load((PARAMS / "tiny.yaml").read_text())
    params["dataset"].update(name="quarkgluon", jets_per_class=30, jets_per_file=30)
    path = tmp_path / "qg.yaml"
    path.write_text(yaml.safe_dump(params))
    res = partnb("generate", path, "--jets-per-class", 20, "--out", tmp_path / "cache",
                 "--no-progress")
    assert res.returncode == 0, res.stderr
    files = sorted((tmp_path / "cache").glob("quarkgluon-*/*.root"))
    assert [f.name for f in files] == ["gluon_0000.root", "quark_0000.root"]

    res = partnb("info", files[0].parent, "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)  # nothing but one JSON object on stdout
    assert info["format"] == "quarkgluon-root"
    assert info["n_jets"] == 40
    by_name = {c["name"]: c for c in info["classes"]}
    assert set(by_name) == {"quark", "gluon"}
    assert by_name["quark"]["n_jets"] == 20
    assert 5 < by_name["gluon"]["mean_multiplicity"] < 150
    assert 0 < by_name["quark"]["median_mass"] < 200
    assert "Pythia" in info["card"]

    res = partnb("info", str(files[0].parent / "*.root"))
    assert res.returncode == 0, res.stderr
    assert "quark" in res.stdout and "Differences from the real dataset" in res.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["info", "no/such/*.root"], "no/such/*.root"),
        (["generate", "no_such_params.yaml"], "params file not found"),
    ],
)
def test_bad_input_one_line_no_traceback(tmp_path, args, expected):
    res = partnb(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert expected in res.stderr
    assert "Traceback" not in res.stderr
    assert res.stdout == ""


def test_bad_params_key_named(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("dataset:\n  jets_per_clas: 5\n")
    res = partnb("generate", path)
    assert res.returncode == 2
    assert "dataset.jets_per_clas" in res.stderr and "jets_per_class" in res.stderr
    assert "Traceback" not in res.stderr


def test_info_on_params_before_generation(tmp_path):
    params = yaml.safe_load((PARAMS / "tiny.yaml").read_text())
    params["dataset"]["cache_dir"] = str(tmp_path / "empty")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(params))
    res = partnb("info", path)
    assert res.returncode == 2
    assert "partnb generate" in res.stderr and "Traceback" not in res.stderr

"""Generation on existing engines (docs/cluster.md): one file alone, as a Slurm or HTCondor
array task makes it; ``--plan``, the files still missing; Dask; and bad requests refused
before any work.

The engines are compared on their jets: every branch of every file read back as arrays and
found equal. Not on the file bytes: each ROOT file carries its own UUID (and uproot's
timestamps), so two writes of the same jets differ in a few header bytes.

The sample is tiny on purpose: Top Landscape (2 classes), 20 jets per class in files of 10,
so 4 files; each takes well under a second of Pythia.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import pytest
import uproot
import yaml

from partnb.cli import build_parser, main

from conftest import REPO

EXAMPLES = REPO / "examples"
PARTNB = Path(sys.executable).with_name("partnb")  # the console script of this environment
PLAN = ["top 0", "top 1", "QCD 0", "QCD 1"]


def _params(tmp_path: Path, cache: Path | None = None) -> Path:
    params = {
        "name": "engines", "seed": 11,
        "dataset": {"name": "toplandscape", "source": "generate", "jets_per_class": 20,
                    "jets_per_file": 10, "workers": 1,
                    "cache_dir": str(cache or tmp_path / "cache")},
    }
    path = tmp_path / "engines.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _partnb(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(PARTNB), *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def _env(**extra) -> dict:
    return {**os.environ, "PARTNB": str(PARTNB), **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _refused(capsys, argv, *expected):
    """``partnb`` refuses ``argv`` with exit status 2 and one line on stderr that holds every
    ``expected`` text; returns that line."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    for text in expected:
        assert text in err, (text, err)
    assert "Traceback" not in err
    return err.strip()


# --------------------------------------------------------------------------------------
# --plan and bad requests: no Pythia
# --------------------------------------------------------------------------------------


def test_plan_of_an_empty_cache_lists_every_file_and_creates_nothing(tmp_path, capsys):
    path = _params(tmp_path)
    assert main(["generate", str(path), "--plan"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == PLAN  # stdout: nothing but CLASS FILE_INDEX lines
    assert re.fullmatch(r"# toplandscape: 4 of 4 files missing in \S+/cache/toplandscape-\w+\n",
                        err), err
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--class", "XYZ", "--file", "0"],
         "partnb: --class XYZ: not a class of toplandscape (classes: top, QCD)"),
        (["--class", "QCD", "--file", "2"],
         "partnb: --file 2: out of range: toplandscape has files 0-1 of class QCD "
         "(20 jets per class, 10 per file)"),
        (["--class", "QCD", "--file", "-1"], "partnb: --file -1: out of range"),
        (["--class", "QCD"], "partnb: --class needs --file"),
        (["--file", "0"], "partnb: --file needs --class"),
        (["--plan", "--scheduler", "local"], "--plan and --scheduler do not go together"),
        (["--class", "top", "--file", "0", "--scheduler", "local"],
         "--class/--file and --scheduler do not go together"),
        (["--scheduler", "no-port-here"], "partnb: --scheduler no-port-here: not a scheduler "
                                          "address"),
    ],
)
def test_bad_request_refused_before_any_work(tmp_path, capsys, args, expected):
    path = _params(tmp_path)
    _refused(capsys, ["generate", path, *args], expected)
    assert not (tmp_path / "cache").exists()


def test_class_outside_dataset_classes_refused(tmp_path, capsys):
    params = yaml.safe_load(_params(tmp_path).read_text())
    params["dataset"].update(name="jetclass", classes=["QCD", "Hbb"])
    path = tmp_path / "subset.yaml"
    path.write_text(yaml.safe_dump(params))
    _refused(capsys, ["generate", path, "--class", "Tbqq", "--file", "0"],
             "partnb: --class Tbqq: not one of the classes that dataset.classes selects "
             "(classes: QCD, Hbb)")
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow  # waits out the 5 s the scheduler has to answer
def test_scheduler_that_does_not_answer_refused_within_seconds(tmp_path, capsys):
    pytest.importorskip("distributed", reason="the cluster extra: pip install -e '.[cluster]'")
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    t0 = time.perf_counter()
    _refused(capsys, ["generate", _params(tmp_path), "--scheduler", address],
             f"partnb: --scheduler {address}: no Dask scheduler answered within 5 s")
    assert time.perf_counter() - t0 < 20
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("scheduler", ["local", "tcp://127.0.0.1:8786"])
def test_scheduler_without_dask_names_the_package_and_pip(tmp_path, capsys, monkeypatch,
                                                          scheduler):
    monkeypatch.setitem(sys.modules, "distributed", None)  # fakes the failure: import fails
    _refused(capsys, ["generate", _params(tmp_path), "--scheduler", scheduler],
             f"partnb: --scheduler {scheduler}: needs the package dask.distributed",
             "pip install 'dask[distributed]'")
    assert not (tmp_path / "cache").exists()


def test_slurm_task_beyond_the_plan_says_so(tmp_path):
    plan = tmp_path / "plan.txt"
    plan.write_text("\n".join(PLAN) + "\n")
    res = subprocess.run(["bash", EXAMPLES / "slurm_generate.sh", _params(tmp_path), plan],
                         capture_output=True, text=True, env=_env(SLURM_ARRAY_TASK_ID="4"))
    assert res.returncode == 2
    assert "task 4:" in res.stderr and "has no line 5 (it has 4)" in res.stderr
    assert "--array=0-3" in res.stderr
    assert not (tmp_path / "cache").exists()


def _generate_options() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {s for a in sub.choices["generate"]._actions for s in a.option_strings}


@pytest.mark.parametrize("script", ["slurm_generate.sh", "htcondor_generate.sh"])
def test_example_scripts_call_options_that_exist(script):
    text = (EXAMPLES / script).read_text()
    command = next(line for line in text.splitlines() if line.startswith("exec "))
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", command))
    assert used >= {"--class", "--file", "--no-progress"}
    assert used <= _generate_options(), used - _generate_options()


# --------------------------------------------------------------------------------------
# The same jets, whichever engine made them (Pythia)
# --------------------------------------------------------------------------------------


def _condor_jobs(submit: Path, plan: Path, **append) -> list[list[str]]:
    """The command lines HTCondor would run for ``submit`` (the executable and its
    arguments), one per plan line: a reading of the submit language that this file uses
    (``name = value`` macros, ``-append``-like overrides, ``queue a, b from FILE``)."""
    macros, queue = {}, None
    for line in submit.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("queue "):
            queue = re.fullmatch(r"queue\s+(.+?)\s+from\s+(\S+)", line)
            continue
        name, _, value = line.partition("=")
        macros[name.strip().lower()] = value.strip()
    macros.update(append)
    assert queue is not None and queue.group(2) == "plan.txt"
    names = [n.strip() for n in queue.group(1).split(",")]
    jobs = []
    for item in plan.read_text().splitlines():
        values = dict(zip(names, re.split(r"[\s,]+", item.strip()), strict=True))
        expand = {**macros, **values}
        args = re.sub(r"\$\((\w+)\)", lambda m, e=expand: e[m.group(1).lower()],
                      macros["arguments"].strip('"'))
        jobs.append([macros["executable"], *shlex.split(args)])
    return jobs


def _jets_by_file(directory: Path) -> dict[str, ak.Array]:
    out = {}
    for f in sorted(directory.glob("*.root")):
        with uproot.open(f) as root:
            out[f.name] = root["tree"].arrays(library="ak")
    return out


def _stamps(directory: Path) -> dict[str, tuple[int, int]]:
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in directory.glob("*.root")}


@pytest.mark.slow  # Pythia for 12 files of 10 jets, 5 partnb processes, a LocalCluster
def test_three_engines_make_the_same_jets(tmp_path, capsys):
    """The plain run, one file alone (Slurm array script, HTCondor submit file + wrapper) and
    Dask (LocalCluster, 2 workers) make files with identical jets; ``--plan`` lists exactly
    the files still missing, and a full run keeps the files the other engines made."""
    pytest.importorskip("distributed", reason="the cluster extra: pip install -e '.[cluster]'")
    from partnb.data.generate import GenerationConfig, output_dir
    from partnb.params import load_params

    path = _params(tmp_path, tmp_path / "array")
    config = GenerationConfig.from_params(load_params(path))
    plain, array, dask = (output_dir(config, tmp_path / d) for d in ("plain", "array", "dask"))

    # 1. plain: one process, every file
    assert main(["generate", str(path), "--out", str(tmp_path / "plain"), "--no-progress"]) == 0
    assert "4 of 4 files to make" in capsys.readouterr().out

    # 2. one file alone: the plan, then one Slurm array task and one HTCondor job
    res = _partnb("generate", path, "--plan")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == PLAN
    plan = tmp_path / "plan.txt"
    plan.write_text(res.stdout)
    res = subprocess.run(["bash", EXAMPLES / "slurm_generate.sh", path, plan],
                         capture_output=True, text=True, env=_env(SLURM_ARRAY_TASK_ID="3"),
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"{array / 'QCD_0001.root'}: 10 jets of QCD made" in res.stdout
    jobs = _condor_jobs(EXAMPLES / "htcondor_generate.sub", plan, params=str(path))
    assert [job[2:4] for job in jobs] == [line.split() for line in PLAN]
    res = subprocess.run(["bash", *jobs[0]], cwd=REPO, capture_output=True, text=True,
                         env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in array.glob("*")) == ["QCD_0001.root", "top_0000.root"]
    res = _partnb("generate", path, "--plan")
    assert res.stdout.splitlines() == ["top 1", "QCD 0"]
    assert "2 of 4 files missing" in res.stderr

    # 3. Dask: a LocalCluster of 2 workers, every file
    res = _partnb("generate", path, "--out", tmp_path / "dask", "--scheduler", "local",
                  "--workers", "2", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "4 of 4 files to make" in res.stdout and "4/4 files" in res.stdout
    run = json.loads((dask / "manifest.json").read_text())["runs"][-1]
    assert (run["engine"], run["workers"], run["chunks"]) == ("dask local", 2, 4)

    # the full run completes the array tasks' directory and keeps their files
    made_by_tasks = _stamps(array)
    assert main(["generate", str(path), "--no-progress"]) == 0
    assert "2 of 4 files to make" in capsys.readouterr().out
    assert {k: v for k, v in _stamps(array).items() if k in made_by_tasks} == made_by_tasks
    # ... and finds nothing to make where Dask made every file
    made_by_dask = _stamps(dask)
    assert main(["generate", str(path), "--out", str(tmp_path / "dask"), "--no-progress"]) == 0
    assert "files to make" not in capsys.readouterr().out
    assert _stamps(dask) == made_by_dask
    assert _partnb("generate", path, "--plan").stdout == ""

    reference = _jets_by_file(plain)
    assert sorted(reference) == ["QCD_0000.root", "QCD_0001.root", "top_0000.root",
                                 "top_0001.root"]
    for other in (array, dask):
        jets = _jets_by_file(other)
        assert sorted(jets) == sorted(reference)
        for name, arrays in reference.items():
            assert jets[name].fields == arrays.fields
            assert ak.array_equal(jets[name], arrays), (other.parent.name, name)
    # the files differ from one another: each has its own seed
    assert not ak.array_equal(reference["top_0000.root"], reference["top_0001.root"])

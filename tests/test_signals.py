"""Kill anything at any moment and rerun (issue 11, item 5).

The real ``partnb`` command runs in a subprocess on a tiny params file (params/tiny.yaml with
10 jets per class, one file per class, everything under ``tmp_path``) and is stopped once
its work has visibly started: Ctrl-C (SIGINT to the whole process group, as a terminal sends
it), SIGTERM to the parent alone (``kill PID``), and for ``generate --workers 2`` also
``kill -9`` of the parent alone; ``partnb run`` is stopped inside a notebook. Each case
checks that

* the command stops at once: SIGINT and SIGTERM with the status 128 + signal (130, 143) and
  one line on stderr, no traceback;
* no process it started survives it (the generation workers included);
* no temp file is left: none at all after SIGINT / SIGTERM, none after the rerun of a
  ``kill -9``;
* the same command run again completes and gives what an uninterrupted run gives: the same
  jets in every generated file (ROOT files differ in their UUIDs, so the arrays are
  compared), the same trained weights, tensor for tensor, bit for bit.

Every test starts Pythia or torch in subprocesses (tens of seconds on 2 shared cores): slow.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import PARAMS

psutil = pytest.importorskip("psutil")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"),
                       reason="workers die with their parent through PR_SET_PDEATHSIG"),
]

#: one file of 10 jets per JetClass class: ~20 s of Pythia with 2 workers
N_FILES = 10
EPOCHS = 6
#: how long a stopped command may take to exit (the machine is shared and loaded)
PROMPT_S = 20.0


def _params_file(root: Path) -> Path:
    """params/tiny.yaml with its cache and outputs under ``root``, 10 jets per class."""
    p = yaml.safe_load((PARAMS / "tiny.yaml").read_text())
    p["dataset"].update(cache_dir=str(root / "cache"), jets_per_class=10, jets_per_file=10)
    p["output"] = {k: str(root / k) for k in ("figures", "runs", "models")}
    p["train"]["epochs"] = EPOCHS
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def _command(kind: str, params: Path) -> list[str]:
    cmd = [sys.executable, "-m", "partnb.cli", kind, str(params), "--no-progress"]
    return cmd + ["--workers", "2"] if kind == "generate" else cmd


def _run(kind: str, params: Path) -> subprocess.CompletedProcess:
    res = subprocess.run(_command(kind, params), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res


def _sigint_as_in_a_terminal():
    """A shell starts background jobs (``cmd &``, nohup) with SIGINT ignored, and Python then
    keeps it ignored: a test suite started that way must not pass that on to the command a
    user would start in a terminal, where Ctrl-C is KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(cmd: list[str], started) -> tuple[subprocess.Popen, list]:
    """``cmd`` in a process group of its own, once ``started(proc)`` holds; returns it and
    every process it has started by then."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_sigint_as_in_a_terminal)
    deadline = time.time() + 300
    while not started(proc):
        if proc.poll() is not None or time.time() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            pytest.fail(f"the work did not start (status {proc.returncode}): {err[-2000:]}")
        time.sleep(0.05)
    return proc, psutil.Process(proc.pid).children(recursive=True)


def _stop(proc: subprocess.Popen, signum: int, children: list, *, group: bool | None = None,
          prompt_s: float = PROMPT_S, allow: tuple[str, ...] = ()) -> str:
    """Send ``signum`` as a user would (SIGINT: Ctrl-C, to the whole process group as a
    terminal does, unless ``group`` is False), check the prompt exit and that no child
    survives; returns stderr. Lines of stderr containing one of ``allow`` are not counted."""
    t0 = time.time()
    if group or (group is None and signum == signal.SIGINT):
        os.killpg(proc.pid, signum)
    else:  # kill PID / kill -9 PID: the parent alone
        os.kill(proc.pid, signum)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"still running 60 s after {signal.Signals(signum).name}")
    elapsed = time.time() - t0
    _, alive = psutil.wait_procs(children, timeout=15)
    alive = [p for p in alive if _running(p)]
    for p in alive:  # clean up before failing
        p.kill()
    assert not alive, f"processes left running: {[p.pid for p in alive]}"
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        return err
    assert elapsed < prompt_s, f"took {elapsed:.1f} s to stop"
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not any(a in line for a in allow)]
    assert len(lines) == 1 and f"stopped by {signal.Signals(signum).name}" in lines[0], err
    return err


def _running(p) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _temps(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp" in p.name)


def _jets(cache: Path) -> dict[str, dict]:
    """Every branch of every generated file, by file name."""
    import uproot

    return {f.name: uproot.open(f)["tree"].arrays(library="ak")
            for f in sorted(cache.glob("*/*.root"))}


def _same_jets(got: dict, want: dict) -> None:
    import awkward as ak

    assert sorted(got) == sorted(want)
    for name, arrays in want.items():
        assert got[name].fields == arrays.fields, name
        for field in arrays.fields:
            assert ak.array_equal(got[name][field], arrays[field]), f"{name}: {field}"


def _weights(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def _same_weights(got: Path, want: Path) -> None:
    import torch

    a, b = _weights(got), _weights(want)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs of the same commands: generate (2 workers), then train."""
    root = tmp_path_factory.mktemp("uninterrupted")
    params = _params_file(root)
    _run("generate", params)
    _run("train", params)
    assert len(list((root / "cache").glob("*/*.root"))) == N_FILES
    return root


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_generate_with_workers_stopped_then_rerun(tmp_path, reference, signum):
    params = _params_file(tmp_path)
    cache = tmp_path / "cache"

    def files_done():
        return list(cache.glob("*/*.root"))

    proc, children = _start(_command("generate", params), lambda _: bool(files_done()))
    workers = [p for p in children if "resource_tracker" not in " ".join(p.cmdline())]
    assert len(workers) == 2, [p.cmdline() for p in children]
    _stop(proc, signum, children)
    assert 0 < len(files_done()) < N_FILES, "the signal landed too late to test a resume"
    if signum != signal.SIGKILL:  # kill -9 leaves the temp files of its workers to the rerun
        assert _temps(tmp_path) == []

    _run("generate", params)
    assert _temps(tmp_path) == []
    _same_jets(_jets(cache), _jets(reference / "cache"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_train_stopped_then_rerun(tmp_path, reference, signum):
    """(kill -9 of ``train`` and its resume: tests/test_train.py and tests/test_bad_inputs.py)"""
    params = _params_file(tmp_path)
    shutil.copytree(reference / "cache", tmp_path / "cache")
    models = tmp_path / "models"

    proc, children = _start(_command("train", params), lambda _: (models / "epoch_001.pt").exists())
    _stop(proc, signum, children)
    assert not (models / f"epoch_{EPOCHS:03d}.pt").exists(), "the signal landed too late"
    assert _temps(tmp_path) == []

    res = _run("train", params)
    assert f"trained tiny: {EPOCHS} epochs" in res.stdout
    assert _temps(tmp_path) == []
    for name in ("random_init.pt", f"epoch_{EPOCHS:03d}.pt"):
        _same_weights(models / name, reference / "models" / name)



def test_generate_stops_without_finishing_the_running_chunks(tmp_path):
    """SIGINT to the parent alone (``kill -INT PID``) while both workers are inside a chunk
    of 200 jets (15 s and more each here): the command kills them at once rather than waiting for
    their chunks, and the chunks queued behind them, to finish (18 s here before)."""
    params = _params_file(tmp_path)
    p = yaml.safe_load(params.read_text())
    p["dataset"].update(jets_per_class=400, jets_per_file=200)
    params.write_text(yaml.safe_dump(p))

    def both_workers_in_pythia(proc):
        try:
            workers = [k for k in psutil.Process(proc.pid).children()
                       if "resource_tracker" not in " ".join(k.cmdline())]
            return len(workers) == 2 and all(k.cpu_times().user > 3.0 for k in workers)
        except psutil.Error:  # exited: _start reports it
            return False

    proc, children = _start(_command("generate", params), both_workers_in_pythia)
    # a fast core may finish a first chunk before both workers are seen busy: what must not
    # happen is a chunk finished after the signal
    before = set((tmp_path / "cache").glob("*/*.root"))
    _stop(proc, signal.SIGINT, children, group=False, prompt_s=10.0)
    assert set((tmp_path / "cache").glob("*/*.root")) == before  # no running chunk was finished
    assert len(before) < 4  # and the command did not get to the end
    assert _temps(tmp_path) == []


def test_run_stopped_inside_a_notebook(tmp_path, reference):
    """Ctrl-C while papermill runs a notebook: one line, status 130, no kernel left running
    and no ipykernel traceback (a graceful kernel shutdown in mid-cell printed one)."""
    params = _params_file(tmp_path)
    shutil.copytree(reference / "cache", tmp_path / "cache")
    cmd = [sys.executable, "-m", "partnb.cli", "run", str(params), "--only", "01"]

    def kernel_busy(proc):
        try:
            kernels = [k for k in psutil.Process(proc.pid).children(recursive=True)
                       if "ipykernel" in " ".join(k.cmdline())]
            return bool(kernels) and all(k.cpu_times().user > 4.0 for k in kernels)
        except psutil.Error:
            return False

    proc, children = _start(cmd, kernel_busy)
    assert any("ipykernel" in " ".join(k.cmdline()) for k in children)
    err = _stop(proc, signal.SIGINT, children, allow=("Kernel is running over TCP",))
    assert "Traceback" not in err

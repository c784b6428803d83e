"""Bad inputs and untrusted files: one clear line, exit status 2, before any long work.

Every case runs the real ``partnb`` command (in process, through :func:`partnb.cli.main`) on
files written here in the real formats (JetClass ROOT, Top Landscape pandas HDF5,
Quark-Gluon NPZ, torch state dicts) and checks three things: exit status 2, one line on
stderr naming the key, file or branch, and nothing left behind (no output directory, no
``random_init.pt``). Files whose pickles carry a payload prove that nothing partnb loads can
run code: the payload would create a marker file.
"""

from __future__ import annotations

import ast
import contextlib
import os
import pathlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_io import jetclass_branches, make_jets, write_root_directly, write_tl_h5

from partnb.cli import main

from conftest import REPO

N_JETS = 60
SMALL_MODEL = {"embed_dims": [16, 32, 16], "pair_embed_dims": [8, 8], "num_heads": 2,
               "num_layers": 1, "num_cls_layers": 1, "dropout": 0.0}


class Payload:
    """Unpickling this runs ``Path(marker).touch()``: a stand-in for any code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


# --------------------------------------------------------------------------------------
# files in the real formats
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad_inputs")
    out = {}
    j = make_jets(11, n_jets=N_JETS)
    branches = jetclass_branches(j)
    write_root_directly(d / "jetclass.root", branches)
    out["jetclass"] = d / "jetclass.root"
    write_tl_h5(d / "top.h5", make_jets(12, n_jets=N_JETS), "fixed")
    out["top"] = d / "top.h5"
    raw = out["jetclass"].read_bytes()
    (d / "cut.root").write_bytes(raw[: int(len(raw) * 0.9)])
    out["cut_root"] = d / "cut.root"
    raw = out["top"].read_bytes()
    (d / "cut.h5").write_bytes(raw[: len(raw) // 2])
    out["cut_h5"] = d / "cut.h5"
    scalar = dict(branches)
    scalar["part_px"] = np.ones(N_JETS, np.float32)
    write_root_directly(d / "scalar_px.root", scalar)
    out["scalar_px"] = d / "scalar_px.root"
    import awkward as ak

    energy = ak.to_numpy(ak.flatten(branches["part_energy"])).copy()
    energy[3] = np.nan
    nan = dict(branches)
    nan["part_energy"] = ak.unflatten(energy, j["counts"])
    write_root_directly(d / "nan_energy.root", nan)
    out["nan_energy"] = d / "nan_energy.root"
    return out


def _params(tmp_path: Path, files, *, name="jetclass", **sections) -> Path:
    """A params file reading ``files`` with a tiny model, every output under ``tmp_path/out``."""
    p = {"name": "bad", "seed": 1,
         "dataset": {"name": name, "source": "files", "files": [str(f) for f in files],
                     "split": [0.6, 0.2, 0.2]},
         "features": {"set": "kin", "max_particles": 32},
         "model": dict(SMALL_MODEL),
         "train": {"epochs": 1, "batch_size": 8, "threads": 1},
         "analysis": {"progress": False},
         "output": {"figures": str(tmp_path / "out" / "figures"),
                    "runs": str(tmp_path / "out" / "runs"),
                    "models": str(tmp_path / "out" / "models")}}
    for section, values in sections.items():
        if isinstance(values, dict):
            p.setdefault(section, {}).update(values)
        else:
            p[section] = values
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def _checkpoint(tmp_path: Path, params: Path, *, nan: bool = False) -> Path:
    """A real (untrained) checkpoint of the params' model, optionally with a NaN weight."""
    from partnb.model.checkpoint import save_checkpoint
    from partnb.model.factory import model_from_params
    from partnb.params import load_params

    model = model_from_params(load_params(params, check_files=False))
    if nan:
        with torch.no_grad():
            model.fc[0].weight[0, 0] = float("nan")
    return save_checkpoint(model, tmp_path / "model.pt")


def refused(capsys, argv, *expected: str) -> str:
    """Run ``partnb argv``: exit 2, one stderr line naming every ``expected`` text."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, f"exit {rc}, stderr: {err}"
    assert len(lines) == 1, err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def left_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert not out.exists(), f"a refused run left {sorted(map(str, out.rglob('*')))}"


# --------------------------------------------------------------------------------------
# params values: refused by the schema, before any data is read
# --------------------------------------------------------------------------------------

BAD_PARAMS = {
    "lr_infinite": ({"train": {"lr": float("inf")}}, "train.lr"),
    "lr_nan": ({"train": {"lr": float("nan")}}, "train.lr"),
    "weight_decay_infinite": ({"train": {"weight_decay": float("inf")}}, "train.weight_decay"),
    "dropout_above_one": ({"model": {"dropout": 5.0}}, "model.dropout"),
    "dropout_one": ({"model": {"dropout": 1.0}}, "model.dropout"),
    "embed_dims_empty": ({"model": {"embed_dims": []}}, "model.embed_dims"),
    "max_particles_huge": ({"features": {"max_particles": 10**9}}, "features.max_particles"),
    "max_particles_one": ({"features": {"max_particles": 1}}, "features.max_particles"),
    "seed_huge": ({"seed": 2**70}, "seed"),
    "seed_negative": ({"seed": -1}, "seed"),
    "split_booleans": ({"dataset": {"split": [True, False, False]}}, "dataset.split"),
    "split_not_summing_to_one": ({"dataset": {"split": [0.5, 0.2, 0.1]}}, "dataset.split"),
    "split_fraction_above_one": ({"dataset": {"split": [1.5, -0.25, -0.25]}}, "dataset.split"),
    "split_strings": ({"dataset": {"split": ["0.8", "0.1", "0.1"]}}, "dataset.split"),
    "epochs_zero_in_params": ({"train": {"epochs": 0}}, "train.epochs"),
    "batch_size_zero": ({"train": {"batch_size": 0}}, "train.batch_size"),
    "format_unknown": ({"dataset": {"format": "csv"}}, "dataset.format"),
}


@pytest.mark.parametrize("case", list(BAD_PARAMS), ids=list(BAD_PARAMS))
def test_bad_params_value_refused_before_work(case, data, tmp_path, capsys):
    sections, key = BAD_PARAMS[case]
    path = _params(tmp_path, [data["jetclass"]], **sections)
    refused(capsys, ["train", path], key)
    left_nothing(tmp_path)


BAD_PARAMS_FILES = {
    "yaml_unclosed_list": (b"dataset: {name: jetclass}\na: [\n", "not valid YAML (line 3"),
    "yaml_tab_indent": (b"seed: 1\n\tname: x\n", "not valid YAML (line 2"),
    "binary_file": (bytes(range(256)) * 4, "not a text file"),
    "a_list_not_a_mapping": (b"[1, 2]\n", "must hold a mapping"),
}


@pytest.mark.parametrize("case", list(BAD_PARAMS_FILES), ids=list(BAD_PARAMS_FILES))
def test_bad_params_file_refused(case, tmp_path, capsys):
    content, expected = BAD_PARAMS_FILES[case]
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    refused(capsys, ["train", path], "p.yaml", expected)


def test_params_file_that_is_a_directory_refused(tmp_path, capsys):
    (tmp_path / "p.yaml").mkdir()
    refused(capsys, ["train", tmp_path / "p.yaml"], "p.yaml", "not found")


@pytest.mark.parametrize("epochs", ["0", "-1"], ids=["epochs_zero", "epochs_negative"])
def test_epochs_below_one_refused(epochs, data, tmp_path, capsys):
    path = _params(tmp_path, [data["jetclass"]])
    refused(capsys, ["train", path, "--epochs", epochs], f"epochs = {epochs}")
    left_nothing(tmp_path)


def test_batch_larger_than_training_split_refused(data, tmp_path, capsys):
    path = _params(tmp_path, [data["jetclass"]], train={"batch_size": 1000})
    line = refused(capsys, ["train", path], "train.batch_size = 1000", "larger than the training split")
    n_train = int(line.split("training split (")[1].split(" jets")[0])
    assert 0.5 * N_JETS < n_train < 0.7 * N_JETS  # 60 % of the file, class by class
    left_nothing(tmp_path)  # no models directory, no random_init.pt


# --------------------------------------------------------------------------------------
# dataset family and format: checked against dataset.name and across files
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "files", "expected"), [
    ("jetclass", ["top"], "holds toplandscape jets"),
    ("toplandscape", ["jetclass"], "holds jetclass jets"),
    ("jetclass", ["jetclass", "top"], "top.h5"),
    ("quarkgluon", ["top"], "dataset.name = 'quarkgluon'"),
], ids=["train_jetclass_on_top_landscape", "train_top_landscape_on_jetclass",
        "train_mixed_families", "train_quarkgluon_on_top_landscape"])
def test_train_on_another_family_refused(name, files, expected, data, tmp_path, capsys):
    path = _params(tmp_path, [data[f] for f in files], name=name)
    refused(capsys, ["train", path], expected)
    left_nothing(tmp_path)


def test_run_on_another_family_refused_before_any_notebook(data, tmp_path, capsys):
    path = _params(tmp_path, [data["top"]], name="jetclass")
    refused(capsys, ["run", path, "--only", "03"], "top.h5", "holds toplandscape jets")
    left_nothing(tmp_path)


@pytest.mark.parametrize(("files", "expected"), [
    (["top"], "holds toplandscape jets"),
    (["jetclass", "top"], "top.h5"),
], ids=["evaluate_jetclass_model_on_top_landscape", "evaluate_on_mixed_families"])
def test_evaluate_on_another_family_refused(files, expected, data, tmp_path, capsys):
    path = _params(tmp_path, [data["jetclass"]])
    ckpt = _checkpoint(tmp_path, path)
    refused(capsys, ["evaluate", path, "--checkpoint", ckpt, "--data",
                     *[data[f] for f in files]], expected)


def test_dataset_format_is_enforced(data, tmp_path, capsys):
    path = _params(tmp_path, [data["top"]], name="toplandscape",
                   dataset={"format": "toplandscape-root"})
    refused(capsys, ["train", path], "top.h5", "dataset.format = 'toplandscape-root'")
    left_nothing(tmp_path)


# --------------------------------------------------------------------------------------
# broken files
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "expected"), [
    ("cut_root", "corrupt or truncated"),
    ("cut_h5", "corrupt or truncated"),
    ("scalar_px", "'part_px'"),
], ids=["info_root_cut_short", "info_hdf5_cut_short", "info_scalar_particle_branch"])
def test_broken_file_refused_by_info(key, expected, data, capsys):
    line = refused(capsys, ["info", data[key]], expected, data[key].name)
    assert len(line) < 400, line


def test_nan_energy_becomes_zero_with_a_warning(data, tmp_path, capsys):
    """README: NaN inputs become 0 with a warning, as in weaver — and the metrics are finite."""
    path = _params(tmp_path, [data["jetclass"]])
    ckpt = _checkpoint(tmp_path, path)
    with pytest.warns(RuntimeWarning, match="part_energy"):
        rc = main(["evaluate", str(path), "--checkpoint", str(ckpt), "--json",
                   "--data", str(data["nan_energy"])])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert '"n_jets": 60' in out.out


def test_nan_checkpoint_refused(data, tmp_path, capsys):
    path = _params(tmp_path, [data["jetclass"]])
    ckpt = _checkpoint(tmp_path, path, nan=True)
    refused(capsys, ["evaluate", path, "--checkpoint", ckpt], "NaN/inf weights", "fc.0.weight")


# --------------------------------------------------------------------------------------
# output paths
# --------------------------------------------------------------------------------------


def test_models_directory_through_a_file_refused(data, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file")
    path = _params(tmp_path, [data["jetclass"]], output={"models": str(blocker / "models")})
    refused(capsys, ["train", path], "output.models", "not a directory")


def test_generate_out_is_a_file_refused(tmp_path, capsys):
    from conftest import PARAMS

    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file")
    refused(capsys, ["generate", PARAMS / "tiny.yaml", "--out", blocker, "--no-progress"],
            "--out", "not a directory")


def test_run_figures_output_is_a_file_refused(data, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file")
    path = _params(tmp_path, [data["jetclass"]], output={"figures": str(blocker / "figs")})
    refused(capsys, ["run", path, "--only", "03"], "output.figures", "not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_models_directory_refused(data, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    path = _params(tmp_path, [data["jetclass"]], output={"models": str(ro / "models")})
    refused(capsys, ["train", path], "output.models", "not writable")


@pytest.mark.parametrize("only", [",", " , ,"], ids=["only_a_comma", "only_commas_and_spaces"])
def test_run_only_naming_nothing_refused(only, data, tmp_path, capsys):
    path = _params(tmp_path, [data["jetclass"]])
    refused(capsys, ["run", path, "--only", only], "--only", "names no notebook")
    left_nothing(tmp_path)


def test_run_only_unknown_notebook_refused(data, tmp_path, capsys):
    path = _params(tmp_path, [data["jetclass"]])
    refused(capsys, ["run", path, "--only", "42"], "42")
    left_nothing(tmp_path)


# --------------------------------------------------------------------------------------
# resume state
# --------------------------------------------------------------------------------------


def _trained(tmp_path: Path, data) -> tuple[Path, Path]:
    """One real epoch of the tiny model; returns (params file, models directory)."""
    path = _params(tmp_path, [data["jetclass"]], train={"epochs": 1, "batch_size": 8})
    assert main(["train", str(path), "--no-progress"]) == 0
    return path, tmp_path / "out" / "models"


def test_truncated_train_state_refused(data, tmp_path, capsys):
    path, models = _trained(tmp_path, data)
    state = models / "train_state.pt"
    state.write_bytes(state.read_bytes()[:200])
    capsys.readouterr()
    refused(capsys, ["train", path, "--epochs", "2"], "train_state.pt", "cannot read the resume state")


@pytest.mark.parametrize("cuda_rng", [torch.zeros(16, dtype=torch.float32), "state",
                                      torch.zeros((2, 8), dtype=torch.uint8)])
def test_train_state_with_an_invalid_gpu_rng_refused(data, tmp_path, capsys, cuda_rng):
    """A GPU run's resume state carries the GPU's RNG; a damaged one is named, not skipped
    (skipping it would resume with different dropout masks on a GPU)."""
    path, models = _trained(tmp_path, data)
    state = torch.load(models / "train_state.pt", weights_only=True)
    state["cuda_rng"] = cuda_rng
    torch.save(state, models / "train_state.pt")
    capsys.readouterr()
    refused(capsys, ["train", path, "--epochs", "2"], "train_state.pt", "'cuda_rng'")
    assert not (models / "epoch_002.pt").exists()


def test_missing_epoch_checkpoint_on_resume_refused(data, tmp_path, capsys):
    path, models = _trained(tmp_path, data)
    (models / "epoch_001.pt").unlink()
    capsys.readouterr()
    refused(capsys, ["train", path, "--epochs", "2"], "epoch_001.pt", "missing")


def test_stale_temp_file_of_a_killed_run_removed_on_resume(data, tmp_path, capsys):
    path, models = _trained(tmp_path, data)
    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale = models / f".train_state.pt.tmp-{dead}"
    stale.write_bytes(b"half a state")
    assert main(["train", str(path), "--epochs", "2", "--no-progress"]) == 0
    assert not stale.exists()
    assert (models / "epoch_002.pt").is_file()


# --------------------------------------------------------------------------------------
# untrusted pickles: nothing partnb loads can run code
# --------------------------------------------------------------------------------------


def test_train_state_with_a_payload_runs_nothing(data, tmp_path, capsys):
    path, models = _trained(tmp_path, data)
    marker = tmp_path / "PAYLOAD_RAN"
    state = torch.load(models / "train_state.pt", weights_only=True)
    state["history_json"] = Payload(marker)
    torch.save(state, models / "train_state.pt")
    capsys.readouterr()
    refused(capsys, ["train", path, "--epochs", "2"], "train_state.pt")
    assert not marker.exists()


def test_checkpoint_with_a_payload_runs_nothing(data, tmp_path, capsys):
    path = _params(tmp_path, [data["jetclass"]])
    ckpt = _checkpoint(tmp_path, path)
    marker = tmp_path / "PAYLOAD_RAN"
    state = torch.load(ckpt, weights_only=True)
    state["extra"] = Payload(marker)
    torch.save(state, ckpt)
    refused(capsys, ["evaluate", path, "--checkpoint", ckpt, "--data", data["jetclass"]],
            "model.pt")
    assert not marker.exists()


def test_resumed_epoch_checkpoint_with_a_payload_runs_nothing(data, tmp_path, capsys):
    path, models = _trained(tmp_path, data)
    marker = tmp_path / "PAYLOAD_RAN"
    state = torch.load(models / "epoch_001.pt", weights_only=True)
    state["extra"] = Payload(marker)
    torch.save(state, models / "epoch_001.pt")
    capsys.readouterr()
    refused(capsys, ["train", path, "--epochs", "2"], "epoch_001.pt")
    assert not marker.exists()


def test_hdf5_object_column_with_a_payload_runs_nothing(tmp_path, capsys):
    """PyTables unpickles pandas' object columns and attributes: partnb lets only plain data
    through."""
    import pandas as pd

    marker = tmp_path / "PAYLOAD_RAN"
    cols = {f"{p}_{i}": np.ones(4) for i in range(3) for p in ("E", "PX", "PY", "PZ")}
    cols["is_signal_new"] = np.array([Payload(marker), 0, 1, 0], dtype=object)
    with pytest.warns(pd.errors.PerformanceWarning):
        pd.DataFrame(cols).to_hdf(tmp_path / "payload.h5", key="table", format="fixed")
    assert not marker.exists()
    refused(capsys, ["info", tmp_path / "payload.h5"], "payload.h5", "refused")
    assert not marker.exists()


def test_npz_object_array_with_a_payload_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "PAYLOAD_RAN"
    X = np.empty((2, 3, 4), dtype=object)
    X[...] = 0.0
    X[0, 0, 0] = Payload(marker)
    np.savez(tmp_path / "QG_payload.npz", X=X, y=np.zeros(2))
    refused(capsys, ["info", tmp_path / "QG_payload.npz"], "QG_payload.npz")
    assert not marker.exists()


def _unsafe_loads(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls of ``torch.load`` without ``weights_only=True``, and of pickle / numpy loaders
    that unpickle (``pickle.load(s)``, ``np.load(..., allow_pickle=True)``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = ast.unparse(node.func)
        kw = {k.arg: k.value for k in node.keywords}
        if name.endswith("torch.load"):
            value = kw.get("weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                found.append((node.lineno, ast.unparse(node)))
        elif name in ("pickle.load", "pickle.loads", "cPickle.load", "dill.load", "joblib.load",
                      "pd.read_pickle", "pandas.read_pickle"):
            found.append((node.lineno, ast.unparse(node)))
        elif name.endswith(("np.load", "numpy.load", "read_array")):
            value = kw.get("allow_pickle")
            if isinstance(value, ast.Constant) and value.value is True:
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_package_loads_nothing_unsafely():
    bad = {}
    for path in sorted((REPO / "partnb").rglob("*.py")):
        hits = _unsafe_loads(ast.parse(path.read_text(), filename=str(path)))
        if hits:
            bad[str(path.relative_to(REPO))] = hits
    assert bad == {}, f"loads that can unpickle code: {bad}"


def test_unsafe_load_finder_finds_unsafe_loads():
    """The walker above can fail: it flags each unsafe form and passes the safe one."""
    code = ("import torch, pickle, numpy as np\n"
            "torch.load(p)\ntorch.load(p, weights_only=False)\npickle.load(f)\n"
            "np.load(p, allow_pickle=True)\ntorch.load(p, map_location='cpu', weights_only=True)\n")
    assert [line for line, _ in _unsafe_loads(ast.parse(code))] == [2, 3, 4, 5]


def test_payload_pickle_really_runs_when_unpickled(tmp_path):
    """The payload is real: plain pickle runs it (so the tests above can fail)."""
    marker = tmp_path / "PAYLOAD_RAN"
    pickle.loads(pickle.dumps(Payload(marker)))  # noqa: S301 - the point of the test
    assert marker.exists()


# --------------------------------------------------------------------------------------
# faults: kill -9 of the parent leaves no worker running
# --------------------------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_kill_9_of_generate_leaves_no_worker_running(tmp_path):
    """``partnb generate --workers 2`` killed with SIGKILL: its workers die with it instead of
    generating on as orphans."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import PARAMS

    p = yaml.safe_load((PARAMS / "tiny.yaml").read_text())
    p["dataset"].update(jets_per_class=400, jets_per_file=100)  # minutes of work: killed long before
    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump(p))
    proc = subprocess.Popen([sys.executable, "-m", "partnb.cli", "generate", str(path), "--out",
                             str(tmp_path / "cache"), "--workers", "2", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        workers: set[int] = set()
        while time.time() < deadline and len(workers) < 2:
            # the pool's workers (the spawn machinery adds a resource tracker: not a worker)
            workers = {c for c in _children(proc.pid)
                       if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()}
            time.sleep(0.2)
        assert len(workers) >= 2, "the workers did not start"
        time.sleep(2.0)  # inside Pythia
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 15
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not [w for w in workers if _alive(w)], "orphaned workers still running"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_generation_reports_progress_lines_for_batch_logs(tmp_path):
    """With the progress bar off (batch, papermill), generation says what it does in lines:
    files to make, then files done / total with jets/s (here after every file: log_every=0)."""
    from partnb.data.generate import GenerationConfig, generate

    config = GenerationConfig("quarkgluon", jets_per_class=20, jets_per_file=10, seed=5)
    lines: list[str] = []
    generate(config, tmp_path, workers=1, progress=False, log=lines.append, log_every=0.0)
    assert lines[0] == "generate quarkgluon: 4 of 4 files to make (40 jets)"
    assert [line.split(": ")[1].split(" files")[0] for line in lines[1:]] == [
        "1/4", "2/4", "3/4", "4/4"]
    assert all("jets/s" in line for line in lines[1:])
    lines.clear()
    generate(config, tmp_path, workers=1, progress=False, log=lines.append)  # all cached
    assert lines == []

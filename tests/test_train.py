"""Training: schedule, optimizer pieces, resume after kill -9, NaN stop, torchrun DDP.

Real torch training of a small ParT on generated Top-Landscape-like jets.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from partnb.data.sample import load_split, split_indices, split_slice
from partnb.model.factory import model_from_params
from partnb.params import load_params
from partnb.train import Lookahead, TrainingError, _decay_groups, learning_rate, train

from conftest import REPO, kill_after_first_epoch, small_train_params_file

_params_file = small_train_params_file


def test_flat_then_decay_schedule():
    lrs = [learning_rate(e, 10, 1.0, "flat+decay") for e in range(10)]
    assert lrs[:7] == [1.0] * 7
    np.testing.assert_allclose(lrs[7:], [0.01 ** (1 / 3), 0.01 ** (2 / 3), 0.01])
    assert learning_rate(0, 1, 2.0, "flat+decay") == pytest.approx(0.02)
    assert learning_rate(5, 10, 1.0, "none") == 1.0


def test_split_slices_cover_the_file():
    parts = [split_slice(101, [0.8, 0.1, 0.1], s) for s in ("train", "val", "test")]
    assert [(p.start, p.stop) for p in parts] == [(0, 81), (81, 91), (91, 101)]


def test_weight_decay_excludes_biases_norms_cls_token(tmp_path):
    params = load_params(_params_file(tmp_path, [__file__]), check_files=False)
    model = model_from_params(params)
    decay, no_decay = _decay_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"])
    nd = {names[id(p)] for p in no_decay["params"]}
    assert "cls_token" in nd and "norm.weight" in nd and "fc.0.bias" in nd
    assert "blocks.0.attn.in_proj_weight" not in nd


def test_lookahead_moves_slow_weights_every_k_steps():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = Lookahead(torch.optim.SGD([p], lr=1.0), k=2, alpha=0.5)
    for _ in range(2):
        p.grad = torch.tensor([-1.0])
        opt.step()
    # fast weights went 0 -> 1 -> 2; slow = 0 + 0.5 * (2 - 0) = 1, and fast restarts there
    assert p.item() == pytest.approx(1.0)


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_resume_after_kill_gives_the_same_weights(tmp_path, toplandscape_sample):
    _, files = toplandscape_sample
    killed = tmp_path / "killed"
    killed.mkdir()
    pfile = _params_file(killed, files)
    kill_after_first_epoch(pfile)
    models = killed / "models"
    assert (models / "epoch_001.pt").exists() and not (models / "epoch_003.pt").exists()
    resumed = train(load_params(pfile), log=lambda *a: None)
    assert resumed.resumed_from in (1, 2)

    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh = train(load_params(_params_file(fresh_dir, files)), log=lambda *a: None)
    a, b = _state(models / "epoch_003.pt"), _state(fresh_dir / "models" / "epoch_003.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert [r["epoch"] for r in resumed.log] == [1, 2, 3]
    assert resumed.log[-1]["val_accuracy"] == fresh.log[-1]["val_accuracy"]
    assert (models / "train_log.csv").read_text().count("\n") == 4


def test_nan_loss_stops_naming_epoch_and_batch(tmp_path, toplandscape_sample):
    _, files = toplandscape_sample
    params = load_params(_params_file(tmp_path, files, epochs=2))
    tr, va = load_split(params, "train"), load_split(params, "val")
    tr.features[:] = np.nan
    with pytest.raises(TrainingError, match=r"epoch 1, batch 1: the loss is nan"):
        train(params, data=(tr, va), log=lambda *a: None)
    assert not list((tmp_path / "models").glob("epoch_*.pt"))


def test_torchrun_two_processes_match_one(tmp_path, toplandscape_sample):
    """2 CPU processes (gloo) with the same global batch end close to 1 process: the batches
    are the same, only BatchNorm statistics are per process."""
    _, files = toplandscape_sample
    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    one_dir.mkdir(), two_dir.mkdir()
    extra = {"epochs": 2, "optimizer": "adamw", "lr": 1e-3}
    p1 = _params_file(one_dir, files, **extra)
    p2 = _params_file(two_dir, files, **extra)
    for p in (p1, p2):
        data = yaml.safe_load(p.read_text())
        data["model"]["trim"] = False
        p.write_text(yaml.safe_dump(data))
    train(load_params(p1), log=lambda *a: None)
    script = tmp_path / "run.py"
    script.write_text("import sys\nfrom partnb.params import load_params\n"
                      "from partnb.train import train\n"
                      "train(load_params(sys.argv[1]), log=lambda *a: None)\n")
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", str(script), str(p2)],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    a = _state(one_dir / "models" / "epoch_002.pt")
    b = _state(two_dir / "models" / "epoch_002.pt")
    num = sum(float((a[k].float() - b[k].float()).norm() ** 2) for k in a if a[k].is_floating_point())
    den = sum(float(a[k].float().norm() ** 2) for k in a if a[k].is_floating_point())
    assert np.sqrt(num / den) < 0.05
    # and not trivially: training moved the weights by much more than that
    init = {f"mod.{k}": v for k, v in model_from_params(load_params(p1)).state_dict().items()}
    moved = sum(float((a[k].float() - init[k].float()).norm() ** 2) for k in a if a[k].is_floating_point())
    assert np.sqrt(moved / den) > 3 * np.sqrt(num / den)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "partnb.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def test_cli_train_then_evaluate_json(tmp_path, toplandscape_sample):
    import json

    _, files = toplandscape_sample
    pfile = _params_file(tmp_path, files, epochs=1)
    res = _cli("train", pfile, "--no-progress")
    assert res.returncode == 0, res.stderr
    res = _cli("evaluate", pfile, "--data", files[0], files[1], "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["n_jets"] == 300
    assert 0 <= out["accuracy"] <= 1 and 0 <= out["auc"] <= 1
    assert set(out["rejection"]) == {"50%", "30%"}

    bad = tmp_path / "garbage.root"
    bad.write_bytes(b"not a root file at all" * 10)
    res = _cli("evaluate", pfile, "--data", bad)
    assert res.returncode == 2 and "garbage.root" in res.stderr and "Traceback" not in res.stderr

    data = yaml.safe_load(pfile.read_text())
    data["features"]["set"] = "full"  # a checkpoint for 7 features, a model for 17
    data["dataset"]["name"] = "jetclass"
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(data))
    res = _cli("evaluate", other, "--checkpoint", tmp_path / "models" / "epoch_001.pt")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "17" in res.stderr and "7" in res.stderr


COMMITTED_STATES = [REPO / "models" / dataset / sub / "train_state.pt"
                    for dataset in ("jetclass", "toplandscape", "quarkgluon") for sub in ("", "plain")]


@pytest.mark.parametrize("path", COMMITTED_STATES,
                         ids=[str(p.parent.relative_to(REPO / "models")) for p in COMMITTED_STATES])
def test_committed_resume_states_are_plain_data(path):
    """The committed resume states load with weights_only=True in the current format, and
    their history is the run's train_log.json."""
    import json

    from partnb.train import TRAIN_STATE_FORMAT, load_train_state

    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == TRAIN_STATE_FORMAT and isinstance(raw["history_json"], str)
    state = load_train_state(path)
    assert state["epoch"] == len(state["history"]) >= 1
    assert state["history"] == json.loads((path.parent / "train_log.json").read_text())
    assert (path.parent / f"epoch_{state['epoch']:03d}.pt").is_file()


def test_split_of_a_file_sorted_by_class_holds_every_class_in_proportion():
    labels = np.array([0] * 60 + [1] * 40)  # one file, sorted by class
    parts = {s: split_indices(labels, [0.8, 0.1, 0.1], s) for s in ("train", "val", "test")}
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(100))
    counts = {s: np.bincount(labels[idx], minlength=2).tolist() for s, idx in parts.items()}
    assert counts == {"train": [48, 32], "val": [6, 4], "test": [6, 4]}
    # the old contiguous slices gave val and test no jet of class 0 at all
    assert set(labels[split_slice(100, [0.8, 0.1, 0.1], "val")].tolist()) == {1}


@pytest.mark.parametrize("n", [1, 7, 101, 1000])
def test_split_of_a_one_class_file_is_the_contiguous_slice(n):
    """Generated and JetClass files hold one class each: their splits (and so the committed
    models' training data and reference tables) are the contiguous slices as before."""
    for split in ("train", "val", "test"):
        s = split_slice(n, [0.8, 0.1, 0.1], split)
        np.testing.assert_array_equal(split_indices(np.full(n, 3), [0.8, 0.1, 0.1], split),
                                      np.arange(s.start, s.stop))


def test_load_split_of_a_sorted_top_landscape_file(tmp_path):
    from test_io import make_jets, write_tl_h5

    j = make_jets(5, n_jets=50)
    j["binary"] = np.array([1] * 25 + [0] * 25)  # 25 top, then 25 QCD
    write_tl_h5(tmp_path / "sorted.h5", j, "fixed")
    params = load_params(_params_file(tmp_path, [tmp_path / "sorted.h5"]))  # split 0.7/0.3/0
    val = load_split(params, "val")
    assert np.bincount(val.label, minlength=2).tolist() == [7, 7]  # 25 - round(0.7 * 25) each


def test_resume_removes_the_temp_files_of_a_killed_writer(tmp_path):
    """``kill -9`` between writing and renaming leaves temp files: the checkpoints'
    (``.epoch_NNN.pt.<random>.tmp``, no process named) and the resume state's
    (``.train_state.pt.tmp-<pid>``). A run removes them all, except a temp file of a process
    that still runs."""
    from partnb.train import _remove_stale_temps

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = os.getppid()
    stale = [".epoch_003.pt.k2j4h1.tmp", ".epoch_003.pt.json.a8b9c0.tmp",
             ".random_init.pt.x1y2z3.tmp", f".train_state.pt.tmp-{dead.pid}",
             f".train_log.csv.tmp-{dead.pid}"]
    kept = [f".train_state.pt.tmp-{live}", "epoch_002.pt", "train_log.csv"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    _remove_stale_temps(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)

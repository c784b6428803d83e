"""train.device: names checked up front, the device outside the run key, and (where torch
sees a GPU) GPU training that starts from the CPU's weights, records its device and resumes
as an uninterrupted run (docs/training.md#training-on-a-gpu)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from partnb.analysis.emergence import BINARY_COLUMN
from partnb.params import ParamsError, load_params
from partnb.train import TrainingError, _run_key, train, training_device

from conftest import SMALL_TRAIN_MODEL, kill_after_first_epoch, small_train_params_file

HAS_CUDA = torch.cuda.is_available()


def _params_file(tmp_path, files, **train_keys):
    return small_train_params_file(tmp_path, files, monitor_jets=50, **train_keys)


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("name", ["gpu", "cuda:", "CUDA", "cuda:-1", "mps"])
def test_a_device_name_that_is_none_is_refused_naming_the_key(tmp_path, name):
    path = _params_file(tmp_path, [tmp_path / "x.root"], device=name)
    with pytest.raises(ParamsError, match=r"train\.device"):
        load_params(path)
    with pytest.raises(TrainingError, match=rf"train\.device = '{name}'"):
        training_device(name)


def test_auto_and_cpu_name_the_cpu_here():
    assert training_device("cpu") == torch.device("cpu")
    assert training_device("auto").type == ("cuda" if HAS_CUDA else "cpu")


def test_the_device_is_not_part_of_the_run_key(tmp_path):
    files = [tmp_path / "x.root"]
    files[0].write_bytes(b"never read")
    keys = set()
    for name in ("cpu", "cuda", "cuda:1", "auto"):
        sub = tmp_path / name.replace(":", "_")
        sub.mkdir()
        keys.add(_run_key(load_params(_params_file(sub, files, device=name))))
    assert len(keys) == 1


@pytest.mark.skipif(HAS_CUDA, reason="a GPU is visible: the refusal is of CPU-only torch")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_refused_before_any_data_is_read(tmp_path, name):
    # the data file is no ROOT file: reading it would fail, so the device error must come first
    data = tmp_path / "not-root.root"
    data.write_bytes(b"not a ROOT file")
    params = load_params(_params_file(tmp_path, [data], device=name))
    with pytest.raises(TrainingError, match=rf"train\.device = '{name}': torch .* sees no CUDA"):
        train(params, log=lambda *a: None)
    assert not (tmp_path / "models").exists()


def test_a_cuda_index_beyond_the_gpus_is_refused(monkeypatch):
    # fakes a machine with one GPU (the refusal itself needs none)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(TrainingError, match=r"'cuda:3': torch sees 1 CUDA device\(s\), numbered 0 to 0"):
        training_device("cuda:3")


@pytest.mark.skipif(not HAS_CUDA, reason="needs a GPU that torch sees")
def test_gpu_training_starts_from_the_cpu_weights_and_ends_close(tmp_path, toplandscape_sample):
    _, files = toplandscape_sample
    runs = {}
    for name in ("cpu", "cuda"):
        sub = tmp_path / name
        sub.mkdir()
        runs[name] = train(load_params(_params_file(sub, files, device=name)), log=lambda *a: None)
    cpu, gpu = (tmp_path / "cpu" / "models", tmp_path / "cuda" / "models")
    a, b = _state(cpu / "random_init.pt"), _state(gpu / "random_init.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert all(t.device.type == "cpu" for t in _state(gpu / "epoch_003.pt").values())
    first_a, first_b = _state(cpu / "epoch_001.pt"), _state(gpu / "epoch_001.pt")
    for k in first_a:  # same batches, no dropout: after one epoch only rounding differs
        torch.testing.assert_close(first_a[k].float(), first_b[k].float(), rtol=1e-3, atol=1e-3,
                                   msg=k)
    assert abs(runs["cpu"].log[-1]["val_accuracy"] - runs["cuda"].log[-1]["val_accuracy"]) < 0.05
    sidecar = json.loads((gpu / "epoch_003.pt.json").read_text())
    assert sidecar["extra"]["device"].startswith("cuda:")
    assert "device" not in json.loads((cpu / "epoch_003.pt.json").read_text())["extra"]
    assert runs["cuda"].log[-1]["device"] == sidecar["extra"]["device"]
    assert "device" not in runs["cpu"].log[-1]
    monitor = json.loads((gpu / "monitor_log.json").read_text())
    assert monitor and all(0 <= r[BINARY_COLUMN] <= 1 for r in monitor)


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason="needs a GPU"))])
def test_a_killed_run_resumed_ends_as_an_uninterrupted_one(tmp_path, toplandscape_sample, device):
    """Killed after an epoch and resumed, a run with dropout ends where an uninterrupted one
    does, up to the run-to-run spread of the device itself (0 on the CPU; measured with a
    second uninterrupted run). On a GPU this needs its random-number state in the resume
    state: without it the dropout masks of the resumed epochs differ and the weights move by
    orders of magnitude more."""
    _, files = toplandscape_sample
    paths = {}
    for name in ("resumed", "fresh", "fresh_again"):
        sub = tmp_path / name
        sub.mkdir()
        path = _params_file(sub, files, device=device)
        data = yaml.safe_load(path.read_text())
        data["model"] = {**SMALL_TRAIN_MODEL, "dropout": 0.1}  # the random-number state matters
        path.write_text(yaml.safe_dump(data))
        paths[name] = path
    kill_after_first_epoch(paths["resumed"])
    models = tmp_path / "resumed" / "models"
    assert (models / "epoch_001.pt").exists() and not (models / "epoch_003.pt").exists()
    if device == "cuda":
        assert _state(models / "train_state.pt")["cuda_rng"].dtype == torch.uint8
    resumed = train(load_params(paths["resumed"]), log=lambda *a: None)
    assert resumed.resumed_from in (1, 2)
    train(load_params(paths["fresh"]), log=lambda *a: None)
    train(load_params(paths["fresh_again"]), log=lambda *a: None)
    final = {name: _state(tmp_path / name / "models" / "epoch_003.pt") for name in paths}

    def largest(a, b):
        return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)

    spread = largest(final["fresh"], final["fresh_again"])
    off = largest(final["resumed"], final["fresh"])
    print(f"{device}: run-to-run spread {spread:.3g}, resumed against uninterrupted {off:.3g}")
    assert off <= 10 * spread if device == "cpu" else off <= max(10 * spread, 1e-6)

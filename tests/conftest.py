"""Shared fixtures: a headless matplotlib, and small generated datasets made once per session.

The generated samples are real Pythia 8 + FastJet output (no mocks), generated into a
temporary cache with the same code path as ``partnb generate``. Every test that uses one of
them, directly or through another fixture, is marked ``slow`` at collection (see
``SLOW_FIXTURES``), so ``pytest -m "not slow"`` never generates jets or runs papermill.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
PARAMS = REPO / "params"
FIGURES_ROOT = REPO / "figures"

#: Jets per class of the session samples: enough for a mass peak per class, fast on 2 cores.
SAMPLE_JETS = {"jetclass": 100, "toplandscape": 150, "quarkgluon": 150}

#: Fixtures whose setup takes minutes on 2 cores: Pythia generation (the three samples),
#: papermill over every notebook (``tiny_run``), and tests/test_reproduce.py's module fixture
#: ``rerun`` (regenerates 2 000 Top Landscape jets with Pythia). A test that uses any of them,
#: directly or through another fixture, gets the ``slow`` marker in
#: ``pytest_collection_modifyitems`` below, so ``-m "not slow"`` stays a fast loop without
#: every such test having to remember its own marker.
SLOW_FIXTURES = ("jetclass_sample", "toplandscape_sample", "quarkgluon_sample", "tiny_run", "rerun")


def pytest_collection_modifyitems(config, items):
    for item in items:
        # fixturenames is the closure: it includes fixtures pulled in by other fixtures
        if any(name in SLOW_FIXTURES for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _generate(dataset: str, cache_dir: Path, jets_per_class: int):
    from partnb.data.generate import GenerationConfig, generate

    config = GenerationConfig(dataset, jets_per_class=jets_per_class, jets_per_file=jets_per_class,
                              seed=2024)
    files = generate(config, cache_dir, workers=os.cpu_count() or 1, progress=False)
    return config, files


@pytest.fixture
def one_torch_thread():
    """The test machine is shared: one torch thread is faster than two oversubscribed ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def generated_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generated")


@pytest.fixture(scope="session")
def jetclass_sample(generated_cache):
    return _generate("jetclass", generated_cache, SAMPLE_JETS["jetclass"])


@pytest.fixture(scope="session")
def toplandscape_sample(generated_cache):
    return _generate("toplandscape", generated_cache, SAMPLE_JETS["toplandscape"])


@pytest.fixture(scope="session")
def quarkgluon_sample(generated_cache):
    return _generate("quarkgluon", generated_cache, SAMPLE_JETS["quarkgluon"])


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """papermill executes every notebook on ``params/tiny.yaml`` once per session (real
    generation and training); returns (tmp dir, results). Tests of any notebook's tables use it."""
    import yaml

    from partnb.runner import run_notebooks

    tmp = tmp_path_factory.mktemp("tiny_run")
    params = yaml.safe_load((PARAMS / "tiny.yaml").read_text())
    params["dataset"]["cache_dir"] = str(tmp / "cache")
    params["output"] = {"figures": str(tmp / "figures"), "runs": str(tmp / "runs"),
                        "models": str(tmp / "models")}
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(params))
    results = run_notebooks(path, log=lambda *_: None)
    return tmp, results


@pytest.fixture(scope="session")
def tiny_figures(tiny_run) -> Path:
    """The figures directory of ``tiny_run``: what the per-notebook table tests read."""
    return tiny_run[0] / "figures"


def mixed_jets(n_jets=300, p=32, seed=0):
    """Synthetic model inputs (no Pythia): jets of 1..P particles with physical 4-vectors,
    random standardised ``kin``-like features and zero padding."""
    import numpy as np

    from partnb.data.features import JetInputs

    rng = np.random.default_rng(seed)
    n = rng.integers(1, p + 1, size=n_jets)
    n[:5] = p                        # the first batches must not all be short
    mask = (np.arange(p)[None, :] < n[:, None]).astype(np.float32)[:, None, :]
    feats = rng.normal(size=(n_jets, 7, p)).astype(np.float32) * mask
    pt = rng.exponential(20, size=(n_jets, p)) + 1
    eta, phi = rng.normal(0, 0.3, size=(2, n_jets, p))
    vec = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], 1)
    vec = (vec * mask).astype(np.float32)
    return JetInputs(feats, vec, mask, rng.integers(0, 10, size=n_jets), n.astype(np.int64), "kin",
                     tuple(f"f{i}" for i in range(7)))


#: the model of the training tests: small enough to train a few epochs in seconds
SMALL_TRAIN_MODEL = {"embed_dims": [16, 32, 16], "pair_embed_dims": [8, 8], "num_heads": 2,
                     "num_layers": 2, "num_cls_layers": 1, "dropout": 0.0}


def small_train_params_file(tmp_path, files, model=None, **train):
    """``tmp_path/small.yaml``: a small TL ParT trained 3 epochs on ``files`` (70 % train,
    30 % val), ``train`` keys overriding, models written to ``tmp_path/models``."""
    import yaml

    data = {
        "name": "small", "seed": 3,
        "dataset": {"name": "toplandscape", "source": "files", "files": [str(f) for f in files],
                    "split": [0.7, 0.3, 0.0]},
        "features": {"set": "kin", "max_particles": 32},
        "model": dict(model or SMALL_TRAIN_MODEL),
        "train": {"epochs": 3, "batch_size": 40, "lr": 3e-3, "threads": 1, **train},
        "analysis": {"progress": False},
        "output": {"models": str(tmp_path / "models")},
    }
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def kill_after_first_epoch(params_file) -> None:
    """Trains ``params_file`` in a child process and kills it (SIGKILL) once its first resume
    state is on disk, as a crash would (the run writes to ``<its folder>/models``)."""
    import signal
    import subprocess
    import sys
    import time

    code = ("from partnb.params import load_params\nfrom partnb.train import train\n"
            f"train(load_params({str(params_file)!r}), log=lambda *a: None)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    state = Path(params_file).parent / "models" / "train_state.pt"
    deadline = time.time() + 300
    while time.time() < deadline and not state.exists() and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def variant_params_file(tmp_path, name: str, changes: dict, dataset: str = "toplandscape"):
    """``params/<dataset>.yaml`` with ``changes`` ({"section.key": value}) written to
    ``tmp_path/<dataset>_<name>.yaml``, as a variant file of notebooks 11 and 12 is named."""
    import yaml

    data = yaml.safe_load((PARAMS / f"{dataset}.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        data.setdefault(section, {})[key] = value
    path = tmp_path / f"{dataset}_{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


#: a small ParT for unit tests of the attention-variant analyses (notebooks 11 and 12)
SMALL_PART = dict(embed_dims=(16, 32, 16), pair_embed_dims=(8, 8), num_heads=2, num_layers=2,
                  num_cls_layers=1)


def sharp_small_model(attention: str):
    """A random :data:`SMALL_PART` ParT (7 inputs, 2 classes, seed 0) of the given attention
    variant, its query-key projections scaled by 3 so that its attention is sharper, as in
    trained models, in eval mode."""
    import torch

    from partnb.model import ParticleTransformer

    torch.manual_seed(0)
    model = ParticleTransformer(7, 2, trim=False, attention=attention, **SMALL_PART)
    with torch.no_grad():
        for name, value in model.named_parameters():
            if "in_proj" in name and name.endswith("weight"):
                value.mul_(3.0)
    return model.eval()

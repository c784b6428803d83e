"""The ready params files for the official ParT checkpoints on the real JetClass
(params/official/): two paths to fill in, and then weaver's own checkpoint runs through
partnb's data path and model to weaver's logits."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from test_io import jetclass_branches, make_jets, write_root_directly

from partnb.params import ParamsError, load_params

from conftest import PARAMS, REPO

OFFICIAL = {"ParT_kin": ("kin", 7), "ParT_kinpid": ("kinpid", 13), "ParT_full": ("full", 17)}
WEAVER_DIR = REPO / ".weaver-0.4.17"
#: the official models' constructor arguments in weaver (particle_transformer's configs)
OFFICIAL_WEAVER_CONFIG = dict(num_classes=10, pair_input_dim=4, embed_dims=[128, 512, 128],
                              pair_embed_dims=[64, 64, 64], num_heads=8, num_layers=8,
                              num_cls_layers=2, use_pre_activation_pair=False, trim=True,
                              for_inference=False)


def _filled(name: str, tmp_path, files, checkpoint):
    """The official params file with its two FILL IN paths replaced (nothing else)."""
    text = (PARAMS / "official" / f"{name}.yaml").read_text()
    data = yaml.safe_load(text)
    data["dataset"]["files"] = [str(f) for f in files]
    data["model"]["checkpoint"] = str(checkpoint)
    data["output"] = {k: str(tmp_path / k) for k in ("figures", "runs", "models")}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_params_need_only_two_paths(name, tmp_path):
    """Every value but the data files and the checkpoint is set: the official size, the
    feature set, P = 128. Unfilled, the file names the first path to fill in."""
    text = (PARAMS / "official" / f"{name}.yaml").read_text()
    assert text.count("FILL IN") == 2 and text.count("/path/to/") == 2
    params = load_params(PARAMS / "official" / f"{name}.yaml", check_files=False)
    feature_set, _ = OFFICIAL[name]
    assert params.features.set == feature_set and params.features.max_particles == 128
    assert list(params.model.embed_dims) == [128, 512, 128] and params.model.num_layers == 8
    assert params.dataset.name == "jetclass" and params.dataset.source == "files"
    with pytest.raises(ParamsError, match="dataset.files: /path/to/JetClass"):
        load_params(PARAMS / "official" / f"{name}.yaml")
    data = tmp_path / "test.root"
    data.write_bytes(b"")
    with pytest.raises(ParamsError, match=f"model.checkpoint: /path/to/{name}.pt does not exist"):
        yaml_data = yaml.safe_load(text)
        yaml_data["dataset"]["files"] = [str(data)]
        (tmp_path / "half.yaml").write_text(yaml.safe_dump(yaml_data))
        load_params(tmp_path / "half.yaml")


def test_seeded_model_is_the_committed_random_init():
    """For a given checkpoint the random-initialisation rows use the seeded untrained model;
    it is the model training saves as random_init.pt (same seed, same construction)."""
    from partnb.model.factory import load_trained
    from partnb.notebook import seeded_model

    params = load_params(PARAMS / "toplandscape.yaml", check_files=False)
    if not (REPO / "models" / "toplandscape" / "random_init.pt").exists():
        pytest.skip("models/toplandscape/random_init.pt is not in this checkout")
    state = torch.get_rng_state()
    seeded = seeded_model(params).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    saved = load_trained(params, random_init=True).state_dict()
    assert seeded.keys() == saved.keys()
    assert all(torch.equal(seeded[k], saved[k]) for k in seeded)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_weaver_checkpoint_through_official_params(name, tmp_path, one_torch_thread):
    """weaver-core 0.4.17 builds the official model with its own random initialisation and
    saves it; partnb loads it strictly through the filled-in params, reads JetClass-format
    ROOT files through its data path, and gives weaver's logits for those jets (max
    |Δlogit| < 1e-4); `partnb evaluate` runs on them; ParT-plain is not trained and the
    random-init model is the seeded one."""
    if not (WEAVER_DIR / "weaver" / "nn" / "model" / "ParticleTransformer.py").is_file():
        pytest.skip("weaver-core 0.4.17 is not installed (see tests/test_model.py)")
    from partnb.cli import main as cli_main
    from partnb.data.sample import load_split
    from partnb.model.factory import load_trained, plain_params
    from partnb.notebook import trained_model, trains_plain

    _, input_dim = OFFICIAL[name]
    checkpoint = tmp_path / f"{name}.pt"
    config = dict(OFFICIAL_WEAVER_CONFIG, input_dim=input_dim)
    subprocess.run([sys.executable, str(REPO / "tests" / "weaver_reference.py"), "init",
                    str(WEAVER_DIR), json.dumps(config), "7", str(checkpoint)],
                   check=True, timeout=300, capture_output=True)
    jets = make_jets(seed=input_dim, n_jets=24)
    write_root_directly(tmp_path / "JetClass_test_000.root", jetclass_branches(jets))
    params = load_params(_filled(name, tmp_path, [tmp_path / "JetClass_test_000.root"],
                                 checkpoint))
    model = load_trained(params)  # strict: every tensor of weaver's state dict fits
    inputs = load_split(params, "test", progress=False)
    assert len(inputs) == 24 and inputs.features.shape[1:] == (input_dim, 128)
    batch = {"features": torch.as_tensor(inputs.features), "vectors": torch.as_tensor(inputs.vectors),
             "mask": torch.as_tensor(inputs.mask)}
    torch.save({"config": config, "calls": [batch]}, tmp_path / "inputs.pt")
    subprocess.run([sys.executable, str(REPO / "tests" / "weaver_reference.py"), str(WEAVER_DIR),
                    str(checkpoint), str(tmp_path / "inputs.pt"), str(tmp_path / "ref.pt")],
                   check=True, timeout=300, capture_output=True)
    expected = torch.load(tmp_path / "ref.pt", weights_only=True)[0]
    with torch.no_grad():
        ours = model(batch["features"], batch["vectors"], batch["mask"])
    assert expected.abs().max() > 0.01
    assert (ours - expected).abs().max().item() < 1e-4
    assert np.array_equal(inputs.label, jets["classes"])
    assert cli_main(["evaluate", str(params.source), "--json"]) == 0
    assert not trains_plain(params)
    seeded = trained_model(params, random_init=True)
    assert not (tmp_path / "models").exists()  # nothing trained, nothing written
    assert any(not torch.equal(a, b) for a, b in zip(seeded.state_dict().values(),
                                                      model.state_dict().values(), strict=True))
    with pytest.raises(Exception, match="checkpoint not found"):
        trained_model(plain_params(params), train_if_missing=trains_plain(params))

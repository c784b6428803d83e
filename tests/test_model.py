"""Tests of partnb.model: ParT (docs/model.md#the-model), probes (docs/analyses.md#what-is-captured), interventions
(docs/analyses.md#zero-u-ablation, docs/analyses.md#top-k-attention), checkpoints (docs/model.md#state-dict-keys)."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from partnb.model import (
    GELU_MIN,
    AttentionProbe,
    CheckpointError,
    Intervention,
    ParticleTransformer,
    cls_layer_key,
    fold_w05_into_w04,
    infer_config,
    load_state_dict_any,
    read_checkpoint_extra,
    save_checkpoint,
    zero_pair_embed_params,
)

REPO = Path(__file__).resolve().parent.parent
WEAVER_DIR = REPO / ".weaver-0.4.17"
WEAVER_HINT = (
    "weaver-core 0.4.17 is not installed; enable this test with "
    "`.venv/bin/pip install --no-deps --target .weaver-0.4.17 weaver-core==0.4.17` "
    "in the repository root"
)
SMALL = dict(embed_dims=(32, 64, 32), pair_embed_dims=(16, 16, 16), num_heads=4,
             num_layers=2, num_cls_layers=2)
TOL = 1e-5


# --- helpers -------------------------------------------------------------------------------


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Perturb every parameter and buffer so that no part of the function is trivial.

    Norm weights, BN running statistics, c_attn (distinct per head, so the W04 channel
    permutation matters), w_resid and the class token all move away from their inits; the
    pair-embedding and in-projection weights are scaled up so that U and A both matter.
    """
    generator = torch.Generator().manual_seed(seed)

    def randn(shape):
        return torch.randn(shape, generator=generator)

    with torch.no_grad():
        for name, value in model.state_dict().items():
            if not value.dtype.is_floating_point:
                continue
            if name.endswith("running_var"):
                value.copy_(0.5 + 2.0 * torch.rand(value.shape, generator=generator))
            elif name.endswith("running_mean"):
                value.copy_(randn(value.shape))
            elif name.endswith("c_attn"):
                value.copy_(0.3 + 1.7 * torch.rand(value.shape, generator=generator))
            elif name.endswith(("w_resid", "norm.weight", "bn.weight")) or value.ndim == 1 and (
                    name.endswith("weight")):
                value.copy_(1.0 + 0.3 * randn(value.shape))
            elif name == "cls_token" or name.endswith("bias"):
                value.copy_(0.3 * randn(value.shape))
            else:
                value.add_(0.3 * value.std() * randn(value.shape))
            if name.startswith("pair_embed") and value.ndim == 3:
                value.mul_(4.0)  # make U vary across pairs as in trained models
            elif name.endswith("in_proj_weight"):
                value.mul_(2.0)  # sharper attention than at init
    return model


def make_batch(counts, length: int, input_dim: int, seed: int = 0, dtype=torch.float32):
    """Zero-padded jets with ``counts`` real particles each: features, vectors, mask."""
    generator = torch.Generator().manual_seed(seed)
    counts = torch.as_tensor(counts)
    batch = counts.shape[0]
    mask = (torch.arange(length)[None] < counts[:, None]).to(dtype)[:, None]
    features = torch.randn(batch, input_dim, length, generator=generator, dtype=dtype) * mask
    p3 = torch.randn(batch, 3, length, generator=generator, dtype=dtype) * 10.0
    p3[:, 2] += 30.0  # a common direction, as in a jet
    mass = 0.1 + torch.rand(batch, 1, length, generator=generator, dtype=dtype)
    energy = (p3.square().sum(dim=1, keepdim=True) + mass.square()).sqrt()
    vectors = torch.cat((p3, energy), dim=1) * mask
    return features, vectors, mask


def small_model(input_dim: int = 7, seed: int = 0, **overrides) -> ParticleTransformer:
    config = dict(SMALL, trim=False) | overrides
    torch.manual_seed(seed)
    return randomize_(ParticleTransformer(input_dim, 5, **config), seed).eval()


def real_rows(record_mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, P, P) bool: query and key both real."""
    real = ~record_mask
    return (real[:, :, None] & real[:, None, :])[:, None]


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def batch():
    return make_batch([12, 5, 20, 1, 17], 24, 7, seed=3)


# --- architecture and weaver equivalence ---------------------------------------------------------


@pytest.mark.parametrize(("input_dim", "n_params"),
                         [(7, 2_142_166), (13, 2_142_958), (17, 2_143_486)])
def test_state_dict_matches_checkpoint_table(input_dim, n_params):
    part = ParticleTransformer(input_dim, 10)
    state = part.state_dict()
    assert len(state) == 235
    assert sum(p.numel() for p in part.parameters()) == n_params
    assert state["embed.input_bn.weight"].shape == (input_dim,)
    assert state["pair_embed.embed.10.weight"].shape == (8, 64, 1)
    assert state["blocks.7.attn.in_proj_weight"].shape == (384, 128)
    assert state["cls_blocks.1.post_fc_norm.weight"].shape == (512,)
    assert state["fc.0.weight"].shape == (10, 128)
    assert {key.split(".")[2] for key in state if key.startswith("embed.embed.")} == {
        "0", "1", "3", "4", "6", "7"}
    assert infer_config(state) == {key: part.config[key] for key in infer_config(state)}


def _weaver_inputs(input_dim: int, length: int, calls: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for call in range(calls):
        counts = torch.randint(1, length - 3, (5,), generator=generator)
        features, vectors, mask = make_batch(counts, length, input_dim, seed=seed + call)
        out.append({"features": features, "vectors": vectors, "mask": mask})
    return out


@pytest.mark.parametrize(("input_dim", "size"), [(7, "small"), (13, "small"), (17, "small"),
                                                 (17, "full")])
def test_matches_weaver_0_4_17(tmp_path, input_dim, size):
    if not (WEAVER_DIR / "weaver" / "nn" / "model" / "ParticleTransformer.py").is_file():
        pytest.skip(WEAVER_HINT)
    arch = dict(SMALL) if size == "small" else {}
    ours = randomize_(ParticleTransformer(input_dim, 10, **arch), seed=input_dim).eval()
    save_checkpoint(ours, tmp_path / "part.pt")
    calls = _weaver_inputs(input_dim, 24 if size == "small" else 40, calls=7, seed=input_dim)
    weaver_config = dict(input_dim=input_dim, num_classes=10, use_pre_activation_pair=False,
                         trim=True, for_inference=False,
                         **{key: list(value) if isinstance(value, tuple) else value
                            for key, value in arch.items()})
    torch.save({"config": weaver_config, "calls": calls}, tmp_path / "inputs.pt")
    subprocess.run(
        [sys.executable, str(REPO / "tests" / "weaver_reference.py"), str(WEAVER_DIR),
         str(tmp_path / "part.pt"), str(tmp_path / "inputs.pt"), str(tmp_path / "ref.pt")],
        check=True, timeout=300, capture_output=True)
    reference = torch.load(tmp_path / "ref.pt", weights_only=True)
    fused = copy.deepcopy(ours)  # a second instance with its own trimmer counter
    lengths = []
    with torch.no_grad():
        for call, expected in zip(calls, reference, strict=True):
            inputs = (call["features"], call["vectors"], call["mask"])
            probe = AttentionProbe(layers=[0], capture=("P",))
            explicit = ours(*inputs, probe=probe)
            lengths.append(probe.records[0]["P"].shape[-1])
            for path, logits in (("explicit", explicit), ("fused", fused(*inputs))):
                delta = (logits - expected).abs().max().item()
                print(f"input_dim {input_dim} {size} {path}: max |Δlogit| = {delta:.2e}")
                assert delta < TOL
            assert expected.abs().max() > 0.1
    # weaver's trimmer: 5 untrimmed calls, then cut to the largest n of the batch
    max_n = [int(call["mask"].sum(-1).max()) for call in calls]
    full = calls[0]["mask"].shape[-1]
    assert lengths == [full] * 5 + max_n[5:]
    assert all(n < full for n in max_n)


def test_fused_path_equals_explicit_path(model, batch):
    with torch.no_grad():
        fused = model(*batch)
        explicit = model(*batch, probe=AttentionProbe(include_cls=True))
    assert (fused - explicit).abs().max() < TOL


def test_trimmer_warmup_and_invariance():
    part = small_model(trim=True)
    features, vectors, mask = make_batch([6, 9, 3], 30, 7, seed=1)
    with torch.no_grad():
        outputs = []
        for _ in range(7):
            probe = AttentionProbe(layers=[0], capture=("P",))
            outputs.append(part(features, vectors, mask, probe=probe))
            assert probe.records[0]["P"].shape[-1] == (30 if len(outputs) <= 5 else 9)
    for out in outputs[1:]:
        assert (out - outputs[0]).abs().max() < TOL
    part.trimmer.reset()
    assert part.trimmer.calls == 0


def test_training_trimmer_keeps_real_particles():
    part = small_model(trim=True)
    part.trimmer.calls = part.trimmer.warmup_calls
    part.trimmer.train()
    features, vectors, mask = make_batch([10, 4, 7], 16, 7, seed=2)
    features[:, 0] = torch.arange(16.0) + 1  # tag particles
    torch.manual_seed(0)
    trimmed, _, new_mask = part.trimmer(features, vectors, mask.bool())
    assert new_mask.shape[-1] <= 10
    for jet in range(3):
        kept = trimmed[jet, 0][new_mask[jet, 0]]
        assert new_mask[jet, 0].sum() == min(int(mask[jet].sum()), new_mask.shape[-1])
        assert bool(new_mask[jet, 0, : len(kept)].all())
        assert set(kept.tolist()) <= set(range(1, int(mask[jet].sum()) + 1))


def test_invariant_to_padding_content_and_length(model, batch):
    features, vectors, mask = batch
    noisy_f = features + torch.randn_like(features) * (1 - mask)
    noisy_v = vectors + torch.randn_like(vectors).abs() * 5 * (1 - mask)
    with torch.no_grad():
        base = model(features, vectors, mask)
        noisy = model(noisy_f, noisy_v, mask)
        longer = model(*(torch.nn.functional.pad(t, (0, 40)) for t in batch))
        alone = model(features[:1, :, :12], vectors[:1, :, :12], mask[:1, :, :12])
    assert (noisy - base).abs().max() < TOL
    assert (longer - base).abs().max() < TOL
    assert (alone - base[:1]).abs().max() < TOL


# --- probes --------------------------------------------------------------------------------


def test_probe_records(model, batch):
    probe = AttentionProbe(capture=("A", "U", "L", "P"), include_cls=True)
    with torch.no_grad():
        model(*batch, probe=probe)
    assert set(probe.records) == {0, 1, cls_layer_key(0), cls_layer_key(1)}
    counts = batch[2].sum(dim=(1, 2)).long()
    for layer in (0, 1):
        record = probe.records[layer]
        assert record["A"].shape == record["U"].shape == record["P"].shape == (5, 4, 24, 24)
        assert torch.equal(record["n"], counts)
        both = real_rows(record["padding_mask"]).expand_as(record["P"])
        u = record["U"]
        assert torch.equal(u, u.transpose(-1, -2))
        assert u.min() >= GELU_MIN - 1e-6
        assert u.std() > 0.01
        expected = torch.softmax(
            (record["A"] + u).masked_fill(record["padding_mask"][:, None, None], -math.inf), -1)
        assert (record["P"] - expected).abs().max() < 1e-6
        real_query = (~record["padding_mask"])[:, None, :, None].expand_as(record["P"])
        row_sums = torch.where(both, record["P"], 0.0).sum(-1)
        assert torch.allclose(row_sums[real_query[..., 0]], torch.ones(()), atol=1e-6)
        padded_key = record["padding_mask"][:, None, None].expand_as(record["L"])
        assert torch.isneginf(record["L"][padded_key]).all()
        assert torch.isfinite(record["L"][~padded_key]).all()
    assert probe.records[0]["U"].data_ptr() == probe.records[1]["U"].data_ptr()  # no copy
    cls = probe.records[cls_layer_key(0)]
    assert cls["P"].shape == (5, 4, 1, 25) and "U" not in cls
    assert torch.allclose(cls["P"].sum(-1), torch.ones(()), atol=1e-6)
    assert (cls["P"][..., 1:] * cls["padding_mask"][:, None, None, 1:]).abs().max() == 0


def test_probe_a_equals_qk_over_4_by_hand():
    part = small_model(embed_dims=(32, 64, 128), num_heads=8, num_layers=1)  # d = 16
    features, vectors, mask = make_batch([9, 4], 12, 7, seed=5)
    probe = AttentionProbe(capture=("A",))
    with torch.no_grad():
        part(features, vectors, mask, probe=probe)
        x = part.embed(features).masked_fill(mask[:, 0, :, None] == 0, 0.0)
        z = part.blocks[0].pre_attn_norm(x)
        head = 5
        w = part.blocks[0].attn.in_proj_weight
        b = part.blocks[0].attn.in_proj_bias
        rows_q = slice(16 * head, 16 * head + 16)
        rows_k = slice(128 + 16 * head, 128 + 16 * head + 16)
        q = z @ w[rows_q].T + b[rows_q]
        k = z @ w[rows_k].T + b[rows_k]
        by_hand = q @ k.transpose(-1, -2) / 4
    assert (probe.records[0]["A"][:, head] - by_hand).abs().max() < 1e-4 * by_hand.abs().max()


def test_probe_layers_callback_and_as_coded(model, batch):
    seen = []
    probe = AttentionProbe(layers=[1], capture=("P",), as_coded=True,
                           on_layer=lambda key, record: seen.append((key, sorted(record))))
    with torch.no_grad():
        model(*batch, probe=probe)
    assert probe.records == {}
    assert [key for key, _ in seen] == [1, 1]
    assert seen[0][1] == ["P", "n", "padding_mask"]
    assert seen[1][1] == ["A_as_coded", "P_as_coded"]
    stored = AttentionProbe(capture=("A", "P"), as_coded=True)
    with torch.no_grad():
        model(*batch, probe=stored)
    record = stored.records[0]
    assert record["A_as_coded"].shape == record["A"].shape
    assert (record["A_as_coded"] - record["A"]).abs().max() > 0.1
    assert torch.allclose(record["P_as_coded"].sum(-1), torch.ones(()), atol=1e-5)
    with pytest.raises(ValueError, match="cannot capture"):
        AttentionProbe(capture=("W",))


# --- interventions ------------------------------------------------------------------------------


def test_zero_u_equals_zeroed_pair_embed_params(model, batch):
    with torch.no_grad():
        base = model(*batch)
        zero_u = model(*batch, intervention=Intervention(zero_u=True))
        zeroed = zero_pair_embed_params(model)
        literal = zeroed(*batch)
        scale0 = model(*batch, intervention=Intervention(scale_u=0.0))
    assert (zero_u - literal).abs().max() < TOL
    assert (zero_u - scale0).abs().max() < TOL
    assert (zero_u - base).abs().max() > 1e-3
    assert any(p.abs().sum() > 0 for p in model.pair_embed.parameters())  # original untouched


def test_scale_u_one_and_intervene_context(model, batch):
    with torch.no_grad():
        base = model(*batch)
        same = model(*batch, intervention=Intervention(scale_u=1.0))
        with model.intervene(zero_u=True):
            inside = model(*batch)
        after = model(*batch)
        direct = model(*batch, intervention=Intervention(zero_u=True))
    assert (same - base).abs().max() < TOL
    assert (inside - direct).abs().max() < TOL
    assert torch.equal(after, base)


def test_topk_one_hot_and_large_k(model, batch):
    length = batch[0].shape[-1]
    probe = AttentionProbe(capture=("A", "U", "P"))
    with torch.no_grad():
        base = model(*batch)
        model(*batch, probe=probe, intervention=Intervention(topk=1))
        same = model(*batch, intervention=Intervention(topk=length))
        same_cls = model(*batch, intervention=Intervention(topk=length, topk_cls=True))
        restricted = model(*batch, intervention=Intervention(topk=1, topk_cls=True))
    for record in probe.records.values():
        weights = record["P"]
        real_query = ~record["padding_mask"]
        ones = weights.max(-1).values.permute(0, 2, 1)[real_query]
        assert torch.equal(ones, torch.ones_like(ones))
        logits = (record["A"] + record["U"]).masked_fill(
            record["padding_mask"][:, None, None], -math.inf)
        assert torch.equal(weights.argmax(-1), logits.argmax(-1))
    assert (same - base).abs().max() < TOL
    assert (same_cls - base).abs().max() < TOL
    assert (restricted - base).abs().max() > 1e-3
    with pytest.raises(ValueError, match="positive"):
        Intervention(topk=0)


def test_topk_k_at_least_n_per_jet_is_identity():
    part = small_model()
    features, vectors, mask = make_batch([3, 2, 3], 10, 7, seed=4)
    with torch.no_grad():
        assert (part(features, vectors, mask, intervention=Intervention(topk=3))
                - part(features, vectors, mask)).abs().max() < TOL


def test_zero_a_and_layer_restriction(model, batch):
    probe = AttentionProbe(capture=("A", "U"))
    with torch.no_grad():
        base = model(*batch)
        out = model(*batch, probe=probe, intervention=Intervention(zero_a=True, layers=[1]))
    assert probe.records[1]["A"].abs().max() == 0
    assert probe.records[0]["A"].abs().max() > 0
    assert (out - base).abs().max() > 1e-3


def test_part_plain_builds_and_runs(batch):
    plain = small_model(pair_embed_dims=None)
    assert plain.pair_embed is None
    assert not any(key.startswith("pair_embed") for key in plain.state_dict())
    probe = AttentionProbe(capture=("A", "U", "P"))
    with torch.no_grad():
        logits = plain(*batch, probe=probe)
        fused = plain(*batch)
    assert logits.shape == (5, 5) and "U" not in probe.records[0]
    assert (logits - fused).abs().max() < TOL
    assert small_model(pair_embed_dims=()).pair_embed is None
    with pytest.raises(ValueError, match="ParT-plain"):
        plain(*batch, intervention=Intervention(zero_u=True))
    with pytest.raises(ValueError, match="ParT-plain"):
        zero_pair_embed_params(plain)


def test_training_mode_backward_and_float64_vectors(batch):
    part = small_model(trim=True).train()
    features, vectors, mask = batch
    for _ in range(6):  # past the trimmer's warm-up: random permutation and cut
        loss = part(features, vectors, mask).logsumexp(-1).mean()
    loss.backward()
    assert part.pair_embed.embed[1].weight.grad.abs().sum() > 0
    assert part.blocks[0].c_attn.grad.abs().sum() > 0
    part.eval()
    with torch.no_grad():
        assert part(features, vectors.double(), mask).dtype == torch.float32


def test_input_validation(model, batch):
    features, vectors, mask = batch
    with pytest.raises(ValueError, match=r"\(B, 7, P\)"):
        model(features[:, :5], vectors, mask)
    with pytest.raises(ValueError, match="vectors"):
        model(features, None, mask)


# --- checkpoints -------------------------------------------------------------------------------


def test_save_load_roundtrip_weaver_format(tmp_path, model, batch):
    path = save_checkpoint(model, tmp_path / "sub" / "model.pt", extra={"feature_set": "kin"})
    raw = torch.load(path, weights_only=True)
    assert all(key.startswith("mod.") for key in raw) and "mod.cls_token" in raw
    assert not list(path.parent.glob("*.tmp"))
    loaded = load_state_dict_any(small_model(seed=9), path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(*batch), model(*batch))
    assert read_checkpoint_extra(path)["extra"] == {"feature_set": "kin"}
    assert read_checkpoint_extra(tmp_path / "none.pt") is None
    rebuilt = ParticleTransformer(**infer_config(raw), trim=False)
    load_state_dict_any(rebuilt, raw)


def test_load_w05_names_and_unprefixed(model):
    state = model.state_dict()
    w05 = {}
    for key, value in state.items():
        key = key.replace("attn.in_proj_weight", "attn.in_proj.weight")
        w05["mod." + key.replace("attn.in_proj_bias", "attn.in_proj.bias")] = value
    assert "mod.blocks.0.attn.in_proj.weight" in w05
    for source in (w05, state):
        target = load_state_dict_any(small_model(seed=7), source)
        assert all(torch.equal(target.state_dict()[k], v) for k, v in state.items())


def test_fold_w05_into_w04(batch):
    w05 = small_model(w05_head_scaling=True)
    w04 = load_state_dict_any(small_model(seed=5), fold_w05_into_w04(w05.state_dict()))
    plain_load = load_state_dict_any(small_model(seed=5), w05.state_dict())
    with torch.no_grad():
        reference = w05(*batch)
        assert (w04(*batch) - reference).abs().max() < TOL
        assert (plain_load(*batch) - reference).abs().max() > 1e-2


def test_checkpoint_errors(tmp_path):
    full = ParticleTransformer(17, 10, **SMALL)
    path = save_checkpoint(full, tmp_path / "full.pt")
    with pytest.raises(CheckpointError,
                       match=r"input_dim mismatch: checkpoint embed.input_bn.weight has 17 "
                             r"features \(feature set 'full'\), model expects 7 \(feature set 'kin'\)"):
        load_state_dict_any(ParticleTransformer(7, 10, **SMALL), path)
    with pytest.raises(CheckpointError, match="num_classes mismatch"):
        load_state_dict_any(ParticleTransformer(17, 2, **SMALL), path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_state_dict_any(full, truncated)
    state = full.state_dict()
    del state["blocks.1.fc2.bias"]
    state["blocks.1.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): blocks.1.fc2.bias.*"
                                              r"unexpected keys \(1\): blocks.1.extra"):
        load_state_dict_any(full, state)
    with pytest.raises(CheckpointError, match="no pair embedding"):
        load_state_dict_any(full, ParticleTransformer(17, 10, **SMALL | {
            "pair_embed_dims": None}).state_dict())
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_state_dict_any(full, tmp_path / "missing.pt")

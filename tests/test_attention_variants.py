"""Attention variants of the one ParT (docs/model.md#attention-variants): the sparse normalisers
against the ``entmax`` package and a brute-force bisection, the differential forms against a
hand-written reference, probes, interventions, checkpoints, params, the attention penalty, and
short trainings of every variant."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from partnb.model import (
    ATTENTION_VARIANTS,
    PENALTY_KINDS,
    AttentionPenalty,
    AttentionProbe,
    CheckpointError,
    Intervention,
    ParticleTransformer,
    infer_config,
    load_state_dict_any,
    read_checkpoint_extra,
    save_checkpoint,
    zero_pair_embed_params,
)
from partnb.model.part import MultiHeadAttention, _LayerAttention, lambda_init
from partnb.model.sparse import entmax15, sparsemax
from partnb.params import ParamsError, params_from_dict

from conftest import REPO, mixed_jets

pytestmark = pytest.mark.usefixtures("one_torch_thread")

entmax = pytest.importorskip("entmax", reason="the test extra installs the entmax package")

VARIANTS = list(ATTENTION_VARIANTS)
DIFFERENTIAL = ("differential", "differential_u")
NORMALISERS = {"sparsemax": (sparsemax, 1), "entmax15": (entmax15, 2)}
#: the last commit before the variants: its part.py is the softmax model they must not change
BEFORE_VARIANTS = "7e97fc2"
SMALL = dict(embed_dims=(16, 32, 16), pair_embed_dims=(8, 8), num_heads=2, num_layers=2,
             num_cls_layers=1)


# --- the normalisers ------------------------------------------------------------------------


def _bisection(z: np.ndarray, kind: str) -> np.ndarray:
    """Brute force, sharing no code with partnb: p_i = [x_i − τ]₊^power with Σ p = 1, τ by
    bisection in float64 (x = z for sparsemax, z/2 for 1.5-entmax: p = [(α−1)z − τ]₊^{1/(α−1)}
    at α = 2 and 1.5). −∞ entries get 0."""
    x = z.astype(np.float64) / (1.0 if kind == "sparsemax" else 2.0)
    power = 1 if kind == "sparsemax" else 2
    finite = np.isfinite(x)
    out = np.zeros_like(x)
    top = x[finite].max()
    lo, hi = top - 1.0, top  # Σ ≥ 1 at τ = max − 1 (the largest entry alone gives 1), 0 at max
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if (np.maximum(x[finite] - mid, 0.0) ** power).sum() > 1.0:
            lo = mid
        else:
            hi = mid
    out[finite] = np.maximum(x[finite] - 0.5 * (lo + hi), 0.0) ** power
    return out


def _logit_rows(seed: int = 0) -> torch.Tensor:
    """Random rows with masks (−∞), ties, one real key, all-equal real logits, large logits."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randn(40, 11, generator=g, dtype=torch.float64) * s for s in (0.3, 1.0, 4.0)]
    z = torch.cat(rows)
    masked = torch.rand(z.shape, generator=g) < 0.35
    masked[:, 0] = False
    z = z.masked_fill(masked, -math.inf)
    special = torch.full((6, 11), -math.inf, dtype=torch.float64)
    special[0, 3] = 2.5                                    # one real key
    special[1, :5] = 0.7                                   # all real logits equal
    special[2, :] = torch.tensor([1.0, 1.0, 0.2] * 3 + [1.0, -4.0], dtype=torch.float64)  # ties
    special[3, :4] = torch.tensor([1e4, 1e4 + 0.3, 1e4 - 0.2, 1e4 + 0.05], dtype=torch.float64)
    special[4, :] = torch.linspace(-3e5, 3e5, 11, dtype=torch.float64)  # one-hot by a mile
    special[5, 2:9] = -7.0                                 # equal and negative, padded around
    return torch.cat((z, special))


@pytest.mark.parametrize("kind", list(NORMALISERS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_normaliser_matches_the_entmax_package_and_bisection(kind, dtype):
    function, _ = NORMALISERS[kind]
    reference = {"sparsemax": entmax.sparsemax, "entmax15": entmax.entmax15}[kind]
    z = _logit_rows().to(dtype)
    p = function(z)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(p, reference(z, dim=-1), rtol=0, atol=tol)
    brute = np.stack([_bisection(row, kind) for row in z.double().numpy()])
    np.testing.assert_allclose(p.double().numpy(), brute, rtol=0, atol=max(tol, 1e-9))
    masked = torch.isinf(z)
    assert torch.equal(p[masked], torch.zeros_like(p[masked]))  # exactly 0, not tiny
    assert (p >= 0).all()
    torch.testing.assert_close(p.sum(-1), torch.ones(len(z), dtype=dtype), rtol=0, atol=10 * tol)
    # the special rows: one real key -> 1; equal real logits -> 1/n; far apart -> one-hot
    special = p[-6:]
    assert special[0, 3] == 1
    torch.testing.assert_close(special[1, :5], torch.full((5,), 0.2, dtype=dtype))
    torch.testing.assert_close(special[5, 2:9], torch.full((7,), 1 / 7, dtype=dtype))
    assert special[4, -1] == 1 and (special[4, :-1] == 0).all()
    assert (p == 0).any(dim=-1)[:120].float().mean() > 0.5  # sparse: most rows hold exact zeros


def test_sparsemax_satisfies_the_projection_conditions():
    """KKT of the Euclidean projection onto the simplex: on the support z_i − p_i = τ (one τ per
    row), off it z_i ≤ τ."""
    z = _logit_rows(3)
    p = sparsemax(z)
    for row, weights in zip(z, p, strict=True):
        support = weights > 0
        tau = (row[support] - weights[support])
        assert float(tau.max() - tau.min()) < 1e-9
        off = ~support & torch.isfinite(row)
        assert (row[off] <= tau.mean() + 1e-9).all()


@pytest.mark.parametrize("kind", list(NORMALISERS))
def test_normaliser_gradients(kind):
    function, _ = NORMALISERS[kind]
    reference = {"sparsemax": entmax.sparsemax, "entmax15": entmax.entmax15}[kind]
    g = torch.Generator().manual_seed(1)
    z = torch.randn(6, 9, generator=g, dtype=torch.float64) * 2
    assert torch.autograd.gradcheck(function, (z.clone().requires_grad_(),))
    # with −∞ keys: the gradient equals the package's and is exactly 0 on them
    masked = z.clone()
    masked[:, 5:] = -math.inf
    upstream = torch.randn(6, 9, generator=g, dtype=torch.float64)
    ours = masked.clone().requires_grad_()
    (function(ours) * upstream).sum().backward()
    theirs = masked.clone().requires_grad_()
    (reference(theirs, dim=-1) * upstream).sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=1e-12)
    assert torch.isfinite(ours.grad).all() and (ours.grad[:, 5:] == 0).all()


@pytest.mark.parametrize("kind", list(NORMALISERS))
def test_normaliser_along_another_axis(kind):
    function, _ = NORMALISERS[kind]
    z = torch.randn(3, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(function(z, dim=1), function(z.transpose(1, 2)).transpose(1, 2))


# --- the model ------------------------------------------------------------------------------


def _batch(counts=(9, 3, 1, 6), length: int = 10, seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    counts = torch.as_tensor(counts)
    mask = (torch.arange(length)[None] < counts[:, None]).float()[:, None]
    features = torch.randn(len(counts), 7, length, generator=g) * mask
    p3 = torch.randn(len(counts), 3, length, generator=g) * 10
    p3[:, 2] += 30
    energy = (p3.square().sum(1, keepdim=True) + 0.2).sqrt()
    return features, torch.cat((p3, energy), 1) * mask, mask


def _model(attention: str, seed: int = 0, classes: int = 3, **overrides) -> ParticleTransformer:
    torch.manual_seed(seed)
    model = ParticleTransformer(7, classes, trim=False, attention=attention, **(SMALL | overrides))
    with torch.no_grad():  # sharper attention and a U that matters, as in trained models
        for name, value in model.named_parameters():
            if name.startswith("pair_embed") and value.ndim == 3:
                value.mul_(4.0)
            elif "in_proj" in name and name.endswith("weight"):
                value.mul_(3.0)
    return model.eval()


def _real_mask(padding: torch.Tensor) -> torch.Tensor:
    """(B, 1, P, P): query and key both real."""
    real = ~padding
    return (real[:, :, None] & real[:, None, :])[:, None]


def test_softmax_is_bit_identical_to_the_model_before_the_variants(tmp_path):
    """Same seed → same initial state dict, and the same outputs bit for bit (fused and
    explicit paths, train and eval, interventions) as the part.py of the last commit before
    the variants."""
    try:
        source = subprocess.run(["git", "show", f"{BEFORE_VARIANTS}:partnb/model/part.py"],
                                cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"commit {BEFORE_VARIANTS} is not in this checkout")
    path = tmp_path / "part_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("part_before", path)
    before = importlib.util.module_from_spec(spec)
    sys.modules["part_before"] = before
    try:
        spec.loader.exec_module(before)
        torch.manual_seed(1)
        old = before.ParticleTransformer(7, 3, **SMALL)
        torch.manual_seed(1)
        new = ParticleTransformer(7, 3, **SMALL)
        assert list(old.state_dict()) == list(new.state_dict())
        for key, value in old.state_dict().items():
            assert torch.equal(value, new.state_dict()[key]), key
        batch = _batch()
        for mode in ("train", "eval"):
            for kind in ("plain", "probe", "topk", "zero_a", "zero_u"):
                outputs = []
                for module, model in ((before, old), (sys.modules["partnb.model.part"], new)):
                    model.train(mode == "train")
                    kw = {}
                    if kind == "probe":
                        kw["probe"] = module.AttentionProbe(as_coded=True)
                    elif kind != "plain":
                        kw["intervention"] = module.Intervention(
                            **{"topk": {"topk": 2}, "zero_a": {"zero_a": True},
                               "zero_u": {"zero_u": True}}[kind])
                    torch.manual_seed(7)
                    outputs.append(model(*batch, **kw))
                assert torch.equal(*outputs), (mode, kind)
    finally:
        sys.modules.pop("part_before", None)


def test_state_dict_keys_of_the_variants():
    softmax = set(_model("softmax").state_dict())
    assert "attention_variant" not in softmax
    for attention in ("sparsemax", "entmax15"):
        state = _model(attention).state_dict()
        assert set(state) == softmax | {"attention_variant"}
        assert bytes(state["attention_variant"].tolist()).decode() == attention
    diff = _model("differential").state_dict()
    new = {f"blocks.{i}.attn.{name}" for i in range(2)
           for name in ("in_proj2_weight", "in_proj2_bias", "lambda_q", "lambda_k")}
    assert set(diff) == softmax | new | {"attention_variant"}
    assert diff["blocks.0.attn.in_proj2_weight"].shape == (32, 16)
    assert diff["blocks.0.attn.lambda_q"].shape == (8,)  # head width d
    assert diff["pair_embed.embed.7.weight"].shape == (4, 8, 1)  # U1, U2: 2H channels
    assert diff["cls_blocks.0.attn.in_proj_weight"].shape == (48, 16)  # class blocks: softmax
    iaf = _model("differential_u").state_dict()
    assert iaf["blocks.0.attn.in_proj_weight"].shape == (16, 16)  # W_v only
    assert "blocks.0.attn.in_proj2_weight" not in iaf and "blocks.1.attn.lambda_k" in iaf
    assert lambda_init(8) == pytest.approx(1 - math.exp(-1 / 8))


def _hand_reference(attention: str):
    """One head of width 2, three particles (the third padded), everything written out."""
    z = [[0.5, -1.0], [1.5, 0.25], [-0.5, 2.0]]
    w_q1, b_q1 = [[1.0, 0.0], [0.0, 1.0]], [0.1, -0.2]
    w_k1, w_v = [[0.5, -1.0], [1.0, 0.5]], [[1.0, 2.0], [0.0, -1.0]]
    w_q2, w_k2 = [[0.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, -1.0]]
    u1 = [[0.2, 1.1, -0.1], [1.1, 0.0, 0.3], [-0.1, 0.3, 0.5]]
    u2 = [[-0.15, 0.4, 2.0], [0.4, 0.9, 0.1], [2.0, 0.1, 0.0]]
    lam_q, lam_k, lam_init = [0.3, -0.2], [0.5, 0.4], 0.3

    def mat(w, x, b=(0.0, 0.0)):
        return [sum(w[r][c] * x[c] for c in range(2)) + b[r] for r in range(2)]

    def softmax_real(row):  # keys 0, 1 real, key 2 padded
        e = [math.exp(v) for v in row[:2]]
        return [e[0] / sum(e), e[1] / sum(e), 0.0]

    lam = min(1.0, math.exp(sum(a * b for a, b in zip(lam_q, lam_k, strict=True))) * lam_init)
    v = [mat(w_v, x) for x in z]
    maps = []
    for w_q, b_q, w_k, u in ((w_q1, b_q1, w_k1, u1), (w_q2, (0.0, 0.0), w_k2, u2)):
        q, k = [mat(w_q, x, b_q) for x in z], [mat(w_k, x) for x in z]
        a = [[(q[i][0] * k[j][0] + q[i][1] * k[j][1]) / math.sqrt(2) if attention == "differential"
              else 0.0 for j in range(3)] for i in range(3)]
        maps.append([softmax_real([a[i][j] + u[i][j] for j in range(3)]) for i in range(3)])
    p = [[maps[0][i][j] - lam * maps[1][i][j] for j in range(3)] for i in range(3)]
    out = [[sum(p[i][j] * v[j][c] for j in range(3)) for c in range(2)] for i in range(3)]
    weights = {"in_proj_weight": (w_q1 + w_k1 + w_v) if attention == "differential" else w_v,
               "in_proj_bias": (list(b_q1) + [0.0] * 4) if attention == "differential" else [0, 0],
               "lambda_q": lam_q, "lambda_k": lam_k}
    if attention == "differential":
        weights |= {"in_proj2_weight": w_q2 + w_k2, "in_proj2_bias": [0.0] * 4}
    return z, (u1, u2), weights, lam_init, {"P": p, "P1": maps[0], "P2": maps[1], "lambda": lam,
                                            "out": out}


@pytest.mark.parametrize("attention", DIFFERENTIAL)
def test_differential_attention_against_a_hand_written_reference(attention):
    z, (u1, u2), weights, lam_init, expected = _hand_reference(attention)
    attn = MultiHeadAttention(2, 1, attention=attention, lambda_init=lam_init).eval()
    with torch.no_grad():
        for name, value in weights.items():
            getattr(attn, name).copy_(torch.tensor(value))
        attn.out_proj.weight.copy_(torch.eye(2))
        attn.out_proj.bias.zero_()
    padding = torch.tensor([[False, False, True]])
    probe = AttentionProbe(capture=("A", "U", "L", "P"))
    probe.reset()
    layer = _LayerAttention(0, torch.tensor(u1)[None, None], padding, attention=attention,
                            u2=torch.tensor(u2)[None, None], probe=probe)
    with torch.no_grad():
        out = attn(torch.tensor(z)[None], torch.tensor(z)[None], layer)
    record = probe.records[0]
    for name in ("P", "P1", "P2"):
        torch.testing.assert_close(record[name][0, 0], torch.tensor(expected[name]),
                                   rtol=0, atol=1e-6, msg=name)
    assert float(record["lambda"]) == pytest.approx(expected["lambda"], abs=1e-7)
    torch.testing.assert_close(out[0], torch.tensor(expected["out"]), rtol=0, atol=1e-6)
    assert (record["P"][..., 2] == 0).all()  # the padded key: exactly 0
    if attention == "differential_u":
        assert (record["A"] == 0).all() and (record["A2"] == 0).all()


@pytest.mark.parametrize("attention", VARIANTS)
def test_gradients_are_finite_with_padding(attention):
    model = _model(attention).train()
    features, vectors, mask = _batch()
    logits = model(features, vectors, mask)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name  # no unused parameters (DDP would complain)
        assert torch.isfinite(parameter.grad).all(), name
    assert model.blocks[0].attn.in_proj_weight.grad.abs().sum() > 0


@pytest.mark.parametrize("attention", VARIANTS)
def test_probes_record_the_weights_the_forward_pass_uses(attention):
    model = _model(attention)
    batch = _batch()
    probe = AttentionProbe(capture=("A", "U", "L", "P"), as_coded=True)
    with torch.no_grad():
        logits = model(*batch, probe=probe)
        # recording changes nothing (softmax: the fused path without it, equal to rounding)
        torch.testing.assert_close(logits, model(*batch), rtol=0,
                                   atol=1e-5 if attention == "softmax" else 0)
    for layer in range(2):
        record = probe.records[layer]
        p, padding = record["P"], record["padding_mask"]
        padded_keys = padding[:, None, None, :].expand_as(p)
        assert (p[padded_keys] == 0).all()
        rows = torch.where(_real_mask(padding), p, 0.0).sum(-1)[(~padding)[:, None, :].expand(
            p.shape[:3])]
        if attention in DIFFERENTIAL:
            lam = float(record["lambda"])
            assert 0 < lam <= 1
            torch.testing.assert_close(rows, torch.full_like(rows, 1 - lam), rtol=0, atol=1e-5)
            torch.testing.assert_close(p, record["P1"] - record["lambda"] * record["P2"])
            assert record["U2"].shape == record["U"].shape
            assert (p < 0).any()  # the difference map is signed
            assert {"A2", "L2", "P1", "P2"} <= set(record)
        else:
            torch.testing.assert_close(rows, torch.ones_like(rows), rtol=0, atol=1e-5)
            assert (p >= 0).all()
        if attention in ("sparsemax", "entmax15"):
            real_zeros = (p == 0) & _real_mask(padding)
            assert real_zeros.any()  # exact zeros among real keys
        # one U for all blocks (records hold detached views of the same storage)
        assert record["U"].data_ptr() == probe.records[1 - layer]["U"].data_ptr()
        assert "P_as_coded" in record and record["P_as_coded"].shape == p.shape


@pytest.mark.parametrize("attention", VARIANTS)
def test_every_intervention_acts_on_every_variant(attention):
    model = _model(attention)
    batch = _batch()

    def run(**kw):
        probe = AttentionProbe(capture=("A", "U", "L", "P"))
        with torch.no_grad():
            logits = model(*batch, probe=probe, intervention=Intervention(**kw) if kw else None)
        return logits, probe.records

    base, base_rec = run()
    # zero_u: U1 and U2 are 0; identical to zeroing the pair embedding's parameters
    zero_u, rec = run(zero_u=True)
    assert all((rec[k][name] == 0).all() for k in (0, 1) for name in ("U", "U2") if name in rec[k])
    with torch.no_grad():
        literal = zero_pair_embed_params(model)(*batch)
    torch.testing.assert_close(zero_u, literal, rtol=0, atol=1e-5)
    assert not torch.allclose(zero_u, base)
    # scale_u = 1 changes nothing; scale_u = 2 doubles both U
    same, _ = run(scale_u=1.0)
    torch.testing.assert_close(same, base, rtol=0, atol=1e-6)
    _, rec = run(scale_u=2.0)
    torch.testing.assert_close(rec[0]["U"], 2 * base_rec[0]["U"])
    if attention in DIFFERENTIAL:
        torch.testing.assert_close(rec[0]["U2"], 2 * base_rec[0]["U2"])
    # zero_a: A (and A2) are 0, only on the chosen block
    _, rec = run(zero_a=True, layers=(1,))
    assert (rec[1]["A"] == 0).all() and rec[1].get("A2", torch.zeros(())).abs().max() == 0
    if attention != "differential_u":
        assert rec[0]["A"].abs().max() > 0
    # top-k: at most k keys per row and map keep a weight; k >= n changes nothing
    for k in (1, 2):
        _, rec = run(topk=k)
        for layer in (0, 1):
            for name in ("P1", "P2") if attention in DIFFERENTIAL else ("P",):
                assert ((rec[layer][name] != 0).sum(-1) <= k).all(), (name, k)
            assert (rec[layer]["P"][rec[layer]["padding_mask"][:, None, None, :].expand_as(
                rec[layer]["P"])] == 0).all()
    large, _ = run(topk=10)
    torch.testing.assert_close(large, base, rtol=0, atol=1e-6)


def test_differential_without_pair_features_runs_and_differential_u_refuses():
    model = _model("differential", pair_embed_dims=())
    features, _, mask = _batch()
    probe = AttentionProbe(capture=("A", "U", "P"))
    with torch.no_grad():
        model(features, None, mask, probe=probe)
    assert "U" not in probe.records[0] and "U2" not in probe.records[0]
    assert "P2" in probe.records[0]
    with pytest.raises(ValueError, match="differential_u.*pair embedding"):
        ParticleTransformer(7, 3, pair_embed_dims=(), attention="differential_u")
    with pytest.raises(ValueError, match="unknown attention 'linear'"):
        ParticleTransformer(7, 3, attention="linear")


# --- checkpoints ----------------------------------------------------------------------------


@pytest.mark.parametrize("attention", VARIANTS)
def test_checkpoint_round_trip_and_wrong_variant_refused(tmp_path, attention):
    model = _model(attention, seed=3)
    path = save_checkpoint(model, tmp_path / "model.pt", extra={"epoch": 1})
    assert read_checkpoint_extra(path)["config"]["attention"] == attention
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert ("mod.attention_variant" in raw) == (attention != "softmax")
    assert infer_config(raw)["attention"] == attention
    rebuilt = ParticleTransformer(**infer_config(raw), trim=False)
    load_state_dict_any(rebuilt, path)
    batch = _batch()
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(*batch), model(*batch))
    other = "sparsemax" if attention == "softmax" else "softmax"
    with pytest.raises(CheckpointError) as error:
        load_state_dict_any(_model(other), path)
    message = str(error.value)
    assert f"attention {attention!r}" in message and f"attention {other!r}" in message
    assert str(path) in message


def test_committed_softmax_checkpoint_loads_as_softmax():
    path = REPO / "models" / "toplandscape" / "emergence" / "epoch_020.pt"
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout")
    config = dict(read_checkpoint_extra(path)["config"])
    assert "attention" not in config  # saved before the variants
    model = load_state_dict_any(ParticleTransformer(**config), path)
    assert model.config["attention"] == "softmax"
    with pytest.raises(CheckpointError, match="attention 'softmax'.*attention 'entmax15'"):
        load_state_dict_any(ParticleTransformer(**config, attention="entmax15"), path)


# --- params and run keys --------------------------------------------------------------------


def _params(**sections):
    data = {"dataset": {"name": "toplandscape"}, "features": {"max_particles": 32}}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return params_from_dict(data, root=REPO, check_files=False)


@pytest.mark.parametrize(("sections", "expected"), [
    ({"model": {"attention": "linear"}}, r"model.attention = 'linear' must be one of"),
    ({"train": {"attention_penalty": {"kind": "gini", "weight": 0.1}}},
     r"train.attention_penalty.kind = 'gini' must be one of 'entropy', 'l1'"),
    ({"train": {"attention_penalty": {"kind": "l1", "weight": -0.5}}},
     r"train.attention_penalty.weight = -0.5 must be a finite number >= 0"),
    ({"train": {"attention_penalty": {"kind": "l1", "weight": "big"}}},
     r"train.attention_penalty.weight = 'big'"),
    ({"train": {"attention_penalty": {"kind": "entropy"}}},
     r"train.attention_penalty.weight is missing"),
    ({"train": {"attention_penalty": {"kind": "entropy", "weight": 1, "wieght": 2}}},
     r"unknown key 'train.attention_penalty.wieght' \(did you mean 'weight'\?\)"),
    ({"train": {"attention_penalty": "entropy"}}, r"train.attention_penalty must be a mapping"),
    ({"model": {"attention": "differential_u"}, "features": {"pair_features": 0}},
     r"model.attention = 'differential_u'.*no.*pair"),
    ({"model": {"attention": "differential_u", "pair_embed_dims": []}},
     r"model.attention = 'differential_u'"),
])
def test_bad_attention_params_name_the_key(sections, expected):
    with pytest.raises(ParamsError, match=expected):
        _params(**sections)


def test_params_reach_the_model_and_the_plain_counterpart():
    from partnb.model.factory import model_from_params, plain_params

    for attention in VARIANTS:
        assert model_from_params(_params(model={"attention": attention})).attention == attention
    differential = _params(model={"attention": "differential"}, features={"pair_features": 0})
    assert model_from_params(differential).pair_embed is None
    iaf = _params(model={"attention": "differential_u"})
    assert plain_params(iaf).model.attention == "differential"
    assert plain_params(_params(model={"attention": "entmax15"})).model.attention == "entmax15"


def test_params_list_the_models_variants():
    """partnb.params keeps its own copy (it imports no torch): the two must agree."""
    from partnb import params
    from partnb.model import part

    assert params.ATTENTION_VARIANTS == part.ATTENTION_VARIANTS
    assert params.PENALTY_KINDS == part.PENALTY_KINDS


def test_run_key_ignores_the_defaults_and_sees_the_rest():
    from partnb.train import _run_key

    base = _params()
    assert base.model.attention == "softmax" and base.train.attention_penalty is None
    data = base.to_dict()
    del data["model"]["attention"], data["train"]["attention_penalty"]
    assert "attention" not in json.dumps(data)  # as a run made before the keys existed
    assert _run_key(params_from_dict(data, root=REPO, check_files=False)) == _run_key(base)
    keys = {_run_key(_params(model={"attention": a})) for a in VARIANTS}
    keys |= {_run_key(_params(train={"attention_penalty": {"kind": k, "weight": w}}))
             for k in PENALTY_KINDS for w in (0.1, 0.2)}
    assert len(keys) == len(VARIANTS) + 4


# --- the attention penalty ------------------------------------------------------------------


def _rows(weights: torch.Tensor, padding: torch.Tensor, kind: str) -> torch.Tensor:
    penalty = AttentionPenalty(kind)
    penalty.add(weights, padding)
    return penalty.value()


@pytest.mark.parametrize("kind", PENALTY_KINDS)
def test_penalty_is_zero_for_one_hot_and_one_for_uniform_rows(kind):
    padding = torch.tensor([[False] * 4 + [True] * 2, [False] + [True] * 5])
    uniform = (~padding).float()[:, None, None, :].expand(2, 3, 6, 6) / (~padding).sum(-1)[
        :, None, None, None]
    one_hot = torch.zeros(2, 3, 6, 6)
    one_hot[..., 0] = 1
    # the n = 1 jet counts with 0 in both: 4 of the 5 real rows per head are uniform over 4
    assert float(_rows(uniform, padding, kind)) == pytest.approx(4 / 5)
    assert float(_rows(one_hot, padding, kind)) == 0
    assert float(_rows(uniform[:1], padding[:1], kind)) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", PENALTY_KINDS)
@pytest.mark.parametrize("attention", ["softmax", "sparsemax", "differential"])
def test_penalty_gradient_lowers_the_penalty(kind, attention):
    """One gradient step of the model's parameters on the penalty alone lowers it: its
    gradient reaches the weights with the right sign (for differential: through the first
    map), and is finite where the sparse normalisers give exact zeros."""
    model = _model(attention, seed=2)
    batch = _batch()
    penalty = AttentionPenalty(kind)
    model(*batch, penalty=penalty)
    before = penalty.value()
    assert 0 < float(before.detach()) < 1
    before.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.grad is not None:
                parameter -= 0.05 * parameter.grad
    model(*batch, penalty=penalty)
    assert float(penalty.value().detach()) < float(before.detach())


def test_penalty_equals_the_probes_weights():
    model = _model("softmax")
    batch = _batch()
    probe, penalty = AttentionProbe(capture=("P",)), AttentionPenalty("entropy")
    with torch.no_grad():
        model(*batch, probe=probe, penalty=penalty)
    values = []
    for record in probe.records.values():
        p, padding = record["P"], record["padding_mask"]
        n = (~padding).sum(-1).double()
        entropy = -torch.special.xlogy(p.double(), p.double()).sum(-1)
        scaled = torch.where(n[:, None, None] > 1, entropy / n.log()[:, None, None].clamp(min=1e-9),
                             0.0)
        values.append(scaled[(~padding)[:, None, :].expand(scaled.shape)])
    assert float(penalty.value()) == pytest.approx(float(torch.cat(values).mean()), abs=1e-6)


# --- training and the analyses on every variant ----------------------------------------------


def _jets(n_jets: int = 160, seed: int = 0):
    jets = mixed_jets(n_jets, p=24, seed=seed)
    return dataclasses.replace(jets, label=jets.label % 2)


def _train_params(tmp_path, name, **train_keys):
    model = dict(SMALL, dropout=0.0, attention=train_keys.pop("attention", "softmax"))
    return params_from_dict({
        "name": name, "seed": 4,
        "dataset": {"name": "toplandscape"},
        "features": {"set": "kin", "max_particles": 24},
        "model": {k: list(v) if isinstance(v, tuple) else v for k, v in model.items()},
        "train": {"epochs": 2, "batch_size": 40, "lr": 3e-3, "threads": 1, "schedule": "none",
                  "monitor_jets": 20, **train_keys},
        "analysis": {"progress": False, "batch_size": 40},
        "output": {"models": str(tmp_path / name)},
    }, check_files=False)


@pytest.mark.parametrize("attention", VARIANTS)
def test_two_epochs_of_every_variant_save_a_checkpoint_that_loads(tmp_path, attention):
    from partnb.model.factory import load_trained
    from partnb.train import train

    jets = _jets()
    params = _train_params(tmp_path, attention, attention=attention,
                           attention_penalty={"kind": "l1", "weight": 0.05}
                           if attention == "sparsemax" else None)
    result = train(params, data=(jets.take(np.arange(120)), jets.take(np.arange(120, 160))),
                   log=lambda _: None)
    assert len(result.log) == 2 and all(math.isfinite(r["train_loss"]) for r in result.log)
    assert ("attention_penalty" in result.log[0]) == (attention == "sparsemax")
    monitor = json.loads((tmp_path / attention / "monitor_log.json").read_text())
    assert monitor and all(math.isfinite(r["rows_max_ge_0.8"]) for r in monitor)
    model = load_trained(params)
    assert model.attention == attention
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, result.model.state_dict()[name], rtol=0, atol=0)
    other = _train_params(tmp_path, attention,
                          attention="softmax" if attention != "softmax" else "entmax15")
    with pytest.raises(CheckpointError, match=f"attention {attention!r}.*epoch_002.pt|"
                                              f"epoch_002.pt.*attention {attention!r}"):
        load_trained(other)


@pytest.mark.slow
def test_entropy_penalty_lowers_the_attention_entropy(tmp_path):
    """A tiny run with a strong entropy penalty ends with lower normalised attention entropy
    than the same run without it (the monitor's mean_norm_entropy on validation jets, eval
    mode). AdamW: Ranger's RAdam warm-up and Lookahead move too little in 15 steps."""
    from partnb.train import train

    jets = _jets(240, seed=1)
    data = (jets.take(np.arange(200)), jets.take(np.arange(200, 240)))
    entropy = {}
    for name, penalty in (("none", None), ("entropy", {"kind": "entropy", "weight": 2.0})):
        result = train(_train_params(tmp_path, name, epochs=3, monitor_jets=40, optimizer="adamw",
                                     attention_penalty=penalty), data=data, log=lambda _: None)
        rows = json.loads((tmp_path / name / "monitor_log.json").read_text())
        entropy[name] = rows[-1]["mean_norm_entropy"]
        if penalty:  # the logged penalty falls from epoch to epoch
            logged = [row["attention_penalty"] for row in result.log]
            assert logged == sorted(logged, reverse=True)
    assert entropy["entropy"] < entropy["none"] - 0.1


@pytest.mark.parametrize("attention", VARIANTS)
def test_the_analyses_run_on_every_variant(attention):
    """The streaming analyses of notebooks 03, 04, 06, 07 and 09 on a random model of each
    variant: they run, and their tables hold numbers."""
    from partnb.analysis.ablation import ablation_rows
    from partnb.analysis.emergence import SparsityMonitor
    from partnb.analysis.interaction import interaction_metrics
    from partnb.analysis.magnitude import magnitude_ratio
    from partnb.analysis.sparsity import attention_heatmaps, attention_sparsity
    from partnb.analysis.topk import topk_evaluation

    model = _model(attention, classes=2)
    inputs = _jets(30, seed=2)
    sparsity = attention_sparsity(model, inputs, ["a", "b"], batch_size=15)
    row = sparsity.summary_row("correct")
    assert row["n_rows"] > 0 and 0 <= row["frac_exact_zero"] <= 1
    if attention in DIFFERENTIAL:
        assert sparsity.negative_entries["correct"] > 0
    ratio = magnitude_ratio(model, inputs, batch_size=15)
    assert ratio.counters["correct"].sum() > 0
    metrics = interaction_metrics(model, inputs, batch_size=15)["float32"]
    assert 0 <= metrics["rate_N"] <= 1 and 0 <= metrics["rate_D"] <= 1
    assert len(ablation_rows(model, inputs, "toplandscape", batch_size=15)) >= 3
    rows, _ = topk_evaluation(model, inputs, "toplandscape", [1, 2, "all"], batch_size=15)
    assert len(rows) == 3
    monitor = SparsityMonitor(inputs, batch_size=15).measure(model)
    assert math.isfinite(monitor["rows_max_ge_0.8"])
    maps = attention_heatmaps(model, inputs, 0)
    assert np.isfinite(maps["correct"]).all()

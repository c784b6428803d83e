"""The "ranger" optimizer against the RAdam rule of weaver (docs/training.md#optimizer-and-schedule),
written out here from its definition: Adam moments with betas (0.95, 0.999); for the first
steps (N_sma < 5) a momentum step m / (1 - beta1^t); afterwards the rectified adaptive step;
weight decay, when decoupled, shrinks the weight by lr * wd before the step."""

from __future__ import annotations

import math

import pytest
import torch

from partnb.params import params_from_dict
from partnb.train import make_optimizer


def _weaver_radam(w, grads, *, lr, wd, betas=(0.95, 0.999), eps=1e-5):
    """Weights after RAdam steps with decoupled weight decay, one gradient per step."""
    b1, b2 = betas
    m = torch.zeros_like(w, dtype=torch.float64)
    v = torch.zeros_like(w, dtype=torch.float64)
    w = w.double().clone()
    n_max = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, start=1):
        g = g.double()
        v = b2 * v + (1 - b2) * g * g
        m = b1 * m + (1 - b1) * g
        n_sma = n_max - 2 * t * b2 ** t / (1 - b2 ** t)
        w = w - wd * lr * w
        if n_sma >= 5:
            size = math.sqrt((1 - b2 ** t) * (n_sma - 4) / (n_max - 4) * (n_sma - 2) / n_sma
                             * n_max / (n_max - 2)) / (1 - b1 ** t)
            w = w - size * lr * m / (v.sqrt() + eps)
        else:
            w = w - lr / (1 - b1 ** t) * m
    return w


def _optimizer(weight, mode, wd):
    params = params_from_dict({"dataset": {"name": "toplandscape"},
                               "train": {"optimizer": "ranger", "lr": 1e-3, "weight_decay": wd,
                                         "weight_decay_mode": mode}})
    model = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(weight)
    return model, make_optimizer(model, params.train).inner  # RAdam, without Lookahead


def _run(weight, grads, mode, wd):
    model, opt = _optimizer(weight, mode, wd)
    for g in grads:
        model.weight.grad = g.clone()
        opt.step()
    return model.weight.detach().double()


@pytest.fixture
def steps():
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    # small gradients, as the query-key weights get once U has taken over; 300 steps: past
    # the first momentum-only steps and the warm-up of the rectifier
    grads = [1e-3 * torch.randn(4, 5, generator=gen, dtype=torch.float64) for _ in range(300)]
    return weight, grads


def test_decoupled_ranger_is_weavers_radam(steps):
    weight, grads = steps
    got = _run(weight, grads, "decoupled", 0.01)
    want = _weaver_radam(weight, grads, lr=1e-3, wd=0.01)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_coupled_weight_decay_is_not_weavers_and_shrinks_small_gradient_weights(steps):
    """With wd * w in the gradient, the adaptive step normalises it: a weight whose loss
    gradient is small moves by ~lr per step towards 0, not by lr * wd * w."""
    weight, grads = steps
    coupled = _run(weight, grads, "coupled", 0.01)
    decoupled = _run(weight, grads, "decoupled", 0.01)
    assert not torch.allclose(coupled, decoupled, atol=1e-4)
    shrink_coupled = (weight.double().abs() - coupled.abs()).mean()
    shrink_decoupled = (weight.double().abs() - decoupled.abs()).mean()
    assert shrink_coupled > 10 * shrink_decoupled > 0


def test_without_weight_decay_the_modes_agree(steps):
    weight, grads = steps
    torch.testing.assert_close(_run(weight, grads, "coupled", 0.0), _run(weight, grads, "decoupled", 0.0))

"""The one definition of η, y and Δφ that generation and reading share (partnb.data.kinematics)."""

from __future__ import annotations

import math

import numpy as np

from partnb.data.kinematics import pseudorapidity, rapidity, wrap_phi


def test_wrap_phi_lands_in_minus_pi_to_pi():
    x = np.array([0.0, math.pi, -math.pi, 3 * math.pi, -3 * math.pi, 7.0, -7.0,
                  math.pi - 1e-12, np.nextafter(math.pi, 4.0)])
    out = wrap_phi(x)
    assert np.all(out >= -math.pi) and np.all(out < math.pi)
    assert out[1] == -math.pi and out[2] == -math.pi  # +π belongs to the other end
    # the same direction: cos and sin unchanged
    np.testing.assert_allclose(np.cos(out), np.cos(x), atol=1e-12)
    np.testing.assert_allclose(np.sin(out), np.sin(x), atol=1e-12)


def test_pseudorapidity_by_hand_and_at_zero_pt():
    px, py, pz = np.array([3.0, 0.0, 0.0]), np.array([4.0, 0.0, 0.0]), np.array([5.0, 2.0, -2.0])
    eta = pseudorapidity(px, py, pz)
    assert eta[0] == math.asinh(5.0 / 5.0)
    assert np.isfinite(eta[1:]).all() and eta[1] == -eta[2] > 40  # pT = 0: finite, signed
    theta = math.atan2(5.0, 5.0)
    assert math.isclose(eta[0], -math.log(math.tan(theta / 2)), rel_tol=1e-12)


def test_rapidity_equals_eta_for_massless_and_is_finite_on_the_beam():
    rng = np.random.default_rng(1)
    px, py, pz = rng.normal(size=(3, 100)) * 10
    e = np.sqrt(px**2 + py**2 + pz**2)
    np.testing.assert_allclose(rapidity(pz, e), pseudorapidity(px, py, pz), atol=1e-9)
    assert np.isfinite(rapidity(np.array([5.0]), np.array([5.0]))).all()

"""Pseudorapidity, rapidity and azimuth differences, defined once for the generator
(:mod:`partnb.data.generate`) and the readers (:mod:`partnb.data.io`).

Edge cases are part of the definition, so both sides treat them alike:

* :func:`pseudorapidity` of a particle with pT = 0 is finite, ±arcsinh(|pz| / 10⁻²⁰) (about
  ±46) with the sign of pz, instead of ±inf or NaN;
* :func:`wrap_phi` returns angles in [−π, π): an angle that lands on +π after the modulo (a
  rounding case) becomes −π;
* :func:`rapidity` floors E ± pz at 10⁻²⁰, so a particle along the beam has a large finite
  rapidity.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PT_FLOOR", "pseudorapidity", "rapidity", "wrap_phi"]

#: the smallest transverse momentum (and E ± pz) divided by, in GeV
PT_FLOOR = 1e-20


def pseudorapidity(px, py, pz) -> np.ndarray:
    """η = arcsinh(pz / pT), with pT floored at :data:`PT_FLOOR`."""
    pt = np.hypot(px, py)
    return np.arcsinh(np.asarray(pz) / np.maximum(pt, PT_FLOOR))


def rapidity(pz, e) -> np.ndarray:
    """y = ½ ln((E + pz) / (E − pz)), with E ± pz floored at :data:`PT_FLOOR`."""
    pz, e = np.asarray(pz), np.asarray(e)
    return 0.5 * np.log(np.maximum(e + pz, PT_FLOOR) / np.maximum(e - pz, PT_FLOOR))


def wrap_phi(dphi) -> np.ndarray:
    """An azimuth difference mapped into [−π, π)."""
    out = np.mod(np.asarray(dphi) + np.pi, 2 * np.pi) - np.pi
    return np.where(out >= np.pi, out - 2 * np.pi, out)

"""Tolerances for comparing floating-point results, derived from their sizes instead of tuned on one CPU.

Two evaluations of one formula round differently when they go through different kernels or
summation orders: another code path, oneDNN or BLAS choosing a kernel per CPU (AVX2 vs AVX-512),
NumPy's SIMD dispatch. Each rounding errs by at most ``u`` relative, the unit roundoff (2^-24 ~ 6.0e-8
in float32, 2^-53 ~ 1.1e-16 in float64).

* A sum or dot product of ``n`` terms in any order is off by at most ``gamma_n * sum|terms|``,
  ``gamma_n = n u / (1 - n u)`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
  section 3.1): a rigorous bound; two evaluations differ by at most twice that.
* A recurrence (the ConvLSTM) has no useful rigorous bound: the worst case multiplies earlier
  errors by the step's Lipschitz constant (~20 for the test weights) at every step. There the
  count is a model: ``n`` roundings along one output's chain of dependencies, each ``u`` times
  the magnitude of the outputs, not amplified. It must be validated against random inputs (the
  test that uses it says how), and where exactness is the point the comparison also runs in
  float64: the same count gives ~1e-13 there, so even a model 100 times too optimistic stays
  far below any bug.
"""
from __future__ import annotations

import numpy as np

__all__ = ["convlstm_scan_roundings", "rounding_tolerance", "unit_roundoff"]


def unit_roundoff(dtype) -> float:
    """2^-24 for float32, 2^-53 for float64 (half the machine epsilon); torch or NumPy dtypes."""
    name = str(dtype)
    return float(np.finfo(np.dtype(name.removeprefix("torch.") if name.startswith("torch.") else dtype)).eps) / 2


def rounding_tolerance(n: int, dtype, scale: float = 1.0, evaluations: int = 2) -> float:
    """Bound on the difference of ``evaluations`` roundings of ``n`` operations on values <= ``scale``.

    ``evaluations=2``: two computed results against each other; ``1``: one computed result
    against an exact (or float64) one.
    """
    u = unit_roundoff(dtype)
    if n * u >= 1:
        raise ValueError(f"{n} roundings in {dtype} bound nothing (n u >= 1)")
    return evaluations * n * u / (1 - n * u) * scale


def convlstm_scan_roundings(n_in: int, hidden: int, kernel: int, steps: int) -> int:
    """Roundings on the chain of one output of a ConvLSTM over ``steps`` steps.

    Per step: the pre-activation is a sum of ``(n_in + hidden) kernel^2`` products and the bias
    (one rounding per term), then about ten elementwise roundings (a sigmoid, tanh through
    2 sigmoid(2a) - 1, c = f c + i g, h = o tanh(c)). The cell state carries every step's errors.
    """
    return steps * ((n_in + hidden) * kernel**2 + 1 + 10)

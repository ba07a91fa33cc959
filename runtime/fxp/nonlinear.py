"""Fixed-point approximations of nonlinear functions over the kernel interface.

Every function takes (P, x, frac, options) with x a secret Share at scale `frac`
and returns a Share at the same scale.
"""
from __future__ import annotations

FUNCTIONS = {}

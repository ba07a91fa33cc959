"""Checks a data owner's update before anything is shared.

An update that does not look like the global model (other tree structure, other
shapes, not a float array, NaN or inf, outside the fixed-point range) is refused
with an `UpdateError` naming the owner and the offending leaf. The data owner runs
these checks on its plaintext update, so nothing malformed is ever secret-shared;
the federation re-checks the public metadata (structure and shapes) of what arrives.

An UpdateError's message names the owner, the leaf and the rule it breaks, never a
value computed from the update (no magnitude, norm or count of bad entries): it
reaches the model owner as a drop reason. The detail is in `e.detail`, which the data
owner logs locally (logger `spu_lite.fl.owner`).
"""
from __future__ import annotations

from typing import Any, Optional

import jax
import numpy as np


class UpdateError(ValueError):
    """A data owner's update was refused (raised before any share of it is made).

    str(e): public (owner, leaf, rule); e.detail: the same with the offending value,
    for the owner's own log only."""

    def __init__(self, owner: str, message: str, detail: Optional[str] = None):
        super().__init__(f"data owner {owner!r}: {message}")
        self.public_reason = str(self)      # what a node may send (deploy/errors.py)
        self.owner = owner
        self.detail = f"data owner {owner!r}: {detail or message}"


def _structure(tree) -> Any:
    return jax.tree_util.tree_structure(tree)


def check_structure(owner: str, update, reference, what: str = "update") -> None:
    """Same pytree structure and the same shape for every leaf as `reference`.

    Leaves may be arrays or anything with a `.shape` (secret handles)."""
    got, want = _structure(update), _structure(reference)
    if got != want:
        raise UpdateError(owner, f"{what} has tree structure {got}, expected {want} "
                                 f"(the structure of the global model)")
    ref_leaves = jax.tree_util.tree_flatten_with_path(reference)[0]
    for (path, ref), leaf in zip(ref_leaves, jax.tree_util.tree_leaves(update)):
        shape = tuple(getattr(leaf, "shape", np.shape(leaf)))
        if shape != tuple(np.shape(ref)):
            raise UpdateError(owner, f"{what}{jax.tree_util.keystr(path)} has shape {shape}, "
                                     f"expected {tuple(np.shape(ref))}")


def validate_update(owner: str, update, reference, max_abs: float,
                    max_norm: Optional[float] = None, what: str = "update"):
    """Validate a plaintext update against the global model; returns it as a pytree
    of float32 numpy arrays.

    Args:
      owner: the data owner's name (used in every error message).
      update: the pytree the owner is about to share.
      reference: the global model (structure and shapes to match).
      max_abs: largest magnitude a value may have (the fixed-point range).
      max_norm: if set, largest global L2 norm (keeps sums of squares inside the
        fixed-point range when the aggregate clips updates under MPC).
    Raises:
      UpdateError: naming the owner and the leaf.
    """
    check_structure(owner, update, reference, what)
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(update)[0]:
        where = f"{what}{jax.tree_util.keystr(path)}"
        try:
            a = np.asarray(leaf)
        except Exception as e:  # noqa: BLE001 - any conversion failure is the owner's problem
            raise UpdateError(owner, f"{where} is not an array",
                              f"{where} is not an array: {e}") from None
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise UpdateError(owner, f"{where} has dtype {a.dtype}; expected a real array")
        if not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise UpdateError(owner, f"{where} contains NaN or inf values",
                              f"{where} contains {bad} NaN or inf value(s)")
        if a.size and np.max(np.abs(a)) >= max_abs:
            rule = f"outside the fixed-point range |x| < {max_abs:.4g}"
            raise UpdateError(owner, f"{where} has values {rule}",
                              f"{where} has magnitude {np.max(np.abs(a)):.4g}, {rule}")
        out.append(a.astype(np.float32))
    if max_norm is not None:
        norm = float(np.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in out)))
        if norm >= max_norm:
            rule = f"norms must stay below {max_norm:.4g}"
            raise UpdateError(owner, f"{what} breaks the L2 norm bound ({rule})",
                              f"{what} has L2 norm {norm:.4g}; {rule}")
    return jax.tree_util.tree_unflatten(_structure(update), out)


def validate_count(owner: str, n) -> int:
    """A data owner's example count: a positive integer."""
    try:
        value = int(n)
    except (TypeError, ValueError):
        raise UpdateError(owner, "example count is not an integer",
                          f"example count {n!r} is not an integer") from None
    if value != n or value <= 0:
        raise UpdateError(owner, "example count must be a positive integer",
                          f"example count {n!r} must be a positive integer")
    return value

"""Secret handles: values that stay secret-shared on the cluster between calls.

`spu.jit(step, keep_secret=(0, 1))` returns the selected outputs as `Secret` handles
instead of revealing them; passing a handle back into any jitted function on the
same cluster uses its shares directly. Only `spu.reveal(handle)` opens one.
"""
from __future__ import annotations

from typing import Any, List

import jax
import numpy as np

from .codec import decode


class Secret:
    """A secret-shared array held by the parties of one cluster (never in the clear
    at the caller). Has `.shape` and `.dtype` like an array."""
    __slots__ = ("shares", "ir_type", "shape", "dtype", "cluster")

    def __init__(self, shares: List[Any], ir_type, shape, dtype, cluster):
        self.shares = shares          # in-process: one Share per party; networked: a KeptShares id
        self.ir_type = ir_type
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.cluster = cluster

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Secret({self.ir_type})"

    def __array__(self, *a, **k):
        raise TypeError("a Secret cannot be used as a plaintext array; call spu.reveal(x) "
                        "to open it, or pass it to a function compiled with spu.jit")


def is_secret_handle(x) -> bool:
    return isinstance(x, Secret)


def reveal(tree):
    """Open every Secret handle in a pytree (all parties send their shares to the caller)."""
    def open_one(x):
        if not isinstance(x, Secret):
            return x
        c = x.cluster
        if hasattr(x.shares, "reveal"):          # kept at networked parties
            ring_value = x.shares.reveal(x.ir_type)
        else:                                    # in-process: the parties' Shares
            ring_value = c.proto_cls.reconstruct(x.shares, c.ring)
        return decode(c.ring, ring_value, x.ir_type, jax.ShapeDtypeStruct(x.shape, x.dtype))
    return jax.tree_util.tree_map(open_one, tree, is_leaf=is_secret_handle)

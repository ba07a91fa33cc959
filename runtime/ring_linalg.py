"""dot_general on ring arrays, on top of the exact fast ring matmul."""
from __future__ import annotations

import numpy as np

from .ring_matmul import ring_matmul


def _prep(x, contract, batch):
    free = [i for i in range(x.ndim) if i not in contract and i not in batch]
    return free


def ring_dot_general(a: np.ndarray, b: np.ndarray, dims, bits: int = 64) -> np.ndarray:
    """Exact jax.lax.dot_general(a, b, dims) mod 2^bits; dims as in the IR `dot` op:
    (lhs_contract, rhs_contract, lhs_batch, rhs_batch). Output: batch, lhs free, rhs free."""
    lc, rc, lb, rb = [list(d) for d in dims]
    lf, rf = _prep(a, lc, lb), _prep(b, rc, rb)
    bshape = [a.shape[i] for i in lb]
    m = int(np.prod([a.shape[i] for i in lf], dtype=np.int64))
    n = int(np.prod([b.shape[i] for i in rf], dtype=np.int64))
    k = int(np.prod([a.shape[i] for i in lc], dtype=np.int64))
    nb = int(np.prod(bshape, dtype=np.int64))
    a2 = np.transpose(a, lb + lf + lc).reshape(nb, m, k)
    b2 = np.transpose(b, rb + rc + rf).reshape(nb, k, n)
    out = ring_matmul(a2 if nb > 1 else a2[0], b2 if nb > 1 else b2[0], bits)
    return out.reshape(bshape + [a.shape[i] for i in lf] + [b.shape[i] for i in rf])

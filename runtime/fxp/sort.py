"""Sorting secret keys along the last axis: a bitonic sorting network.

The network's schedule of compare-exchanges depends only on the length, so nothing
about the data shows. Length n is padded to N = 2^ceil(log2 n) with public sentinels
that sort to the end, then every stage (k, j) compare-exchanges the pairs (i, i ^ j) in
the direction that bit k of i gives:
    swap = [a < b]     (a, b: the pair's keys in the order that should not stand)
    d    = swap * (v_hi - v_lo);  v_lo += d;  v_hi -= d     for the key and every operand
Stable, like jnp.sort: the network compares c = key 2^b + i (i the position, b =
log2(N); descending: N - 1 - i, so that earlier positions still come first among equal
keys, like lax.top_k), made locally; the key itself is carried like the operands, so it
comes out exact. Domain: |key| < 2^(k-2-b) as a ring integer (real |x| < 2^(44-b) for
fixed point at k = 64, f = 18: 1.7e10 for n <= 1024).
Cost: log2(N) (log2(N) + 1) / 2 stages, each one batched comparison (aby3: 9 rounds)
and one batched product (1 round) over N/2 pairs and all operands; for N = 8, 6 stages.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B
from .compare import bit_product, cat_last, less, take_last


def _pad(P: Protocol, x, N: int, value: int):
    n = x.shape[-1]
    if n == N:
        return x
    fill = np.full(x.shape[:-1] + (N - n,), value, np.int64).astype(P.ring.dtype)
    return cat_last(P, [x, fill])


def sort_last(P: Protocol, key: Share, others: Sequence, descending: bool = False) -> List[Share]:
    """[sorted key] + [each operand permuted like it], all secret, along the last axis."""
    n = key.shape[-1]
    N = 1 << max(0, (n - 1).bit_length())
    b = max(1, (N - 1).bit_length())
    pos = np.arange(n)[::-1] if descending else np.arange(n)
    tie = np.broadcast_to(pos.astype(P.ring.dtype), key.shape)
    comp = B.add(P, B.lshift(P, key, b), tie)           # key 2^b + position: no ties
    big = (1 << (P.ring.bits - 2)) - 1                  # sorts after every valid key
    vals = [_pad(P, comp, N, -big if descending else big), _pad(P, key, N, 0)]
    vals += [_pad(P, B.public_as_share(P, o, key) if not B.is_secret(o) else o, N, 0)
             for o in others]
    idx = np.arange(N)
    k = 2
    while k <= N:
        j = k // 2
        while j >= 1:
            lo = idx[(idx ^ j) > idx]
            hi = lo ^ j
            up = (lo & k) == 0                       # this pair's block ascends
            if descending:
                up = ~up
            # swap iff the pair stands the wrong way: a < b with (a, b) = up ? (hi, lo) : (lo, hi)
            key_now = vals[0]
            swap = less(P, take_last(key_now, np.where(up, hi, lo)),
                        take_last(key_now, np.where(up, lo, hi)))
            m = len(lo)
            diffs = [B.sub(P, take_last(v, hi), take_last(v, lo)) for v in vals]
            d = bit_product(P, cat_last(P, [swap] * len(vals)), cat_last(P, diffs))
            back = np.argsort(np.concatenate([lo, hi]))   # positions of lo ++ hi
            new = []
            for i, v in enumerate(vals):
                di = take_last(d, slice(i * m, (i + 1) * m))
                pair = cat_last(P, [B.add(P, take_last(v, lo), di), B.sub(P, take_last(v, hi), di)])
                new.append(take_last(pair, back))
            vals = new
            j //= 2
        k *= 2
    return [take_last(v, slice(0, n)) for v in vals[1:]]

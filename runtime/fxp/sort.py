"""Sorting secret keys along the last axis: a bitonic sorting network.

The network's schedule of compare-exchanges depends only on the length, so nothing
about the data shows. Length n is padded to N = 2^ceil(log2 n) with public sentinels
that sort to the end, then every stage (k, j) compare-exchanges the pairs (i, i ^ j) in
the direction that bit k of i gives:
    swap = [a < b]     (a, b: the pair's keys in the order that should not stand)
    d    = swap * (v_hi - v_lo);  v_lo += d;  v_hi -= d     for the key and every operand
Cost: log2(N) (log2(N) + 1) / 2 stages, each one batched comparison (aby3: 9 rounds)
and one batched product (1 round) over N/2 pairs and all operands; for N = 8, 6 stages.
Not stable: among equal keys the carried operands (e.g. argsort's indices) may come out
in any order. Keys must satisfy |a - b| < 2^(k-1) (every valid fixed-point or integer
value does).
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ..protocols.base import Protocol, Share
from . import basic as B
from .compare import less


def _take(x, idx):
    return B.map_local(x, lambda s: s[..., idx])


def _cat(P: Protocol, xs):
    return B.zip_local(lambda *a: np.concatenate(a, axis=-1), xs, P)


def _pad(P: Protocol, x, N: int, value: int):
    n = x.shape[-1]
    if n == N:
        return x
    fill = np.full(x.shape[:-1] + (N - n,), value, np.int64).astype(P.ring.dtype)
    return _cat(P, [x, fill])


def sort_last(P: Protocol, key: Share, others: Sequence, descending: bool = False) -> List[Share]:
    """[sorted key] + [each operand permuted like it], all secret, along the last axis."""
    n = key.shape[-1]
    N = 1 << max(0, (n - 1).bit_length())
    big = (1 << (P.ring.bits - 2)) - 1                  # sorts after every valid key
    vals = [_pad(P, key, N, -big if descending else big)]
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
            swap = less(P, _take(key_now, np.where(up, hi, lo)), _take(key_now, np.where(up, lo, hi)))
            m = len(lo)
            diffs = [B.sub(P, _take(v, hi), _take(v, lo)) for v in vals]
            d = B.mul(P, _cat(P, [swap] * len(vals)), _cat(P, diffs))
            back = np.argsort(np.concatenate([lo, hi]))   # positions of lo ++ hi
            new = []
            for i, v in enumerate(vals):
                di = _take(d, slice(i * m, (i + 1) * m))
                pair = _cat(P, [B.add(P, _take(v, lo), di), B.sub(P, _take(v, hi), di)])
                new.append(_take(pair, back))
            vals = new
            j //= 2
        k *= 2
    return [_take(v, slice(0, n)) for v in vals]

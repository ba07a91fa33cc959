"""Polynomials and products over secret fixed-point values, a round at a time.

- fit: monomial coefficients of a Chebyshev interpolant (near-minimax) of a function
  on an interval, in whatever affine variable the caller can compute locally.
- mul_round: one batch of independent products, each optionally truncated.
- Stages advanced one level (one round of products + truncations) per `step`, so
  independent stages share rounds:
    Powers  z^2..z^d in ceil(log2 d) levels; sum c_i z^i is then local;
    Poly    sum c_i z^i as L(z) + z^s H(z): fewer products than all the powers;
    Tree    a balanced product of factors (e.g. public constants selected by bits).
  Sums of c_i z^i stay untruncated at scale 2w, so one truncation takes them anywhere.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
from numpy.polynomial import Chebyshev, Polynomial

from ..protocols.base import Protocol
from . import basic as B
from .batch import mul_many, mul_trunc_many, trunc_many


def fit(fn: Callable, lo: float, hi: float, deg: int, center: float = 0.0,
        scale: float = 1.0) -> np.ndarray:
    """Coefficients c_0..c_deg with fn(x) ~ sum c_i z^i, z = (x - center) / scale,
    interpolating fn at the Chebyshev points of [lo, hi]."""
    cheb = Chebyshev.interpolate(fn, deg, domain=[lo, hi])
    win = [(lo - center) / scale, (hi - center) / scale]
    return cheb.convert(kind=Polynomial, domain=[lo, hi], window=win).coef


def enc(v: float, scale: int, dt):
    """round(v * 2^scale) as a ring element (v may be negative)."""
    bits = 8 * np.dtype(dt).itemsize
    return dt(int(round(float(v) * 2.0 ** scale)) % (1 << bits))


def mul_round(P: Protocol, items: Sequence[Tuple[object, object, Optional[int]]]) -> list:
    """Products a * b, truncated by `shift` when it is not None: one round of products,
    plus one round of truncations per distinct shift. When every secret product is
    truncated by the same shift, the protocol's fused mul_trunc does both."""
    secret = [i for i, (a, b, _) in enumerate(items) if B.is_secret(a) and B.is_secret(b)]
    shifts = {items[i][2] for i in secret}
    # a secret x public product with a shift needs a protocol truncation of its own; it
    # shares the round of the others' truncations only on the unfused path
    lone = any(s and (B.is_secret(a) or B.is_secret(b))
               for i, (a, b, s) in enumerate(items) if i not in secret)
    if secret and len(shifts) == 1 and None not in shifts and 0 not in shifts and not lone:
        (s,) = shifts
        out = [None] * len(items)
        for i, (a, b, sh) in enumerate(items):
            if i not in secret:                # public product: a local shift
                out[i] = B.trunc(P, B.mul(P, a, b), sh) if sh else B.mul(P, a, b)
        for i, r in zip(secret, mul_trunc_many(P, [items[i][:2] for i in secret], s)):
            out[i] = r
        return out
    prods = mul_many(P, [(a, b) for a, b, _ in items])
    by_shift = {}
    for i, (_, _, s) in enumerate(items):
        if s:
            by_shift.setdefault(s, []).append(i)
    for s, idx in by_shift.items():
        for i, r in zip(idx, trunc_many(P, [prods[i] for i in idx], s)):
            prods[i] = r
    return prods


class Powers:
    """z, z^2, .., z^deg at scale w; one level (a round of products + truncations) per
    step, so other products can share the rounds (see step)."""

    def __init__(self, z, deg: int, w: int):
        self.p = {1: z}
        self.w = w
        self.plan = []
        top = 1
        while top < deg:
            self.plan.append([(n, top, n - top) for n in range(top + 1, min(2 * top, deg) + 1)])
            top = min(2 * top, deg)

    @property
    def done(self) -> bool:
        return not self.plan

    def items(self):
        return [(self.p[a], self.p[b], self.w) for _, a, b in self.plan[0]]

    def absorb(self, res):
        for (n, _, _), r in zip(self.plan.pop(0), res):
            self.p[n] = r

    def combine(self, P: Protocol, coef: Sequence[float], cscale: int):
        """sum_i coef_i z^i at scale w + cscale, untruncated (local)."""
        dt = P.ring.dtype
        acc = enc(coef[0], cscale + self.w, dt)
        for i in range(1, len(coef)):
            acc = B.add(P, B.mul(P, self.p[i], enc(coef[i], cscale, dt)), acc)
        return acc


class Poly:
    """sum_i c_i z^i (public c_i, z at scale w) split as L(z) + z^s H(z), s the largest
    power of two <= deg: the powers z..z^s (log2 s levels), H (degree deg - s, at scale
    w) truncated as soon as its powers exist, then one product z^s H. Degree 6: 4
    products and 4 truncations in 3 levels (all powers: 5 and 5). `value` is at scale
    2w, untruncated, so the caller's one truncation can take it to any scale."""

    def __init__(self, P: Protocol, z, coef: Sequence[float], w: int):
        self.P, self.coef, self.w = P, list(coef), w
        deg = len(coef) - 1
        self.s = 1 << (deg.bit_length() - 1) if deg > 0 else 0
        self.pw = Powers(z, self.s, w)
        hdeg = deg - self.s
        self.h_at = math.ceil(math.log2(hdeg)) if hdeg > 1 else 0   # level that truncates H
        self.h = None if hdeg > 0 else enc(coef[-1], w, P.ring.dtype) if deg > 0 else None
        self.level = 0
        self.zh = None

    @property
    def done(self) -> bool:
        return self.zh is not None or self.s == 0

    def items(self):
        its = [] if self.pw.done else self.pw.items()
        if self.h is None and self.level >= self.h_at:     # H's powers exist: truncate it
            hsum = self.pw.combine(self.P, self.coef[self.s:], self.w)
            its.append((hsum, enc(1, 0, self.P.ring.dtype), self.w))
        elif self.h is not None and self.pw.done:
            its.append((self.pw.p[self.s], self.h, None))
        return its

    def absorb(self, res):
        res = list(res)
        if not self.pw.done:
            n = len(self.pw.plan[0])
            self.pw.absorb(res[:n])
            res = res[n:]
        if res and self.h is None:
            self.h = res.pop(0)
        elif res:
            self.zh = res.pop(0)
        self.level += 1

    def value(self):
        """L(z) + z^s H(z) at scale 2w (after the stage is done)."""
        if self.s == 0:
            return enc(self.coef[0], 2 * self.w, self.P.ring.dtype)
        low = self.pw.combine(self.P, self.coef[:self.s], self.w)
        return B.add(self.P, low, self.zh)


class Tree:
    """Balanced product tree of factors (each product truncated by `shift` if given):
    ceil(log2 n) levels, one per step."""

    def __init__(self, factors: Sequence, shift: Optional[int] = None):
        self.nodes = list(factors)
        self.shift = shift

    @property
    def done(self) -> bool:
        return len(self.nodes) <= 1

    def items(self):
        n = self.nodes
        return [(n[i], n[i + 1], self.shift) for i in range(0, len(n) - 1, 2)]

    def absorb(self, res):
        self.nodes = list(res) + (self.nodes[-1:] if len(self.nodes) % 2 else [])

    @property
    def value(self):
        return self.nodes[0]


def step(P: Protocol, stages: Sequence, extra: Sequence = ()) -> list:
    """One round: the next level of every unfinished stage plus `extra` items (see
    mul_round). Returns the results of the extra items."""
    active = [s for s in stages if not s.done]
    items, cuts = [], []
    for s in active:
        its = s.items()
        cuts.append(len(its))
        items += its
    res = mul_round(P, items + list(extra))
    i = 0
    for s, c in zip(active, cuts):
        s.absorb(res[i:i + c])
        i += c
    return res[i:]


def run(P: Protocol, stages: Sequence) -> None:
    while not all(s.done for s in stages):
        step(P, stages)


def select_const(P: Protocol, b, v0: float, v1: float, scale: int = 0):
    """v0 + b (v1 - v0) at `scale` for an arithmetic 0/1 share b (local)."""
    dt = P.ring.dtype
    return B.add(P, B.mul(P, b, enc(v1 - v0, scale, dt)), enc(v0, scale, dt))

"""Seeded dealing: shares of an input whose random pieces travel as PRG seeds.

Whoever shares a value (the driver for its inputs, a party for the data it owns)
splits the ring array x into pieces

    x = p_0 + p_1 + ... + p_{m-1}   (mod 2^k)

where p_0 .. p_{m-2} are keystreams of fresh 128-bit keys, p_j = Prg(k_j).uniform,
and the correction p_{m-1} = x - p_0 - ... - p_{m-2} is the only piece computed from
x. A party that is to hold p_j is sent k_j (16 bytes) instead of the array and
expands it itself; only the correction travels in full. aby3 (m = 3, every piece
held by two parties): P_0 gets (k_0, k_1), P_1 (k_1, p_2), P_2 (p_2, k_0): two full
arrays instead of six. semi2k (m = n): P_0 .. P_{n-2} get a key each, P_{n-1} the
correction: one array instead of n.

Security: a key is exactly as secret as the piece it expands to and goes only to
the parties that hold that piece (over their encrypted link); keys are drawn fresh
for every input from the sharer's cryptographic PRG and never reused. A party's
view is the same as with full arrays (the keystream of an unknown key is uniform).

Cost: the sharer draws 16 bytes per random piece instead of the piece; every holder
of a key pays one AES-CTR pass over the piece (~0.1 ns/byte) to expand it.

The in-process cluster deals through the same function and expands at once
(`expand_all`), so a seeded in-process cluster and a seeded deployment hold
bit-identical shares.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from ..prg import KEY_BYTES, Prg
from ..ring import Ring
from .base import Share
from .semi2k_common import _fill, uniform

Part = Union[np.ndarray, bytes]


class SeedError(ValueError):
    """A seeded share that does not fit the input it stands for. Its text names
    counts, sizes and shapes only, never a key or a value."""


class SeededShare:
    """One party's share as dealt: each part a ring array, or the 16-byte key whose
    keystream is that part."""
    __slots__ = ("parts", "boolean")

    def __init__(self, parts: Sequence[Part], boolean: bool = False):
        self.parts = tuple(parts)
        self.boolean = boolean

    @property
    def nbytes(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p.nbytes for p in self.parts)

    def expand(self, shape, dtype, nparts: int) -> Share:
        """The Share this stands for, as an input of `shape` and ring `dtype` with
        `nparts` parts; SeedError if it does not fit (anything received may be
        hostile: wrong part count, a key of the wrong length, an array of another
        shape or dtype)."""
        return Share([_expanded(p, shape, dtype, {}) for p in self._checked(shape, dtype, nparts)],
                     self.boolean)

    def _checked(self, shape, dtype, nparts: int) -> Tuple[Part, ...]:
        shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        if len(self.parts) != nparts:
            raise SeedError(f"a share of {len(self.parts)} parts ({nparts} expected)")
        for p in self.parts:
            if isinstance(p, bytes):
                if len(p) != KEY_BYTES:
                    raise SeedError(f"a share seed of {len(p)} bytes ({KEY_BYTES} expected)")
            elif not isinstance(p, np.ndarray):
                raise SeedError(f"a share part of type {type(p).__name__}")
            elif p.dtype != dtype or p.shape != shape:
                raise SeedError(f"a share part of {p.dtype} {p.shape} ({dtype} {shape} "
                                f"expected)")
        return self.parts

    def __repr__(self):
        kinds = ",".join("seed" if isinstance(p, bytes) else "array" for p in self.parts)
        return f"SeededShare[{kinds}]"           # never the keys


def _expanded(p: Part, shape, dtype, cache: Dict[bytes, np.ndarray]) -> np.ndarray:
    if not isinstance(p, bytes):
        return p
    if p not in cache:
        cache[p] = uniform(Prg(p), shape, dtype)
    return cache[p]


def seeded_pieces(x: np.ndarray, count: int, prg: Prg,
                  ring: Ring) -> Tuple[List[bytes], np.ndarray]:
    """`count - 1` fresh keys from prg and the correction x - sum of their keystreams."""
    x = np.asarray(x)
    if x.dtype != ring.dtype:
        x = ring.cast(x)
    keys = [bytes(prg.bytes(KEY_BYTES)) for _ in range(count - 1)]
    if not keys:
        return keys, np.array(x, copy=True)
    stream = uniform(Prg(keys[0]), x.shape, ring.dtype)
    correction = np.subtract(x, stream, out=np.empty(x.shape, ring.dtype))   # 0-d: an array
    for k in keys[1:]:                      # one scratch array for every keystream
        correction -= _fill(Prg(k), stream)
    return keys, correction


def deal_expanded(cls, x, nparties: int, prg: Prg, ring: Ring) -> List[Share]:
    """Protocol.deal for protocols with a seeded dealing: cls.deal_seeded, expanded."""
    return expand_all(cls.deal_seeded(x, nparties, prg, ring), np.shape(x), ring.dtype,
                      cls.share_parts)


def expand_all(shares: Sequence[SeededShare], shape, dtype, nparts: int) -> List[Share]:
    """Every party's Share (each key expanded once; parties holding the same piece
    share one array, which nobody modifies)."""
    cache: Dict[bytes, np.ndarray] = {}
    return [Share([_expanded(p, shape, dtype, cache) for p in s._checked(shape, dtype, nparts)],
                  s.boolean) for s in shares]

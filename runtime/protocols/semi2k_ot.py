"""semi2k_ot: two-party semi2k with no dealer. The online protocol is semi2k's own, sign bits
aside (semi2k.py: Beaver products, matrix triples, exact truncation pairs, AND triples, bit
injection); the correlations it asks the dealer for are made by the two computing
parties themselves with oblivious transfer (semi2k_ot_source.py, runtime/ot).

How it plugs in. Semi2k reads its random pieces (a_i, b_i, r_i, ...) from a keystream
self.prg, P_1 reads its derived pieces (c_1, ...) from self.prg_d, and P_0 receives its
derived pieces from the dealer after sending a request (kind, shape). Here every
request is served locally at the moment it is made: both parties (SPMD, same requests
in the same order) run the OT construction for that request, then put their pieces on
tapes in exactly the layout in which semi2k reads them (elementwise kinds in blocks of
BLOCK, the pieces of a block side by side; dots and bit injections piece after piece).
self.prg and self.prg_d are those tapes: semi2k's reads copy from them instead of
running AES. P_0's derived pieces go to the queue that _answer reads.

Correlations can also be made before a job (precompute): pools of elementwise
correlations by kind (and shift, for truncation pairs) and dot triples by shape; a
request takes from the pool first and makes only what is missing.

Security: semi-honest, against the other party. Each party's view of the offline phase
is OT messages (IKNP's u matrix: uniform; Gilboa corrections: padded by hashes the
receiver cannot compute); the online view is semi2k's (openings padded by correlations
no party knows in full). Randomness: the party's local PRG (os.urandom-keyed
AES-CTR, runtime.prg; derived from the seed only in a seeded test cluster).
Sign bits (comparisons) are the one exception to semi2k's online protocol: sign_bit
runs the millionaires' protocol of semi2k_ot_compare.py (7 rounds, ~42 bytes and 794
offline bytes per element, against the boolean adder's 8 rounds, 192 and 13,068).
Select's product c * x (c a 0/1 value) is the other: mux runs the OT multiplexer of
semi2k_ot_mux.py (1 round as Beaver's, 24 offline bytes per element against 1,368).
Truncation is the third: trunc ANDs the pieces' top bits with a random bit product
(semi2k_ot_trunc.py: 1 round of 1 bit, 12 offline bytes per element against a
truncation pair's ~740 bytes and semi2k's 8 online bytes).
Costs: otherwise online exactly semi2k's for two parties, without the dealer's messages;
offline per correlation in semi2k_ot_source.py. Offline traffic is counted apart from online
(offline_stats: bytes, messages, seconds).
"""
from __future__ import annotations

from collections import deque
from typing import Dict, Tuple

import numpy as np

from ..link import PeerError
from ..ot.cot_mul import OtLink
from ..prg import KEY_BYTES, Prg
from .semi2k import Semi2k
from .semi2k_common import (AND, B2A, BLOCK, DOT, DOT_KEEP, DOT_REUSE, MUL, SQUARE, TRUNC,
                            _blocks, _size)
from .semi2k_ot_compare import AND2, ROT, empty_pieces, sign_bit
from .semi2k_ot_mux import MUX, mux
from .semi2k_ot_source import OtCorrelations
from .semi2k_ot_trunc import trunc_by_msb


class _TapeCipher:
    """Stands in for an AES-CTR encryptor: 'encrypting' n bytes yields the next n bytes
    of the tape (what _fill and Prg.bytes ask of a keystream)."""

    def __init__(self):
        self.chunks = deque()       # uint8 arrays
        self.pos = 0                # read position in chunks[0]

    def push(self, arr: np.ndarray) -> None:
        if arr.size:
            self.chunks.append(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))

    def update_into(self, data, out) -> int:
        out = np.frombuffer(out, np.uint8) if not isinstance(out, np.ndarray) else out
        n, off = len(data), 0
        while off < n:
            if not self.chunks:
                raise PeerError("semi2k_ot: correlation tape ran dry (requests out of step)")
            c = self.chunks[0]
            take = min(n - off, c.size - self.pos)
            out[off:off + take] = c[self.pos:self.pos + take]
            off, self.pos = off + take, self.pos + take
            if self.pos == c.size:
                self.chunks.popleft()
                self.pos = 0
        return n

    def update(self, data) -> bytes:
        out = np.empty(len(data), np.uint8)
        self.update_into(data, out)
        return out.tobytes()


class Tape(Prg):
    """A Prg whose bytes are pieces put on it beforehand (see the module docstring)."""

    def __init__(self):              # no key: nothing is generated
        self._enc = _TapeCipher()

    def push(self, *arrays) -> None:
        for a in arrays:
            self._enc.push(a)

    @property
    def empty(self) -> bool:
        return not self._enc.chunks


def _interleave(arrays, n):
    """Pieces of elementwise correlations in semi2k's block layout: for each block of
    BLOCK elements, the block of every array, in order."""
    out = []
    for lo, hi in _blocks(n):
        out += [a[lo:hi] for a in arrays]
    return out


class Semi2kOT(Semi2k):
    name = "semi2k_ot"
    default_parties = 2
    needs_dealer = False

    def __init__(self, ctx):
        super().__init__(ctx)
        if self.n != 2:
            raise ValueError("semi2k_ot (no dealer) runs with exactly 2 parties")
        self.peer = 1 - self.rank
        self.link = None
        self.source = None
        self._answers = deque()
        self._kept_b: Dict[int, np.ndarray] = {}
        self.pools: Dict[Tuple, list] = {}
        self.requests = 0

    # ---- setup ------------------------------------------------------------------------
    def setup(self) -> None:
        """128 base OTs each way (Chou-Orlandi), then IKNP is ready; private PRG for the
        random pieces. Every secret here (Delta, base-OT scalars, the pieces' PRG key)
        is drawn from the party's local PRG: keyed by os.urandom, or, in a seeded test
        cluster only, derived from the seed, so that a seeded run is reproducible and
        the same in-process and on networked nodes."""
        tr = self.comm.transport
        rand = self.ctx.local_prg.bytes
        self.link = OtLink(lambda obj: tr.send(self.peer, obj), lambda: tr.recv(self.peer))
        self.link.setup(rand)
        self.source = OtCorrelations(self.link, self.rank, self.ring, Prg(bytes(rand(KEY_BYTES))))
        self.prg = Tape()
        self.prg_d = None if self.first else Tape()

    def begin_job(self) -> None:
        """Fresh tapes: nothing of a job that failed half-way is read by the next one
        (a failed job breaks the cluster anyway; this keeps the tapes honest)."""
        super().begin_job()
        self._kept_b = {}
        self._answers.clear()
        self.prg = Tape()
        self.prg_d = None if self.first else Tape()

    def end_job(self) -> None:
        self._kept_d = {}
        self._kept_b = {}
        if not self.prg.empty or self._answers or (self.prg_d is not None and not self.prg_d.empty):
            raise PeerError("semi2k_ot: correlations left over at the end of a job")

    def offline_stats(self) -> Dict[str, float]:
        """Correlation generation so far: seconds, bytes sent and messages (this party)."""
        return {"seconds": self.source.seconds, "bytes": self.link.bytes_sent,
                "messages": self.link.messages, "requests": self.requests}

    # ---- the dealer's interface, served locally -----------------------------------------
    def _request(self, kind, params) -> None:
        self.requests += 1
        random_pieces, derived = self._make(kind, params)
        self.prg.push(*random_pieces)
        if self.first:
            self._answers.append(derived[0] if len(derived) == 1 else tuple(derived))
        elif kind == TRUNC:
            self.prg_d.push(*_interleave(derived, derived[0].size))
        else:
            self.prg_d.push(*derived)

    def _answer(self):
        return self._answers.popleft()

    def _make(self, kind, params):
        """(random pieces in read order, derived pieces) of one request."""
        if kind in (MUL, AND):
            a, b, c = self._take(kind, _size(params[0]))
            return _interleave((a, b), a.size), [c]
        if kind == SQUARE:
            a, c = self._take(kind, _size(params[0]))
            return [a], [c]
        if kind == TRUNC:
            r, s, w = self._take((TRUNC, params[1]), _size(params[0]))
            return [r], [s, w]
        if kind == B2A:
            rb, ra = self._take(kind, _size(params[0]))
            return [rb], [ra.reshape(params[0])]
        if kind in (DOT, DOT_KEEP):
            a, b, c = self._take_dot(params[:3])
            if kind == DOT_KEEP:
                self._kept_b[params[3]] = b
            return [a, b], [c]
        if kind == DOT_REUSE:
            b = self._kept_b.get(params[3])
            if b is None:
                raise PeerError("semi2k_ot: no kept B for a reused dot")
            a, _, c = self.source.dot(*params[:3], b=b)
            return [a], [c]
        raise PeerError(f"semi2k_ot: unknown correlation kind {kind}")

    # ---- comparison ---------------------------------------------------------------------
    def sign_bit(self, x, width, shift=0):
        """Sign bits by the millionaires' protocol (semi2k_ot_compare.py): 1-out-of-16
        OTs made offline (ROT correlations, pooled like the others) instead of the
        ~12 AND words per element of the boolean adder."""
        return sign_bit(self, x, width, shift, self._take_own)

    #: truncate by semi2k's truncation pairs (the previous construction, ~740 offline bytes
    #: per element): only for before/after measurements (bench_two_party --trunc-by-pair)
    trunc_by_pair = False

    def trunc(self, x, bits):
        """x >> bits by the pieces' top bits and one random bit product
        (semi2k_ot_trunc.py): 1 round of 1 bit per element, 12 offline bytes per element
        instead of a truncation pair's ~740; floor(x / 2^m) or one more, as semi2k's."""
        if self.trunc_by_pair:
            return super().trunc(x, bits)
        self.requests += 1
        return trunc_by_msb(self, x, bits, self._take)

    def mux(self, c, x, products=None):
        """select's product c * x (c a 0/1 value) by the OT multiplexer of
        semi2k_ot_mux.py: 1 round, 24 offline bytes per element instead of a Beaver
        triple's 1,368; products = (y, w): also y * w by a triple, in the same round."""
        return mux(self, c, x, self._take_own, products)

    def _take_own(self, key, n):
        """n correlations of a kind only semi2k_ot asks for: AND2, MUX, or ROT with n = (sent
        by party 0, sent by party 1), both directions made in the same OT batches (so
        the two parties work at the same time)."""
        self.requests += 1
        if key != ROT:
            return self._take(key, n)
        heads, need = [], []
        for sender, want in enumerate(n):
            pool = self.pools.get((ROT, sender))
            use = min(want, 0 if pool is None else pool[0].shape[0])
            heads.append([p[:use] for p in pool] if use else None)
            if use:
                self.pools[(ROT, sender)] = [p[use:] for p in pool]
            need.append(want - use)
        made = self.source.rot(*need) if any(need) else \
            tuple(empty_pieces((ROT, sender), self.rank, 0, None) for sender in (0, 1))
        return tuple(tuple(m) if h is None else tuple(np.concatenate(hm) for hm in zip(h, m))
                     for h, m in zip(heads, made))

    # ---- pools (precompute) ---------------------------------------------------------------
    def _generate(self, key, n):
        kind = key[0] if isinstance(key, tuple) else key
        if kind == ROT:
            return self.source.rot(*((n, 0) if key[1] == 0 else (0, n)))[key[1]]
        if kind == AND2:
            return self.source.and2(n)
        if kind == MUX:
            return self.source.mux(n)
        if kind == MUL:
            return self.source.mul(n)
        if kind == AND:
            return self.source.and_(n)
        if kind == SQUARE:
            return self.source.square(n)
        if kind == B2A:
            return self.source.b2a(n)
        if kind == TRUNC:
            return self.source.trunc(n, key[1])
        raise ValueError(f"semi2k_ot: cannot pool correlation kind {kind}")

    def _pooled(self, key, n):
        """n fresh correlations in pool form (b2a: unpacked bits)."""
        made = list(self._generate(key, n))
        if key == B2A:
            made[0] = np.unpackbits(made[0], count=n)
        return made

    def _take(self, key, n):
        """n elementwise correlations: from the pool first, the rest made now."""
        pool = self.pools.get(key)
        have = 0 if pool is None else pool[0].shape[0]
        if have == 0:
            return self._generate(key, n)
        use = min(have, n)
        head = [p[:use] for p in pool]
        self.pools[key] = [p[use:] for p in pool]
        if use < n:
            head = [np.concatenate([h, r]) for h, r in zip(head, self._pooled(key, n - use))]
        if key == B2A:
            head[0] = np.packbits(head[0])
        return tuple(head)

    def _take_dot(self, params):
        key = ("dot",) + tuple(params)
        pool = self.pools.get(key)
        if pool:
            return pool.pop()
        return self.source.dot(*params)

    def precompute(self, counts) -> None:
        """Make correlations before a job. counts: {MUL: n, SQUARE: n, AND: n, B2A: n,
        (TRUNC, m): n, (ROT, sender): n, AND2: n, MUX: n, ("dot", xs, ys, dims): count};
        every party must pass the same."""
        counts = dict(counts)
        if (ROT, 0) in counts and (ROT, 1) in counts:      # both directions in one go
            both = self.source.rot(counts.pop((ROT, 0)), counts.pop((ROT, 1)))
            for sender, made in enumerate(both):
                self._add_to_pool((ROT, sender), list(made))
        for key, n in counts.items():
            if isinstance(key, tuple) and key[0] == "dot":
                self.pools.setdefault(key, []).extend(self.source.dot(*key[1:]) for _ in range(n))
                continue
            self._add_to_pool(key, self._pooled(key, n))

    def _add_to_pool(self, key, made) -> None:
        old = self.pools.get(key)
        self.pools[key] = made if not old else [np.concatenate([o, p]) for o, p in zip(old, made)]

"""Exact matrix products modulo 2^k (k = 64 or 32) through float64 BLAS.

numpy has no BLAS path for integer matmul (np.matmul on uint64 512^3: ~300 ms, float64: ~3 ms), so the ring product
is emulated with a few exact float64 GEMMs.

Algebra.  A limb set W = (w_0, w_1, ..) splits x into balanced digits x_i in [-2^(w_i-1), 2^(w_i-1)):
y = x + sum_i 2^(s_i+w_i-1), x_i = ((y >> s_i) mod 2^w_i) - 2^(w_i-1), s_i = w_0+..+w_(i-1), so x = sum_i x_i 2^s_i
(mod 2^sum(W)).  Then A@B = sum_{i,j} (A_i@B_j) 2^(s_i+s_j) (mod 2^k): only pairs with s_i + s_j < k are needed, and a
pair at shift s only needs its operands mod 2^(k-s).  Pairs with one coefficient are fused into one GEMM along K:
A0@B1 + A1@B0 = [A0|A1] @ [B1;B0].  All blocks live in two float64 workspaces laid out so that every GEMM reads
contiguous slices (np.matmul(..., out=), no copies).  Schemes (a "unit" = one M x K x N GEMM):
  k=64 Karatsuba, limbs 22|20|22 (2*22+20 >= 64, so A1B2, A2B1 vanish):  P0 = A0B0, P1 = A1B1, Pm = (A0+A1)(B0+B1),
       Q = [A2|A0]@[B0;B2];  A@B = P0 + 2^22 (Pm - P0 - P1) + 2^44 P1 + 2^42 Q      -> 4 GEMMs, 5 units.
  k=64 schoolbook, limbs 22|22|20: [A0]@[B0], [A0|A1]@[B1;B0], [A0|A1|A2]@[B2;B1;B0] -> 3 GEMMs, 6 units (used for
       K <= 128, where converting 3 outputs instead of 4 matters more than the GEMM unit).
  k=32: B = B0 + 2^11 B1 (limbs 11|21): A@B = A@B0 + 2^11 (A mod 2^21)@B1, A as a signed 32-bit limb -> 2 units.
  (For 128 < K <= 512, i.e. w_a + w_b <= 46, slicing B and then A per B-slice needs >= 6 units: checked by DP.)

Exactness.  If every term of a GEMM is bounded by P = sum over fused block pairs of max|a| max|b|, all partial sums
are integers of magnitude <= K*P; for K*P <= 2^53 they are exactly representable, so the float64 result is exact
whatever the summation order / FMA use.  _kmax() derives the largest K from the scheme (Karatsuba 1024, schoolbook
1024, k=32 4096); longer K is cut into balanced chunks.  Results go float64 -> int64 (exact, may be negative) ->
uint64 view (= value mod 2^64), times the coefficient, summed with wrap-around (then truncated for k = 32).
Small or thin problems (_integer_is_faster: measured crossovers) use the integer np.matmul, exact as it wraps.

Measured (512^3, 2-core AMD EPYC VM, OpenBLAS, medians on a quiet host; it is often noisy): np.matmul float64 2.8-3.0
ms, uint64 300-340 ms, uint32 140-160 ms.  ring_matmul uint64: Karatsuba 18-21 ms (GEMMs ~14.5 of it), fused
schoolbook 19-22 ms, first drafts with fresh temporaries 32-36 ms; uint32 8.5 ms; ring_matmul_sum of two products
40 ms vs 43 ms for two calls.  Fresh multi-MB temporaries page-fault (~0.5-1 ms per 2 MB here; the limb split alone
took 11 ms instead of 1.6 ms): hence the reused per-thread scratch buffer and the cache-blocked combine step.
"""
import threading

import numpy as np

_SCRATCH_CAP = 64 << 20  # keep per-thread scratch buffers up to this many bytes between calls
_BLOCK = 1 << 16  # elements per block in the (cache-resident) combine step
_tls = threading.local()
# scheme = (A blocks, B blocks, GEMMs); a block is a tuple of (limb set W, limb index) terms whose float64 sum it holds;
# blocks are laid out along K in order; a GEMM (a_lo, a_hi, b_lo, b_hi, coef) adds coef * A[a_lo:a_hi] @ B[b_lo:b_hi].
_K = (22, 20, 22)
_KA0, _KA1, _KA2 = ((_K, 0),), ((_K, 1),), ((_K, 2),)
_KARATSUBA64 = ((_KA2, _KA0, _KA1, _KA0 + _KA1), (_KA0, _KA2, _KA1, _KA0 + _KA1),  # A2|A0|A1|A0+A1, B0;B2;B1;B0+B1
                ((0, 2, 0, 2, 1 << 42), (1, 2, 0, 1, 1 - (1 << 22)),  # Q, P0
                 (2, 3, 2, 3, (1 << 44) - (1 << 22)), (3, 4, 3, 4, 1 << 22)))  # P1, Pm
_S = (22, 22, 20)
_SA0, _SA1, _SA2 = ((_S, 0),), ((_S, 1),), ((_S, 2),)
_SCHOOL64 = ((_SA0, _SA1, _SA2), (_SA2, _SA1, _SA0),  # A0|A1|A2 and B2;B1;B0
             ((0, 1, 2, 3, 1), (0, 2, 1, 3, 1 << 22), (0, 3, 0, 3, 1 << 44)))
_TRUNC32 = ((((((32,), 0),), (((21,), 0),)), ((((11, 21), 0),), (((11, 21), 1),)),  # A|A mod 2^21 and B0;B1
            ((0, 1, 0, 1, 1), (1, 2, 1, 2, 1 << 11))))


def _kmax(scheme):
    """Largest K for which every GEMM of the scheme is exact in float64."""
    ablk, bblk, gemms = scheme
    mag = lambda blk: sum(1 << (W[i] - 1) for W, i in blk)
    per_k = max(sum(mag(ablk[i]) * mag(bblk[j]) for i, j in zip(range(a0, a1), range(b0, b1)))
                for a0, a1, b0, b1, _ in gemms)
    return (1 << 53) // per_k


def _pick_scheme(bits, K):
    if bits == 32:
        return _TRUNC32
    # Karatsuba: 5/6 of the GEMM work but 4 outputs to convert instead of 3; measured to pay off for K > 128.
    return _KARATSUBA64 if K > 128 else _SCHOOL64


def _scratch(specs):
    """Arrays of the given (shape, dtype) carved from one reusable per-thread buffer: fresh multi-MB temporaries
    cost page faults (~0.5-1 ms per 2 MB on the dev VM), as much as the arithmetic on them."""
    sizes = [-(-int(np.prod(s)) * np.dtype(d).itemsize // 64) * 64 for s, d in specs]
    buf = getattr(_tls, "buf", None)
    if buf is None or buf.nbytes < sum(sizes):
        buf = np.empty(sum(sizes), np.uint8)
        if buf.nbytes <= _SCRATCH_CAP:
            _tls.buf = buf
    offs = np.cumsum([0] + sizes)
    return [buf[o:o + int(np.prod(s)) * np.dtype(d).itemsize].view(d).reshape(s) for (s, d), o in zip(specs, offs)]


def _split(x, blocks, dst, n, o, axis, ybuf, tbuf):
    """Write the blocks of balanced limbs of x (unsigned; [..., R, m] for axis=-1, [..., m, C] for axis=-2) into the
    float64 workspace dst: block j holds K positions [j*n, (j+1)*n) along axis, x goes to offsets [o, o+m) of each."""
    m = x.shape[axis]
    def view(j):
        sl = slice(j * n + o, j * n + o + m)
        return dst[..., sl] if axis == -1 else dst[..., sl, :]
    bits, u = 8 * x.dtype.itemsize, x.dtype.type
    signed = np.int64 if bits == 64 else np.int32
    y, t, cur = ybuf[:x.size].reshape(x.shape), tbuf[:x.size].reshape(x.shape), None
    where = {}
    for j, blk in enumerate(blocks):
        if len(blk) > 1:  # a sum of limbs written earlier
            np.add(view(where[blk[0]]), view(where[blk[1]]), out=view(j))
            continue
        W, i = blk[0]
        where[blk[0]] = j
        if W[i] == bits:  # a single full-width limb: the two's complement value
            np.copyto(view(j), x.view(signed), casting="unsafe")
            continue
        shifts = [sum(W[:k]) for k in range(len(W))]
        if W != cur:
            np.add(x, u(sum(1 << (s + w - 1) for s, w in zip(shifts, W)) % (1 << bits)), out=y)
            cur = W
        s, w = shifts[i], W[i]
        src = np.right_shift(y, u(s), out=t) if s else y
        if s + w < bits:
            src = np.bitwise_and(src, u((1 << w) - 1), out=t)
        # limb = src - 2^(w-1), exact in float64 (0 <= src < 2^w)
        np.subtract(src.view(signed), signed(1 << (w - 1)), out=view(j), casting="unsafe")


def _core(pairs, bits, out_shape):
    """sum_i a_i @ b_i mod 2^bits via float64 GEMMs; a_i: [..., M, K_i], b_i: [..., K_i, N] unsigned.
    The pairs are fused along K (as if [a_1 | a_2 | ...] @ [b_1 ; b_2 ; ...]), then cut into exact chunks."""
    bounds = np.cumsum([0] + [a.shape[-1] for a, _ in pairs])
    K = int(bounds[-1])
    ablk, bblk, gemms = scheme = _pick_scheme(bits, K)
    kc = -(-K // -(-K // _kmax(scheme)))  # balanced chunks, all <= kmax
    batch_a = np.broadcast_shapes(*(a.shape[:-2] for a, _ in pairs))
    batch_b = np.broadcast_shapes(*(b.shape[:-2] for _, b in pairs))
    M, N = out_shape[-2:]
    piece = max(max(a[..., :kc].size, b[..., :kc, :].size) for a, b in pairs)
    udt = np.uint64 if bits == 64 else np.uint32
    fa_buf, fb_buf, res, ybuf, tbuf, tmp = _scratch([
        (batch_a + (M, len(ablk) * kc), np.float64), (batch_b + (len(bblk) * kc, N), np.float64),
        (out_shape, np.float64), (piece, udt), (piece, udt), (_BLOCK, np.int64)])
    acc = np.empty(out_shape, udt)  # the result (not scratch)
    flat_res, flat_acc, first = res.reshape(-1), acc.reshape(-1), True
    for k0 in range(0, K, kc):
        n = min(K, k0 + kc) - k0
        fa, fb = fa_buf[..., :len(ablk) * n], fb_buf[..., :len(bblk) * n, :]
        for (a, b), lo, hi in zip(pairs, bounds[:-1], bounds[1:]):
            s, e = max(k0, lo), min(k0 + n, hi)
            if s < e:  # the part [s, e) of the fused K axis comes from this pair
                _split(a[..., s - lo:e - lo], ablk, fa, n, s - k0, -1, ybuf, tbuf)
                _split(b[..., s - lo:e - lo, :], bblk, fb, n, s - k0, -2, ybuf, tbuf)
        for a0, a1, b0, b1, coef in gemms:
            np.matmul(fa[..., a0 * n:a1 * n], fb[..., b0 * n:b1 * n, :], out=res)
            for i in range(0, flat_acc.size, _BLOCK):  # acc += coef * int(res), in cache-sized blocks
                t, dst = tmp[:min(_BLOCK, flat_acc.size - i)], flat_acc[i:i + _BLOCK]
                np.copyto(t, flat_res[i:i + _BLOCK], casting="unsafe")  # exact (|res| <= 2^53), may be < 0
                t = t.view(np.uint64)  # two's complement = value mod 2^64
                if coef != 1:
                    np.multiply(t, np.uint64(coef % (1 << 64)), out=t)  # wraps mod 2^64
                if first:  # (for k = 32 the uint64 -> uint32 cast truncates, i.e. reduces mod 2^32)
                    np.copyto(dst, t, casting="unsafe")
                else:
                    np.add(dst, t, out=dst, casting="unsafe")
            first = False
    return acc


def _prep(a, b, bits):
    """Cast to the ring dtype and lift 1-D operands; returns (a [..., M, K], b [..., K, N], final output shape)."""
    if bits not in (32, 64):
        raise ValueError("bits must be 32 or 64")
    dt = np.uint64 if bits == 64 else np.uint32
    a, b = np.asarray(a).astype(dt, copy=False), np.asarray(b).astype(dt, copy=False)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("ring_matmul: operands must be at least 1-D")
    a3, b3 = (a[None, :] if a.ndim == 1 else a), (b[:, None] if b.ndim == 1 else b)
    if a3.shape[-1] != b3.shape[-2]:
        raise ValueError(f"ring_matmul: shape mismatch {a.shape} @ {b.shape}")
    shape = np.broadcast_shapes(a3.shape[:-2], b3.shape[:-2])
    shape += (a3.shape[-2],) * (a.ndim > 1) + (b3.shape[-1],) * (b.ndim > 1)
    return a3, b3, shape


def _integer_is_faster(M, N, K, batch):
    """Measured crossovers: splitting costs O(MK + KN) and combining O(MN) per GEMM, so the limb path needs every
    dimension and the GEMM volume to be large enough (integer np.matmul: ~0.6-2.6 ns per multiply-add)."""
    return min(M, N) < 8 or K < 32 or M * N * K < 1 << 15 or batch * M * N * K < 1 << 18


def _matmul_sum(pairs, bits):
    """sum_i a_i @ b_i for lifted ([..., M, K_i] @ [..., K_i, N]) operands with a common (M, N)."""
    M, N = pairs[0][0].shape[-2], pairs[0][1].shape[-1]
    out_shape = np.broadcast_shapes(*(x.shape[:-2] for p in pairs for x in p)) + (M, N)
    K = sum(a.shape[-1] for a, _ in pairs)
    if M * N * K == 0 or _integer_is_faster(M, N, K, int(np.prod(out_shape[:-2]))):
        r = np.matmul(*pairs[0])  # integer matmul wraps mod 2^bits: exact
        for a, b in pairs[1:]:
            r += np.matmul(a, b)
        return r
    return _core(pairs, bits, out_shape)


def _finish(r, shape):
    r = r.reshape(shape)
    return r[()] if r.ndim == 0 else r  # 1-D @ 1-D gives a scalar, like np.matmul


def ring_matmul(a: np.ndarray, b: np.ndarray, bits: int = 64) -> np.ndarray:
    """Exact a @ b mod 2^bits. a: [..., M, K], b: [..., K, N] (numpy matmul broadcasting semantics,
    also 1-D operands like np.matmul), dtype uint64 (bits=64) or uint32 (bits=32). Returns same dtype."""
    a3, b3, shape = _prep(a, b, bits)
    return _finish(_matmul_sum([(a3, b3)], bits), shape)


def ring_matmul_sum(pairs, bits: int = 64) -> np.ndarray:
    """Exact sum_i a_i @ b_i mod 2^bits for a list of (a_i, b_i) pairs with equal output shapes;
    faster than separate calls (e.g. fuse along K). Used by ABY3: Z = X0 @ (Y0 + Y1) + X1 @ Y0."""
    preps = [_prep(a, b, bits) for a, b in pairs]
    if not preps or any(p[2] != preps[0][2] for p in preps):
        raise ValueError("ring_matmul_sum: need at least one pair, all with the same output shape")
    if len({(a3.shape[-2], b3.shape[-1]) for a3, b3, _ in preps}) > 1:  # odd 1-D mix: (K,)@(K,N) + (N,K)@(K,)
        return sum(ring_matmul(a, b, bits) for a, b in pairs)
    return _finish(_matmul_sum([p[:2] for p in preps], bits), preps[0][2])


def ring_tensordot(a, b, axes=2, bits=64) -> np.ndarray:
    """Exact np.tensordot(a, b, axes) mod 2^bits (transpose/reshape to a 2-D matmul then ring_matmul)."""
    a, b = np.asarray(a), np.asarray(b)
    if isinstance(axes, (int, np.integer)):
        axes = (range(a.ndim - axes, a.ndim), range(axes))
    ax_a, ax_b = ([int(x) % nd for x in np.atleast_1d(ax)] for ax, nd in zip(axes, (a.ndim, b.ndim)))
    if len(ax_a) != len(ax_b) or any(a.shape[i] != b.shape[j] for i, j in zip(ax_a, ax_b)):
        raise ValueError("ring_tensordot: shape mismatch for sum")
    free_a, free_b = [i for i in range(a.ndim) if i not in ax_a], [j for j in range(b.ndim) if j not in ax_b]
    out_a, out_b = [a.shape[i] for i in free_a], [b.shape[j] for j in free_b]
    K = int(np.prod([a.shape[i] for i in ax_a]))
    a2 = a.transpose(free_a + ax_a).reshape(int(np.prod(out_a)), K)
    b2 = b.transpose(ax_b + free_b).reshape(K, int(np.prod(out_b)))
    return ring_matmul(a2, b2, bits).reshape(out_a + out_b)

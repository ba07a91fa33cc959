"""Exact matrix products modulo 2^k (k = 64 or 32) through float64 BLAS.

numpy has no BLAS path for integer matmul; np.matmul on uint64 runs a naive loop (~340 ms for 512^3 on the 2-core
dev box, vs ~2.8 ms for float64).  We emulate the ring product with a few exact float64 GEMMs.

Algebra.  Split x = sum_i x_i 2^(s_i) into balanced (signed) limbs x_i in [-2^(w_i-1), 2^(w_i-1)), s_i = w_0+..+w_(i-1),
computed as: y = x + sum_i 2^(s_i+w_i-1) (mod 2^k); x_i = ((y >> s_i) mod 2^w_i) - 2^(w_i-1).  Then
    A @ B = sum_{i,j} (A_i @ B_j) 2^(s_i+s_j)  (mod 2^k),
and only pairs with s_i + s_j < k matter.  Pairs with the same shift are fused into one GEMM by concatenating limb
blocks along K:  A_0 @ B_1 + A_1 @ B_0 = [A_0 | A_1] @ [B_1 ; B_0]; the limb blocks are laid out once so that
every GEMM reads contiguous column/row slices of two float64 workspaces (no copies, results via out=).

Exactness.  A GEMM over K terms whose block pairs have per-term bound sum_p max|a_p| max|b_p| <= P computes integers
bounded by K*P; if K*P <= 2^53 every partial sum is an exactly representable integer, so the float64 result is exact
whatever the summation order or FMA use.  _kmax() derives the largest safe K from the scheme; larger K is chunked and
the chunks are accumulated in uint64 (wrap-around = mod 2^64).  Results are converted float64 -> int64 (exact, |v| <
2^53, possibly negative), viewed as uint64, multiplied by their coefficient and summed mod 2^64 (then cast to uint32).

Schemes (cost in "K x GEMM" units; limbs 22/22/20 for k = 64, 16/16 for k = 32):
  * k=64 Karatsuba (K <= 512):  P0 = A0B0, P1 = A1B1, Pm = (A0+A1)(B0+B1), Q = [A2|A0][B0;B2] (fused, 2K)
        A@B = P0 + 2^22 (Pm - P0 - P1) + 2^44 (Q + P1)      -> 4 GEMMs, 5 K-units, |Pm| <= K 2^44.
  * k=64 schoolbook (K <= 1024): [A0][B0], [A0|A1][B1;B0], [A0|A1|A2][B2;B1;B0]   -> 3 GEMMs, 6 K-units.
  * k=32: [A0][B0] + 2^16 [A0|A1][B1;B0]                                            -> 2 GEMMs, 3 K-units.
  (6 products is the minimum for a pure limb split at K = 512, since limb widths must satisfy w_a + w_b <= 46.)
  Tiny problems (batch*M*N*K < _SMALL) use np.matmul on the integer arrays directly (it wraps, hence is exact).

Measured (median of 15 runs, 512x512 @ 512x512, 2 cores, OpenBLAS):  np.matmul float64 2.8 ms;  np.matmul uint64
343 ms;  ring_matmul uint64: Karatsuba 18.9 ms, fused schoolbook 21.4 ms, 6 separate GEMMs with fresh temporaries
34.7 ms (page faults on fresh 2 MB temporaries cost ~0.5 ms each, hence the few, large, reused workspaces);
ring_matmul uint32: 9.4 ms.  ring_matmul_sum of two 512^3 products: 35 ms vs 38 ms for two calls.
"""
import threading

import numpy as np

_SMALL = 1 << 15  # batch*M*N*K below this: plain integer np.matmul
_SCRATCH_CAP = 64 << 20  # keep per-thread scratch buffers up to this many bytes between calls
_tls = threading.local()
_BLOCK = 1 << 16  # elements per block in the (cache-resident) combine step
# scheme = (limb widths, A blocks, B blocks, GEMMs); a block is a tuple of limb indices whose sum it holds;
# a GEMM (a_lo, a_hi, b_lo, b_hi, coef) adds coef * (A_blocks[a_lo:a_hi] @ B_blocks[b_lo:b_hi]) to the result.
_KARATSUBA64 = ((22, 22, 20), ((2,), (0,), (1,), (0, 1)), ((0,), (2,), (1,), (0, 1)),
                ((0, 2, 0, 2, 1 << 44), (1, 2, 0, 1, 1 - (1 << 22)),
                 (2, 3, 2, 3, (1 << 44) - (1 << 22)), (3, 4, 3, 4, 1 << 22)))
_SCHOOL64 = ((22, 22, 20), ((0,), (1,), (2,)), ((2,), (1,), (0,)),
             ((0, 1, 2, 3, 1), (0, 2, 1, 3, 1 << 22), (0, 3, 0, 3, 1 << 44)))
_SCHOOL32 = ((16, 16), ((0,), (1,)), ((1,), (0,)), ((0, 1, 1, 2, 1), (0, 2, 0, 2, 1 << 16)))


def _kmax(scheme):
    """Largest K for which every GEMM of the scheme is exact in float64."""
    widths, ablk, bblk, gemms = scheme
    mag = lambda blk: sum(1 << (widths[i] - 1) for i in blk)
    per_k = max(sum(mag(ablk[i]) * mag(bblk[j]) for i, j in zip(range(a0, a1), range(b0, b1)))
                for a0, a1, b0, b1, _ in gemms)
    return (1 << 53) // per_k


def _pick_scheme(bits, K):
    if bits == 32:
        return _SCHOOL32
    # Karatsuba has less GEMM work but half the exact K; for 512 < K <= 1024 one schoolbook pass wins.
    return _KARATSUBA64 if K <= 512 or K > 1024 else _SCHOOL64


def _scratch(specs):
    """Arrays of the given (shape, dtype) carved from one reusable per-thread buffer.  Fresh large temporaries cost
    page faults (~0.5-1 ms per 2 MB on the dev VM), as much as the arithmetic on them."""
    sizes = [int(np.prod(s)) * np.dtype(d).itemsize for s, d in specs]
    total = sum(-(-z // 64) * 64 for z in sizes)
    buf = getattr(_tls, "buf", None)
    if buf is None or buf.nbytes < total:
        buf = np.empty(total, np.uint8)
        if total <= _SCRATCH_CAP:
            _tls.buf = buf
    out, off = [], 0
    for (s, d), z in zip(specs, sizes):
        out.append(buf[off:off + z].view(d).reshape(s))
        off += -(-z // 64) * 64
    return out


def _split(x, widths, blocks, dst, n, o, axis, ybuf, tbuf):
    """Write the balanced limbs of x (unsigned; [..., R, m] for axis=-1, [..., m, C] for axis=-2) into the float64
    workspace dst: block j holds K positions [j*n, (j+1)*n) along axis, x goes to offsets [o, o+m) of each block."""
    m = x.shape[axis]
    def view(j):
        sl = slice(j * n + o, j * n + o + m)
        return dst[..., sl] if axis == -1 else dst[..., sl, :]
    bits, u = 8 * x.dtype.itemsize, x.dtype.type
    shifts = [sum(widths[:i]) for i in range(len(widths))]
    off = sum(1 << (s + w - 1) for s, w in zip(shifts, widths)) % (1 << bits)
    y = np.add(x, u(off), out=ybuf[:x.size].reshape(x.shape))
    t = tbuf[:x.size].reshape(x.shape)
    signed = np.int64 if bits == 64 else np.int32
    where = {blk[0]: j for j, blk in enumerate(blocks) if len(blk) == 1}
    for i, (s, w) in enumerate(zip(shifts, widths)):
        src = np.right_shift(y, u(s), out=t) if s else y
        if s + w < bits:
            src = np.bitwise_and(src, u((1 << w) - 1), out=t)
        # limb = src - 2^(w-1), exact in float64 (|limb| <= 2^21)
        np.subtract(src.view(signed), signed(1 << (w - 1)), out=view(where[i]), casting="unsafe")
    for j, blk in enumerate(blocks):
        if len(blk) == 2:
            np.add(view(where[blk[0]]), view(where[blk[1]]), out=view(j))


def _core(pairs, bits, out_shape):
    """sum_i a_i @ b_i mod 2^bits via float64 GEMMs; a_i: [..., M, K_i], b_i: [..., K_i, N] unsigned.
    The pairs are fused along K (as if [a_1 | a_2 | ...] @ [b_1 ; b_2 ; ...]), then cut into exact chunks."""
    bounds = np.cumsum([0] + [a.shape[-1] for a, _ in pairs])
    K = int(bounds[-1])
    widths, ablk, bblk, gemms = scheme = _pick_scheme(bits, K)
    nch = -(-K // _kmax(scheme))
    kc = -(-K // nch)  # balanced chunks, all <= kmax
    batch_a = np.broadcast_shapes(*(a.shape[:-2] for a, _ in pairs))
    batch_b = np.broadcast_shapes(*(b.shape[:-2] for _, b in pairs))
    M, N = out_shape[-2:]
    piece = max(max(a[..., :kc].size, b[..., :kc, :].size) for a, b in pairs)
    udt = np.uint64 if bits == 64 else np.uint32
    fa_buf, fb_buf, res, ybuf, tbuf, tmp = _scratch([
        (batch_a + (M, len(ablk) * kc), np.float64), (batch_b + (len(bblk) * kc, N), np.float64),
        (out_shape, np.float64), (piece, udt), (piece, udt), (_BLOCK, np.int64)])
    acc = np.empty(out_shape, udt)  # the result (not scratch)
    flat_res, flat_acc = res.reshape(-1), acc.reshape(-1)
    first = True
    for k0 in range(0, K, kc):
        n = min(K, k0 + kc) - k0
        fa, fb = fa_buf[..., :len(ablk) * n], fb_buf[..., :len(bblk) * n, :]
        for (a, b), lo, hi in zip(pairs, bounds[:-1], bounds[1:]):
            s, e = max(k0, lo), min(k0 + n, hi)
            if s < e:  # the part [s, e) of the fused K axis comes from this pair
                _split(a[..., s - lo:e - lo], widths, ablk, fa, n, s - k0, -1, ybuf, tbuf)
                _split(b[..., s - lo:e - lo, :], widths, bblk, fb, n, s - k0, -2, ybuf, tbuf)
        for a0, a1, b0, b1, coef in gemms:
            np.matmul(fa[..., a0 * n:a1 * n], fb[..., b0 * n:b1 * n, :], out=res)
            c = np.uint64(coef % (1 << 64))
            for i in range(0, flat_acc.size, _BLOCK):  # acc += coef * int(res), in cache-sized blocks
                r, dst = flat_res[i:i + _BLOCK], flat_acc[i:i + _BLOCK]
                t = tmp[:r.size]
                np.copyto(t, r, casting="unsafe")  # exact: |res| <= 2^53; int64 viewed as uint64 = mod 2^64
                t = t.view(np.uint64)
                if coef != 1:
                    np.multiply(t, c, out=t)  # wraps mod 2^64
                if first:
                    np.copyto(dst, t, casting="unsafe")  # uint64 -> uint32 truncates = mod 2^32
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


def _matmul_sum(pairs, bits):
    """sum_i a_i @ b_i for lifted ([..., M, K_i] @ [..., K_i, N]) operands with a common (M, N)."""
    out_shape = np.broadcast_shapes(*(x.shape[:-2] for p in pairs for x in p)) + pairs[0][0].shape[-2:-1] \
        + pairs[0][1].shape[-1:]
    if int(np.prod(out_shape)) * sum(a.shape[-1] for a, _ in pairs) < _SMALL:
        return sum(np.matmul(a, b) for a, b in pairs)  # integer matmul wraps mod 2^bits: exact
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
    groups = {}  # lifted (M, N) differ only in odd 1-D cases like (K,)@(K,N) + (N,K)@(K,)
    for a3, b3, _ in preps:
        groups.setdefault((a3.shape[-2], b3.shape[-1]), []).append((a3, b3))
    return _finish(sum(_matmul_sum(g, bits).reshape(preps[0][2]) for g in groups.values()), preps[0][2])


def ring_tensordot(a, b, axes=2, bits=64) -> np.ndarray:
    """Exact np.tensordot(a, b, axes) mod 2^bits (transpose/reshape to a 2-D matmul then ring_matmul)."""
    a, b = np.asarray(a), np.asarray(b)
    if isinstance(axes, (int, np.integer)):
        ax_a, ax_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        ax_a, ax_b = ([x] if isinstance(x, (int, np.integer)) else list(x) for x in axes)
    ax_a, ax_b = [x % a.ndim for x in ax_a], [x % b.ndim for x in ax_b]
    if len(ax_a) != len(ax_b) or any(a.shape[i] != b.shape[j] for i, j in zip(ax_a, ax_b)):
        raise ValueError("ring_tensordot: shape mismatch for sum")
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [j for j in range(b.ndim) if j not in ax_b]
    out_a, out_b = [a.shape[i] for i in free_a], [b.shape[j] for j in free_b]
    K = int(np.prod([a.shape[i] for i in ax_a]))
    a2 = a.transpose(free_a + ax_a).reshape(int(np.prod(out_a)), K)
    b2 = b.transpose(ax_b + free_b).reshape(K, int(np.prod(out_b)))
    return ring_matmul(a2, b2, bits).reshape(out_a + out_b)

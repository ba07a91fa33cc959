"""Cheetah's coefficient encoding of matrix blocks (Huang, Lu, Hong, Chen, Hu, Wang,
USENIX Security 2022, Sec. 3) and the cost model that picks the block shape.

A product (m_w x k_w) . (k_w x n_w) with m_w k_w n_w <= N is one polynomial product in
Z[X]/(X^N + 1):
    B block -> b(X) = sum_{l,j} B[l, j] X^(j k_w + l)
    A block -> a(X) = sum_{i,l} A[i, l] X^(i k_w n_w + k_w - 1 - l)
    a b has at position i k_w n_w + j k_w + k_w - 1 the sum over l of A[i, l] B[l, j].
No overlap: a term A[i, l] B[l', j] lands at i k_w n_w + j k_w + d, d = k_w - 1 - l + l'
in [0, 2 k_w - 2]; it reaches a used position only if d = k_w - 1 (l = l': a wanted term)
or d - k_w = k_w - 1 (impossible). Terms with d >= k_w spill into the next j (or i)
block at offset d - k_w <= k_w - 2, never the used offset k_w - 1; the only terms past
X^(N-1) (i = m_w - 1, j = n_w - 1, d >= k_w, when m_w k_w n_w = N) wrap negacyclically
to positions 0 .. k_w - 2, which are not used either.

Block shape. Per K chunk, the encryptor sends 2 Kb Nb ciphertexts (B's high and low
parts), the evaluator multiplies 3 Mb Kb Nb times (NTT form) and returns 2 Mb Nb
(Y and Z), with Mb = ceil(M / m_w) etc. The shape minimises the estimated seconds of
one party (SEAL's work: products, transforms, (de)serialisation, all holding the GIL, so
the two in-process parties add up; the slot products of slots.py, per residue and per
multiply-add) plus its bytes at LINK_BYTES_PER_S, over powers of
two with m_w k_w n_w <= N.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

N_POLY = 8192
K_CHUNK = 512                # K per response: K (2^5 - 1)^2 <= 2^19 for Z's integer mask
LIMBS_IN, LIMBS_OUT = 3, 2
IN_CT_BYTES = 2 * LIMBS_IN * N_POLY * 8
LINK_BYTES_PER_S = 125e6     # 1 Gbit/s: what bytes cost in the estimate
# seconds per operation, one party, measured with seal-python 4.4.0 on this machine
SLOT_ELEM_S = 2e-9           # per residue copied into the slot kernel's tiles
SLOT_MAC_S = 1.4e-9          # per 128-bit multiply-add of the slot kernel (slots.py)
ROW_WORDS = 1 << 24          # residues of A's plaintexts per row chunk (128 MB)
PLAIN_S = 230e-6             # encode, lift and NTT (pruned, ntt.py) one plane of an A block
IN_CT_S = 2.4e-3             # encrypt + serialise + peer's load + NTT
OUT_CT_S = 1.9e-3            # inverse NTT + switch + re-randomise + serialise + decrypt
MIN_OT_S = 1.0               # below this OT estimate a triple stays on OT
OT_BYTE_S = 6e-9             # OT path: seconds per byte of its traffic (mul_2^20: 1.4 GB, 8 s)


def out_ct_bytes(m_w: int, n_w: int) -> int:
    """A response: c1 in full and c0 at the m_w n_w used positions, 2 limbs each."""
    return LIMBS_OUT * (N_POLY + m_w * n_w) * 8


def he_bytes(M: int, K: int, N: int) -> int:
    """Bytes one party sends for one HE triple (the keys' exchange once per link aside)."""
    return he_estimate(block_shape(M, K, N), M, K, N)[1]


def counts(shape, M, K, N):
    """(input cts, products, plaintexts, output cts) per K chunk and chunks."""
    m_w, k_w, n_w = shape
    chunks = -(-K // K_CHUNK)
    Kc = -(-K // chunks)
    Mb, Kb, Nb = -(-M // m_w), -(-Kc // k_w), -(-N // n_w)
    return 2 * Kb * Nb, 3 * Mb * Kb * Nb, 3 * Mb * Kb, 2 * Mb * Nb, chunks


def he_estimate(shape, M, K, N):
    """(seconds, bytes sent) of one party for both cross terms of an M x K x N triple."""
    cin, _, plain, cout, chunks = counts(shape, M, K, N)
    nbytes = chunks * (cin * IN_CT_BYTES + cout * out_ct_bytes(shape[0], shape[2]))
    S = LIMBS_IN * N_POLY                                   # slots
    Mb, Nb = -(-M // shape[0]), -(-N // shape[2])
    Kb = cin // (2 * Nb)
    cols = 3 * Kb + 2 * Nb                                  # left columns (matmul.py)
    row_chunks = -(-Mb // max(1, ROW_WORDS // (cols * S)))
    gemm = S * (SLOT_ELEM_S * (Mb * cols + row_chunks * 4 * Kb * Nb)
                + SLOT_MAC_S * Mb * Nb * 2 * (3 * Kb + 2))
    secs = chunks * (cin * IN_CT_S + plain * PLAIN_S + cout * OUT_CT_S + gemm)
    return secs + nbytes / LINK_BYTES_PER_S, nbytes


def ot_estimate(M, K, N, k=64):
    """(seconds, bytes sent) of one party for the OT path (semi2k_ot_source.py)."""
    nbytes = 1024 * M * K + 344 * M * K * N
    return nbytes * OT_BYTE_S + nbytes / LINK_BYTES_PER_S, nbytes


def _pow2_upto(n):
    return [1 << i for i in range(max(1, n - 1).bit_length() + 1)]


@lru_cache(maxsize=256)
def block_shape(M: int, K: int, N: int):
    """(m_w, k_w, n_w) minimising he_estimate (see the module docstring)."""
    Kc = -(-K // -(-K // K_CHUNK))
    best = None
    for m_w in _pow2_upto(M):
        for k_w in _pow2_upto(Kc):
            for n_w in _pow2_upto(N):
                if m_w * k_w * n_w > N_POLY:
                    continue
                cost = he_estimate((m_w, k_w, n_w), M, K, N)[0]
                if best is None or cost < best[0]:
                    best = (cost, (m_w, k_w, n_w))
    return best[1]


def use_he(M: int, K: int, N: int, k: int) -> bool:
    """The rule: HE for a 64-bit ring when OT's estimate is over MIN_OT_S (the HE keys,
    made once per link, ~1 s, must pay off) and HE's estimate beats it. 32-bit rings
    stay on OT. A static rule, so that cost formulas and both parties agree on it."""
    if k != 64:
        return False
    ot = ot_estimate(M, K, N)[0]
    return ot > MIN_OT_S and he_estimate(block_shape(M, K, N), M, K, N)[0] < ot


def used_positions(m_w, k_w, n_w) -> np.ndarray:
    """(m_w, n_w) coefficient index of C[i, j] in the product."""
    i = np.arange(m_w)[:, None]
    j = np.arange(n_w)[None, :]
    return i * k_w * n_w + j * k_w + k_w - 1


def a_zero_bits(m_w: int, k_w: int, n_w: int) -> int:
    """The bits of a coefficient index that are 0 at every position an A block uses
    (i k_w n_w + k_w - 1 - l): ntt.py skips the butterflies they make useless."""
    used = 0
    for i in range(m_w):
        used |= i * k_w * n_w | (k_w - 1)
    return (N_POLY - 1) & ~used


def _pad(x, rows, cols):
    r, c = x.shape
    if r == rows and c == cols:
        return x
    out = np.zeros((rows, cols), x.dtype)
    out[:r, :c] = x
    return out


def encode_b(B: np.ndarray, k_w: int, n_w: int) -> np.ndarray:
    """(K, N) -> (Kb, Nb, N_POLY) coefficients: block (kb, nb)'s B[l, j] at j k_w + l."""
    K, N = B.shape
    Kb, Nb = -(-K // k_w), -(-N // n_w)
    blocks = _pad(B, Kb * k_w, Nb * n_w).reshape(Kb, k_w, Nb, n_w).transpose(0, 2, 3, 1)
    out = np.zeros((Kb, Nb, N_POLY), B.dtype)
    out[:, :, :k_w * n_w] = blocks.reshape(Kb, Nb, k_w * n_w)
    return out


def encode_a(A: np.ndarray, m_w: int, k_w: int, n_w: int) -> np.ndarray:
    """(M, K) -> (Mb, Kb, N_POLY): block (mb, kb)'s A[i, l] at i k_w n_w + k_w - 1 - l."""
    M, K = A.shape
    Mb, Kb = -(-M // m_w), -(-K // k_w)
    blocks = _pad(A, Mb * m_w, Kb * k_w).reshape(Mb, m_w, Kb, k_w)[:, :, :, ::-1]
    out = np.zeros((Mb, Kb, m_w, k_w * n_w), A.dtype)
    out[..., :k_w] = blocks.transpose(0, 2, 1, 3)
    flat = np.zeros((Mb, Kb, N_POLY), A.dtype)
    flat[:, :, :m_w * k_w * n_w] = out.reshape(Mb, Kb, -1)
    return flat


def decode_c(vals: np.ndarray, M: int, N: int) -> np.ndarray:
    """(Mb, Nb, m_w, n_w) values at the used positions -> (M, N)."""
    Mb, Nb, m_w, n_w = vals.shape
    return vals.transpose(0, 2, 1, 3).reshape(Mb * m_w, Nb * n_w)[:M, :N]


def noise_bits(shape, K: int) -> float:
    """log2 of a bound on the noise of a Y product ciphertext before the switch (at q):
    per block (e_in + eps) ||a||_1 with |e_in| <= 6 sigma = 19.2 (SEAL's clipped
    Gaussian), |eps| <= 1 (the encoding's rounding of q m / t) and ||a||_1 <= m_w k_w
    2^58 (SEAL lifts plaintext coefficients to (-t/2, t/2]); two products per k-block.
    Z's products (a < 2^5) are far below it."""
    m_w, k_w, _ = shape
    chunks = -(-K // K_CHUNK)
    Kb = -(-(-(-K // chunks)) // k_w)
    return math.log2(Kb * 2 * m_w * k_w * 20.2) + 58

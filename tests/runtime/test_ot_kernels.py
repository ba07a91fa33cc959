"""The compiled (numba) kernels of the OT layer against straightforward numpy
references: the bit transposition and the order of its OTs, the receiver's choice
packing, the tweakable hash (row by row through AES), and Gilboa products folded chunk
by chunk."""
import queue
import threading

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from spu_lite.runtime.ot import cot_mul, iknp
from spu_lite.runtime.ot.bit_transpose import TILE, pack_choices, transpose_bits
from spu_lite.runtime.ot.cot_mul import OtLink


def _natural_transpose(m):
    """Column j of the 128 rows -> row j of 128 bits (bit i = row i), via unpacked bits."""
    bits = np.unpackbits(m, axis=1, bitorder="little")
    return np.ascontiguousarray(np.packbits(bits.T, axis=1, bitorder="little")).view(np.uint64)


@pytest.mark.parametrize("words", [1, 13, 3 * TILE + 5])    # part of a tile; tiles and a tail
def test_bit_transpose_is_the_exact_transpose(words):
    m = np.random.default_rng(1).integers(0, 256, (128, 8 * words), dtype=np.uint8)
    keep = m.copy()
    got = transpose_bits(m)
    assert np.array_equal(m, keep)                         # the input is not changed
    # the order, written out: row j is column j (OT j), its bit i row i
    assert np.array_equal(got, _natural_transpose(m))
    j, i = 8 * words - 3, 77
    assert (got[j, i // 64] >> np.uint64(i % 64)) & np.uint64(1) == (m[i, j // 8] >> (j % 8)) & 1


def test_choices_packed_with_padding_are_the_padded_row():
    x = np.random.default_rng(7).integers(0, 2, 100, dtype=np.uint8)
    want = pack_choices(np.concatenate([x, np.zeros(28, np.uint8)]))
    got = pack_choices(x, pad=True)
    assert np.array_equal(got, want[:got.size]) and not want[got.size:].any()
    with pytest.raises(ValueError):
        pack_choices(x)


def test_packed_choices_land_in_the_rows_that_chose_them():
    words = 2 * TILE + 5
    x = np.random.default_rng(2).integers(0, 2, 64 * words, dtype=np.uint8)
    rows = np.tile(pack_choices(x), (128, 1))              # every row: the choice vector
    got = transpose_bits(rows)
    ones = np.uint64(2 ** 64 - 1)
    assert np.array_equal(got[:, 0] == ones, x == 1) and np.array_equal(got[:, 1] == ones, x == 1)
    assert np.all((got == 0) | (got == ones))


def _reference_hash(rows, first, n, xor=None):
    """H(x, (g, g + l 2^40)) = pi(pi(x) ^ tweak) ^ pi(x), one row and block at a time."""
    pi = Cipher(algorithms.AES(iknp._FIXED_KEY), modes.ECB()).encryptor()
    out = np.empty((rows.shape[0], n), np.uint64)
    for j, row in enumerate(rows):
        x = row if xor is None else row ^ xor
        px = np.frombuffer(pi.update(x.tobytes()), np.uint64)
        words = []
        for l in range(-(-n // 2)):
            g = first + j
            tw = px ^ np.array([g, g + (l << 40)], np.uint64)
            words += list(np.frombuffer(pi.update(tw.tobytes()), np.uint64) ^ px)
        out[j] = words[:n]
    return out


@pytest.mark.parametrize("n", [1, 2, 5])
def test_hash_matches_row_by_row_aes_in_any_slices(monkeypatch, n):
    monkeypatch.setattr(iknp, "_HASH_ROWS", 64)            # many chunks and a tail
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 2 ** 64, (301, 2), dtype=np.uint64)
    delta = rng.integers(0, 2 ** 64, 2, dtype=np.uint64)
    h, first = iknp.Hash(), 12345
    want0 = _reference_hash(rows, first, n)
    want1 = _reference_hash(rows, first, n, xor=delta)
    assert np.array_equal(h(rows, first, n), want0)
    assert np.array_equal(h(rows, first, n, xor=delta), want1)
    m0, d = h.pair(rows, first, n, delta, np.empty_like(want0), np.empty_like(want0))
    assert np.array_equal(m0, want0) and np.array_equal(d, want1 - want0)
    parts = [h(rows[a:b], first + a, n) for a, b in ((0, 100), (100, 101), (101, 301))]
    assert np.array_equal(np.concatenate(parts), want0)


def _linked():
    qs = [queue.Queue(), queue.Queue()]
    links = [OtLink(lambda o, r=r: qs[1 - r].put(o), qs[r].get) for r in range(2)]
    return links


def _both(fns):
    out, errs = [None, None], []

    def run(r):
        try:
            out[r] = fns[r]()
        except BaseException as e:  # noqa: BLE001
            errs.append(e)
    ts = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    if errs:
        raise errs[0]
    return out


@pytest.mark.parametrize("n", [1, 3])    # the one-word fast path, and the general kernels
def test_gilboa_products_folded_or_not_are_exact(monkeypatch, n):
    monkeypatch.setattr(cot_mul, "_CHUNK_WORDS", 640)      # several chunks per batch
    links = _linked()
    _both([lambda: links[0].setup(), lambda: links[1].setup()])
    rng = np.random.default_rng(4)
    N, k = 203, 64
    a = rng.integers(0, 2 ** 64, (2, N), dtype=np.uint64)
    b = rng.integers(0, 2 ** 64, (2, N, n), dtype=np.uint64)
    widths = k - np.arange(k)
    bits = [np.unpackbits(a[r].view(np.uint8).reshape(N, 8), axis=1, bitorder="little")
            for r in range(2)]
    w = np.left_shift(np.uint64(1), np.arange(k, dtype=np.uint64))[None, :, None]

    def run(fold):
        return _both([lambda r=r: links[r].cross(bits[r], b[r][:, None, :], n, widths,
                                                 peer_shape=(N, k), fold=fold)
                      for r in range(2)])
    (m0, t0), (m1, t1) = run(False)          # per position: sum_j 2^j (shares) = a b
    weighted = [(s * w).sum(axis=1, dtype=np.uint64) for s in (m0, t0, m1, t1)]
    (f0, g0), (f1, g1) = run(True)           # folded chunk by chunk
    assert all(f.shape == (N, n) for f in (f0, g0, f1, g1))
    for s0, s1, r, q in ((weighted[0], weighted[3], 0, 1), (f0, g1, 0, 1),
                         (weighted[2], weighted[1], 1, 0), (f1, g0, 1, 0)):
        assert np.array_equal(s0 + s1, a[r][:, None] * b[q])     # a_r b_q mod 2^64


def test_gilboa_shares_with_scattered_width_classes_are_exact_mod_their_widths():
    """Widths whose byte classes are not ranges of positions (truncation pairs at a
    shift of 40): the general kernels, each product x_j y mod 2^{w_j}."""
    links = _linked()
    _both([lambda: links[0].setup(), lambda: links[1].setup()])
    rng = np.random.default_rng(6)
    N, k, m = 77, 64, 40
    j = np.arange(k)
    widths = np.minimum(k, np.where(j >= m, k - j + m, k - j))
    assert cot_mul._ranges(*cot_mul._layout(widths)[0::2]) is None
    x = rng.integers(0, 2, (N, k), dtype=np.uint8)
    y = rng.integers(0, 2 ** 64, (N, k, 1), dtype=np.uint64)
    (mine, _), (_, theirs) = _both([lambda: links[0].cross(x, None, 1, widths),
                                   lambda: links[1].cross(None, y, 1, widths, peer_shape=(N, k))])
    mask = (np.uint64(1) << widths.astype(np.uint64)) - np.uint64(1)    # 2^64 - 1 at w = 64
    mask = np.where(widths == 64, np.uint64(2 ** 64 - 1), mask)
    got = (mine[:, :, 0] + theirs[:, :, 0]) & mask
    assert np.array_equal(got, (x.astype(np.uint64) * y[:, :, 0]) & mask)


def test_rows_made_slice_by_slice_equal_the_whole_transposition():
    from spu_lite.runtime.ot import bit_transpose
    m = np.random.default_rng(5).integers(0, 256, (128, 8 * 11), dtype=np.uint8)
    whole = bit_transpose.transpose_bits(m)
    rows = bit_transpose.TransposedRows(m)
    delta = np.array([0x0123456789ABCDEF, 2 ** 63 + 5], np.uint64)
    for a, b in ((0, 704), (10, 200), (256, 512), (300, 301), (250, 600), (0, 256), (600, 704)):
        assert np.array_equal(rows[a:b], whole[a:b]), (a, b)
        pair = rows.strings(a, b, delta)                   # the sender's two strings
        assert pair.shape == (b - a, 2, 2) and pair.flags.c_contiguous
        assert np.array_equal(pair[:, 0], whole[a:b]) and np.array_equal(pair[:, 1], whole[a:b] ^ delta)

"""Exactness of the float64-BLAS ring matmul against wrap-around integer references."""
import numpy as np
import pytest

from spu_lite.runtime import ring_matmul as rm
from spu_lite.runtime.ring_matmul import ring_matmul, ring_matmul_sum, ring_tensordot

RNG = np.random.default_rng(20240611)
DT = {64: np.uint64, 32: np.uint32}


def rand(shape, bits):
    return RNG.integers(0, 1 << bits, shape, dtype=DT[bits])


def ref(a, b, bits):
    """np.matmul on uint64 wraps mod 2^64, which is exact; mod 2^32 is its truncation."""
    return np.matmul(a.astype(np.uint64), b.astype(np.uint64)).astype(DT[bits])


def check(got, want, bits):
    got = np.asarray(got)
    assert got.dtype == DT[bits] and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.fixture(params=["auto", "float"])
def path(request, monkeypatch):
    """'float' forces the BLAS limb path even for tiny problems (no integer np.matmul shortcut)."""
    if request.param == "float":
        monkeypatch.setattr(rm, "_integer_is_faster", lambda *dims: False)
    return request.param


def test_reference_is_exact():
    a, b = rand((3, 4), 64), rand((4, 2), 64)
    exact = [[sum(int(a[i, k]) * int(b[k, j]) for k in range(4)) % 2**64 for j in range(2)] for i in range(3)]
    np.testing.assert_array_equal(ref(a, b, 64), np.array(exact, np.uint64))
    np.testing.assert_array_equal(ref(a.astype(np.uint32), b.astype(np.uint32), 32),
                                  np.array(exact, np.uint64).astype(np.uint32))


@pytest.mark.parametrize("bits", [64, 32])
@pytest.mark.parametrize("sa,sb", [
    ((1, 1), (1, 1)), ((3, 5), (5, 7)), ((64, 2048), (2048, 8)), ((8, 5000), (5000, 4)), ((70, 130), (130, 40)),
    ((2, 3, 4, 5), (2, 3, 5, 6)), ((4, 5), (3, 5, 6)), ((2, 1, 4, 5), (3, 5, 6)),
    ((5,), (5,)), ((5,), (5, 7)), ((3, 5), (5,)), ((2, 3, 5), (5,)), ((5,), (2, 5, 3)),
    ((3, 0), (0, 4)), ((0, 5), (5, 4)), ((3, 5), (5, 0)), ((0, 3, 5), (5, 2)), ((2, 3, 0), (2, 0, 4))])
def test_matches_reference(sa, sb, bits, path):
    a, b = rand(sa, bits), rand(sb, bits)
    check(ring_matmul(a, b, bits), np.asarray(ref(a, b, bits)), bits)


@pytest.mark.parametrize("bits", [64, 32])
def test_large_k_chunks_and_zero_k(bits, path):
    a, b = rand((16, 9000), bits), rand((9000, 3), bits)  # K > kmax of every scheme: several chunks
    check(ring_matmul(a, b, bits), ref(a, b, bits), bits)
    check(ring_matmul(rand((600, 0), bits), rand((0, 500), bits), bits), np.zeros((600, 500), DT[bits]), bits)


SCHEMES = [(64, rm._KARATSUBA64), (64, rm._SCHOOL64), (32, rm._TRUNC32)]


@pytest.mark.parametrize("bits,scheme", SCHEMES)
def test_worst_case_magnitudes_at_kmax(bits, scheme, monkeypatch):
    """Entries whose balanced limbs are (about) -2^(w-1) maximise the GEMM sums; K = kmax must still be exact."""
    monkeypatch.setattr(rm, "_integer_is_faster", lambda *dims: False)
    monkeypatch.setattr(rm, "_pick_scheme", lambda bits_, K: scheme)
    kmax = rm._kmax(scheme)

    def worst(blocks):  # per limb set: the value whose limbs are all -2^(w-1); plus the most negative value
        sets = {W for blk in blocks for W, _ in blk if W[0] < bits}
        return [(-sum(1 << (sum(W[:i]) + w - 1) for i, w in enumerate(W))) % (1 << bits) for W in sets] \
            + [1 << (bits - 1)]
    for va in worst(scheme[0]):
        for vb in worst(scheme[1]):
            for K in (kmax, kmax + 1):
                # +0/1 keeps the limbs extreme but gives the sums low-order bits (so rounding would show)
                a = np.full((2, K), va, DT[bits]) + RNG.integers(0, 2, (2, K)).astype(DT[bits])
                b = np.full((K, 3), vb, DT[bits]) + RNG.integers(0, 2, (K, 3)).astype(DT[bits])
                check(ring_matmul(a, b, bits), ref(a, b, bits), bits)
    vals = np.array([0, 1, (1 << bits) - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1], DT[bits])
    a, b = RNG.choice(vals, (5, kmax)), RNG.choice(vals, (kmax, 4))
    check(ring_matmul(a, b, bits), ref(a, b, bits), bits)


@pytest.mark.parametrize("bits,scheme", SCHEMES)
def test_each_scheme_random(bits, scheme, monkeypatch):
    monkeypatch.setattr(rm, "_pick_scheme", lambda bits_, K: scheme)
    for sa, sb in [((70, 300), (300, 90)), ((2, 2, 30, 1100), (1100, 20))]:  # 1100 > kmax (64-bit): 2 chunks
        a, b = rand(sa, bits), rand(sb, bits)
        check(ring_matmul(a, b, bits), ref(a, b, bits), bits)


def test_layouts_and_casts():
    a, b = rand((90, 60), 64), rand((60, 80), 64)
    want = ref(a, b, 64)
    check(ring_matmul(np.asfortranarray(a), b.T.copy().T), want, 64)  # non-C-contiguous operands
    check(ring_matmul(a.view(np.int64), b), want, 64)  # signed input is reinterpreted mod 2^64
    check(ring_matmul(a[::2], b[:, 1::3]), ref(a[::2], b[:, 1::3], 64), 64)  # strided views
    check(ring_matmul(a, b, 32), ref(a.astype(np.uint32), b.astype(np.uint32), 32), 32)


def test_no_scratch_cache(monkeypatch):
    monkeypatch.setattr(rm, "_SCRATCH_CAP", 0)
    a, b = rand((100, 700), 64), rand((700, 90), 64)
    check(ring_matmul(a, b), ref(a, b, 64), 64)


def test_scalar_result_like_numpy():
    a, b = rand((300,), 64), rand((300,), 64)
    got = ring_matmul(a, b)
    assert np.ndim(got) == 0 and got == np.matmul(a, b)


@pytest.mark.parametrize("bits", [64, 32])
def test_matmul_sum(bits, path):
    x0, x1, y0, y1 = rand((40, 50), bits), rand((40, 50), bits), rand((50, 30), bits), rand((50, 30), bits)
    # ABY3: Z = X0 @ (Y0 + Y1) + X1 @ Y0
    want = ref(x0, y0 + y1, bits) + ref(x1, y0, bits)
    check(ring_matmul_sum([(x0, y0 + y1), (x1, y0)], bits), want, bits)
    pairs = [(rand((40, k), bits), rand((k, 30), bits)) for k in (700, 900, 3)]  # chunk edges cross pairs
    check(ring_matmul_sum(pairs, bits), sum(ref(a, b, bits) for a, b in pairs), bits)
    pairs = [(rand((2, 1, 4, 9), bits), rand((3, 9, 5), bits)), (rand((4, 7), bits), rand((2, 3, 7, 5), bits))]
    check(ring_matmul_sum(pairs, bits), sum(ref(a, b, bits) for a, b in pairs), bits)
    pairs = [(rand((6,), bits), rand((6, 5), bits)), (rand((5, 8), bits), rand((8,), bits))]  # 1-D: (5,) each
    check(ring_matmul_sum(pairs, bits), sum(ref(a, b, bits) for a, b in pairs), bits)
    check(ring_matmul_sum([(x0, y0)], bits), ref(x0, y0, bits), bits)
    with pytest.raises(ValueError):
        ring_matmul_sum([(x0, y0), (y0, x0)], bits)


@pytest.mark.parametrize("bits", [64, 32])
def test_tensordot(bits, path):
    def want(a, b, axes):
        return np.tensordot(a.astype(np.uint64), b.astype(np.uint64), axes).astype(DT[bits])
    a, b = rand((6, 7, 8), bits), rand((8, 7, 5), bits)
    for x, y, axes in [(a, b, 1), (a, b.transpose(1, 0, 2), 2), (a, b, ([1, 2], [1, 0])), (a, b, ([2], [0])),
                       (a[:, :, 0], a, ([1], [1])), (a, b, ([-1], [0])), (a[0, 0], b[0, 0], 0), (a, a, 3),
                       (a, b, (2, 0))]:
        check(ring_tensordot(x, y, axes, bits=bits), want(x, y, axes), bits)
    with pytest.raises(ValueError):
        ring_tensordot(a, b, ([0], [0]), bits=bits)


def test_bad_arguments():
    with pytest.raises(ValueError):
        ring_matmul(rand((2, 3), 64), rand((4, 2), 64))
    with pytest.raises(ValueError):
        ring_matmul(rand((2, 3), 64), rand((3, 2), 64), bits=16)
    with pytest.raises(ValueError):
        ring_matmul(np.uint64(3), rand((3, 2), 64))

"""What a networked party returns of an output (Protocol.reply_share) reconstructs
the output (reconstruct_replies) with as few arrays as the protocol allows."""
import numpy as np
import pytest

from spu_lite.runtime.prg import Prg
from spu_lite.runtime.protocols import get_protocol
from spu_lite.runtime.protocols.base import Share
from spu_lite.runtime.ring import Ring

RING = Ring(64)


@pytest.mark.parametrize("protocol,n,arrays", [("aby3", 3, 2), ("semi2k", 2, 2),
                                                ("semi2k", 3, 3)])
@pytest.mark.parametrize("boolean", [False, True])
def test_replies_reconstruct_the_output(protocol, n, arrays, boolean):
    cls = get_protocol(protocol)
    x = RING.cast(np.arange(-6, 6, dtype=np.int64).reshape(3, 4))
    shares = cls.deal(x, n, Prg(b"r" * 16), RING)
    if boolean:       # a boolean sharing of x: the same pieces, combined by XOR
        want = cls.reconstruct([Share(s.parts, True) for s in shares], RING)
        shares = [Share(s.parts, True) for s in shares]
    else:
        want = x
    replies = [cls.reply_share(s, r) for r, s in enumerate(shares)]
    assert sum(p.size > 0 for s in replies for p in s.parts) == arrays
    np.testing.assert_array_equal(cls.reconstruct_replies(replies, RING), want)


def test_aby3_replies_hold_no_single_piece():
    cls = get_protocol("aby3")
    x = RING.cast(np.arange(8, dtype=np.int64))
    p0, p1, p2 = cls.deal(x, 3, Prg(b"r" * 16), RING)
    (s0, e0) = cls.reply_share(p0, 0).parts
    assert e0.size == 0 and not any(np.array_equal(s0, p) for p in p0.parts)
    assert all(p.size == 0 for p in cls.reply_share(p2, 2).parts)

"""Kernels: bitwise operations on integers. Public operands: numpy on the ring words;
a secret operand: boolean shares (runtime/fxp/bitwise.py)."""
from __future__ import annotations

from ..fxp import basic as B
from ..fxp.bitwise import bitwise
from .registry import kernel


def _binary(name, plain):
    def run(K, op, a, b):
        if B.is_secret(a) or B.is_secret(b):
            return bitwise(K.P, name, a, b)
        return plain(a, b)
    return run


kernel("bit_and")(_binary("and", lambda a, b: a & b))
kernel("bit_or")(_binary("or", lambda a, b: a | b))
kernel("bit_xor")(_binary("xor", lambda a, b: a ^ b))


@kernel("bit_not")
def _bit_not(K, op, a):
    """~a = -a - 1 in two's complement: local for secrets."""
    if B.is_secret(a):
        return K.P.add_public(K.P.neg(a), K.ring.encode_int(-1))
    return ~a

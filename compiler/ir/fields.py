"""What a ring of k bits can hold: default fractional bits, and the combinations of
ring and fractional bits that are refused (measured; docs/rings.md).

A fixed-point value v with f fractional bits is the ring integer round(v 2^f). Both
truncation protocols (aby3, semi2k) are exact for |x| < 2^(k-2) before the shift, and
comparisons need the same headroom, so:

    input / value range     |v| < 2^(k-2-f)        (k = 64, f = 18: 2^44 = 1.8e13)
    product range           |x y| < 2^(k-2-2f)      (before its truncation: 2^26 = 6.7e7)

The defaults: 18 fractional bits in a 64-bit ring; 9 in a 32-bit ring, the largest f
at which 1/x (and so division, softmax, means of secrets) keeps a working scale of at
least f bits (k - 5 - 2f >= f, runtime/fxp/reciprocal.py), with products up to 2^12.

Refused, with a message that says what to use:
- f < 1 or 2f > k - 8: a product of two values could not even reach 2^6 = 64 (at
  k = 32, f = 18 the product of two ones wraps: x * y gave [0, 0]).
- an op whose approximation has no room left (OP_MAX_FXP): reciprocal needs a working
  scale k - 5 - 2f of at least 8 bits (f <= 9 at k = 32, 25 at k = 64): at 10 bits in a
  32-bit ring x / y was 1.2% off under aby3 (0.5% at 9), at 11 bits 1/0.013 gave 72, not
  76.8.
"""
from __future__ import annotations

from typing import Dict, Optional

DEFAULT_FXP_BITS: Dict[int, int] = {64: 18, 32: 9}
MIN_PRODUCT_BITS = 6          # every product keeps at least 2^6 of range


def default_fxp_bits(field: int) -> int:
    if field not in DEFAULT_FXP_BITS:
        raise ValueError(f"field must be 64 or 32, not {field!r}")
    return DEFAULT_FXP_BITS[field]


def max_fxp_bits(field: int) -> int:
    """Largest f with products ranging to 2^MIN_PRODUCT_BITS: 2f <= k - 2 - 6."""
    return (field - 2 - MIN_PRODUCT_BITS) // 2


def value_limit(field: int, frac: int) -> float:
    """|v| of a value at `frac` fractional bits must stay below this."""
    return 2.0 ** (field - 2 - frac)


def ring_problem(field: int, fxp_bits: int) -> Optional[str]:
    """Why (field, fxp_bits) cannot work, or None."""
    if field not in DEFAULT_FXP_BITS:
        return f"field must be 64 or 32, not {field!r}"
    if not isinstance(fxp_bits, int) or isinstance(fxp_bits, bool):
        return f"fxp_bits must be an integer, not {fxp_bits!r}"
    top = max_fxp_bits(field)
    if not 1 <= fxp_bits <= top:
        return (f"fxp_bits={fxp_bits} does not fit a {field}-bit ring: a product of two values "
                f"at {fxp_bits} fractional bits would have a range below 2^{MIN_PRODUCT_BITS} "
                f"(2 * fxp_bits must be at most {field - 2 - MIN_PRODUCT_BITS}). Use fxp_bits "
                f"between 1 and {top} (default {DEFAULT_FXP_BITS[field]})"
                + (", or field=64" if field == 32 else ""))
    return None


#: op -> largest fxp_bits at which its approximation works, per ring width
OP_MAX_FXP = {
    "reciprocal": lambda k: (k - 13) // 2,      # working scale k - 5 - 2f >= 8
    "recip_parts": lambda k: (k - 15) // 2,     # its normalisation has 2 bits more
}


def op_problem(op: str, field: int, fxp_bits: int) -> Optional[str]:
    """Why op cannot run at (field, fxp_bits), or None."""
    rule = OP_MAX_FXP.get(op)
    if rule is None or fxp_bits <= rule(field):
        return None
    return (f"`{op}` (1/x, division by a secret, softmax, normalisations) has no working "
            f"precision left at fxp_bits={fxp_bits} in a {field}-bit ring: use fxp_bits <= "
            f"{rule(field)} (default {DEFAULT_FXP_BITS[field]})" + (" or field=64" if field == 32 else ""))

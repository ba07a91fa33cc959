"""Arithmetic on Z_2^k (k = 64 or 32) held in numpy unsigned arrays, and the
fixed-point encoding used for real numbers.

encode(x, f) = round(x * 2^f) mod 2^k (two's complement); decode reads the top bit as
the sign. numpy's unsigned arithmetic wraps, which is exactly arithmetic mod 2^k.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class RangeError(ValueError):
    """A value cannot be represented in the configured ring / fixed-point format.

    str(e) may quote the value (for its owner); `public_reason` names only the rule,
    for errors that go to other parties."""

    def __init__(self, message: str, public_reason: str = ""):
        super().__init__(message)
        self.public_reason = public_reason or message


@dataclass(frozen=True)
class Ring:
    bits: int = 64

    def __post_init__(self):
        if self.bits not in (32, 64):
            raise ValueError("ring width must be 32 or 64 bits")

    @property
    def dtype(self):
        return np.uint64 if self.bits == 64 else np.uint32

    @property
    def sdtype(self):
        return np.int64 if self.bits == 64 else np.int32

    def zeros(self, shape):
        return np.zeros(shape, self.dtype)

    def cast(self, x) -> np.ndarray:
        """Reinterpret signed/unsigned integers as ring elements (mod 2^k)."""
        x = np.asarray(x)
        if x.dtype == self.dtype:
            return x
        if x.dtype == np.bool_:
            return x.astype(self.dtype)
        return x.astype(np.int64).astype(self.sdtype, copy=False).view(self.dtype) \
            if x.dtype != self.sdtype else x.view(self.dtype)

    def signed(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x).view(self.sdtype)

    def max_abs_real(self, frac: int) -> float:
        """Largest |x| that encodes without wrapping; 2 more headroom bits are kept so
        that sums and comparisons (x - y) of in-range values cannot wrap either."""
        return float(2 ** (self.bits - frac - 2))

    def encode(self, x, frac: int) -> np.ndarray:
        """round(x * 2^frac) as ring elements; raises RangeError on NaN/inf/overflow."""
        x = np.asarray(x, dtype=np.float64)
        limit = self.max_abs_real(frac)
        if x.size and not np.abs(x).max() < limit:        # NaN and inf fail this too
            if not np.all(np.isfinite(x)):
                raise RangeError("input contains NaN or inf")
            rule = (f"outside the fixed-point range |x| < 2^{self.bits - frac - 2} = "
                    f"{limit:.4g} (ring {self.bits} bits, {frac} fractional bits)")
            raise RangeError(f"input magnitude {np.max(np.abs(x)):.4g} is {rule}",
                             f"a value is {rule}")
        y = np.asarray(x * float(2 ** frac))          # 0-d input: a scalar otherwise
        np.round(y, out=y)
        return y.astype(np.int64).astype(self.sdtype, copy=False).view(self.dtype)

    def encode_int(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype == np.bool_:
            return x.astype(self.dtype)
        if np.issubdtype(x.dtype, np.floating):
            raise TypeError("encode_int takes integers")
        lim = 2 ** (self.bits - 1)
        if x.size and (int(x.max()) >= lim or int(x.min()) < -lim):
            raise RangeError(f"integer input outside the {self.bits}-bit ring")
        return np.asarray(x.astype(np.int64).astype(self.sdtype)).view(self.dtype)

    def decode(self, x: np.ndarray, frac: int) -> np.ndarray:
        y = self.signed(x).astype(np.float64)
        y /= float(2 ** frac)
        return y

    def decode_int(self, x: np.ndarray) -> np.ndarray:
        return self.signed(x).astype(np.int64)

    def arshift(self, x: np.ndarray, bits: int) -> np.ndarray:
        """Arithmetic (sign-preserving) right shift of ring elements."""
        return (self.signed(x) >> bits).view(self.dtype)

    def msb(self, x: np.ndarray) -> np.ndarray:
        return (x >> self.dtype(self.bits - 1)).astype(self.dtype)

"""IR value types: `vis<dtype>[shape]`.

vis   - `public` (every party holds the plaintext) or `secret` (secret-shared).
dtype - `fxp<bits,frac>`: a real number x encoded as round(x * 2^frac) in Z_2^bits;
        `int<bits>`: a two's-complement integer in Z_2^bits;
        `bool`: 0 or 1 in the ring.
All three live in the same ring Z_2^bits at run time; only their meaning differs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Tuple

PUBLIC = "public"
SECRET = "secret"
VISIBILITIES = (PUBLIC, SECRET)


def join_vis(*vis: str) -> str:
    """Visibility of a value computed from values of these visibilities."""
    return SECRET if SECRET in vis else PUBLIC


@dataclass(frozen=True)
class DType:
    kind: str          # "fxp" | "int" | "bool"
    bits: int = 64     # ring width (bool values also live in the ring)
    frac: int = 0      # fractional bits (fxp only)

    def __post_init__(self):
        if self.kind not in ("fxp", "int", "bool"):
            raise ValueError(f"unknown dtype kind {self.kind!r}")
        if self.kind != "fxp" and self.frac:
            raise ValueError("only fxp carries fractional bits")

    @property
    def is_fxp(self) -> bool:
        return self.kind == "fxp"

    @property
    def is_int(self) -> bool:
        return self.kind == "int"

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    def with_frac(self, frac: int) -> "DType":
        return DType("fxp", self.bits, frac)

    def __str__(self) -> str:
        if self.kind == "fxp":
            return f"fxp<{self.bits},{self.frac}>"
        if self.kind == "int":
            return f"int<{self.bits}>"
        return "bool"


def fxp(bits: int = 64, frac: int = 18) -> DType:
    return DType("fxp", bits, frac)


def int_(bits: int = 64) -> DType:
    return DType("int", bits)


def bool_(bits: int = 64) -> DType:
    return DType("bool", bits)


@dataclass(frozen=True)
class Type:
    vis: str
    dtype: DType
    shape: Tuple[int, ...]

    def __post_init__(self):
        if self.vis not in VISIBILITIES:
            raise ValueError(f"unknown visibility {self.vis!r}")
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    @property
    def secret(self) -> bool:
        return self.vis == SECRET

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def replace(self, vis=None, dtype=None, shape=None) -> "Type":
        return Type(vis if vis is not None else self.vis,
                    dtype if dtype is not None else self.dtype,
                    shape if shape is not None else self.shape)

    def __str__(self) -> str:
        return f"{self.vis}<{self.dtype}>[{','.join(map(str, self.shape))}]"


_TYPE_RE = re.compile(
    r"^(public|secret)<(fxp<(\d+),(\d+)>|int<(\d+)>|bool)>\[([0-9,]*)\]$")


_DTYPE_RE = re.compile(r"^(?:fxp<(\d+),(\d+)>|int<(\d+)>|(bool))$")


def parse_dtype(text: str, bits: int = 64) -> DType:
    """Inverse of str(DType). `bool` carries no width in text; `bits` supplies it."""
    m = _DTYPE_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a dtype: {text!r}")
    fb, ff, ib, _ = m.groups()
    if fb is not None:
        return DType("fxp", int(fb), int(ff))
    if ib is not None:
        return DType("int", int(ib))
    return DType("bool", bits)


def parse_type(text: str, bits: int = 64) -> Type:
    """Inverse of str(Type); `bits` is the ring width of `bool` values."""
    m = _TYPE_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a type: {text!r}")
    vis, dt, shape = m.group(1), m.group(2), m.group(6)
    dims = tuple(int(d) for d in shape.split(",")) if shape else ()
    return Type(vis, parse_dtype(dt, bits), dims)

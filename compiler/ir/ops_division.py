"""Division ops: public division computed in the clear (`int_div`, `fdiv`) and the
reciprocal of a secret as two factors (`recip_parts`), which `a / x` multiplies in
(compiler/lower/rules_math.py, runtime/fxp/reciprocal.py)."""
from __future__ import annotations

from .ops import IRTypeError, _same_shape, defop


@defop("int_div", 2, "integer division (public only), rounding toward zero")
def _int_div(ts, attrs):
    if any(t.secret for t in ts):
        raise IRTypeError("int_div of secret values")
    _same_shape("int_div", ts)
    return [ts[0]]


@defop("recip_parts", 1, "1/x of an fxp x as two factors (r at x's frac, s at frac + 4): "
                         "a / x = trunc(trunc(a r, f) s, f + 4) keeps a's relative precision")
def _recip_parts(ts, attrs):
    t = ts[0]
    if not t.dtype.is_fxp:
        raise IRTypeError("recip_parts takes an fxp value")
    return [t, t.replace(dtype=t.dtype.with_frac(t.dtype.frac + 4))]


@defop("fdiv", 2, "public fixed-point division, computed in plaintext")
def _fdiv(ts, attrs):
    if any(t.secret for t in ts):
        raise IRTypeError("fdiv of secret values (use reciprocal)")
    _same_shape("fdiv", ts)
    return [ts[0]]

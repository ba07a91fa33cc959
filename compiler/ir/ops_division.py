"""Division ops: public division computed in the clear (`int_div`, `fdiv`) and the
reciprocal of a secret as two factors (`recip_parts`), which `a / x` multiplies in
(compiler/lower/rules_math.py, runtime/fxp/reciprocal.py)."""
from __future__ import annotations

from .ops import IRTypeError, _same_shape, defop


def _public_only(name: str, hint: str = ""):
    """Type rule of a division computed in the clear: public operands of one shape."""
    def rule(ts, attrs):
        if any(t.secret for t in ts):
            raise IRTypeError(f"{name} of secret values{hint}")
        _same_shape(name, ts)
        return [ts[0]]
    return rule


defop("int_div", 2, "integer division (public only), rounding toward zero")(_public_only("int_div"))
defop("fdiv", 2, "public fixed-point division, computed in plaintext")(
    _public_only("fdiv", " (use reciprocal)"))


@defop("recip_parts", 1, "1/x of an fxp x as two factors (r at x's frac, s at frac + 4): "
                         "a / x = trunc(trunc(a r, f) s, f + 4) keeps a's relative precision")
def _recip_parts(ts, attrs):
    t = ts[0]
    if not t.dtype.is_fxp:
        raise IRTypeError("recip_parts takes an fxp value")
    return [t, t.replace(dtype=t.dtype.with_frac(t.dtype.frac + 4))]

"""Lowering state and the small vocabulary every lowering rule builds with.

`Lowerer` owns the op list being built and hands rules helpers that keep the
fixed-point bookkeeping in one place: constants, broadcasting, and `fmul`, which
emits the ring product plus exactly the truncation the operand types call for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..ir.ops import infer
from ..ir.program import NameGen, Op, Value
from ..ir.fields import ring_problem
from ..ir.types import DType
from .errors import CompileError
from . import residual, wide
from .fixed_point import scale_plan


_CONST_ARITH = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "neg": np.negative,
                "less": np.less, "select": np.where}


@dataclass(frozen=True)
class CompileOptions:
    field: int = 64
    fxp_bits: int = 18

    def __post_init__(self):
        problem = ring_problem(self.field, self.fxp_bits)    # compiler/ir/fields.py
        if problem:
            raise CompileError(problem)

    @property
    def fine_frac(self) -> int:
        """The finer scale some values get (exp's result, inputs read only by log/sqrt/
        rsqrt): 8 more fractional bits than fxp_bits, at most field / 2 - 6 (26 at the
        defaults; a 32-bit ring has no room: fxp_bits)."""
        return max(self.fxp_bits, min(self.fxp_bits + 8, self.field // 2 - 6))

    @property
    def exp_frac(self) -> int:
        """Fractional bits of exp's result (see rules_math._exp)."""
        return self.fine_frac

    @property
    def fxp(self) -> DType:
        return DType("fxp", self.field, self.fxp_bits)

    @property
    def int(self) -> DType:
        return DType("int", self.field)

    @property
    def bool(self) -> DType:
        return DType("bool", self.field)


RULES: Dict[str, Callable] = {}


class Known:
    """A value known when compiling that the IR cannot hold (a PRNG key), bound to a
    body's parameter or returned from a body (lower.py): `jax.random.permutation(key,
    x)`, a jitted helper taking (key, x), an nnx.scan over layers with their rng keys."""
    def __init__(self, value):
        self.value = value


def rule(*names: str):
    """Register a lowering rule for the named JAX primitives.

    A rule is called as rule(L, eqn, *inputs) with IR Values (or None for unused
    operands) and returns one Value or a list of them, one per eqn output.
    """
    def deco(fn):
        for n in names:
            RULES[n] = fn
        return fn
    return deco


class Lowerer:
    def __init__(self, options: CompileOptions, names: Optional[NameGen] = None,
                 lower_eqns: Optional[Callable] = None):
        """`lower_eqns(L, jaxpr, consts, args)` lowers a nested jaxpr (lower.py's walk,
        handed in so that rules can inline calls without importing it)."""
        self.opt = options
        self.names = names or NameGen()
        self._lower_eqns = lower_eqns
        self.ops: List[Op] = []
        self.loc: Optional[str] = None
        self._const_cache: Dict[tuple, Value] = {}
        self._producer: Dict[int, Op] = {}
        #: known_value(jaxpr atom) -> its value if known when compiling (literals,
        #: constants and what follows from them only), else None; set per equation
        self.known_value: Callable = lambda atom: None
        self._const_values: Dict[int, Optional[np.ndarray]] = {}
        self.wide: Dict[int, float] = {}           # wide values and their bounds (wide.py)
        self.scaled: Dict[int, tuple] = {}         # x * q results: (x, scalar q)
        self.want_wide: Dict[int, float] = {}      # state at f bits a moment wanted wide
        self.residuals: Dict[int, Value] = {}      # quotient -> its residual (residual.py)
        self.sum_residuals: Dict[int, Optional[Value]] = {}   # the same through sums, into dots
        self.parts_of: Dict[int, List[Value]] = {}  # divisor -> its recip_parts (rules_math)
        self.quotients: Dict[int, tuple] = {}      # x / c by a constant: (x, c) (quotient_round.py)

    # -- nested jaxprs ----------------------------------------------------------------
    def inline(self, closed, args: Sequence[Value]) -> List[Value]:
        """Lower the closed jaxpr `closed` into this lowerer's ops, its invars bound to
        `args`; returns its outputs (calls, custom derivatives, loop and branch bodies)."""
        return self._lower_eqns(self, closed.jaxpr, closed.consts, args)

    def inline_fn(self, fn: Callable, eqn, args: Sequence[Value]):
        """Lower `fn` -- jnp code written for the equation's static shapes -- in place of
        the equation: traced on its operands' shapes and dtypes, then inlined, so every
        step is an op with a rule of its own (rules_linalg.py, tile, sinh, ...). `fn`
        must not emit the equation's own primitive. One Value, or a list for several
        outputs."""
        import jax
        avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in eqn.invars]
        outs = self.inline(jax.make_jaxpr(fn)(*avals), args)
        return outs[0] if len(eqn.outvars) == 1 else outs

    def sub(self) -> "Lowerer":
        """A lowerer for a nested block: same options, names and inline hook."""
        return Lowerer(self.opt, self.names, self._lower_eqns)

    # -- emission -------------------------------------------------------------------
    def emit(self, name: str, inputs: Sequence[Value], **attrs) -> Value:
        outs = self.emit_multi(name, inputs, **attrs)
        assert len(outs) == 1
        return outs[0]

    def emit_multi(self, name: str, inputs: Sequence[Value], blocks=(), out_types=None,
                   **attrs) -> List[Value]:
        types = out_types if out_types is not None else infer(name, [v.type for v in inputs], attrs)
        outs = [Value(self.names(), t) for t in types]
        op = Op(name, list(inputs), outs, attrs, list(blocks), self.loc)
        self.ops.append(op)
        for o in outs:
            self._producer[id(o)] = op
        return outs

    # -- dtypes -----------------------------------------------------------------------
    def dtype_of(self, aval) -> DType:
        """IR dtype for a JAX abstract value's dtype."""
        dt = np.dtype(aval.dtype)
        if dt == np.bool_:
            return self.opt.bool
        if np.issubdtype(dt, np.integer):
            if dt.itemsize * 8 > self.opt.field:
                pass  # int64 in a 32-bit ring: values are range-checked at input time
            return self.opt.int
        if np.issubdtype(dt, np.floating):
            return self.opt.fxp
        raise CompileError(f"dtype {dt} is not supported (use float, int or bool)")

    # -- constants --------------------------------------------------------------------
    def const(self, value, dtype: DType, shape: Sequence[int] = ()) -> Value:
        """A public constant; scalars are broadcast to `shape` by a broadcast op."""
        natural = {"fxp": np.float64, "int": np.int64, "bool": np.bool_}[dtype.kind]
        arr = np.asarray(value).astype(natural)
        key = (arr.dtype.str, arr.shape, arr.tobytes(), str(dtype), tuple(shape))
        if key in self._const_cache:
            return self._const_cache[key]
        if arr.ndim == 0 and tuple(shape) != ():
            v = self.emit("broadcast", [self.emit("constant", [], value=arr, dtype=dtype)],
                          shape=list(shape), dims=[])
        else:
            v = self.emit("constant", [], value=arr, dtype=dtype)
        self._const_cache[key] = v
        return v

    def broadcast_to(self, v: Value, shape: Sequence[int]) -> Value:
        shape = list(shape)
        if list(v.type.shape) == shape:
            return v
        nd = len(v.type.shape)
        if nd == 0:
            return self.emit("broadcast", [v], shape=shape, dims=[])
        dims = list(range(len(shape) - nd, len(shape)))
        return self.emit("broadcast", [v], shape=shape, dims=dims)

    def same_shape(self, *vs: Value) -> List[Value]:
        """Broadcast scalar literals against the array operands (jaxpr allows it;
        since jax 0.10 size-1 axes broadcast implicitly too)."""
        shape = tuple(np.broadcast_shapes(*(v.type.shape for v in vs)))
        return [self.broadcast_to(v, shape) for v in vs]

    # -- fixed point -------------------------------------------------------------------
    def to_frac(self, v: Value, frac: int) -> Value:
        """Bring an fxp value to `frac` fractional bits (lshift up, trunc down)."""
        f = v.type.dtype.frac
        if f < frac:
            return self.emit("lshift", [v], bits=frac - f)
        if f > frac:
            return self.emit("trunc", [v], bits=f - frac)
        return v

    def as_fxp(self, v: Value) -> Value:
        if v.type.dtype.is_fxp:
            return v
        return self.emit("convert", [v], to=self.opt.fxp)

    def int_view(self, v: Value) -> Optional[Value]:
        """If fxp `v` is a converted int/bool or an integral public constant, the
        integer value itself: multiplying by it then needs no truncation."""
        op = self.producer(v)
        if op is None:
            return None
        if op.name == "convert" and not op.inputs[0].type.dtype.is_fxp:
            return op.inputs[0]
        if op.name == "broadcast":
            inner = self.int_view(op.inputs[0])
            return None if inner is None else self.emit("broadcast", [inner], **op.attrs)
        if op.name == "constant" and op.attrs["dtype"].is_fxp:
            val = op.attrs["value"]
            if np.all(np.isfinite(val)) and np.all(val == np.round(val)) and np.all(np.abs(val) < 2 ** 30):
                return self.const(val.astype(np.int64), self.opt.int)
        return None

    def common_frac(self, vs: Sequence[Value]) -> int:
        """The scale at which fxp operands of one op meet (add, compare, select, concat,
        ...): the finest, unless that would lift a value that is not a constant -- of
        unknown magnitude, up to its own format's range -- to a finer scale with a
        smaller range; then the coarsest non-constant one (constants are re-encoded at
        any scale). exp's 26-bit result meeting an 18-bit value z in `where(p, exp(a), z)`
        lifted z to 26 bits, range 2^36: z = 1e12 wrapped with no error."""
        finest = max(v.type.dtype.frac for v in vs)
        unknown = [v for v in vs if self.const_value(v) is None]
        if all(v.type.dtype.frac == finest for v in unknown):
            return finest
        return min(v.type.dtype.frac for v in unknown)

    def const_value(self, v: Value) -> Optional[np.ndarray]:
        """The value of a public value computed from constants alone (through
        broadcasts and a few arithmetic ops: jnp.var divides by `n - ddof`, optax's bias
        correction by 1 - b^count with a constant count), else None. A scalar constant
        broadcast stays a scalar. Evaluated in float64, memoised per value."""
        if id(v) not in self._const_values:
            self._const_values[id(v)] = None if v.type.secret else self._eval_const(v)
        return self._const_values[id(v)]

    def _eval_const(self, v: Value) -> Optional[np.ndarray]:
        op = self.producer(v)
        if op is None:
            return None
        if op.name == "constant":
            return op.attrs["value"]
        if op.name == "broadcast":
            inner = self.const_value(op.inputs[0])
            if inner is None or np.ndim(inner) == 0:
                return inner
            shape, dims = op.attrs["shape"], op.attrs["dims"]
            keep = np.expand_dims(inner, tuple(i for i in range(len(shape)) if i not in dims))
            return np.broadcast_to(keep, shape)
        if op.name in ("trunc", "lshift") or (op.name == "convert" and not op.inputs[0].type.dtype.is_fxp
                                             and not op.outputs[0].type.dtype.is_bool):
            return self.const_value(op.inputs[0])
        if op.name in _CONST_ARITH:
            args = [self.const_value(x) for x in op.inputs]
            if all(a is not None for a in args):
                return _CONST_ARITH[op.name](*(np.asarray(a) for a in args))
        return None

    def scale(self, x: Value, q, keep_range: bool = False) -> Value:
        """x * q for a public real constant q (scalar or broadcastable to x), with q
        encoded at fractional bits chosen by its magnitude (fixed_point.scale_plan)."""
        q = np.broadcast_to(np.asarray(q, np.float64), x.type.shape)
        out = self._scale(x, q, keep_range)
        u = np.unique(q)
        if u.size == 1:
            self.scaled[id(out)] = (x, float(u[0]))
        return out

    def _scale(self, x: Value, q: np.ndarray, keep_range: bool) -> Value:
        if id(x) in self.wide and np.any(q):
            return wide.scale(self, x, q)
        f = self.opt.fxp_bits
        if keep_range and x.type.dtype.is_fxp and f < x.type.dtype.frac <= f + 8:
            # a sum of products at f + guard bits divided by a count keeps its bits
            # (x / 2^p) * q@(f+e'), e' = e - 4, p = e' + 1: q keeps 14 significant bits
            # (2^-15), the ring product |x/n| 2^(fx+f-1) stays below the truncation's
            # 2^(k-2) for a quotient below 2^21 (fx = 24), and the shift costs
            # 2^-(fx-p)/n <= 2^-(fx+3) of error
            plan = scale_plan(q, f, self.opt.field, keep_range=True)
            e = max(0, plan.frac - f - 4)
            p = e + 1
            x_pre = self.emit("trunc", [x], bits=p) if p else x
            c_type = self.opt.fxp.with_frac(f + e)
            uniq = np.unique(plan.value)
            c = self.const(uniq[0], c_type, x.type.shape) if uniq.size == 1 else \
                self.emit("constant", [], value=np.ascontiguousarray(plan.value), dtype=c_type)
            return self.emit("trunc", [self.emit("mul", [x_pre, c])], bits=f + e - p)
        x = x_f = self.to_frac(self.as_fxp(x), f)
        plan = scale_plan(q, self.opt.fxp_bits, self.opt.field, keep_range)
        if plan.pre_shift:
            x = self.emit("trunc", [x], bits=plan.pre_shift)
        c_type = self.opt.fxp.with_frac(plan.frac)
        uniq = np.unique(plan.value)
        c = self.const(uniq[0], c_type, x.type.shape) if uniq.size == 1 else \
            self.emit("constant", [], value=np.ascontiguousarray(plan.value), dtype=c_type)
        out = self.emit("trunc", [self.emit("mul", [x, c])], bits=plan.final_shift)
        if keep_range and plan.frac > f and self.opt.field >= 64:   # a mean keeps its lost bits
            residual.division_residual(self, x, x_f, c, out, plan.pre_shift, plan.frac - f)
        return out

    def fmul(self, a: Value, b: Value, op: str = "mul", **attrs) -> Value:
        """Fixed-point product (elementwise `mul` or `dot`): one truncation afterwards
        when both operands are fractional, none when either is an integer. A product of
        a secret by a public real constant keeps the constant's relative precision
        (Lowerer.scale)."""
        if a.type.dtype.is_fxp and b.type.dtype.is_fxp:
            ai, bi = self.int_view(a), self.int_view(b)
            if bi is not None:
                b = bi
            elif ai is not None:
                a = ai
            elif op == "mul":
                for x, c in ((a, b), (b, a)):
                    q = self.const_value(c)
                    if q is not None and x.type.secret and np.all(np.isfinite(q)):
                        return self.scale(x, q)
        same = a is b                 # a square stays one value (wide.py reads x * x)
        a = self.to_frac(a, self.opt.fxp_bits) if a.type.dtype.is_fxp else a
        b = a if same else self.to_frac(b, self.opt.fxp_bits) if b.type.dtype.is_fxp else b
        if a.type.dtype.is_fxp and b.type.dtype.is_fxp and self.residuals:
            hi_lo = residual.product(self, a, b, op, **attrs)   # with a mean (residual.py)
            if hi_lo is not None:
                return hi_lo
        out = self.emit(op, [a, b], **attrs)
        return self.to_frac(out, self.opt.fxp_bits) if out.type.dtype.is_fxp else out

    def producer(self, v: Value) -> Optional[Op]:
        return self._producer.get(id(v))

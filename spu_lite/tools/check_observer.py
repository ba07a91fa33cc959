"""What spu.check looks at while the compiled program runs in plaintext fixed point.

The executor calls `Observer(op, inputs, outputs)` after every op (KernelContext.observer);
the values are ref2k ring arrays, i.e. exactly the fixed-point numbers the secure
protocols hold in shares. Two kinds of findings come from here:

- "overflow": a value whose ring magnitude reaches 2^(k-2). Both truncation protocols
  (aby3_convert.trunc, semi2k.trunc) are exact only for |x| < 2^(k-2) before the shift,
  and comparisons need the same headroom (x - y must not wrap), so this is the limit of
  every fixed-point value: real |v| < 2^(k-2-frac). A product is still at 2f fractional
  bits before its truncation, hence |x y| < 2^(k-2-2f) = 2^26 at k = 64, f = 18. For
  products, dots, sums and shifts the true value is recomputed in float64 from the
  op's inputs, so a product that already wrapped in the ring is still caught.
- "domain": an input of exp, log, reciprocal, ... outside the approximation's stated
  domain (runtime/fxp/domains.py).

Masked lanes: `jnp.where(x > 0, jnp.log(x), 0)` evaluates log on every lane and throws
the bad ones away. A finding at an elementwise op of the program's top level is held
back and its lanes are followed (lane_taint.py) through elementwise ops, broadcasts,
reshapes and transposes; a select drops the lanes it does not pick, a product by an
exact 0 that is not itself bad clears a lane, and an op that mixes lanes (a sum, a dot)
marks all its output lanes bad. The finding is reported only when a bad lane reaches a
result or a loop or branch; findings inside loop and branch bodies are reported at once.
"""
from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from spu_lite.compiler.ir.fields import value_limit
from spu_lite.compiler.ir.ops_fused import FUSED
from spu_lite.runtime.fxp.domains import domains
from spu_lite.runtime.protocols.base import Share
from spu_lite.runtime.ring import Ring

from .lane_taint import follow, followable, nested_ops, reaching


@dataclass
class Finding:
    kind: str                  # "overflow", "domain" or "precision"
    op: str                    # the IR op (or "input", an output's name)
    source: str                # "file.py:LINE" of the user's code
    detail: str                # what was seen, with magnitudes
    count: int = 0             # offending elements (over all executions of the op)
    magnitude: float = 0.0     # the largest offending |value| seen

    def __str__(self) -> str:
        return f"{self.kind:<10}{self.op:<14}{self.source:<24}{self.detail}"


_LOC = re.compile(r"^(.*?):(\d+)(?::\d+)?")


_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # spu_lite/


def source_of(loc: Optional[str], fallback: str = "?") -> str:
    """'/path/model.py:12:8 (f)' -> 'model.py:12'; `fallback` where there is no line
    of the user's (a library function like jnp.exp checked directly)."""
    m = _LOC.match(loc or "")
    if not m or os.path.dirname(os.path.abspath(m.group(1))) == _OWN_DIR:
        return fallback
    return f"{os.path.basename(m.group(1))}:{m.group(2)}"


def _ring_value(x) -> Optional[np.ndarray]:
    if x is None:
        return None
    return x.parts[0] if isinstance(x, Share) else np.asarray(x)


def _float_dot(a: np.ndarray, b: np.ndarray, attrs) -> np.ndarray:
    """dot_general of the IR `dot` in float64 (batch, lhs free, rhs free)."""
    lc, rc, lb, rb = (list(attrs[k]) for k in ("lhs_contract", "rhs_contract",
                                               "lhs_batch", "rhs_batch"))
    letters = iter(string.ascii_letters)
    la = [next(letters) for _ in range(a.ndim)]
    ra = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(lc + lb, rc + rb):
        ra[j] = la[i]
    out = [la[i] for i in lb] + [la[i] for i in range(a.ndim) if i not in lc + lb] \
        + [ra[j] for j in range(b.ndim) if j not in rc + rb]
    return np.einsum(f"{''.join(la)},{''.join(ra)}->{''.join(out)}", a, b, optimize=True)


class Observer:
    """Collects overflow and domain findings; merged per (kind, op, source)."""

    def __init__(self, field: int, fxp_bits: int, options: Optional[dict] = None,
                 fallback_source: str = "?"):
        self.fallback_source = fallback_source
        self.ring = Ring(field)
        self.field, self.fxp_bits, self.options = field, fxp_bits, dict(options or {})
        self._found: Dict[Tuple[str, str, str], Finding] = {}
        self._details: Dict[Tuple[str, str, str], object] = {}
        self._flagged = set()          # values computed from a reported value
        self._pending: Dict[Tuple[str, str, str], Finding] = {}   # held back (masked lanes?)
        self._taint: Dict[int, Tuple[np.ndarray, frozenset]] = {}  # value -> (bad lanes, keys)
        self._nested = None            # ids of ops inside bodies (None: every op, no lanes)
        self._soft = set()             # held findings reported only if a lane is a result
        self.ops_seen = 0

    def watch(self, program) -> None:
        """Follow bad lanes through `program`'s top-level ops (see the module doc)."""
        self._nested = nested_ops(program)

    def finish(self, results) -> None:
        """At the end of the run: held-back findings whose lanes reach a result."""
        for r in results:
            t = self._taint.get(id(r))
            if t is not None:
                self._commit(t[1])
                self._flagged.add(id(r))

    @property
    def findings(self) -> List[Finding]:
        return list(self._found.values())

    def derived_from_finding(self, value) -> bool:
        """Whether an IR value was computed from one a finding is about."""
        return id(value) in self._flagged

    # -- decoding ---------------------------------------------------------------------
    def real(self, x, value) -> Optional[np.ndarray]:
        """The real numbers an IR value holds (None if not made or not numeric)."""
        r = _ring_value(x)
        if r is None or r.dtype.kind not in "ui":
            return None
        dt = value.type.dtype
        if dt.is_fxp:
            return self.ring.decode(r.astype(self.ring.dtype, copy=False), dt.frac)
        if dt.is_int:
            return self.ring.decode_int(r.astype(self.ring.dtype, copy=False)).astype(np.float64)
        return None

    # -- the hook ---------------------------------------------------------------------
    def __call__(self, op, inputs, outputs) -> None:
        self.ops_seen += 1
        if any(id(v) in self._flagged for v in op.inputs) or self._body_flagged(op):
            # garbage in, garbage out: only the first op that went wrong is reported
            self._flagged.update(id(v) for v in op.outputs)
            return
        lanes = self._nested is not None and id(op) not in self._nested
        taints = [self._taint.get(id(v)) for v in op.inputs]
        skip = None                      # lanes already known bad: not checked again
        if any(t is not None for t in taints):
            masks = [None if t is None else t[0] for t in taints]
            carried = follow(op, inputs, masks) if lanes else None
            keys = frozenset().union(*(t[1] for t, r in zip(taints, reaching(op, inputs, masks))
                                       if r))
            if carried is None or op.outputs[0].type.dtype.is_bool:
                keys = keys - self._soft          # NaN lanes: only a result counts
            if carried is None and keys and (op.blocks or not lanes):
                self._commit(keys)            # a loop, or lanes not followed: report
                self._flagged.update(id(v) for v in op.outputs)
                return
            if carried is None and keys:      # the lanes mix: every output lane is bad
                for v in op.outputs:
                    self._taint[id(v)] = (np.ones(tuple(v.type.shape), bool), keys)
                return
            if carried is not None and keys and carried.any():
                for v in op.outputs:
                    self._taint[id(v)] = (carried, keys)
                skip = carried
        src = source_of(op.loc, self.fallback_source)
        hold = lanes and followable(op)
        if op.name == "constant":
            self._nan_constant(op, src, lanes)
            return
        with np.errstate(all="ignore"):
            if op.name in _DOMAIN_OPS and inputs and inputs[0] is not None:
                self._domain(op, inputs[0], src, skip, hold)
            self._overflow(op, inputs, outputs, src, skip, hold)

    def _commit(self, keys) -> None:
        """Report held-back findings (merged into those of the same kind, op, source)."""
        for key in keys:
            f = self._pending.pop(key, None)
            if f is None:
                continue
            held = self._details[("held",) + key]
            g = self._found.get(key)
            if g is None:
                self._found[key], self._details[key] = f, held
                continue
            g.count += f.count
            if f.magnitude >= g.magnitude:
                g.magnitude, self._details[key] = f.magnitude, held
            g.detail = self._details[key](g.count)

    def _body_flagged(self, op) -> bool:
        """A loop or branch whose body computed a reported value."""
        return any(id(v) in self._flagged for b in op.blocks for o in b.ops for v in o.outputs)

    def _nan_constant(self, op, src, lanes: bool) -> None:
        """A NaN in a constant (`jnp.where(m, x, jnp.nan)`): fixed point has no NaN,
        the ring holds 0 there; a finding if such a lane reaches a result."""
        if not op.outputs[0].type.dtype.is_fxp or not lanes:    # in a body: not followed
            return
        val = np.asarray(op.attrs["value"], np.float64)
        nan = np.isnan(val)
        if nan.any():
            # library code keeps NaN for cases it then handles (searchsorted, digitize
            # compare and sum them): such lanes count only where they are returned
            self._soft.add(("domain", "constant", src))
            mask = np.broadcast_to(nan, tuple(op.outputs[0].type.shape))
            self._add("domain", op, src, int(nan.sum()), 0.0,
                      lambda cnt: f"{cnt} NaN constant(s): fixed point has no NaN, they are 0 "
                                  f"here where float JAX keeps NaN",
                      mask.copy())

    def _domain(self, op, x, src, skip=None, hold=False) -> None:
        fo = op.outputs[0].type.dtype.frac if op.outputs[0].type.dtype.is_fxp else None
        dom = domains(self.field, self.fxp_bits, self.options, exp_frac=fo)[op.name]
        v = self.real(x, op.inputs[0])
        if v is None or not v.size:
            return
        bad = dom.outside_mask(v)
        if skip is not None:
            bad = bad & ~skip
        n = int(bad.sum())
        if n:
            seen = v[bad]
            self._add("domain", op, src, n, float(np.max(np.abs(seen))),
                      lambda cnt: f"{cnt} input(s) outside {dom} (seen {seen.min():.4g} .. "
                                  f"{seen.max():.4g}): {dom.outside}", bad if hold else None)

    def _true_value(self, op, inputs, outputs) -> Optional[np.ndarray]:
        """The exact real result of the op, from its inputs where the ring may have
        wrapped (products, dots, sums, shifts); else the output as computed."""
        name = _product_of(op.name)
        ins = [self.real(x, v) for x, v in zip(inputs, op.inputs)] if inputs else []
        if name in ("mul", "add", "sub") and len(ins) == 2 and all(a is not None for a in ins):
            a, b = ins
            return a * b if name == "mul" else (a + b if name == "add" else a - b)
        if name == "dot" and len(ins) == 2 and all(a is not None for a in ins):
            return _float_dot(ins[0], ins[1], op.attrs)
        if name == "reduce_sum" and ins and ins[0] is not None:
            return ins[0].sum(axis=tuple(op.attrs["axes"]))
        if name == "cumsum" and ins and ins[0] is not None:
            ax, x = op.attrs["axis"], ins[0]
            return np.flip(np.cumsum(np.flip(x, ax), axis=ax), ax) if op.attrs["reverse"] \
                else np.cumsum(x, axis=ax)
        if name in ("lshift", "neg") and ins and ins[0] is not None:
            return ins[0]
        if name == "trunc":         # its input, at the finer scale, must be in range
            return None
        return self.real(outputs[0], op.outputs[0]) if outputs and len(op.outputs) == 1 else None

    def _overflow(self, op, inputs, outputs, src, skip=None, hold=False) -> None:
        if not op.outputs or not op.outputs[0].type.dtype.is_fxp:
            return
        if op.name == "trunc":
            v, frac = self.real(inputs[0], op.inputs[0]), op.inputs[0].type.dtype.frac
        elif op.name in _FUSED and op.name != "conv_trunc":   # the product before its trunc
            v = self._true_value(op, inputs, outputs)
            frac = op.outputs[0].type.dtype.frac + op.attrs["bits"]
        else:
            v, frac = self._true_value(op, inputs, outputs), op.outputs[0].type.dtype.frac
        if v is None or not np.size(v):
            return
        v = np.abs(np.asarray(v, np.float64))
        real_limit = value_limit(self.field, frac)        # 2^(k-2-frac)
        bad = ~(v < real_limit)
        if skip is not None and bad.shape == skip.shape:
            bad = bad & ~skip
        n = int(bad.sum())
        if n:
            top = float(np.max(v[bad]))
            what = "before its truncation " if frac > self.fxp_bits else ""
            self._add("overflow", op, src, n, top,
                      lambda cnt: f"{cnt} value(s) {what}up to |{top:.4g}|, at {frac} fractional "
                                  f"bits the limit is 2^{self.field - 2 - frac} = {real_limit:.4g}",
                      bad if hold and bad.shape == tuple(op.outputs[0].type.shape) else None)

    def _add(self, kind, op, src, n, mag, detail, lanes=None) -> None:
        """Merge into the finding of (kind, op name, source); detail(count) describes
        the largest magnitude seen. With `lanes` (the bad lanes of the op's output) the
        finding is held back and the lanes followed; else it is reported."""
        name = _product_of(op.name)       # a fused mul_trunc is reported as the mul
        key = (kind, name, src)
        found, dkey = (self._found, key) if lanes is None else (self._pending, ("held",) + key)
        f = found.get(key)
        if f is None:
            f = found[key] = Finding(kind, name, src, "", 0, 0.0)
        f.count += n
        if mag >= f.magnitude or dkey not in self._details:
            f.magnitude, self._details[dkey] = mag, detail
        f.detail = self._details[dkey](f.count)
        if lanes is None:
            self._flagged.update(id(v) for v in op.outputs)
            return
        old = self._taint.get(id(op.outputs[0]))
        if old is not None:
            lanes, keys = lanes | old[0], old[1] | {key}
        else:
            keys = frozenset([key])
        for v in op.outputs:
            self._taint[id(v)] = (lanes, frozenset(keys))


_DOMAIN_OPS = frozenset(domains())


#: products the compiler fused with their truncation
_FUSED = tuple(FUSED.values())


def _product_of(name: str) -> str:
    """The product a fused op computes ("mul_trunc" -> "mul"), else the name itself."""
    return name[:-len("_trunc")] if name in _FUSED else name

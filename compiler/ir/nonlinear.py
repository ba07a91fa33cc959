"""The nonlinear functions, once: one row per IR op.

Every place that knows about them reads this table: the IR's op definitions
(compiler/ir/ops.py), the lowering rules (compiler/lower/rules_math.py), the kernels
(runtime/kernels/math.py: `plain` for public inputs) and the fixed-point registry
(runtime/fxp/nonlinear.py: `fxp` names the approximation, "module.function" in
runtime/fxp). Adding a function is adding a row here and writing its approximation.

`domain` is where the documented error holds (closed interval; None: every valid
fixed-point value). `error` is the documented error at the defaults (64-bit ring,
18 fractional bits) against float64 at the rounded input, as the approximation's
docstring states it and `spu-lite precision` measures it; `abs_err` is its absolute
part on `measured` (the op table's tolerance). Outside the domain the result is
undefined (spu.check reports such inputs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

Interval = Tuple[float, float]


@dataclass(frozen=True)
class NonlinearOp:
    op: str                           # IR op name
    primitive: Optional[str]          # the JAX primitive lowered to it (None: no direct one)
    fxp: str                          # runtime/fxp implementation, "module.function"
    plain: Callable[[np.ndarray], np.ndarray]   # float64 meaning (public inputs, references)
    domain: Optional[Interval]        # where `error` holds; None: every valid value
    measured: Interval                # the interval the error was measured on
    abs_err: float                    # max absolute error measured there (k = 64, f = 18)
    error: str                        # the documented error, in words
    any_input_scale: bool = False     # reads its input at any scale (normalises it first)
    out_scale: bool = False           # can return a scale other than its input's (`frac`)


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


TABLE = (
    NonlinearOp("exp", "exp", "exp_log.exp", np.exp, (-4e9, 16.0), (-8.0, 4.0), 2e-4,
                "3.6e-6 relative (exp_mode squaring; result at 26 fractional bits)",
                out_scale=True),
    NonlinearOp("log", "log", "exp_log.log", np.log, (2.0 ** -18, 2.0 ** 37), (0.01, 100.0), 1.7e-4,
                "1 output ulp at the rounded input; 4e-6 on [0.01, 100] with a 26-bit input",
                any_input_scale=True, out_scale=True),
    NonlinearOp("log1p", "log1p", "exp_log.log1p", np.log1p, (-1.0 + 2.0 ** -18, 2.0 ** 37), (-0.9, 100.0),
                6e-5, "1 output ulp (as log)", any_input_scale=True, out_scale=True),
    NonlinearOp("reciprocal", None, "reciprocal.reciprocal", lambda x: 1.0 / x, None, (0.1, 100.0), 1.5e-4,
                "2e-7 relative + 1 ulp at the rounded input, x != 0"),
    NonlinearOp("sqrt", "sqrt", "roots.sqrt", np.sqrt, (0.0, 2.0 ** 37), (0.0, 100.0), 9e-6,
                "3e-8 relative + 1 ulp", any_input_scale=True, out_scale=True),
    NonlinearOp("rsqrt", "rsqrt", "roots.rsqrt", lambda x: 1.0 / np.sqrt(x), (2.0 ** -18, 2.0 ** 37),
                (0.01, 100.0), 8.4e-4, "3e-8 relative + 1 ulp at the rounded input",
                any_input_scale=True, out_scale=True),
    NonlinearOp("logistic", "logistic", "activations.sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)), None,
                (-10.0, 10.0), 4.3e-6, "1 ulp (sigmoid_mode accurate; segmented: 2.9e-4)"),
    NonlinearOp("tanh", "tanh", "activations.tanh", np.tanh, None, (-5.0, 5.0), 5.8e-6, "1-2 ulp"),
    NonlinearOp("erf", "erf", "activations.erf", _erf, None, (-4.0, 4.0), 5.6e-6, "1 ulp"),
    NonlinearOp("sin", "sin", "trig.sin", np.sin, (-1.6e6, 1.6e6), (-100.0, 100.0), 8e-6,
                "1 ulp + the input's rounding"),
    NonlinearOp("cos", "cos", "trig.cos", np.cos, (-1.6e6, 1.6e6), (-100.0, 100.0), 8e-6,
                "1 ulp + the input's rounding"),
)

BY_OP: Dict[str, NonlinearOp] = {row.op: row for row in TABLE}

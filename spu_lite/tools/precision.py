"""Precision of the nonlinear functions against float64, next to SecretFlow SPU's.

Every op runs end to end through spu_lite.jit on `points` evenly spaced inputs of its
domain (the same domains as SPU's anchor script, shared/anchors/spu_precision.py);
the error is taken against float64 evaluation of the same function at the same
(unquantised) points, so it includes the 2^-(f+1) input rounding. Relative error
divides by max(|ref|, 1e-6).

    python -m spu_lite.tools.precision [--protocol aby3] [--points 10001] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from .spu_reference import MAX_ABS as SPU_MAX_ABS, MAX_REL as SPU_MAX_REL, MEAN_ABS as SPU_MEAN_ABS


def _cases():
    import jax
    import jax.numpy as jnp

    def erf64(x):
        return np.vectorize(math.erf, otypes=[np.float64])(x)

    def sigmoid64(x):
        return 0.5 * (1.0 + np.tanh(0.5 * x))

    def gelu_tanh64(x):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

    def softmax64(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def logsumexp64(z):
        m = z.max(-1)
        return m + np.log(np.exp(z - m[..., None]).sum(-1))

    rows = np.random.default_rng(0).uniform(-8.0, 8.0, (64, 128))
    # name: (jax function, float64 reference, domain label, inputs or (lo, hi))
    return {
        "exp": (jnp.exp, np.exp, (-8.0, 4.0)),
        "log": (jnp.log, np.log, (0.01, 100.0)),
        "reciprocal": (lambda x: 1.0 / x, lambda x: 1.0 / x, (0.1, 100.0)),
        "rsqrt": (jax.lax.rsqrt, lambda x: 1.0 / np.sqrt(x), (0.01, 100.0)),
        "sqrt": (jnp.sqrt, np.sqrt, (0.0, 100.0)),
        "sigmoid": (jax.nn.sigmoid, sigmoid64, (-10.0, 10.0)),
        "tanh": (jnp.tanh, np.tanh, (-5.0, 5.0)),
        "erf": (jax.scipy.special.erf, erf64, (-4.0, 4.0)),
        "gelu": (lambda x: jax.nn.gelu(x, approximate=False),
                 lambda x: 0.5 * x * (1.0 + erf64(x / math.sqrt(2.0))), (-6.0, 6.0)),
        "softmax": (lambda z: jax.nn.softmax(z, axis=-1), softmax64,
                    ("rows of 128, U(-8,8)", rows)),
        "log1p": (jnp.log1p, np.log1p, (-0.99, 100.0)),
        "silu": (jax.nn.silu, lambda x: x * sigmoid64(x), (-10.0, 10.0)),
        "softplus": (jax.nn.softplus, lambda x: np.logaddexp(x, 0.0), (-10.0, 10.0)),
        "gelu_tanh": (lambda x: jax.nn.gelu(x, approximate=True), gelu_tanh64, (-6.0, 6.0)),
        "logsumexp": (lambda z: jax.nn.logsumexp(z, axis=-1), logsumexp64,
                      ("rows of 128, U(-8,8)", rows)),
    }


def measure(name: str, protocol: str = "aby3", points: int = 10001, **config) -> dict:
    """One row: max/mean abs error and max relative error of op `name`."""
    import spu_lite
    fn, ref, dom = _cases()[name]
    if isinstance(dom[1], np.ndarray):
        label, x = dom
    else:
        label, x = f"[{dom[0]:g}, {dom[1]:g}]", np.linspace(dom[0], dom[1], points)
    jf = spu_lite.jit(fn, protocol=protocol, **config)
    got = np.asarray(jf(x), np.float64)
    in_bits = jf.lower(x).program.params[0].type.dtype.frac    # the input's format
    want = ref(x)
    err = np.abs(got - want)
    rel = err / np.maximum(np.abs(want), 1e-6)
    scale = 2.0 ** in_bits
    own = np.abs(got - ref(np.round(x * scale) / scale))
    spu = SPU_MAX_ABS.get(name)
    return {"op": name, "domain": label, "max_abs": float(err.max()), "max_rel": float(rel.max()),
            "mean_abs": float(err.mean()), "max_abs_rounded_input": float(own.max()),
            "input_frac": in_bits,
            "spu_max_abs": spu, "spu_max_rel": SPU_MAX_REL.get(name),
            "spu_mean_abs": SPU_MEAN_ABS.get(name),
            "ratio": None if spu is None else float(err.max()) / spu}


def report(protocol: str = "aby3", points: int = 10001, ops: Optional[Sequence[str]] = None,
           **config) -> List[dict]:
    """Rows for every op (or the listed ones). `config` goes to spu_lite.jit
    (field, fxp_bits, exp_mode, sigmoid_mode, ...)."""
    return [measure(n, protocol, points, **config) for n in (ops or list(_cases()))]


def format_table(rows: List[dict]) -> str:
    """SPU max / rel / mean: SPU's max abs, max rel and mean abs error on the same domain
    (anchors). ratio = max abs / SPU's max abs. 'in' = fractional bits of the encoded input (26
    where the compiler gives a finer input format: compiler/lower/input_formats.py).
    'own' = max abs error against float64 at the input rounded to that grid: the
    approximation's own error, without the input rounding (ln at 0.01 with 18 bits:
    1.7e-4)."""
    head = f"{'op':<11}{'domain':<22}{'in':>3}{'max abs':>10}{'max rel':>10}{'mean abs':>10}" \
           f"{'SPU max':>10}{'SPU rel':>9}{'SPU mean':>10}{'ratio':>8}{'own':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        spu = "-" if r["spu_max_abs"] is None else f"{r['spu_max_abs']:.2g}"
        srel = "-" if r.get("spu_max_rel") is None else f"{r['spu_max_rel']:.2g}"
        smean = "-" if r.get("spu_mean_abs") is None else f"{r['spu_mean_abs']:.2g}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        lines.append(f"{r['op']:<11}{r['domain']:<22}{r['input_frac']:>3}{r['max_abs']:>10.2e}"
                     f"{r['max_rel']:>10.2e}"
                     f"{r['mean_abs']:>10.2e}{spu:>10}{srel:>9}{smean:>10}{ratio:>8}"
                     f"{r['max_abs_rounded_input']:>10.2e}")
    return "\n".join(lines)


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="spu-lite precision",
                                 description="Accuracy of spu-lite's nonlinear functions "
                                             "against float64, next to SPU's figures.")
    ap.add_argument("--protocol", default="aby3", choices=["aby3", "semi2k", "ref2k"])
    ap.add_argument("--points", type=int, default=10001, help="points per domain (10001)")
    ap.add_argument("--ops", nargs="+", choices=list(_cases()), help="only these ops")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="runtime config, e.g. sigmoid_mode=segmented exp_mode=taylor fxp_bits=16")
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    args = ap.parse_args(list(argv) if argv is not None else None)
    config = {}
    for kv in args.set:
        if "=" not in kv:
            ap.error(f"--set expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        config[k] = _parse_value(v)
    rows = report(args.protocol, args.points, args.ops, **config)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print(f"protocol {args.protocol}, {args.points} points per domain, error vs float64")
        print(format_table(rows))
        print("in: fractional bits of the encoded input; own: max abs error against float64 "
              "at the input rounded to that grid (the approximation alone); relative errors "
              "divide by max(|ref|, 1e-6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

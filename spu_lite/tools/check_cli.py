"""`spu-lite check FILE.py:FUNC`: spu.check on inputs from an .npz file or random
inputs of given shapes.

    spu-lite check model.py:predict --data inputs.npz
    spu-lite check model.py:predict --arg f32[8,4] --arg f32[4,3] --range=-3,3

--data: arrays named like FUNC's parameters, or arr_0, arr_1, ... in parameter order
(np.savez(path, x, w) writes the latter). --arg: uniform random values in --range
(default -1,1; integers rounded). Exit code 0: no finding; 3: findings (the report is
printed either way); 1: the check could not run; 2: bad usage.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import os

import numpy as np

from spu_lite.compiler import CompileError

from .check import check
from .cli_compile import (ARG_GRAMMAR, CliError, load_function, parse_arg_spec, parse_static,
                          parse_target)
from ..frontend import Public

EXIT_FINDINGS = 3


def parse_range(spec: str):
    try:
        lo, hi = (float(v) for v in spec.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid range {spec!r}: expected LO,HI") from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"invalid range {spec!r}: LO must be below HI")
    return lo, hi


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", type=parse_target, metavar="FILE.py:FUNC",
                   help="the function to check: a Python file (or module) and a function in it")
    p.add_argument("--data", metavar="FILE.npz",
                   help="example inputs: arrays named like the parameters, or arr_0, arr_1, ...")
    p.add_argument("--arg", action="append", type=parse_arg_spec, default=[], metavar="SPEC",
                   help=f"random inputs instead of --data, one per parameter: {ARG_GRAMMAR}")
    p.add_argument("--range", type=parse_range, default=(-1.0, 1.0), metavar="LO,HI",
                   help="range of the random --arg inputs (default -1,1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--public", action="append", default=[], metavar="NAME",
                   help="make parameter NAME public (not secret-shared); repeatable")
    p.add_argument("--static", action="append", type=parse_static, default=[], metavar="NAME=VALUE",
                   help="bake parameter NAME in as a Python literal; repeatable")
    p.add_argument("--field", type=int, choices=(32, 64), default=64, help="ring bits (default 64)")
    p.add_argument("--fxp-bits", type=int, default=None,
                   help="fractional bits (default 18 at 64 bits, 9 at 32)")
    p.add_argument("--atol", type=float, default=None,
                   help="precision threshold, absolute (default 64 ulps of --fxp-bits, "
                        "at most 2%% of the output's largest |value|, at least 2 ulps)")
    p.add_argument("--rtol", type=float, default=1e-3,
                   help="precision threshold, relative (default 1e-3)")


def _inputs(fn, args, statics):
    """Positional inputs for fn's non-static parameters, from --data or --arg."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in statics]
    if args.data:
        if args.arg:
            raise CliError("give either --data or --arg, not both")
        try:
            data = dict(np.load(args.data))
        except (OSError, ValueError) as e:
            raise CliError(f"cannot read {args.data}: {e}") from None
        out = []
        for i, p in enumerate(params):
            if p.name in data:
                out.append(data[p.name])
            elif f"arr_{i}" in data:
                out.append(data[f"arr_{i}"])
            elif p.default is p.empty:
                raise CliError(f"{args.data} has no array {p.name!r} (nor arr_{i}); it has "
                               f"{', '.join(sorted(data)) or 'none'}")
        return params, out
    if not args.arg:
        raise CliError("give the inputs: --data FILE.npz, or --arg SPEC per parameter")
    if len(args.arg) > len(params):
        raise CliError(f"{fn.__name__}() takes {len(params)} non-static parameter(s) but "
                       f"{len(args.arg)} --arg were given")
    rng = np.random.default_rng(args.seed)
    lo, hi = args.range
    out = []
    for dt, shape in args.arg:
        v = rng.uniform(lo, hi, shape)
        out.append(np.round(v).astype(dt) if dt.kind in "iub" else v.astype(dt))
    return params, out


def cmd_check(args) -> int:
    path, func = args.target
    fn = load_function(path, func)
    statics = dict(args.static)
    params, inputs = _inputs(fn, args, statics)
    names = [p.name for p in params]
    for name in args.public:
        if name not in names[:len(inputs)]:
            raise CliError(f"--public {name}: not a parameter with an input ({', '.join(names)})")
        inputs[names.index(name)] = Public(inputs[names.index(name)])
    target = functools.partial(fn, **statics) if statics else fn
    config = {"field": args.field}
    if args.fxp_bits is not None:
        config["fxp_bits"] = args.fxp_bits
    try:
        report = check(target, *inputs, atol=args.atol, rtol=args.rtol, **config)
    except (CompileError, ValueError) as e:
        raise CliError(" ".join(str(e).split())) from None
    where = os.path.relpath(path) if os.path.isfile(path) else path
    print(f"# spu-lite check {where}:{func}")
    print(report)
    return 0 if report.ok else EXIT_FINDINGS

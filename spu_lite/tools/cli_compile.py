"""`spu-lite compile` and `spu-lite cost`: load a user's function, bind --arg specs,
compile it and print the IR or its op counts."""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from spu_lite.compiler import CompileError, CompileOptions
from spu_lite.compiler.ir.fields import default_fxp_bits, ring_problem

from ..api import compile_leaves
from ..codec import InputError
from .cost import dry_run
from ..frontend import Public, flatten_inputs, split_args
from ..optim_state import public_counts
from ..two_party import correlation_counts, correlation_table, online_cost

PROG = "spu-lite"

class CliError(Exception):
    """A failure reported as one line on stderr with exit code 1."""


# ---- argument types ---------------------------------------------------------------------

_DTYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64,
           "bool": np.bool_}
_ARG_RE = re.compile(r"^\s*([A-Za-z0-9]+)\s*\[\s*([0-9\s,]*)\]\s*$")
ARG_GRAMMAR = "DTYPE[DIMS] with DTYPE one of f32, f64, i32, i64, bool and DIMS like 8,4 ([] = scalar)"


def parse_arg_spec(spec: str) -> Tuple[np.dtype, Tuple[int, ...]]:
    """'f32[8,4]' -> (float32, (8, 4)); 'i32[]' -> (int32, ())."""
    m = _ARG_RE.match(spec)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid spec {spec!r}: expected {ARG_GRAMMAR}")
    dt, dims = m.group(1), m.group(2).strip()
    if dt not in _DTYPES:
        raise argparse.ArgumentTypeError(
            f"invalid spec {spec!r}: unknown dtype {dt!r} (use one of {', '.join(_DTYPES)})")
    parts = [p.strip() for p in dims.split(",")] if dims else []
    if parts and parts[-1] == "":
        parts.pop()  # allow a trailing comma: f32[8,]
    if any(p == "" for p in parts):
        raise argparse.ArgumentTypeError(f"invalid spec {spec!r}: empty dimension; expected {ARG_GRAMMAR}")
    return np.dtype(_DTYPES[dt]), tuple(int(p) for p in parts)


def parse_target(spec: str) -> Tuple[str, str]:
    """'path/mod.py:fn' -> ('path/mod.py', 'fn'); also 'package.module:fn'."""
    path, sep, func = spec.rpartition(":")
    if not sep or not path or not func:
        raise argparse.ArgumentTypeError(f"invalid target {spec!r}: expected FILE.py:FUNC")
    if not all(part.isidentifier() for part in func.split(".")):
        raise argparse.ArgumentTypeError(f"invalid target {spec!r}: {func!r} is not a Python name")
    return path, func


def parse_static(spec: str) -> Tuple[str, Any]:
    """'n=3' -> ('n', 3); values are Python literals, anything else is a string."""
    name, sep, value = spec.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"invalid static {spec!r}: expected NAME=VALUE")
    try:
        return name, ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return name, value


def _fxp_bits(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None
    if not 0 < v < 32:
        raise argparse.ArgumentTypeError(f"fractional bits must be in 1..31, got {v}")
    return v


# ---- loading the user's function -----------------------------------------------------------

def load_function(path: str, func: str):
    """Import FILE (or a module name) and return the attribute FUNC (dotted names allowed)."""
    if os.path.exists(path) or path.endswith(".py") or os.sep in path:
        if not os.path.isfile(path):
            raise CliError(f"no such file: {path}")
        full = os.path.abspath(path)
        stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(full))[0])
        modname = f"_spu_lite_user_{stem}"
        spec = importlib.util.spec_from_file_location(modname, full)
        if spec is None or spec.loader is None:
            raise CliError(f"cannot import {path}: not a Python source file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        folder = os.path.dirname(full)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # let the file import its siblings
        where = path
        try:
            spec.loader.exec_module(module)
        except SystemExit as e:
            raise CliError(f"{path} called sys.exit({e.code}) while being imported") from None
        except BaseException as e:  # noqa: BLE001 - any failure of the user's module
            raise CliError(f"importing {path} failed: {_describe(e, full)}") from None
    else:
        where = path
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError as e:
            raise CliError(f"no such file or module: {path} ({e})") from None
        except BaseException as e:  # noqa: BLE001
            raise CliError(f"importing {path} failed: {_describe(e)}") from None
    obj = module
    for part in func.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n, v in vars(module).items()
                           if callable(v) and not n.startswith("_") and
                           getattr(v, "__module__", None) == module.__name__)
            hint = f"; functions defined there: {', '.join(names)}" if names else ""
            raise CliError(f"{where} has no function {func!r}{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CliError(f"{where}:{func} is a {type(obj).__name__}, not a function")
    return obj


def _describe(e: BaseException, user_file: Optional[str] = None) -> str:
    """'Type: message' on one line, plus the user's file:line when the traceback has it."""
    msg = " ".join(str(e).split())
    out = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    if user_file:
        line = None
        for fr in traceback.extract_tb(e.__traceback__):
            if os.path.abspath(fr.filename) == user_file:
                line = fr.lineno
        if line is not None:
            out += f" (at {os.path.relpath(user_file) if not os.path.isabs(user_file) else user_file}:{line})"
    return out


# ---- compiling ---------------------------------------------------------------------------

def _bind_inputs(fn, specs: Sequence[Tuple[np.dtype, Tuple[int, ...]]], public: Sequence[str],
                 statics: Sequence[Tuple[str, Any]]) -> Dict[str, Any]:
    """Keyword arguments for fn: zeros of each --arg spec for its non-static parameters in
    order, statics as given, public ones wrapped in spu.public."""

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise CliError(f"cannot read the signature of {getattr(fn, '__name__', fn)}: {e}") from None
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = [p.name for p in params]
    static = dict(statics)
    for n in static:
        if n not in names:
            raise CliError(f"--static {n}=...: {fn.__name__}() has no parameter {n!r} "
                           f"(parameters: {', '.join(names) or 'none'})")
    dyn = [p for p in params if p.name not in static]
    if len(specs) > len(dyn):
        raise CliError(f"{fn.__name__}() takes {len(dyn)} non-static parameter(s) "
                       f"({', '.join(p.name for p in dyn) or 'none'}) but {len(specs)} --arg were given")
    missing = [p.name for p in dyn[len(specs):] if p.default is p.empty]
    if missing:
        raise CliError(f"{fn.__name__}() needs an --arg (or --static) for parameter(s) "
                       f"{', '.join(missing)}")
    kwargs: Dict[str, Any] = dict(static)
    for p, (dt, shape) in zip(dyn, specs):
        kwargs[p.name] = np.zeros(shape, dt)
    for ref in public:
        if ref.isdigit():
            i = int(ref)
            if i >= len(specs):
                raise CliError(f"--public {i}: there are only {len(specs)} --arg (indices start at 0)")
            name = dyn[i].name
        else:
            name = ref
            if name not in names or name in static or name not in kwargs:
                raise CliError(f"--public {ref}: not a parameter given by --arg "
                               f"({', '.join(p.name for p in dyn[:len(specs)]) or 'none'})")
        kwargs[name] = Public(kwargs[name])
    return kwargs


def compile_target(fn, specs, public=(), statics=(), field: int = 64,
                   fxp_bits: Optional[int] = None, opt: bool = True,
                   user_file: Optional[str] = None):
    """Trace and compile fn for the given --arg specs (as spu.jit does); returns the
    compiler Program. fxp_bits None: the ring's default (compiler/ir/fields.py)."""
    fxp_bits = default_fxp_bits(field) if fxp_bits is None else fxp_bits
    if ring_problem(field, fxp_bits):
        raise CliError(ring_problem(field, fxp_bits))
    kwargs = _bind_inputs(fn, specs, public, statics)
    static_names = tuple(n for n, _ in statics)
    try:
        names, static, dyn, vis = split_args(fn, (), kwargs, (), static_names, ())
        leaves, leaf_vis, leaf_names, treedef = flatten_inputs(dyn, vis, names)
        leaf_vis = public_counts(leaves, leaf_vis, leaf_names, names, dyn)   # as spu.jit
    except InputError as e:
        raise CliError(str(e)) from None
    try:
        return compile_leaves(fn, names, static, dyn, treedef, leaves, leaf_vis,
                              CompileOptions(field, fxp_bits), opt=opt,
                              leaf_names=leaf_names).program
    except CompileError as e:
        raise CliError(" ".join(str(e).split())) from None
    except Exception as e:  # noqa: BLE001 - the user's code failed to trace
        raise CliError(f"tracing {getattr(fn, '__name__', 'the function')} failed: "
                       f"{_describe(e, user_file)}") from None


def _compile_from_args(args):
    path, func = args.target
    fn = load_function(path, func)
    user_file = os.path.abspath(path) if os.path.isfile(path) else None
    return compile_target(fn, args.arg, args.public, args.static, args.field, args.fxp_bits,
                          opt=not args.no_opt, user_file=user_file)


def cmd_compile(args) -> int:
    program = _compile_from_args(args)
    sys.stdout.write(program.text)
    sys.stdout.flush()  # a closed pipe (`| head`) is reported here, inside main
    return 0


def _walk(ops):
    for op in ops:
        yield op
        for b in op.blocks:
            yield from _walk(b.ops)


def op_counts(program) -> Dict[Tuple[str, str], List[int]]:
    """(op name, visibility) -> [ops, output elements], nested blocks included once."""
    counts: Dict[Tuple[str, str], List[int]] = {}
    for op in _walk(program.ops):
        vis = "secret" if any(v.type.vis == "secret" for v in op.outputs) else "public"
        elems = sum(int(np.prod(v.type.shape, dtype=np.int64)) for v in op.outputs)
        c = counts.setdefault((op.name, vis), [0, 0])
        c[0] += 1
        c[1] += elems
    return counts


def format_op_counts(counts) -> str:
    rows = sorted(counts.items(), key=lambda kv: (kv[0][1] != "secret", -kv[1][0], kv[0][0]))
    lines = [f"{'op':<22}{'vis':<8}{'count':>7}{'elements':>14}"]
    for (name, vis), (n, e) in rows:
        lines.append(f"{name:<22}{vis:<8}{n:>7}{e:>14}")
    sec = [v for (_, vis), v in counts.items() if vis == "secret"]
    pub = [v for (_, vis), v in counts.items() if vis == "public"]
    lines.append(f"{'total secret':<30}{sum(v[0] for v in sec):>7}{sum(v[1] for v in sec):>14}")
    lines.append(f"{'total public':<30}{sum(v[0] for v in pub):>7}{sum(v[1] for v in pub):>14}")
    return "\n".join(lines)


def cmd_cost(args) -> int:
    program = _compile_from_args(args)
    print(f"# ops of @{program.name} by output visibility (loop bodies counted once)")
    print(format_op_counts(op_counts(program)))
    if not getattr(args, "counts_only", False):
        two_party = args.protocol == "semi2k_ot"
        report = online_cost(program) if two_party else dry_run(program, args.protocol)
        print(f"\n# communication under {args.protocol}, measured by a dry run on random inputs "
              f"(loop bodies counted per iteration; bytes of the busiest party)")
        if two_party:
            print("# (online: semi2k's dry run with semi2k_ot's comparisons, whose P0 also sends "
                  "the dealer its requests, a few bytes per op that semi2k_ot does not send)")
        print(report.table())
        if two_party:
            print("\n# correlations one call asks for; semi2k_ot makes them by OT between the "
                  "two parties (offline), during the job or ahead of it: `spu-lite cluster "
                  "precompute`, spu_lite.two_party.precompute")
            print(correlation_table(correlation_counts(program), program.field))
    return 0


# ---- bench / precision / demo --------------------------------------------------------------

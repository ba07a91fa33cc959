"""The `spu-lite` command line.

    spu-lite compile FILE.py:FUNC --arg f32[8,4] --arg f32[4,3] [--public 1] [--static N=V]
                     [--field 64] [--fxp-bits 18] [--no-opt]     print the IR
    spu-lite cost    FILE.py:FUNC --arg ... [--protocol aby3]     op counts; bytes, rounds per op
    spu-lite check   FILE.py:FUNC --data inputs.npz | --arg f32[8,4] [--range LO,HI]
                                                                  plaintext fixed-point run: overflows,
                                                                  domains, error against float JAX
    spu-lite bench   [--protocol aby3 semi2k] [--cases ...] [--repeat 3] [--quick] [--json F]
    spu-lite precision [...]                                      accuracy of the nonlinear ops
    spu-lite bench-train [--protocol aby3 semi2k]                 training benchmarks vs SPU
    spu-lite node --cluster cluster.yaml --party alice            run one party of a deployment
    spu-lite cluster up|keygen|check ...                          try a cluster on this machine
    spu-lite approve --cluster cluster.yaml --party alice         review programs a node refused
    spu-lite demo    [--protocol aby3]                            a small end-to-end run

Exit codes: 0 success, 1 the command failed (compile error, missing file, ...),
2 bad usage (unknown flag, malformed --arg, ...). Errors are one line on stderr;
set SPU_LITE_TRACEBACK=1 to see the Python traceback of an unexpected error.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
import traceback
import warnings
from typing import Optional, Sequence

import numpy as np

PROG = "spu-lite"
PROTOCOLS = ("ref2k", "semi2k", "aby3", "semi2k_ot")


from . import check_cli
from .cli_compile import (  # noqa: F401 (re-exported for tests and users)
    ARG_GRAMMAR, CliError, _describe, cmd_compile, cmd_cost, compile_target, format_op_counts,
    load_function, op_counts, parse_arg_spec, parse_static, parse_target, _fxp_bits)

def cmd_bench(args, parser) -> int:
    from . import bench
    return bench.run_from_args(args, parser)


_PRECISION_HELP = f"""usage: {PROG} precision [ARGS ...]

Accuracy of spu-lite's nonlinear functions (exp, log, reciprocal, sigmoid, ...) against
float64, next to SecretFlow SPU's figures. Delegates to spu_lite.tools.precision.main(ARGS),
which is not available in this installation yet.
"""


def cmd_precision(argv: Sequence[str]) -> int:
    try:
        mod = importlib.import_module("spu_lite.tools.precision")
    except ModuleNotFoundError as e:
        if e.name != "spu_lite.tools.precision":
            return _fail("precision", f"spu_lite.tools.precision cannot be imported: {_describe(e)}")
        if any(a in ("-h", "--help") for a in argv):
            sys.stdout.write(_PRECISION_HELP)
            return 0
        return _fail("precision", "the precision report is not available: module "
                                  "spu_lite.tools.precision is missing from this installation")
    except Exception as e:  # noqa: BLE001
        return _fail("precision", f"spu_lite.tools.precision cannot be imported: {_describe(e)}")
    main = getattr(mod, "main", None)
    if main is None:
        return _fail("precision", "spu_lite.tools.precision has no main(argv) function")
    try:
        rc = main(list(argv))
    except SystemExit as e:
        rc = e.code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001
        return _unexpected("precision", e)
    if rc is None:
        return 0
    return rc if isinstance(rc, int) else 1


def _demo_layer(x, w, b):
    import jax
    return jax.nn.relu(x @ w + b)


def cmd_demo(args) -> int:
    import jax

    import spu_lite as spu

    rng = np.random.default_rng(args.seed)
    x = rng.normal(size=(6, 4)).astype(np.float32)   # Alice's data: 6 samples, 4 features
    w = rng.normal(size=(4, 3)).astype(np.float32)   # Bob's model: weights ...
    b = rng.normal(size=(3,)).astype(np.float32)     # ... and bias
    try:
        f = spu.jit(_demo_layer, protocol=args.protocol)
        nparties = f.config.parties
    except ValueError as e:
        raise CliError(f"{e} (try --protocol ref2k)") from None
    print(f"spu-lite demo: y = relu(x @ w + b) under MPC, protocol {args.protocol}, "
          f"{nparties} {'party' if nparties == 1 else 'parties'}")
    print(f"  Alice holds x {list(x.shape)} (her data), Bob holds w {list(w.shape)} and "
          f"b {list(b.shape)} (his model).")
    if args.protocol == "ref2k":
        print("  ref2k is the plaintext reference: same program, no secret sharing, no security.\n")
    else:
        print("  Both are secret-shared; no party sees x, w or b; only y is revealed.\n")
    t0 = time.perf_counter()
    compiled = f.lower(x, w, b)
    t1 = time.perf_counter()
    y = f(x, w, b)
    t2 = time.perf_counter()
    ref = np.asarray(jax.jit(_demo_layer)(x, w, b))
    err = float(np.max(np.abs(y - ref)))
    np.set_printoptions(precision=5, suppress=True)
    if args.show_ir:
        print("IR:\n" + compiled.text)
    print("MPC result (revealed):")
    print(y)
    print("plaintext JAX:")
    print(ref)
    ok = err <= 1e-2
    print(f"\nmax abs error: {err:.2e} ({'OK' if ok else 'MISMATCH'}; "
          f"fixed point with {f.config.fxp_bits} fractional bits)")
    print(f"compile {t1 - t0:.3f} s, run {t2 - t1:.3f} s ({len(compiled.program.ops)} IR ops)\n")
    prof = f.last_profile
    if prof is not None:
        print("profile (max over parties):")
        print(prof.table())
    return 0 if ok else 1


# ---- parser and entry point ----------------------------------------------------------------

def _add_compile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", type=parse_target, metavar="FILE.py:FUNC",
                   help="the function to compile: a Python file (or module) and a function in it")
    p.add_argument("--arg", action="append", type=parse_arg_spec, default=[], metavar="SPEC",
                   help=f"one per non-static parameter, in order: {ARG_GRAMMAR}, e.g. f32[8,4], i32[]")
    p.add_argument("--public", action="append", default=[], metavar="I|NAME",
                   help="make the I-th --arg (0-based) or parameter NAME public (not secret-shared); "
                        "repeatable")
    p.add_argument("--static", action="append", type=parse_static, default=[], metavar="NAME=VALUE",
                   help="bake parameter NAME in as a Python literal (like jax static_argnames); repeatable")
    p.add_argument("--protocol", choices=PROTOCOLS, default="aby3",
                   help="target protocol (default aby3); the IR is the same for every protocol")
    p.add_argument("--field", type=int, choices=(32, 64), default=64, help="ring bits (default 64)")
    p.add_argument("--fxp-bits", type=_fxp_bits, default=None,
                   help="fractional bits of fixed-point values (default 18 at 64 bits, 9 at 32)")
    p.add_argument("--no-opt", action="store_true", help="print the IR before optimisation passes")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from . import bench

    parser = argparse.ArgumentParser(
        prog=PROG, description="spu-lite: run JAX programs under secure multi-party computation.",
        epilog="Run `spu-lite COMMAND --help` for a command's options. Exit codes: 0 ok, "
               "1 failure, 2 bad usage.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = sub.choices  # name -> subparser

    p = sub.add_parser("compile", help="print the secret-op IR of a JAX function",
                       description="Trace FUNC from FILE.py with the given argument shapes and print "
                                   "its IR: every value typed vis<dtype>[shape].",
                       epilog="example: spu-lite compile model.py:predict --arg f32[8,4] --arg f32[4,3] "
                              "--public 1")
    _add_compile_args(p)

    p = sub.add_parser("cost", help="IR op counts, and bytes and rounds per op under a protocol",
                       description="Compile FUNC like `compile` does; count its IR ops by name and "
                                   "visibility, then measure the communication of --protocol per op "
                                   "by one dry run on random inputs of the --arg shapes (the "
                                   "protocols are data-oblivious, so bytes and rounds are those of "
                                   "a run on real data).")
    _add_compile_args(p)
    p.add_argument("--counts-only", action="store_true", help="only count ops (no dry run)")

    p = sub.add_parser("check", help="find overflows, out-of-domain inputs and imprecise outputs",
                       description="Compile FUNC as spu.jit would and run it in plaintext fixed "
                                   "point on example inputs (nothing leaves the process); report "
                                   "overflows, inputs outside an approximation's domain, and each "
                                   "output's error against float JAX. Exit code 3 when there are "
                                   "findings.",
                       epilog="example: spu-lite check model.py:predict --arg f32[8,4] "
                              "--arg f32[4,3] --range=-3,3")
    check_cli.add_arguments(p)

    p = sub.add_parser("bench", help="benchmark ops against plaintext JAX and SecretFlow SPU",
                       description=bench.DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_arguments(p)

    sub.add_parser("precision", add_help=False,
                   help="accuracy of the nonlinear functions (delegates to spu_lite.tools.precision)")
    sub.add_parser("bench-train", add_help=False,
                   help="training benchmarks: breast-cancer MLP and an MNIST-sized step vs SPU")

    p = sub.add_parser("demo", help="a small end-to-end run on the in-process cluster",
                       description="Two data owners' arrays, one relu layer computed on secret shares, "
                                   "the revealed result next to plaintext JAX, the error and the "
                                   "profile.")
    p.add_argument("--protocol", choices=PROTOCOLS, default="aby3",
                   help="aby3 (3 parties, default), semi2k (2 parties + dealer) or ref2k (plaintext)")
    p.add_argument("--seed", type=int, default=0, help="seed of the demo data (default 0)")
    p.add_argument("--show-ir", action="store_true", help="also print the compiled IR")
    from ..deploy import cli as deploy_cli
    deploy_cli.add_subcommands(sub)       # node, cluster up / keygen / check, approve
    return parser


def _fail(command: Optional[str], message: str) -> int:
    where = f"{PROG} {command}" if command else PROG
    print(f"{where}: error: {message}", file=sys.stderr)
    return 1


def _unexpected(command: Optional[str], e: BaseException) -> int:
    if os.environ.get("SPU_LITE_TRACEBACK"):
        traceback.print_exception(type(e), e, e.__traceback__)
    hint = "" if os.environ.get("SPU_LITE_TRACEBACK") else " (set SPU_LITE_TRACEBACK=1 for the traceback)"
    return _fail(command, _describe(e) + hint)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # uint64 ring arithmetic wraps around by design; numpy's scalar overflow warnings are noise
    warnings.filterwarnings("ignore", message="overflow encountered", category=RuntimeWarning)
    if argv and argv[0] == "precision":
        return cmd_precision(argv[1:])
    if argv and argv[0] == "bench-train":
        from . import bench_training
        return bench_training.main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        commands = {"compile": cmd_compile, "cost": cmd_cost, "check": check_cli.cmd_check,
                    "bench": lambda a: cmd_bench(a, parser.commands["bench"]),
                    "demo": cmd_demo}
        if args.command in commands:
            return commands[args.command](args)
        if args.command in ("node", "cluster", "approve"):
            from ..deploy import cli as deploy_cli
            return deploy_cli.dispatch(args)
        return _fail(None, f"unknown command {args.command!r}")  # pragma: no cover
    except SystemExit as e:  # parser.error() inside a command
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except CliError as e:
        return _fail(args.command, str(e))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `spu-lite compile ... | head`
        try:  # keep Python's exit-time flush from complaining again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # pragma: no cover
            pass
        return 0
    except Exception as e:  # noqa: BLE001 - one line, no traceback, unless asked for
        return _unexpected(args.command, e)


if __name__ == "__main__":
    sys.exit(main())

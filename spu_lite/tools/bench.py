"""Benchmark: spu-lite op cases side by side with plaintext JAX and SecretFlow SPU.

    spu-lite bench [--protocol aby3 semi2k] [--cases mul_1M matmul_512 ...]
                   [--repeat 3] [--quick] [--json FILE]
    python -m spu_lite.tools.bench ...            (same flags)

For every case and protocol: compile once (timed separately), warm up once, then run
`--repeat` times end to end (share the inputs, run on the in-process cluster without
the fixed-point watch, reconstruct) and report the median; next to it bytes sent (max
over parties) and rounds of one run, plaintext `jax.jit`'s median, MPC / plaintext,
SPU's figure (shared/anchors/README.md) and ours / SPU (target <= 1.0); `--watch`: the
time with the watch / without. A failing case is `error: <message>` in its row.

Cases live in a registry so other workloads can be added:

    from spu_lite.tools.bench import register_case
    register_case("my_case", fn, make_inputs, spu={"aby3": 1.0}, description="...")

`make_inputs(scale, rng)` returns the tuple of positional arguments; `scale` is 1.0,
or 1/16 with `--quick` (shrink the problem accordingly).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import spu_reference as SPU

DEFAULT_PROTOCOLS = ("aby3", "semi2k")
DESCRIPTION = """\
Run op cases (mul, matmul, comparison, relu, exp, reciprocal, sigmoid, softmax)
under MPC on the in-process cluster and compare them with plaintext JAX and with
SecretFlow SPU's figures (shared/anchors/README.md). Per case and protocol: compile
once, warm up once, then --repeat end-to-end runs (share inputs, run, reconstruct);
the median is reported. A case that fails is reported as `error: ...` in its row."""
QUICK_SCALE = 1.0 / 16


@dataclass
class Case:
    """One benchmark workload."""
    name: str
    fn: Callable
    make_inputs: Callable[[float, np.random.Generator], Tuple]
    spu: Dict[str, float] = field(default_factory=dict)   # protocol -> SPU seconds (full size)
    description: str = ""
    jit_kwargs: Dict[str, object] = field(default_factory=dict)  # extra spu.jit keywords
    plaintext: Optional[Callable] = None                   # default: fn
    default: bool = True                                   # part of a plain `spu-lite bench`


CASES: Dict[str, Case] = {}


def register_case(name: str, fn: Callable, make_inputs: Callable, spu: Optional[Dict[str, float]] = None,
                  description: str = "", jit_kwargs: Optional[Dict[str, object]] = None,
                  plaintext: Optional[Callable] = None, default: bool = True) -> Case:
    """Add (or replace) a case in the registry and return it."""
    case = Case(name, fn, make_inputs, dict(spu or {}), description, dict(jit_kwargs or {}),
                plaintext, default)
    CASES[name] = case
    return case


def case(name: str, spu: Optional[Dict[str, float]] = None, description: str = "", **kw):
    """Decorator form: @case("name", spu=..., make_inputs=...) on the function."""
    def deco(fn):
        register_case(name, fn, kw.pop("make_inputs"), spu, description, **kw)
        return fn
    return deco


# ---- the op cases of shared/anchors/README.md ---------------------------------------------
# SPU's seconds: spu_lite/tools/spu_reference.py.

def _n(n: int, scale: float) -> int:
    return max(1, int(round(n * scale)))


def _uniform(shape, lo, hi, rng):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def _two_vectors(n):
    return lambda s, rng: (_uniform(_n(n, s), -4, 4, rng), _uniform(_n(n, s), -4, 4, rng))


def _one_vector(n, lo=-4.0, hi=4.0):
    return lambda s, rng: (_uniform(_n(n, s), lo, hi, rng),)


def _mul(x, y):
    return x * y


def _matmul(x, y):
    return x @ y


def _less(x, y):
    return x < y


def _relu(x):
    import jax
    return jax.nn.relu(x)


def _exp(x):
    import jax.numpy as jnp
    return jnp.exp(x)


def _reciprocal(x):
    return 1.0 / x


def _sigmoid(x):
    import jax
    return jax.nn.sigmoid(x)


def _softmax(x):
    import jax
    return jax.nn.softmax(x, axis=-1)


M1, K128 = 1 << 20, 1 << 17

register_case("mul_1M", _mul, _two_vectors(M1), SPU.OP_SECONDS["mul_1M"],
              "x*y, fxp, 2^20 elements")
register_case("matmul_512", _matmul,
              lambda s, rng: (_uniform((_n(512, s),) * 2, -1, 1, rng),
                              _uniform((_n(512, s),) * 2, -1, 1, rng)),
              SPU.OP_SECONDS["matmul_512"], "512x512 @ 512x512 (quick: 32x32)")
register_case("less_1M", _less, _two_vectors(M1), SPU.OP_SECONDS["less_1M"],
              "x<y, 2^20 elements")
register_case("relu_1M", _relu, _one_vector(M1), SPU.OP_SECONDS["relu_1M"],
              "jax.nn.relu, 2^20 elements")
register_case("exp_128k", _exp, _one_vector(K128), SPU.OP_SECONDS["exp_128k"],
              "jnp.exp, x in [-4, 4], 2^17 elements")
register_case("reciprocal_128k", _reciprocal, _one_vector(K128, 0.5, 8.0),
              SPU.OP_SECONDS["reciprocal_128k"], "1/x, x in [0.5, 8], 2^17 elements")
register_case("sigmoid_128k", _sigmoid, _one_vector(K128, -8.0, 8.0),
              SPU.OP_SECONDS["sigmoid_128k"], "jax.nn.sigmoid, x in [-8, 8], 2^17 elements")
register_case("softmax_128x1024", _softmax,
              lambda s, rng: (_uniform((_n(128, s), 1024), -8, 8, rng),),
              SPU.OP_SECONDS["softmax_128x1024"], "softmax over the last axis of 128x1024")


# ---- running -----------------------------------------------------------------------------

@dataclass
class Row:
    case: str
    protocol: str
    seconds: Optional[float] = None          # MPC end to end, median
    compile_seconds: Optional[float] = None
    bytes: Optional[int] = None              # sent by the busiest party in one run
    rounds: Optional[int] = None
    plain_seconds: Optional[float] = None    # jax.jit, median
    ratio_plain: Optional[float] = None      # MPC / plaintext
    spu_seconds: Optional[float] = None      # SPU's figure (full size only)
    ratio_spu: Optional[float] = None        # ours / SPU
    max_abs_err: Optional[float] = None      # MPC result vs plaintext JAX
    watch_ratio: Optional[float] = None      # with the fixed-point watch / without (--watch)
    runs: List[float] = field(default_factory=list)
    error: Optional[str] = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if type(e).__name__ in msg else f"{type(e).__name__}: {msg}"


def _block(x):
    import jax
    return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


def time_plaintext(fn, args, repeat: int) -> Tuple[float, object]:
    """Median seconds of jax.jit(fn)(*args) (inputs already on device), and its output."""
    import jax
    jf = jax.jit(fn)
    dev = [jax.device_put(a) for a in args]
    out = _block(jf(*dev))
    times = []
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        _block(jf(*dev))
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _max_abs_err(mpc_out, plain_out) -> Optional[float]:
    import jax
    a = jax.tree_util.tree_leaves(mpc_out)
    b = jax.tree_util.tree_leaves(plain_out)
    if len(a) != len(b):
        return None
    err = 0.0
    for x, y in zip(a, b):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.size:
            err = max(err, float(np.max(np.abs(x - y))))
    return err


def _bytes_sent(jf, profile) -> Optional[int]:
    """Bytes sent by the busiest party in the last run (falls back to the merged profile)."""
    try:
        per_party = jf.cluster.party_profiles
        if per_party:
            return max(p.total.bytes for p in per_party)
    except Exception:  # pragma: no cover - cluster internals vary
        pass
    return profile.total.bytes if profile is not None else None


def run_case(c: Case, protocol: str, repeat: int = 3, quick: bool = False, seed: int = 0,
             plain_cache: Optional[dict] = None, watch: bool = False) -> Row:
    """Benchmark one case under one protocol; errors end up in Row.error. `watch`: calls
    with the fixed-point watch alternate with those without (Row.watch_ratio);
    `plain_cache` (a dict) keeps the plaintext timing between protocols of one case."""
    import spu_lite as spu

    row = Row(c.name, protocol)
    scale = QUICK_SCALE if quick else 1.0
    try:
        args = c.make_inputs(scale, np.random.default_rng(seed))
        cache = plain_cache if plain_cache is not None else {}
        if "plain" not in cache:
            cache["plain"] = time_plaintext(c.plaintext or c.fn, args, repeat)
        row.plain_seconds, plain_out = cache["plain"]
        jf = spu.jit(c.fn, protocol=protocol, check=False, **c.jit_kwargs)
        t = time.perf_counter()
        jf.lower(*args)
        row.compile_seconds = time.perf_counter() - t
        jf(*args)  # warm-up: clusters, keys, caches
        watched = spu.jit(c.fn, protocol=protocol, check=True, **c.jit_kwargs) if watch else None
        times, out, with_watch = [], None, []
        for i in range(max(1, repeat) + (watched is not None)):
            if watched is not None:       # a warm-up, then alternating with jf
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = time.perf_counter()
                    watched(*args)
                    with_watch.append(time.perf_counter() - t)
            if i < max(1, repeat):
                t = time.perf_counter()
                out = jf(*args)
                times.append(time.perf_counter() - t)
        row.runs = times
        row.seconds = statistics.median(times)
        if with_watch:
            row.watch_ratio = statistics.median(with_watch[1:]) / row.seconds
        prof = jf.last_profile
        row.bytes = _bytes_sent(jf, prof)
        row.rounds = prof.total.rounds if prof is not None else None
        row.max_abs_err = _max_abs_err(out, plain_out)
        if row.plain_seconds:
            row.ratio_plain = row.seconds / row.plain_seconds
        if not quick and protocol in c.spu:
            row.spu_seconds = c.spu[protocol]
            row.ratio_spu = row.seconds / row.spu_seconds
    except Exception as e:  # noqa: BLE001 - reported in the table, the run goes on
        row.error = _one_line(e)
        if os.environ.get("SPU_LITE_BENCH_TRACEBACK"):
            traceback.print_exc()
    return row


def run(cases: Sequence[str], protocols: Sequence[str], repeat: int = 3, quick: bool = False,
        seed: int = 0, progress=None, watch: bool = False) -> List[Row]:
    rows = []
    for name in cases:
        c = CASES[name]
        plain_cache: dict = {}
        for proto in protocols:
            with warnings.catch_warnings():
                # uint64 ring arithmetic wraps around by design
                warnings.filterwarnings("ignore", message="overflow encountered", category=RuntimeWarning)
                row = run_case(c, proto, repeat, quick, seed, plain_cache, watch)
            rows.append(row)
            if progress:
                progress(f"[{proto}] {name}: " + (f"error: {row.error}" if row.error
                                                  else f"{row.seconds:.4f} s"))
    return rows


# ---- reporting ---------------------------------------------------------------------------

_COLUMNS = [  # header, width, formatter
    ("case", 18, lambda r: r.case),
    ("protocol", 8, lambda r: r.protocol),
    ("mpc_s", 9, lambda r: _f(r.seconds, 4)),
    ("compile_s", 9, lambda r: _f(r.compile_seconds, 3)),
    ("MB_sent", 9, lambda r: _f(None if r.bytes is None else r.bytes / 1e6, 2)),
    ("rounds", 7, lambda r: "-" if r.rounds is None else str(r.rounds)),
    ("plain_s", 9, lambda r: _f(r.plain_seconds, 5)),
    ("mpc/plain", 9, lambda r: _f(r.ratio_plain, 1)),
    ("spu_s", 7, lambda r: _f(r.spu_seconds, 3)),
    ("ours/spu", 8, lambda r: _f(r.ratio_spu, 2)),
    ("max_err", 9, lambda r: "-" if r.max_abs_err is None else f"{r.max_abs_err:.1e}"),
    ("watch", 6, lambda r: _f(r.watch_ratio, 2)),
]


def _f(v, digits) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def format_table(rows: Sequence[Row]) -> str:
    def line(cells):
        out = []
        for (h, w, _), c in zip(_COLUMNS, cells):
            out.append(c.ljust(w) if h in ("case", "protocol") else c.rjust(w))
        return " ".join(out).rstrip()

    lines = [line([h for h, _, _ in _COLUMNS]), "-" * (sum(w for _, w, _ in _COLUMNS) + len(_COLUMNS) - 1)]
    for r in rows:
        if r.error is not None:
            head = " ".join([r.case.ljust(_COLUMNS[0][1]), r.protocol.ljust(_COLUMNS[1][1])])
            lines.append(f"{head} error: {r.error}")
        else:
            lines.append(line([fmt(r) for _, _, fmt in _COLUMNS]))
    return "\n".join(lines)


def _meta(args) -> dict:
    import jax
    return {
        "quick": args.quick, "repeat": args.repeat, "protocols": list(args.protocol),
        "cases": list(args.cases), "seed": args.seed,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": platform.python_version(),
        "jax": jax.__version__, "numpy": np.__version__, "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "spu_anchor": "SecretFlow SPU 0.9.5, shared/anchors/README.md (full sizes only)",
    }


# ---- command line ------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", nargs="+", default=list(DEFAULT_PROTOCOLS), metavar="NAME",
                   help="protocols to run: aby3, semi2k, ref2k (plaintext reference) "
                        "(default: aby3 semi2k)")
    p.add_argument("--cases", nargs="+", default=None, metavar="CASE",
                   help="cases to run (default: all default cases); --list shows them")
    p.add_argument("--repeat", type=_positive_int, default=3,
                   help="timed runs per case after one warm-up; the median is reported (default: 3)")
    p.add_argument("--quick", action="store_true",
                   help="1/16 problem sizes (smoke test; SPU ratios are not shown)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write {meta, rows} as JSON to FILE")
    p.add_argument("--seed", type=int, default=0, help="seed of the input data (default: 0)")
    p.add_argument("--list", action="store_true", help="list the registered cases and exit")
    p.add_argument("--watch", action="store_true",
                   help="also time each case with spu.jit's fixed-point watch on every call "
                        "(check=True) and show with/without in column `watch`")
    p.add_argument("--net", nargs="*", default=None, metavar="LINK",
                   help="emulated links (lan, wan, rtt=20ms,bw=100mbit; none given: lan wan): "
                        "run bench_net's workloads (--workloads) on the in-process cluster, "
                        "measured next to the cost model's prediction")
    p.add_argument("--workloads", nargs="+", default=None, metavar="W",
                   help="with --net: ops breast_cancer mnist_step gpt2_tiny gpt2_small")


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def run_from_args(args, parser: argparse.ArgumentParser) -> int:
    """Run the benchmark for parsed arguments; returns the exit code."""
    from spu_lite.runtime.protocols import PROTOCOL_NAMES

    if args.net is not None:
        from . import bench_net
        return bench_net.main_in_process(args.protocol, args.net, args.workloads)
    if args.list:
        for c in CASES.values():
            spu = ", ".join(f"{k} {v:g} s" for k, v in c.spu.items()) or "no SPU figure"
            print(f"{c.name:<20} {c.description}  [SPU: {spu}]")
        return 0
    if args.cases is None:
        args.cases = [n for n, c in CASES.items() if c.default]
    unknown = [n for n in args.cases if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    bad = [p for p in args.protocol if p not in PROTOCOL_NAMES]
    if bad:
        parser.error(f"unknown protocol(s) {', '.join(bad)}; choose from {', '.join(PROTOCOL_NAMES)}")

    rows = run(args.cases, args.protocol, args.repeat, args.quick, args.seed,
               progress=lambda m: print(m, file=sys.stderr, flush=True), watch=args.watch)
    title = (f"spu-lite bench: median of {args.repeat} end-to-end runs after a warm-up"
             f"{' (quick: 1/16 sizes)' if args.quick else ''}; MB_sent = busiest party, one run")
    print(title)
    print(format_table(rows))
    if args.json:
        try:
            with open(args.json, "w") as fh:
                json.dump({"meta": _meta(args), "rows": [r.as_dict() for r in rows]}, fh, indent=2)
        except OSError as e:
            print(f"spu-lite bench: error: cannot write {args.json}: {e.strerror or e}", file=sys.stderr)
            return 1
    return 0


def make_parser(prog: str = "python -m spu_lite.tools.bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = make_parser()
    try:
        args = p.parse_args(argv)
        return run_from_args(args, p)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)


if __name__ == "__main__":
    # run the registry of the imported module (cases registered elsewhere land there)
    from spu_lite.tools.bench import main as _main
    sys.exit(_main())

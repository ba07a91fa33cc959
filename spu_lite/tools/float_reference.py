"""Outputs against float JAX: the precision half of spu.check and of the watch.

A program's fixed-point outputs are compared element by element with the same
function run by JAX in floating point on the same inputs. An element is off when

    |got - want| > atol + rtol |want|

spu.check's default is atol = 64 ulps of the fixed-point format (2.4e-4 at 18 bits),
capped at 2% of the output's largest |value| but at least 2 ulps (capped_atol: 64
ulps are 0.125 at a 32-bit ring's 9 bits), rtol = 1e-3 (tools/check.py). The watch
(tools/watch.py) runs on calls nobody asked to check, so it warns only on errors no
caller would call rounding: its atol also has
a floor of WATCH_LEAF_REL x the output's largest |value| (the fixed-point error of a
sum or a product grows with its terms, not with each element) and a term for how far
float JAX itself moves when its inputs move by an ulp (sensitivity); an output still
off is compared again with the function traced in float64 (float64_outputs), since
float32 JAX can be the coarser of the two -- see docs/check.md.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional, Sequence

import jax
import numpy as np

from ..codec import jax_dtype

#: spu.check's threshold: ATOL_ULPS ulps of fxp_bits, and RTOL of |value|
ATOL_ULPS = 64
RTOL = 1e-3
#: the watch's: the same, with atol at least WATCH_LEAF_REL x max |value| of the output
#: and WATCH_JITTER_X x how far float JAX moves the output when its float inputs move
#: by up to an ulp, as encoding them in fixed point does (the most of JITTER_RUNS runs
#: with independent noise): what a chaotic loop or an ill-conditioned solve makes of
#: rounding in float JAX too
WATCH_LEAF_REL = 1e-3
WATCH_JITTER_X = 4.0
#: The ulps part of both atols (spu.check's default, the watch's) is capped at
#: ATOL_CAP_REL x max |value| (but not below ATOL_FLOOR_ULPS ulps): 64 ulps are 2.4e-4
#: at 18 fractional bits, but 0.125 at a 32-bit ring's 9, which would let a gradient
#: of scale 0.07 come back 25% off unwarned
ATOL_CAP_REL = 2e-2
ATOL_FLOOR_ULPS = 2
JITTER_RUNS = 2


@dataclass
class OutputError:
    name: str                 # "out[0]", ... (flattened output leaves)
    max_abs_err: float
    max_rel_err: float
    max_abs: float            # largest |value| of the float JAX output
    tolerance_exceeded: int   # elements beyond atol + rtol |want|


@dataclass
class LeafComparison:
    error: OutputError
    compared: int             # elements float JAX has finite
    nonfinite: int            # elements float JAX has as nan/inf (not compared)
    example: str              # "got .., float JAX .." at the worst element beyond the tolerance


def capped_atol(ulp: float, top: float) -> float:
    """64 ulps, but at most 2% of top (an output's largest |value|) and at least 2 ulps:
    spu.check's default atol and the base of the watch's."""
    return max(ATOL_FLOOR_ULPS * ulp, min(ATOL_ULPS * ulp, ATOL_CAP_REL * top))


def watch_atol(ulp: float, top: float) -> float:
    """The watch's atol for an output whose largest |value| is top (before the
    sensitivity term): capped_atol, and at least 1e-3 top."""
    return max(capped_atol(ulp, top), WATCH_LEAF_REL * top)


def compare_leaf(name: str, got, want, atol, rtol: float,
                 leaf_rel: float = 0.0) -> LeafComparison:
    """One output leaf against float JAX where float JAX is finite; atol is raised to
    leaf_rel x max |want| when that is larger (atol may be a function of max |want|)."""
    w = np.asarray(want, np.float64)
    finite = np.isfinite(w)
    g = np.broadcast_to(np.asarray(got, np.float64), w.shape)[finite]
    w = w[finite]
    nonfinite = int((~finite).sum())
    if not w.size:
        return LeafComparison(OutputError(name, 0.0, 0.0, 0.0, 0), 0, nonfinite, "")
    err = np.abs(g - w)
    top = float(np.max(np.abs(w)))
    atol = max(atol(top) if callable(atol) else atol, leaf_rel * top)
    rel = err / np.maximum(np.abs(w), atol)            # relative where |value| > atol
    bad = ~(err <= atol + rtol * np.abs(w))
    n = int(bad.sum())
    example = ""
    if n:
        j = int(np.argmax(np.where(bad, err, -1.0)))
        example = f"got {g.flat[j]:.6g}, float JAX {w.flat[j]:.6g}"
    return LeafComparison(OutputError(name, float(err.max()), float(rel.max()), top, n),
                          int(w.size), nonfinite, example)


def float_outputs(compiled, leaves: Sequence, jitter: float = 0.0,
                  seed: int = 0) -> Optional[List[np.ndarray]]:
    """The traced function (compiled.jaxpr: inputs the flat leaves, outputs the
    program's results) run by JAX in floating point on `leaves`, each float input moved
    by independent uniform noise in [-jitter, jitter] when jitter > 0; None if it cannot
    run. Compiled once per compiled program. Pure: flax nnx arguments are not touched."""
    closed = getattr(compiled, "jaxpr", None)
    if closed is None:
        return None
    rng = np.random.default_rng(seed)
    try:
        args = [np.asarray(l, jax_dtype(l.dtype)) for l in leaves]
        if jitter:
            args = [a + rng.uniform(-jitter, jitter, a.shape).astype(a.dtype)
                    if _jittered(a) else a for a in args]
        run = getattr(compiled, "_float_run", None)
        if run is None:         # a compiled program's inputs keep their shapes and dtypes
            run = compiled._float_run = _executable(closed, args)
        return [np.asarray(o) for o in run(*args)]
    except Exception:           # a key, an odd leaf: no reference, no comparison
        return None


#: XLA's CPU backend without its optimisation passes: a reference runs a few times per
#: program, and compiling it costs more than running it (half the time: ~30 ms for a
#: small program instead of ~65)
FAST_COMPILE = {"xla_backend_optimization_level": 0}
_executables: "OrderedDict[tuple, object]" = OrderedDict()
_EXECUTABLES = 256


def _executable(closed, args):
    """The XLA executable of a traced function for these argument types, shared by the
    programs traced from the same function (one per protocol, field, ...): keyed by
    the jaxpr's text, its constants' bytes and the arguments' shapes and dtypes."""
    consts = hashlib.sha256()
    for c in closed.consts:
        if jax.dtypes.issubdtype(getattr(c, "dtype", None), jax.dtypes.prng_key):
            c = jax.random.key_data(c)      # a key baked in (an nnx Rngs stream)
        c = np.asarray(c)
        consts.update(f"{c.shape}{c.dtype}".encode())
        consts.update(np.ascontiguousarray(c).tobytes())
    key = (str(closed.jaxpr), consts.hexdigest(), tuple((a.shape, a.dtype.str) for a in args))
    with _executables_lock:
        run = _executables.pop(key, None)
    if run is None:
        run = jax.jit(jax.extend.core.jaxpr_as_fun(closed)).lower(*args).compile(
            compiler_options=FAST_COMPILE)
    with _executables_lock:
        _executables[key] = run
        while len(_executables) > _EXECUTABLES:
            _executables.popitem(last=False)
    return run


_executables_lock = threading.Lock()
_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spu-float-reference")


def float_outputs_soon(compiled, leaves: Sequence) -> Future:
    """float_outputs(compiled, leaves) on a background thread: its compilation by XLA
    (10-200 ms for a small program, more than the secure run of one) overlaps the
    secure run, which leaves a core free. The future's result is float_outputs'."""
    return _background.submit(float_outputs, compiled, list(leaves))


def float64_outputs(compiled, leaves: Sequence) -> Optional[List[np.ndarray]]:
    """The user's function traced again with 64-bit floats and run on `leaves` (float
    inputs as float64): the reference where float32 JAX is itself the coarser one (sin
    of 1e5, whose float32 argument is 0.008 apart; E[x^2] - E[x]^2 at mean 3 +- 0.01).
    None if it cannot run so (code that insists on 32 bits, a key)."""
    fn = getattr(compiled, "plain_fn", None)
    if fn is None:
        return None
    try:
        with jax.enable_x64(True):
            args = [np.asarray(l, np.float64) if np.issubdtype(np.asarray(l).dtype, np.floating)
                    else np.asarray(l) for l in leaves]
            out = jax.tree_util.tree_leaves(jax.jit(fn)(*args))
            out = [np.asarray(o, np.float64) for o in out]
    except Exception:
        return None
    return out if len(out) == len(compiled.out_avals) else None


def _jittered(a: np.ndarray) -> bool:
    """Float inputs that are not all whole numbers: labels, masks and counts kept in
    floats are compared with == and used as indices, and moving them changes the
    function rather than rounding its inputs."""
    return np.issubdtype(a.dtype, np.floating) and bool(np.any(a != np.round(a)))


def sensitivity(compiled, leaves: Sequence, want: Sequence[np.ndarray], jitter: float,
                runs: int = JITTER_RUNS) -> Optional[List[float]]:
    """How far float JAX itself moves each output (max |change| over the output) when
    its float inputs move by up to `jitter` (fixed-point encoding's rounding): what
    rounding alone explains, for a chaotic loop or an ill-conditioned solve."""
    worst = [0.0] * len(want)
    for k in range(runs):
        moved = float_outputs(compiled, leaves, jitter, seed=k + 1)
        if moved is None:
            return None
        for i, (m, w) in enumerate(zip(moved, want)):
            m, w = np.asarray(m, np.float64), np.asarray(w, np.float64)
            if not np.array_equal(np.isfinite(m), np.isfinite(w)):
                worst[i] = np.inf       # nan/inf where there was none: no measure of it
                continue
            finite = np.isfinite(w)
            d = np.abs(m[finite] - w[finite])
            worst[i] = max(worst[i], float(d.max()) if d.size else 0.0)
    return worst

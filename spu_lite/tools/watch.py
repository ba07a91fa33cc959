"""The fixed-point watch: when the caller holds every input in the clear, spu.jit runs
the compiled program once more in plaintext fixed point (ref2k) with spu.check's
observer and warns about overflows and out-of-domain inputs at the user's lines; when
there are none, it compares the outputs with float JAX on the same inputs and warns
about those further from it than rounding explains (float_reference.py). So a wrong
number does not come back without a word.

That is every in-process call, and a networked call whose inputs all come from the
driver: watching shows the caller nothing it could not compute itself, and nothing is
sent. A party's own inputs and kept secrets are not in the caller's hands: such calls
are not watched (run spu.check on representative data instead). Cost: one ref2k run of the program
per call watched, and one float JAX run compiled beside the secure run (`spu-lite bench
--watch` measures both: 0.5-1.2x an aby3 call for elementwise programs, 1.8x for a
512 x 512 matmul, whose ring product ref2k computes again). `check="auto"` (the default) watches a compiled program's calls 1, 2,
4, 8, ... and every call one of whose inputs is more than twice as large (max |x|) as
that input has been in any watched call: a training loop that diverges, or data of a
new scale, is watched again, a steady loop costs log2(calls) ref2k runs.
`check="first"` watches the first call only, `check=True` every call, `check=False`
never; SPU_LITE_CHECK=auto|on|first|off sets the default for the process.
"""
from __future__ import annotations

import functools
import os
import threading
import warnings
from typing import List, Optional, Sequence

import jax
import numpy as np

from spu_lite.compiler.lower.errors import FixedPointWarning
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.executor import run_program
from spu_lite.runtime.kernels import KernelContext
from spu_lite.runtime.profile import Profile

from .check_observer import Observer, source_of
from .float_reference import (RTOL, WATCH_JITTER_X, compare_leaf, float64_outputs,
                              sensitivity, watch_atol)

MODES = ("auto", "first", True, False)
_ENV = {"on": True, "1": True, "true": True, "auto": "auto", "first": "first", "off": False,
        "0": False, "false": False}
GROWTH = 2.0        # "auto" watches again when an input's max |x| passes GROWTH x its envelope


class ToleranceWarning(FixedPointWarning):
    """An output of this call is further from float JAX than fixed-point rounding
    explains (docs/check.md says how far that is)."""


def run_observed(cluster: InProcessCluster, program, inputs: Sequence, observer: Observer):
    """`program` on a ref2k cluster's first party with `observer` on every op; inputs are
    ring arrays (secret ones shared by `cluster.share`). Returns the party's outputs."""
    party = cluster.parties[0]
    K = KernelContext(party.proto, program.fxp_bits, party.options, observer=observer)
    observer.watch(program)
    party.proto.begin_job()
    try:
        outs = run_program(K, program, inputs, Profile())
        observer.finish(program.results)
    finally:
        party.proto.end_job()
    return outs


_ref_clusters = {}
_lock = threading.Lock()        # one ref2k party per configuration, one job at a time


def _reference(field: int, fxp_bits: int, options: dict) -> InProcessCluster:
    key = (field, fxp_bits, tuple(sorted(options.items())))
    c = _ref_clusters.get(key)
    if c is None:
        c = _ref_clusters[key] = InProcessCluster(ClusterConfig(
            protocol="ref2k", field=field, fxp_bits=fxp_bits, options=dict(options)))
    return c


def watch(fn_name: str, program, encoded: Sequence, secret: Sequence[bool], field: int,
          fxp_bits: int, options: dict) -> bool:
    """One run of `program` on the encoded plaintext inputs; warns with a
    FixedPointWarning about its overflow and domain findings. True when there are none
    (the call's outputs can then be compared with float JAX: compare_with_float)."""
    observer = Observer(field, fxp_bits, options, f"<{fn_name}>")
    with _lock:
        ref = _reference(field, fxp_bits, options)
        inputs = [ref.share(x)[0] if s else x for x, s in zip(encoded, secret)]
        try:
            run_observed(ref, program, inputs, observer)
        except Exception:       # the real run reports its own failures
            return False
    if observer.findings:
        _warn(FixedPointWarning, f"`{fn_name}` left the fixed-point range or an "
              f"approximation's domain; its results may be wrong",
              [str(f) for f in observer.findings])
    return not observer.findings


def compare_with_float(fn_name: str, compiled, leaves: Sequence, got: Sequence,
                       fxp_bits: int, want: Optional[List[np.ndarray]]) -> List[str]:
    """The call's decoded outputs (`got`; None for one kept secret) against float JAX
    on the same inputs (`leaves`, as the caller gave them; `want`: float_outputs of
    them, None if it could not run); warns with a ToleranceWarning about those beyond
    the watch's tolerance. Returns its lines."""
    lines = _off_float(compiled, leaves, got, want, fxp_bits, f"<{fn_name}>")
    if lines:
        _warn(ToleranceWarning, f"`{fn_name}` returned values further from float JAX than "
              f"fixed-point rounding explains", lines)
    return lines


def _off_float(compiled, leaves, got, want, fxp_bits: int, fallback: str) -> List[str]:
    """The outputs beyond the watch's tolerance against float JAX, one line each: off by
    more than max(8 ulps, min(64 ulps, 1e-2 max |output|), 1e-3 max |output|)
    + 1e-3 |value| + 4 x what float JAX itself moves when its inputs move by an ulp
    (float_reference.py)."""
    if want is None:
        return []
    ulp = 2.0 ** -fxp_bits
    atol = functools.partial(watch_atol, ulp)
    if not _off(got, want, atol):
        return []
    moved = sensitivity(compiled, leaves, want, ulp)
    if moved is None:
        return []
    exact = float64_outputs(compiled, leaves)       # float32 JAX may be the coarser one
    if exact is not None:
        if not _off(got, exact, atol):
            return []
        want = exact
    made_at = {id(v): op.loc for op in compiled.program.ops for v in op.outputs}
    lines = []
    for g, w, r, name, m in zip(got, want, compiled.program.results, _output_names(compiled),
                                moved):
        if g is None:
            continue
        c = compare_leaf(name, g, w, lambda top, m=m: atol(top) + WATCH_JITTER_X * m, RTOL)
        if c.nonfinite:         # a singular matrix, log(0): fixed point has no inf or nan
            lines.append(f"{name} ({source_of(made_at.get(id(r)), fallback)}): "
                         f"{c.nonfinite} element(s) are nan/inf in float JAX; fixed point "
                         f"returns finite numbers there")
        if c.error.tolerance_exceeded:
            lines.append(f"{name} ({source_of(made_at.get(id(r)), fallback)}): "
                         f"{c.error.tolerance_exceeded} of {c.compared} element(s) off by up to "
                         f"{c.error.max_abs_err:.3g} ({c.example})")
    return lines


def _off(got, want, atol) -> bool:
    """Whether an output is beyond the tolerance before float JAX's own sensitivity."""
    return any(c.error.tolerance_exceeded or c.nonfinite for c in
               (compare_leaf("", g, w, atol, RTOL)
                for g, w in zip(got, want) if g is not None))


def _output_names(compiled) -> List[str]:
    """'output', 'output[1]', "output['params']['w']": each flat result's place in the
    returned pytree ('nnx variable[k]': the k-th flax nnx variable changed in place)."""
    n = len(compiled.out_avals)
    try:
        shaped = jax.tree_util.tree_unflatten(compiled.out_tree, list(range(n)))
        paths = jax.tree_util.tree_flatten_with_path(shaped)[0]
        if compiled.mutations:          # (outputs, changed nnx variables)
            names = {i: ("output" if p[0].idx == 0 else "nnx variable") +
                     jax.tree_util.keystr(p[1:]) for p, i in paths}
        else:
            names = {i: "output" + jax.tree_util.keystr(p) for p, i in paths}
    except Exception:
        names = {}
    return [names.get(i, f"output {i}") for i in range(n)]


def _warn(category, headline: str, lines: List[str]) -> None:
    shown = "\n".join(f"  {l}" for l in lines[:8])
    more = f"\n  ... and {len(lines) - 8} more" if len(lines) > 8 else ""
    warnings.warn(category(
        f"spu-lite: {headline}:\n{shown}{more}\n"
        f"spu.check(fn, *args) gives the full report (docs/check.md); "
        f"spu.jit(..., check=False) turns this off."), stacklevel=4)


class WatchState:
    """One compiled program's calls as the watch sees them: how many, and the largest
    |x| of each input over the calls watched (encoded ring values: x 2^f)."""

    def __init__(self):
        self.calls = 0
        self.envelope: List[int] = []

    def wanted(self, mode, inputs: Sequence[np.ndarray]) -> bool:
        """Count a call and say whether to watch it (and if so, widen the envelope)."""
        self.calls += 1
        if mode is True or (mode == "first" and self.calls == 1):
            return True
        if mode != "auto":
            return False
        sizes = [_max_abs(x) for x in inputs]
        grown = len(self.envelope) != len(sizes) or any(
            s > GROWTH * e for s, e in zip(sizes, self.envelope))
        if not (grown or self.calls & (self.calls - 1) == 0):      # calls 1, 2, 4, 8, ...
            return False
        self.envelope = sizes if len(self.envelope) != len(sizes) else \
            [max(s, e) for s, e in zip(sizes, self.envelope)]
        return True


def _max_abs(x: np.ndarray) -> int:
    """max |x| of a ring array read as two's complement (0 for an empty one)."""
    if x.size == 0:
        return 0
    s = x.view(np.int64 if x.dtype.itemsize == 8 else np.int32) if x.dtype.kind == "u" else x
    return max(abs(int(s.max())), abs(int(s.min())))


def default_mode() -> object:
    """check= when spu.jit is not given one: SPU_LITE_CHECK, else "auto"."""
    v = os.environ.get("SPU_LITE_CHECK", "auto").strip().lower()
    if v not in _ENV:
        raise ValueError(f"SPU_LITE_CHECK={v!r}: use auto, on, first or off")
    return _ENV[v]


def parse_mode(mode) -> object:
    if not any(mode is m or (isinstance(m, str) and mode == m) for m in MODES):
        raise ValueError(f"check={mode!r}: use 'auto' (default), 'first', True or False")
    return mode

"""spu.check: run a program's compiled fixed-point version in plaintext on the user's
own example inputs and say where it goes wrong.

    report = spu.check(fn, x, w)          # the same keywords as spu.jit
    print(report)                          # findings, then each output's error
    assert report.ok

The program is the one spu.jit compiles (same passes, formats, approximations); it runs
on the ref2k protocol through the real executor, in this process, with an observer on
every op (spu_lite/tools/check_observer.py): ref2k holds exactly the ring values the secure
protocols hold in shares, so what overflows or leaves a domain here does so under
aby3 and semi2k too. No party, no network, nothing leaves the process. The plain JAX
function runs on the same inputs; an output further from it than the tolerance is a
"precision" finding. spu.check raises only if the program does not compile.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import List, Optional

import jax
import numpy as np

from spu_lite.compiler.lower.lost_constants import LostConstantWarning
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.executor import ExecutionError

from .. import api
from .check_observer import Finding, Observer, source_of
from .float_reference import ATOL_ULPS, RTOL, OutputError, capped_atol, compare_leaf
from .watch import run_observed
from ..codec import InputError, decode, encode
from ..frontend import Public, input_leaf

#: an output off by more than WILD_REL times its own magnitude is a "precision" finding
#: even when a domain finding (a reciprocal of 0, say) explains it: an optimizer whose
#: second moment rounded to 0 divides by eps, and the update, not the 1/0, is the news
#: (an overflow finding already says the output is wrong)
WILD_REL = 1.0


@dataclass
class Report:
    findings: List[Finding]
    outputs: List[OutputError]
    field: int
    fxp_bits: int
    atol: Optional[float]     # None: capped_atol, 64 ulps but at most 2% of the output
    rtol: float
    ops_run: int = 0
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def atol_at(self, top: float) -> float:
        """The absolute tolerance of an output whose largest |value| is top."""
        if self.atol is None:
            return capped_atol(2.0 ** -self.fxp_bits, top)
        return self.atol

    def _tolerance(self) -> str:
        if self.atol is None:
            return (f"min({ATOL_ULPS * 2.0 ** -self.fxp_bits:.2g}, 2% of max |value|) "
                    f"+ {self.rtol:.2g} |value|")
        return f"{self.atol:.2g} + {self.rtol:.2g} |value|"

    def __str__(self) -> str:
        lines = [f"spu.check: {len(self.findings)} finding(s); ring {self.field} bits, "
                 f"{self.fxp_bits} fractional bits, {self.ops_run} ops run in plaintext "
                 f"fixed point"]
        if self.findings:
            lines.append(f"{'kind':<10}{'op':<14}{'source':<24}detail")
            lines += [str(f) for f in self.findings]
        lines.append("")
        lines.append(f"{'output':<10}{'max abs err':>12}{'max rel err':>12}{'max |value|':>12}"
                     f"   vs float JAX (tolerance {self._tolerance()})")
        for o in self.outputs:
            lines.append(f"{o.name:<10}{o.max_abs_err:>12.3g}{o.max_rel_err:>12.3g}"
                         f"{o.max_abs:>12.4g}" + ("   EXCEEDED" if o.tolerance_exceeded else ""))
        lines += self.notes
        lines.append("")
        return "\n".join(lines)

    __repr__ = __str__


def check(fn, *args, atol: Optional[float] = None, rtol: float = RTOL, **jit_kwargs) -> Report:
    """Compile fn as spu.jit(fn, **jit_kwargs) would and run it in plaintext fixed
    point on args; return a Report (see the module docstring). atol / rtol: the
    precision threshold (default 64 ulps of fxp_bits but at most 2% of the output's
    largest |value| and at least 2 ulps, and 1e-3)."""
    jit_kwargs.pop("protocol", None)         # the IR is the same for every protocol
    jit_kwargs.pop("check", None)
    jf = api.jit(fn, protocol="ref2k", **jit_kwargs)
    cfg = jf.config
    report = Report([], [], cfg.field, cfg.fxp_bits, atol, rtol)
    names, static, dyn, treedef, leaves, leaf_vis, leaf_names, key = jf._prepare(args, {})
    where = f"<{getattr(fn, '__name__', 'fn')}>"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = jf.lower(*args)
        if jf._out_of_fine_range(compiled, leaves, {}):
            compiled = jf._compile(names, static, dyn, treedef, leaves, leaf_vis, leaf_names,
                                   refine=False)
    lost = _lost_constants(caught, where)
    cluster = InProcessCluster(ClusterConfig(protocol="ref2k", field=cfg.field,
                                             fxp_bits=cfg.fxp_bits, options=cfg.options))
    observer = Observer(cfg.field, cfg.fxp_bits, cfg.options, where)
    got = _run(cluster, compiled, leaves, leaf_names, observer, report)
    report.findings = lost + observer.findings + report.findings
    report.ops_run = observer.ops_seen
    if got is not None:
        def unwrap(a):      # spu.public marks, at the top or on single leaves
            a = a.value if isinstance(a, Public) else a
            return jax.tree_util.tree_map(lambda v: jax.numpy.asarray(v.value if isinstance(v, Public) else v),
                                          a, is_leaf=lambda v: isinstance(v, Public))
        plain = [a if i in jf.static_argnums else unwrap(a) for i, a in enumerate(args)]
        want = jax.tree_util.tree_leaves(fn(*plain))
        for k, j in compiled.mutations:     # flax nnx variables fn changed (on plain's copies)
            want.append(jax.tree_util.tree_leaves(plain[dyn[k][0]], is_leaf=input_leaf)[j])
        made_at = {id(v): op.loc for op in compiled.program.ops for v in op.outputs}
        _compare(report, got, want, [source_of(made_at.get(id(r)), where)
                                     for r in compiled.program.results],
                 [observer.derived_from_finding(r) for r in compiled.program.results],
                 wild=not any(f.kind == "overflow" for f in observer.findings))
    return report


def _lost_constants(caught, where: str) -> List[Finding]:
    """Compile-time warnings as they were: LostConstantWarnings (a constant that reads 0
    where its value is used) become "constant" findings, once per line; others are
    warned again."""
    found, seen = [], set()
    for w in caught:
        m = w.message
        if not isinstance(m, LostConstantWarning):
            warnings.warn_explicit(m, w.category, w.filename, w.lineno)
            continue
        source = source_of(m.loc, where)
        if (source, m.value) in seen:
            continue
        seen.add((source, m.value))
        found.append(Finding("constant", m.use, source,
                             f"the constant {m.value:.3g} reads {m.reads:.3g} at {m.frac} "
                             f"fractional bits where its value is used: scale it or use more "
                             f"fxp_bits", 1, abs(m.value)))
    return found


def _run(cluster, compiled, leaves, leaf_names, observer, report) -> Optional[list]:
    """The program on ref2k with the observer; its flat outputs as float arrays, or
    None when it cannot run (an input out of range, a kernel failure)."""
    ring, program = cluster.ring, compiled.program
    inputs = []
    for leaf, where, param in zip(leaves, leaf_names, program.params):
        try:
            x = encode(ring, np.asarray(leaf), param.type.dtype.frac, where)
        except InputError as e:
            report.findings.append(Finding("overflow", "input", where, str(e), int(np.size(leaf)),
                                           float(np.max(np.abs(np.asarray(leaf, np.float64))))))
            continue
        if param.type.dtype.is_int and np.size(leaf) and \
                np.max(np.abs(np.asarray(leaf, np.int64))) >= 2 ** (ring.bits - 2):
            top = int(np.max(np.abs(np.asarray(leaf, np.int64))))
            report.findings.append(Finding(
                "overflow", "input", where, f"integers up to |{top}|: comparisons (max, <, ==, "
                f"division) need |a| < 2^{ring.bits - 2} in a {ring.bits}-bit ring",
                int(np.sum(np.abs(np.asarray(leaf, np.int64)) >= 2 ** (ring.bits - 2))), float(top)))
        inputs.append(cluster.share(x)[0] if param.type.secret else x)
    if len(inputs) < len(program.params):
        return None
    try:
        outs = run_observed(cluster, program, inputs, observer)
    except ExecutionError as e:   # e.g. a kernel's numpy OverflowError: "op `x` (loc) failed"
        m = re.match(r"op `([^`]*)` \((.*?)\) failed", str(e))
        op, loc = (m.group(1), m.group(2)) if m else ("run", None)
        report.findings.append(Finding("overflow", op, source_of(loc, observer.fallback_source),
                                       f"the program failed here: {e}"))
        return None
    flat = []
    for o, r, aval in zip(outs, program.results, compiled.out_avals):
        o = cluster.proto_cls.reconstruct([o], ring) if not isinstance(o, np.ndarray) else o
        flat.append(np.asarray(decode(ring, o, r.type, aval), np.float64))
    return flat


def _compare(report: Report, got, want, sources, explained, wild: bool = True) -> None:
    """Each output against float JAX where float JAX is finite; a "precision" finding
    for an output beyond the tolerance that no finding above already explains."""
    for i, (g, w, source, known) in enumerate(zip(got, want, sources, explained)):
        name = f"out[{i}]"
        c = compare_leaf(name, g, w, report.atol_at, report.rtol)
        if c.nonfinite:
            report.notes.append(f"{name}: {c.nonfinite} element(s) of float JAX are nan/inf, "
                                f"not compared")
            if not known:          # fixed point has no inf: its finite numbers are garbage
                report.findings.append(Finding(
                    "domain", name, source, f"{c.nonfinite} element(s) are nan/inf in float "
                    f"JAX (an input outside some op's domain, e.g. a singular matrix); fixed "
                    f"point returns finite numbers there", c.nonfinite))
        o = c.error
        report.outputs.append(o)
        n = o.tolerance_exceeded
        if n and (not known or (wild and o.max_rel_err > WILD_REL)):
            report.findings.append(Finding(
                "precision", name, source, f"{n} of {c.compared} element(s) off by more than "
                f"{report.atol_at(o.max_abs):.2g} + {report.rtol:.2g} |value|: "
                f"up to {o.max_abs_err:.4g} "
                f"({c.example})", n, o.max_abs_err))

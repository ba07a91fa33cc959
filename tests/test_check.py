"""spu.check and `spu-lite check`: findings at the user's lines, a clean program is ok."""
import inspect
import os
import subprocess
import sys
import warnings
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu

from tests.op_table import CASES

HERE = os.path.basename(__file__)


def risky(x, y, w):
    big = x * y                    # MARK overflow
    e = jnp.exp(w)                 # MARK exp
    l = jnp.log(w)                 # MARK log
    return big.sum(), e, l


def clean(x, w):
    return jax.nn.sigmoid(x @ w), jnp.exp(-jnp.abs(x)).mean()


def tiny_divisor(x, y):
    return x / y                   # MARK precision


def line_of(fn, mark):
    src, start = inspect.getsourcelines(fn)
    return f"{HERE}:{start + next(i for i, s in enumerate(src) if f'MARK {mark}' in s)}"


RISKY_INPUTS = (np.array([2e4, 1.0, 3.0]), np.array([2e4, 2.0, -1.0]),
                np.array([0.5, 20.0, 0.0, -1.0]))


def test_overflow_and_domains_found_at_their_lines():
    report = spu.check(risky, *RISKY_INPUTS)
    assert not report.ok
    got = sorted((f.kind, f.op, f.source) for f in report.findings)
    assert got == sorted([("overflow", "mul", line_of(risky, "overflow")),
                          ("domain", "exp", line_of(risky, "exp")),
                          ("domain", "log", line_of(risky, "log"))])
    by_op = {f.op: f for f in report.findings}
    assert by_op["mul"].magnitude == pytest.approx(4e8) and "2^26" in by_op["mul"].detail
    assert by_op["exp"].count == 1 and by_op["log"].count == 2      # 0 and -1
    assert [o.name for o in report.outputs] == ["out[0]", "out[1]", "out[2]"]
    assert "overflow" in str(report) and line_of(risky, "log") in str(report)


def test_clean_program_is_ok_with_small_errors():
    rng = np.random.default_rng(0)
    report = spu.check(clean, rng.normal(size=(6, 4)), rng.normal(size=(4, 3)))
    assert report.ok, str(report)
    assert len(report.outputs) == 2
    assert all(o.max_abs_err < 1e-4 for o in report.outputs)


def test_precision_finding_against_float_jax():
    # 1 / y of a secret y near 1e-4: the reciprocal's input has 26 significant ulps,
    # so the quotient is ~1.3% off (x / 1e-4 = 9865.6 instead of 10000)
    x, y = np.linspace(1.0, 2.0, 7), np.linspace(1e-4, 2e-4, 7)
    report = spu.check(tiny_divisor, x, y)
    assert [(f.kind, f.op, f.source) for f in report.findings] == \
        [("precision", "out[0]", line_of(tiny_divisor, "precision"))]
    assert report.findings[0].magnitude > 10
    # the threshold is configurable
    assert spu.check(tiny_divisor, x, y, rtol=0.05).ok


@pytest.mark.parametrize("fn, x, op", [
    (lambda x: x * 1.5, np.full(50, 4.6e7), "mul"),               # 6.9e7: past 2^26
    (lambda x: x @ jnp.ones((4,)), np.full((3, 4), 1e13), "dot"),  # accepted input
    (lambda x: x * x, np.array([2e4, 3.0]), "mul"),
])
def test_silent_overflows_of_the_issue_are_found(fn, x, op):
    report = spu.check(fn, x)
    assert [(f.kind, f.op) for f in report.findings] == [("overflow", op)], str(report)


def test_division_by_zero_is_a_domain_finding():
    report = spu.check(lambda x, y: x / y, np.ones(3), np.array([1.0, 0.0, 2.0]))
    assert [(f.kind, f.op, f.count) for f in report.findings] == [("domain", "recip_parts", 1)]
    report = spu.check(lambda y: 1.0 / y, np.array([1.0, 0.0, 2.0]))
    assert [(f.kind, f.op, f.count) for f in report.findings] == [("domain", "reciprocal", 1)]


def test_division_by_a_large_secret_keeps_its_bits_or_is_reported():
    """a / x read 1/x at f bits: 1e4 / 2e4 was 0.4959, 3e5 / 6e5 was 0, silently.
    Now within 2 ulps + 2e-6 relative up to |x| < 2^22; past it a domain finding."""
    a = np.array([1e4, 3e5, 5e3, 4.1e6, 1.0], np.float32)
    x = np.array([2e4, 6e5, 7e3, 4.19e6, 3.0], np.float32)    # 2^22 = 4.194e6
    for protocol in ("ref2k", "aby3", "semi2k"):
        got = np.asarray(spu.jit(lambda a, x: a / x, protocol=protocol)(a, x), np.float64)
        np.testing.assert_allclose(got, a / x.astype(np.float64), rtol=2e-6, atol=2 * 2.0 ** -18)
        public = spu.jit(lambda a, x: a / x, protocol=protocol, public_argnums=(1,))(a, x)
        np.testing.assert_allclose(np.asarray(public, np.float64), a / x.astype(np.float64),
                                   rtol=2e-6, atol=2 * 2.0 ** -18)    # 3e5 / 6e5 was 3.8e-6
    assert spu.check(lambda a, x: a / x, a, x).ok
    outside = spu.check(lambda a, x: a / x, a, x * np.float32(1.002))   # 4.198e6 > 2^22
    assert [(f.kind, f.op, f.count) for f in outside.findings] == [("domain", "recip_parts", 1)]
    masked = spu.check(lambda a, x: jnp.where(x != 0, a / x, 0.0), a, x * np.array([1, 1, 0, 1, 1]))
    assert masked.ok, str(masked)                               # a safe division: no finding
    div = lambda a, x: a / x
    # |a / x| < 2^22 = 4.19e6 and, for x = 16 (mantissa 1/2, r = 2), |a| < 2^25 = 3.36e7
    assert spu.check(div, np.float32([4.1e6, 3.3e7]), np.float32([1.0, 16.0])).ok
    for a_out, x_out in (([4.3e6], [1.0]), ([3.4e7], [16.0])):
        found = spu.check(div, np.float32(a_out), np.float32(x_out)).findings
        assert [(f.kind, f.op) for f in found] == [("overflow", "mul")]


def test_input_out_of_range_is_reported_not_raised():
    report = spu.check(lambda x: x + 1.0, np.array([1e15]))
    assert [(f.kind, f.op) for f in report.findings] == [("overflow", "input")]


def test_cli_check_reports_findings_with_exit_code_3(tmp_path):
    data = tmp_path / "inputs.npz"
    np.savez(data, x=RISKY_INPUTS[0], y=RISKY_INPUTS[1], w=RISKY_INPUTS[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-m", "spu_lite", "check", f"{__file__}:risky",
                        "--data", str(data)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 3, r.stderr
    for mark in ("overflow", "exp", "log"):
        assert line_of(risky, mark) in r.stdout
    r = subprocess.run([sys.executable, "-m", "spu_lite", "check", f"{__file__}:clean",
                        "--arg", "f32[5,4]", "--arg", "f32[4,3]", "--range=-2,2"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 finding(s)" in r.stdout


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_finding_on_the_op_table(case):
    """Every op-table case is correct under MPC: spu.check must find nothing in it."""
    inputs = case.make(np.random.default_rng(zlib.crc32(case.name.encode())))
    report = spu.check(case.fn, *inputs)
    assert report.ok, str(report)


def test_masked_softmax_in_a_32_bit_ring():
    """-inf masks stand for -2^(k-3-f) in a small ring: exact zeros out of exp at 9
    fractional bits (the domain table's second interval), garbage at 6, found."""
    mask = np.tril(np.ones((6, 6), bool))
    fn = lambda x: jax.nn.softmax(jnp.where(mask, x, -jnp.inf))
    x = np.random.default_rng(0).uniform(-4, 4, (6, 6))
    assert spu.check(fn, x, field=32).ok
    got = spu.jit(fn, protocol="aby3", field=32, seed=1)(x)
    np.testing.assert_allclose(got, fn(x), atol=0.01)
    report = spu.check(fn, x, field=32, fxp_bits=6)    # the garbage reaches the output
    assert [(f.kind, f.op) for f in report.findings] == [("domain", "exp"),
                                                          ("precision", "out[0]")]
    assert np.abs(spu.jit(fn, protocol="aby3", field=32, fxp_bits=6, seed=1)(x) - fn(x)).max() > 0.5


def repeated_squares(x):
    return jax.lax.fori_loop(0, 5, lambda i, c: c * c, x)   # MARK loop


def test_overflow_inside_a_loop_is_one_finding_at_its_line():
    report = spu.check(repeated_squares, np.array([3.0, 1.1]))      # 3^32 = 1.9e15
    assert [(f.kind, f.op, f.source, f.count) for f in report.findings] == \
        [("overflow", "mul", line_of(repeated_squares, "loop"), 1)]


def test_executor_reports_every_op_once_to_the_observer():
    """Fused products, batched truncations and dot groups are reported per original op."""
    from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
    from spu_lite.runtime.executor import run_program
    from spu_lite.runtime.kernels import KernelContext
    from spu_lite.runtime.profile import Profile

    def fn(x, w, v):
        return (x @ w) * 0.5, (x @ v) * 0.25, x * x
    rng = np.random.default_rng(0)
    args = [rng.normal(size=s) for s in ((3, 4), (4, 2), (4, 5))]
    program = spu.compile(fn, *args).program
    cluster = InProcessCluster(ClusterConfig(protocol="ref2k"))
    party = cluster.parties[0]
    seen = []
    K = KernelContext(party.proto, program.fxp_bits, {},
                      observer=lambda op, ins, outs: seen.append((op, len(ins), len(outs))))
    inputs = [cluster.share(cluster.ring.encode(a, p.type.dtype.frac))[0]
              for a, p in zip(args, program.params)]
    run_program(K, program, inputs, Profile())
    # each op exactly once (a dot group's later dots are reported when they run, early)
    assert sorted(id(op) for op, _, _ in seen) == sorted(id(op) for op in program.ops)
    names = {op.name for op, _, _ in seen}
    assert {"dot", "trunc", "mul"} <= names
    assert all(n_in == len(op.inputs) and n_out == len(op.outputs) for op, n_in, n_out in seen)


def test_a_library_function_checked_directly_names_no_line_of_spu_lite():
    """spu.check(jnp.exp, ...): the finding names the function, not a line of spu-lite's
    own tracing code (spu_lite/frontend.py)."""
    report = spu.check(jnp.exp, np.array([30.0, 1.0]))
    assert [(f.kind, f.op, f.source) for f in report.findings] == [("domain", "exp", "<exp>")]


def masked_log(x):
    return jnp.where(x > 0, jnp.log(x), 0.0)          # bad lanes thrown away


def leaky_log(x):
    return jnp.where(x > -5, jnp.log(x), 0.0)         # MARK leaky: bad lanes kept


def masked_norm(v):                                     # zero vector: 1/0 thrown away
    n2 = jnp.sum(v * v)
    return jnp.where(n2 > 0, v / jnp.sqrt(n2), v)


def masked_then_summed(x):
    return jnp.where(x != 0, 1.0 / x, 0.0).sum()


def bad_lane_summed(x):
    return jnp.log(x).sum()                           # MARK summed


@pytest.mark.parametrize("fn,x", [
    (masked_log, np.array([2.0, 0.0, -1.0, 0.5])),
    (masked_norm, np.zeros(4)),
    (masked_then_summed, np.array([2.0, 0.0, -4.0])),
])
def test_lanes_a_where_throws_away_are_not_findings(fn, x):
    """jnp.where evaluates both branches on every lane: an out-of-domain lane it does
    not pick is no finding (the result is right), in JAX's own safe-log idiom."""
    report = spu.check(fn, x)
    assert report.ok, report
    np.testing.assert_allclose(spu.jit(fn)(x), fn(jnp.asarray(x)), atol=1e-4)


@pytest.mark.parametrize("fn,mark", [(leaky_log, "leaky"), (bad_lane_summed, "summed")])
def test_bad_lanes_that_reach_a_result_are_findings(fn, mark):
    report = spu.check(fn, np.array([2.0, 0.0, -1.0, 0.5]))
    assert [(f.kind, f.op) for f in report.findings if f.kind != "precision"] == [("domain", "log")]
    assert report.findings[0].count == 2 and report.findings[0].source == line_of(fn, mark)


def floor_at_tiny(x):
    return jnp.where(x > 0, x, 1e-6)          # MARK constant


def eps_guarded(p):
    return jnp.log(p + 1e-8) + jnp.clip(p, 1e-7, 1.0)


def test_a_constant_that_reads_zero_is_a_finding_at_its_line():
    report = spu.check(floor_at_tiny, np.array([0.5, -1.0]))
    assert [(f.kind, f.op, f.source) for f in report.findings] == \
        [("constant", "select", line_of(floor_at_tiny, "constant"))]
    assert "1e-06 reads 0 at 18 fractional bits" in report.findings[0].detail
    assert not report.ok
    assert spu.check(floor_at_tiny, np.array([0.5, -1.0]), fxp_bits=24).ok   # 16.8 ulps
    assert spu.check(eps_guarded, np.array([0.5, 0.25])).ok


def test_stock_prodigy_initialised_inside_the_function_is_a_constant_finding():
    import optax
    from optax import contrib
    opt = contrib.prodigy(1.0)

    def step(w, g):
        updates, _ = opt.update(g, opt.init(w), w)
        return optax.apply_updates(w, updates)
    w, g = np.full(3, 0.1), np.array([0.5, -0.2, 0.1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # recorded as findings, not warned again
        report = spu.check(step, w, g)
    assert any(f.kind == "constant" for f in report.findings), str(report)

"""IR: text round trip, golden programs, type checking, op table consistency."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu
from spu_lite.compiler.ir import (DType, IRParseError, OPS, Type, parse_program, parse_type, print_program,
                         SECRET, PUBLIC, fxp)
from tests.op_table import CASES

GOLDEN = pathlib.Path(__file__).parent / "golden"


def dense_relu(x, w, b):
    return jnp.maximum(x @ w + b, 0.0).sum(axis=0)


def int_times_fxp(i, x):
    return i.astype(jnp.float32) * x + 2.0 * x


def scheduled(x, w, a, b):
    """A lone dot fused with its truncation; two products and their truncations as one
    batch of fused products; a comparison and an equality as one batch of sign bits."""
    return jnp.tanh(x @ w), a * b, a * a, a < b, a == b


PROGRAMS = {
    "dense_relu": (dense_relu, (np.zeros((8, 4)), np.zeros((4, 3)), np.zeros(3))),
    "int_times_fxp": (int_times_fxp, (np.zeros(5, np.int32), np.zeros(5))),
    "scheduled": (scheduled, (np.zeros((2, 3)), np.zeros((3, 2)), np.zeros(4), np.zeros(4))),
}


def _text(name):
    fn, args = PROGRAMS[name]
    return spu.compile(fn, *args, protocol="ref2k").text  # the IR does not depend on the protocol


def _strip_locs(text):
    import re
    return re.sub(r' loc\(".*?"\)', "", text)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_golden(name):
    """The compiled IR of small programs is pinned (locations aside)."""
    got = _strip_locs(_text(name))
    path = GOLDEN / f"{name}.ir"
    assert got == path.read_text(), f"IR changed; if intended, regenerate {path}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_print_parse_print_is_identical(case):
    inputs = case.make(np.random.default_rng(0))
    text = spu.compile(case.fn, *inputs, protocol="ref2k").text
    assert print_program(parse_program(text)) == text


def test_golden_files_parse():
    for path in GOLDEN.glob("*.ir"):
        assert print_program(parse_program(path.read_text())) == path.read_text()


def test_one_truncation_after_dot_product_and_none_for_int_times_fxp():
    text = _text("dense_relu")
    assert text.count("trunc(") == 1            # x @ w + b: one truncation in all
    text = _text("int_times_fxp")
    assert "trunc(" not in text                 # int * fxp and 2.0 * fxp need none


def test_visibility_inference():
    """Public-only computation stays public (runs in plaintext); secret taints."""
    f = lambda p, s: (jnp.exp(p * 2.0) + 1.0, p * s)
    prog = spu.compile(f, spu.public(np.ones(3)), np.ones(3), protocol="ref2k").program
    assert [str(v.type) for v in prog.params] == ["public<fxp<64,18>>[3]", "secret<fxp<64,18>>[3]"]
    assert [v.type.vis for v in prog.results] == ["public", "secret"]
    by_name = {op.name: op.out.type.vis for op in prog.ops}
    assert by_name["exp"] == "public"


def test_parser_rejects_mistyped_program():
    text = _text("dense_relu").replace("} : secret<fxp<64,18>>[8,3]", "} : secret<fxp<64,36>>[8,3]", 1)
    with pytest.raises(IRParseError, match="dot_trunc gives"):
        parse_program(text)


def test_parser_rejects_use_before_definition():
    text = _text("dense_relu").replace("dot_trunc(%0, %1)", "dot_trunc(%0, %99)")
    with pytest.raises(IRParseError, match="before definition"):
        parse_program(text)


def test_types_round_trip():
    for t in [Type(SECRET, fxp(64, 18), (8, 4)), Type(PUBLIC, DType("int", 32), ()),
              Type(SECRET, DType("bool", 64), (3,))]:
        assert parse_type(str(t)) == t


def test_large_constants_round_trip_exactly():
    c = np.random.default_rng(1).normal(size=(5, 7))
    text = spu.compile(lambda x: x * c, np.zeros((5, 7)), protocol="ref2k").text
    assert 'b64"' in text
    assert print_program(parse_program(text)) == text


def test_every_op_has_a_kernel():
    from spu_lite.runtime.kernels import KERNELS
    missing = sorted(set(OPS) - set(KERNELS))
    assert missing == [], f"IR ops without a runtime kernel: {missing}"


def test_loop_invariant_work_is_hoisted_out_of_loops():
    def train(w, x):
        return jax.lax.fori_loop(0, 100, lambda i, w: w - 0.1 * x.T @ jnp.tanh(x @ w), w)
    prog = spu.compile(train, np.zeros(4), np.zeros((8, 4)), protocol="ref2k").program
    loop = next(op for op in prog.ops if op.name == "for")
    body = [op.name for op in loop.blocks[0].ops]
    truncations = sum(n in ("trunc", "dot_trunc") for n in body)     # fused ones included
    assert "transpose" not in body and truncations == 2    # 0.1 * x.T: once, outside
    outside = [op.name for op in prog.ops]
    assert outside.index("transpose") < outside.index("for")
    assert print_program(parse_program(prog.text)) == prog.text
    x, w = np.random.default_rng(0).normal(size=(8, 4)) * 0.3, np.zeros(4)
    np.testing.assert_allclose(spu.jit(train, protocol="ref2k")(w, x), train(w, x), atol=1e-3)

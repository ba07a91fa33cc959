"""The user-facing contract of spu.jit / spu.compile and its error behaviour."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu

P = "ref2k"   # the API is protocol independent; protocols have their own tests


def test_bare_decorator_defaults_to_aby3():
    @spu.jit
    def f(x):
        return x + 1.0
    assert f.config.protocol == "aby3" and f.config.field == 64 and f.config.fxp_bits == 18


def test_decorator_with_arguments_and_pytrees():
    @spu.jit(protocol=P)
    def f(params, batch):
        h = batch["x"] @ params["w"] + params["b"]
        return {"out": h, "n": batch["x"].shape[0]}
    params = {"w": np.ones((3, 2)), "b": np.array([0.5, -0.5])}
    out = f(params, {"x": np.ones((4, 3))})
    np.testing.assert_allclose(out["out"], np.full((4, 2), 3.0) + [0.5, -0.5], atol=1e-4)
    assert int(out["n"]) == 4
    assert isinstance(out["out"], np.ndarray)


def test_flax_params_pytree():
    import flax.linen as nn
    model = nn.Dense(3)
    x = np.random.default_rng(0).normal(size=(2, 4))
    params = model.init(jax.random.PRNGKey(0), x)
    out = spu.jit(lambda p, x: model.apply(p, x), protocol=P)(params, x)
    np.testing.assert_allclose(out, model.apply(params, x), atol=1e-4)


def test_static_args_and_cache():
    calls = []

    def f(x, n, *, scale):
        calls.append(1)
        return x * n * scale
    g = spu.jit(f, protocol=P, static_argnums=1, static_argnames="scale")
    np.testing.assert_allclose(g(np.ones(3), 2, scale=3.0), 6.0, atol=1e-4)
    g(np.ones(3) * 2, 2, scale=3.0)
    assert len(calls) == 1          # same signature: traced once
    g(np.ones(3), 3, scale=3.0)
    assert len(calls) == 2          # new static value: traced again
    g(np.ones(4), 3, scale=3.0)
    assert len(calls) == 3          # new shape: traced again


def test_public_inputs():
    f = spu.jit(lambda x, y: x * y, protocol=P, public_argnums=(1,))
    prog = f.lower(np.ones(3), np.ones(3)).program
    assert prog.params[1].type.vis == "public"
    g = spu.jit(lambda x, y: x * y, protocol=P)
    assert g.lower(np.ones(3), spu.public(np.ones(3))).program.params[1].type.vis == "public"
    np.testing.assert_allclose(g(np.ones(3) * 2, spu.public(np.ones(3) * 3)), 6.0, atol=1e-4)


def test_compile_returns_ir_text():
    c = spu.compile(lambda x, w: x @ w, np.zeros((8, 4)), jax.ShapeDtypeStruct((4, 3), jnp.float32))
    assert "dot_trunc(%0, %1)" in c.text and "secret<fxp<64,18>>[8,3]" in c.text


def test_profile_is_available_and_printable():
    f = spu.jit(lambda x: (x * x).sum(), protocol=P)
    f(np.ones(5))
    assert f.last_profile is spu.profile()
    table = f.last_profile.table()
    assert "mul" in table and "total" in table


def test_output_dtypes_follow_jax():
    out = spu.jit(lambda x: (x > 0, jnp.argmax(x), x * 2), protocol=P)(np.array([1.0, -2.0, 3.0]))
    assert out[0].dtype == np.bool_ and out[1].dtype == np.int32 and out[2].dtype == np.float32
    np.testing.assert_array_equal(out[0], [True, False, True])
    assert out[1] == 2


# ---- bad input: clear errors before any share is made ---------------------------------

@pytest.mark.parametrize("bad", [np.array([1.0, np.nan]), np.array([np.inf, 0.0])])
def test_nan_and_inf_are_refused(bad):
    with pytest.raises(spu.InputError, match="NaN or inf"):
        spu.jit(lambda x: x + 1, protocol=P)(bad)


def test_out_of_range_is_refused():
    with pytest.raises(spu.InputError, match="fixed-point range"):
        spu.jit(lambda x: x + 1, protocol=P)(np.array([1e15]))
    with pytest.raises(spu.InputError, match="ring"):
        spu.jit(lambda x: x + 1, protocol=P, field=32)(np.array([2 ** 40], np.int64))


def test_unsupported_dtypes_are_refused():
    with pytest.raises(spu.InputError, match="not supported"):
        spu.jit(lambda x: x, protocol=P)(np.array(["a"]))
    with pytest.raises(spu.InputError, match="complex"):
        spu.jit(lambda x: x, protocol=P)(np.array([1j]))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(TypeError, match="dot_general|shapes|incompatible"):
        spu.jit(lambda x, w: x @ w, protocol=P)(np.ones((2, 3)), np.ones((4, 2)))


def test_unsupported_primitive_names_primitive_and_source_line():
    def f(x):
        return jax.lax.digamma(x)            # no rule
    with pytest.raises(spu.CompileError) as e:
        spu.jit(f, protocol=P)(np.ones(4))
    assert "`digamma`" in str(e.value) and "test_api.py" in str(e.value)


def test_sort_by_several_keys_sorts_by_each_key_last_first():
    a, b = np.array([1.0, 0, 1, 0, 1]), np.array([3.0, 2, 1, 5, 1])
    f = lambda a, b: jax.lax.sort((a, b, jnp.arange(5)), num_keys=2)
    for got, want in zip(spu.jit(f, protocol=P)(a, b), f(a, b)):
        np.testing.assert_allclose(got, want)             # the tie (1, 1) stays in order
    np.testing.assert_array_equal(spu.jit(jnp.lexsort, protocol=P)((b, a)), jnp.lexsort((b, a)))


def test_two_secret_start_indices_slice_one_axis_after_the_other():
    f = lambda x, i, j: jax.lax.dynamic_slice(x, (i, j), (1, 2))
    x = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(spu.jit(f, protocol=P)(x, 1, 2), f(x, 1, 2))   # j clamped to 1


def test_unknown_protocol():
    with pytest.raises(ValueError, match="unknown protocol"):
        spu.jit(lambda x: x, protocol="nope")


def test_bad_arguments_are_reported():
    with pytest.raises(spu.InputError, match="bad arguments"):
        spu.jit(lambda x: x, protocol=P)(1, 2)


def test_while_on_a_secret_predicate_is_a_compile_error():
    f = lambda x: jax.lax.while_loop(lambda c: c.sum() < 10.0, lambda c: c * 2.0, x)
    with pytest.raises(spu.CompileError, match="secret predicate"):
        spu.jit(f, protocol=P)(np.ones(3))


def test_loops_stay_loops_in_the_ir():
    f = lambda x: jax.lax.fori_loop(0, 1000, lambda i, c: c * 0.5 + 1.0, x)
    text = spu.compile(f, np.ones(3), protocol=P).text
    assert text.count("for(") == 1 and len(text.splitlines()) < 40


def test_keep_secret_handles_chain_calls_without_revealing():
    step = spu.jit(lambda w, x: (w + x, (w * x).sum()), protocol=P, keep_secret=(0,))
    w = np.ones(3)
    for _ in range(3):
        w, s = step(w, np.full(3, 2.0))
        assert isinstance(w, spu.Secret) and isinstance(s, np.ndarray)
    with pytest.raises(TypeError, match="reveal"):
        np.asarray(w)
    np.testing.assert_allclose(spu.reveal(w), 7.0, atol=1e-4)
    np.testing.assert_allclose(s, 5.0 * 2 * 3, atol=1e-4)


def test_public_leaf_inside_a_pytree():
    f = spu.jit(lambda st: st["m"] * st["count"], protocol=P)
    prog = f.lower({"m": np.ones(2), "count": spu.public(np.int32(3))}).program
    assert [v.type.vis for v in prog.params] == ["public", "secret"] or \
        sorted(v.type.vis for v in prog.params) == ["public", "secret"]
    np.testing.assert_allclose(f({"m": np.ones(2), "count": spu.public(np.int32(3))}), 3.0)


def test_public_subtree_inside_a_pytree():
    """spu.public around a subtree ({**variables, "params": spu.public(params)}) marks
    each of its leaves (it was an InputError: dtype object)."""
    f = spu.jit(lambda d, x: x @ d["w"]["k"] + d["w"]["b"], protocol=P)
    d = {"w": spu.public({"k": np.ones((3, 2)), "b": np.arange(2.0)})}
    prog = f.lower(d, np.ones((1, 3))).program
    assert sorted(v.type.vis for v in prog.params) == ["public", "public", "secret"]
    np.testing.assert_allclose(f(d, np.ones((1, 3))), [[3.0, 4.0]], atol=1e-4)


def test_defaults_the_caller_does_not_pass_stay_python_values():
    """JAX's own jitted functions take static defaults (jnp.round's decimals,
    jnp.linalg.norm's ord / axis / keepdims): spu.jit must not trace them."""
    x = np.array([0.4, 1.6, -3.0])
    np.testing.assert_allclose(spu.jit(jnp.linalg.norm, protocol=P)(x), np.linalg.norm(x), atol=1e-4)
    np.testing.assert_allclose(spu.jit(jnp.round, protocol=P)(x), [0.0, 2.0, -3.0])

    def f(x, scale=2.0):
        return x * scale
    np.testing.assert_allclose(spu.jit(f, protocol=P)(x), 2 * x, atol=1e-4)
    np.testing.assert_allclose(spu.jit(f, protocol=P)(x, np.float32(3.0)), 3 * x, atol=1e-4)


def test_compile_time_constants_are_evaluated_by_jax():
    """Unsupported primitives whose operands are all known when compiling (a dropout
    mask from a fixed key, jnp.arange(n) % 2) become public constants; the same
    primitive on an input stays a CompileError naming it."""
    import flax.linen as nn
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    drop = lambda x: nn.Dropout(0.5, deterministic=False).apply({}, x, rngs={"dropout": jax.random.PRNGKey(0)})
    np.testing.assert_allclose(spu.jit(drop, protocol=P)(x), drop(x), atol=1e-5)
    parity = lambda x: x * (jnp.arange(6) % 2)
    np.testing.assert_allclose(spu.jit(parity, protocol=P)(x), parity(x), atol=1e-5)
    with pytest.raises(spu.CompileError, match="`digamma`.*test_api.py"):
        spu.jit(lambda x: jax.lax.digamma(x), protocol=P)(x)
    with pytest.raises(spu.CompileError, match="random"):
        spu.jit(lambda x, k: x + jax.random.normal(k, x.shape), protocol=P)(x, jax.random.PRNGKey(1))


def test_an_in_process_default_runs_only_programs_of_its_ring():
    """A cluster made the default (the network bench's emulated links) is used only by
    programs of its protocol and ring: a field-32 program compiled for 9 fractional bits
    on a 64-bit, 18-bit cluster gave garbage or crashed it."""
    from spu_lite import api
    from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
    x = np.linspace(-2.0, 2.0, 8)
    api.set_default_cluster(InProcessCluster(ClusterConfig(protocol="aby3")))
    try:
        got = spu.jit(lambda a: a * a + 1.0, field=32)(x)
        np.testing.assert_allclose(got, x * x + 1.0, atol=0.02)
        spu.jit(lambda a: a * 3.0)(x)
        assert spu.jit(lambda a: a * 3.0).cluster is api._default_override
    finally:
        api.set_default_cluster(None)

"""How user code meets spu.jit: functions taking *args, PRNG keys in the inputs, and
Python-level uses of secrets reported in the user's terms (function, argument, line)."""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spu_lite as spu


def branchy(x, params):
    if params["b"].sum() > 0:           # a Python branch on a secret
        return x
    return -x


def test_python_if_on_a_secret_names_function_argument_and_line():
    line = inspect.getsourcelines(branchy)[1] + 1
    with pytest.raises(spu.CompileError) as e:
        spu.jit(branchy, protocol="ref2k")(np.ones(3), {"a": np.ones(2), "b": np.ones(2)})
    msg = str(e.value)
    assert "`branchy`" in msg and "argument `params['b']`" in msg
    assert f"test_user_code.py:{line}" in msg
    assert "jnp.where" in msg and "lax.cond" in msg and "secret value" in msg
    assert "flat_fn" not in msg and "flat_leaves" not in msg


def gamma_of(x):
    return jax.lax.lgamma(x) * 2.0     # no rule: lgamma


def test_an_unsupported_primitive_names_the_users_line_not_the_frontend():
    line = inspect.getsourcelines(gamma_of)[1] + 1
    with pytest.raises(spu.CompileError) as e:
        spu.jit(gamma_of, protocol="ref2k")(np.ones(3))
    assert "`lgamma`" in str(e.value) and f"test_user_code.py:{line}" in str(e.value)
    with pytest.raises(spu.CompileError) as e:           # a library function: no line
        spu.jit(jax.lax.lgamma, protocol="ref2k")(np.ones(3))
    msg = str(e.value)
    assert "`lgamma`" in msg and "function passed to spu.jit" in msg and "frontend.py" not in msg


def test_python_if_on_a_public_input_suggests_static_arguments():
    def f(x, n):
        while n > 0:
            x, n = x * 2.0, n - 1
        return x
    with pytest.raises(spu.CompileError, match=r"argument `n`.*static_argnums"):
        spu.jit(f, protocol="ref2k")(np.ones(2), spu.public(np.int32(2)))
    np.testing.assert_allclose(spu.jit(f, protocol="ref2k", static_argnums=1)(np.ones(2), 2), 4.0)


def test_int_of_a_secret_is_explained():
    def f(x):
        return jnp.zeros(3)[int(x[0])]
    with pytest.raises(spu.CompileError, match=r"int\(\).*argument `x`"):
        spu.jit(f, protocol="ref2k")(np.ones(2))


def test_jnp_ufuncs_and_var_args_are_plain_arguments():
    """jnp ufuncs take *args: each element is one argument, positional index as in
    jax.jit (static_argnums, public_argnums), and **kwargs entries by name."""
    x, y = np.arange(4.0), np.ones(4)
    np.testing.assert_allclose(spu.jit(jnp.add, protocol="ref2k")(x, y), x + y)

    def g(a, *rest, scale=1.0, **kw):
        return (a + sum(rest)) * scale + kw["b"]
    np.testing.assert_allclose(spu.jit(g, protocol="ref2k")(x, y, y, scale=2.0, b=y), (x + 2) * 2 + 1)
    h = spu.jit(lambda *a: a[0] * a[1], protocol="ref2k", static_argnums=1)
    np.testing.assert_allclose(h(x, 3), 3 * x)
    assert "public" in spu.compile(jnp.multiply, x, y, public_argnums=1).text.split("\n")[0]


def test_nnx_random_stream_of_the_caller_advances_as_under_nnx_jit():
    from flax import nnx
    model, twin = nnx.Dropout(0.5, rngs=nnx.Rngs(0)), nnx.Dropout(0.5, rngs=nnx.Rngs(0))
    x = np.ones((2, 8))
    f = spu.jit(lambda m, x: m(x), protocol="ref2k")
    first, second = f(model, x), f(model, x)
    assert int(jax.tree_util.tree_leaves(model)[0]) == 2       # the caller's counter
    np.testing.assert_allclose(first, twin(x), atol=1e-5)
    np.testing.assert_allclose(second, twin(x), atol=1e-5)    # the next draw, not the same one
    assert np.any(first != second)


def test_returning_a_prng_key_is_a_clear_error():
    with pytest.raises(spu.CompileError, match="returns a PRNG key.*key_data"):
        spu.jit(lambda k, x: (x, jax.random.split(k)[0]), protocol="ref2k")(jax.random.key(0), np.ones(2))


def test_a_draw_from_a_key_made_of_secret_data_is_a_compile_error():
    """A raw uint32 key (jax.random.PRNGKey) is an ordinary int array, secret by default."""
    with pytest.raises(spu.CompileError, match="random_.*random numbers under MPC"):
        spu.jit(lambda k, x: x * jax.random.uniform(k, x.shape), protocol="ref2k")(
            np.asarray(jax.random.PRNGKey(0)), np.ones(3))


@jax.jit
def _masked(key, x):                     # a jitted helper that takes and returns a key
    key, sub = jax.random.split(key)
    return key, x * jax.random.bernoulli(sub, 0.5, x.shape)


def test_a_fixed_key_enters_jitted_and_rematerialised_calls_with_secret_data():
    """A key fixed when compiling passed into a call together with secret data
    (jax.random.permutation, a jitted helper, jax.checkpoint, flax nn.remat around a
    Dropout) is known inside it: its draws are public constants. Before: `unsupported
    primitive jit / remat2 ... an operand that depends on an input`."""
    import flax.linen as nn

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dropout(0.5, deterministic=False)(nn.remat(nn.Dense)(4)(x))
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    block = Block()
    v = block.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x)
    for fn, args in [(lambda x: jax.random.permutation(jax.random.key(1), x), (x,)),
                     (lambda x: _masked(_masked(jax.random.key(3), x)[0], x)[1], (x,)),
                     (jax.grad(lambda x: jax.checkpoint(lambda k, y: jnp.sum(
                         (y * jax.random.bernoulli(k, 0.5, y.shape)) ** 2))(jax.random.key(4), x)), (x,)),
                     (lambda v, x: block.apply(v, x, rngs={"dropout": jax.random.key(5)}), (v, x))]:
        np.testing.assert_allclose(spu.jit(fn, protocol="ref2k")(*args), fn(*args), atol=1e-4)


def test_scatter_set_at_a_public_index_given_at_run_time():
    x, v = np.arange(6.0).reshape(3, 2), np.array([-1.0, -2.0])
    f = spu.jit(lambda x, i, v: x.at[i].set(v), protocol="aby3")
    np.testing.assert_allclose(f(x, spu.public(np.int32(1)), v), np.asarray(jnp.asarray(x).at[1].set(v)))
    assert spu.profile().total.rounds == 0          # public index: local work only


def test_scatter_at_several_run_time_indices_needs_a_uniqueness_promise():
    f = lambda x, i, v: x.at[i].set(v)
    with pytest.raises(spu.CompileError, match=r"`scatter`.*unique_indices=True.*at .*test_user_code.py"):
        spu.jit(f, protocol="ref2k")(np.ones((4, 2)), np.array([0, 2], np.int32), np.ones((2, 2)))


def take_past_the_end(x):
    return jnp.take(x, jnp.array([0, 5]), axis=0)      # default mode fill: NaN at 5


def test_take_out_of_bounds_at_constant_indices_without_fill_value_is_refused():
    """Float JAX reads NaN there; fixed point has none: a CompileError at the line, with
    what to pass instead. In bounds the same call runs."""
    line = inspect.getsourcelines(take_past_the_end)[1] + 1
    with pytest.raises(spu.CompileError) as e:
        spu.jit(take_past_the_end, protocol="ref2k")(np.arange(4.0))
    assert "fill_value" in str(e.value) and f"test_user_code.py:{line}" in str(e.value)
    got = spu.jit(lambda x: jnp.take(x, jnp.array([0, 3]), axis=0), protocol="ref2k")(np.arange(4.0))
    np.testing.assert_allclose(got, [0.0, 3.0])


def test_a_cond_on_a_public_value_that_returns_nothing():
    """Its op has no results (optax.contrib.mechanize's `lax.cond(count == 0, ...)`
    left one once its value was unused): the truncation pass read a result it lacks."""
    def f(x, c):
        jax.lax.cond(c == 0, lambda a: None, lambda a: None, x)
        return jnp.sum(x * x)
    got = spu.jit(f, protocol="ref2k", public_argnums=(1,))(np.arange(4.0), np.int32(0))
    np.testing.assert_allclose(got, 14.0)


def test_python_numbers_passed_in_are_weakly_typed_as_under_jax_jit():
    """`int8_array * 3` with 3 an argument is int8 and wraps as int8 (it was int32,
    300 where JAX gives 44); a Python float keeps float32 arrays float32."""
    a = np.array([100, -100, 7], np.int8)
    got = spu.jit(lambda x, s: x * s, protocol="ref2k")(a, 3)
    want = jax.jit(lambda x, s: x * s)(a, 3)
    assert got.dtype == np.int8 and np.array_equal(got, want)
    half = spu.jit(lambda x, s: x * s, protocol="ref2k")(np.ones(2, np.float32), 0.5)
    assert half.dtype == np.float32 and np.allclose(half, 0.5)


def windows_at(x, i):
    dn = jax.lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(), start_index_map=(0,))
    return jax.lax.gather(x, i[:, None], dn, slice_sizes=(2,))       # windows of 2 at secret starts


def test_a_gather_the_kernels_cannot_do_names_the_users_line():
    """The message says "one element at a time"; it still gets the line appended."""
    line = inspect.getsourcelines(windows_at)[1] + 2
    with pytest.raises(spu.CompileError, match=f"test_user_code.py:{line}"):
        spu.jit(windows_at, protocol="ref2k")(np.arange(6.0), np.array([1, 3], np.int32))


def test_loops_over_fixed_keys_run_unrolled_with_their_draws_as_constants():
    """A scan whose operands include keys fixed when compiling -- nnx.scan over layers
    with Dropout (the layers' rng streams are scanned), a fori_loop that splits a key
    each step -- is unrolled: each step sees its own key. Before: `unsupported primitive
    scan ... an operand that depends on an input`."""
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs):
            self.lin, self.drop = nnx.Linear(4, 4, rngs=rngs), nnx.Dropout(0.2, rngs=rngs)

        def __call__(self, x):
            return x + self.drop(nnx.gelu(self.lin(x)))

    class Stack(nnx.Module):
        def __init__(self, rngs):
            @nnx.split_rngs(splits=3)
            @nnx.vmap(in_axes=(0,), out_axes=0)
            def make(rngs):
                return Block(rngs)
            self.blocks = make(rngs)

        def __call__(self, x):
            @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
            def layer(x, block):
                return block(x)
            return layer(x, self.blocks)
    x = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32)
    want = nnx.jit(lambda m, x: m(x))(Stack(nnx.Rngs(0)), x)
    got = spu.jit(lambda m, x: m(x), protocol="ref2k")(Stack(nnx.Rngs(0)), x)
    np.testing.assert_allclose(got, want, atol=1e-4)

    def noisy(x):
        def step(i, c):
            key, acc = c
            key, sub = jax.random.split(key)
            return key, acc + x * jax.random.bernoulli(sub, 0.5, x.shape)
        return jax.lax.fori_loop(0, 4, step, (jax.random.key(0), jnp.zeros_like(x)))[1]
    np.testing.assert_allclose(spu.jit(noisy, protocol="ref2k")(x), noisy(x), atol=1e-5)

    with pytest.raises(spu.CompileError, match="unrolled.*10000 steps.*outside"):
        spu.jit(lambda x: jax.lax.fori_loop(0, 10000, lambda i, c: (
            jax.random.split(c[0])[0], c[1] + 1.0), (jax.random.key(0), x))[1], protocol="ref2k")(x)

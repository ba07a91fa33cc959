"""Tracing: from a Python function over pytrees to a ClosedJaxpr plus a flat,
typed signature the compiler understands, and back from flat outputs to pytrees."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import jax
import numpy as np

from spu_lite.compiler.ir import DType, Type, PUBLIC, SECRET

from . import nnx_args
from .optim_state import fixed_hyperparams
from .codec import InputError
from .secret import Secret


class Public:
    """Marks an argument (a pytree) as public: every party may see it."""
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def public(x) -> Public:
    """Mark `x` (array or pytree) as a public input: it is not secret-shared."""
    return Public(x)


_SUPPORTED = (np.bool_, np.integer, np.floating)


class WeakScalar(np.ndarray):
    """A Python int or float argument: traced weakly typed, as jax.jit does, so
    `int8_array * 3` stays int8 (and wraps as int8) when 3 is passed in."""


def as_leaf_array(x, where: str) -> np.ndarray:
    if type(x) in (int, float):
        return as_leaf_array(np.asarray(x), where).view(WeakScalar)
    try:
        a = np.asarray(x)
    except Exception as e:
        raise InputError(f"{where}: cannot convert {type(x).__name__} to an array: {e}") from None
    if a.dtype == object or not any(np.issubdtype(a.dtype, t) for t in _SUPPORTED):
        raise InputError(f"{where}: dtype {a.dtype} is not supported (use float, int or bool arrays)")
    if np.issubdtype(a.dtype, np.complexfloating):
        raise InputError(f"{where}: complex numbers are not supported")
    return a


@dataclass
class Signature:
    """What a compiled program depends on: structure, shapes, dtypes, visibility, statics."""
    key: Tuple
    leaves: List[np.ndarray]
    vis: List[str]
    treedef: Any
    dyn_positions: List[int]
    static: Dict[int, Any]


class ArgName(str):
    """A readable argument name (`x`, `args[1]`, `kwargs['lr']`) that also says which
    parameter it fills: `param`, and `key` (an index into *args, a name in **kwargs,
    or None for an ordinary parameter)."""

    def __new__(cls, label: str, param: str, key=None):
        s = super().__new__(cls, label)
        s.param, s.key = param, key
        return s


def _arg_names(sig, bound) -> List[Tuple[ArgName, Any]]:
    """(name, value) per argument in positional order; *args and **kwargs are spread
    out one entry per element, so jnp.add(x, y) has the two arguments args[0], args[1]."""
    out = []
    for name, v in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind == inspect.Parameter.VAR_POSITIONAL:
            out += [(ArgName(f"{name}[{j}]", name, j), a) for j, a in enumerate(v)]
        elif kind == inspect.Parameter.VAR_KEYWORD:
            out += [(ArgName(k, name, k), a) for k, a in v.items()]
        else:
            out.append((ArgName(name, name), v))
    return out


def split_args(fn, args, kwargs, static_argnums, static_argnames, public_argnums):
    """Bind args to fn's parameters, separate static ones, mark public ones. Argument i
    is the i-th positional argument of the call (elements of *args included), then
    the keyword ones."""
    sig = inspect.signature(fn)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as e:
        raise InputError(f"bad arguments for {getattr(fn, '__name__', 'function')}: {e}") from None
    given = set(bound.arguments)
    bound.apply_defaults()
    entries = _arg_names(sig, bound)
    names = [n for n, _ in entries]
    static, dyn, vis = {}, [], []
    for i, (name, v) in enumerate(entries):
        # Defaults the caller did not pass stay Python values (e.g. jnp.round's decimals,
        # jnp.linalg.norm's axis), as JAX's own jitted functions expect.
        if i in static_argnums or name in static_argnames or name.param not in given:
            static[i] = v
            continue
        is_public = isinstance(v, Public) or i in public_argnums
        dyn.append((i, v.value if isinstance(v, Public) else v))
        vis.append(PUBLIC if is_public else SECRET)
    return names, static, dyn, vis


def _is_leaf(x):
    return isinstance(x, (Secret, Public)) or nnx_args.is_rng_counter(x)


input_leaf = _is_leaf     # what flatten_inputs takes as a leaf (for nnx_args.write_back)


def flatten_inputs(dyn, vis, names):
    """Flat leaves (numpy arrays, or Secret handles) with their visibility and a
    readable name each (`params['w']`); `spu.public` may also mark single leaves."""
    leaves, leaf_vis, leaf_names, keys = [], [], [], []
    fixed = fixed_hyperparams(names, dyn)      # optax.inject_hyperparams' numeric ones
    dyn = [(i, _public_leaves(v)) for i, v in dyn]
    for (i, v), vv in zip(dyn, vis):
        flat, _ = jax.tree_util.tree_flatten_with_path(v, is_leaf=_is_leaf)
        for path, leaf in flat:
            where = names[i] + jax.tree_util.keystr(path)
            key = leaf.value if isinstance(leaf, Public) else leaf
            if is_prng_key(key) or nnx_args.is_rng_counter(key) or (where in fixed and not isinstance(key, Secret)):
                # public and fixed when compiling
                keys.append((len(leaves) + len(keys), key))
                continue
            if isinstance(leaf, Secret):
                leaves.append(leaf)
                leaf_vis.append(SECRET)
            elif isinstance(leaf, Public):
                leaves.append(as_leaf_array(leaf.value, where))
                leaf_vis.append(PUBLIC)
            else:
                leaves.append(as_leaf_array(leaf, where))
                leaf_vis.append(vv)
            leaf_names.append(where)
    treedef = jax.tree_util.tree_structure(tuple(v for _, v in dyn), is_leaf=_is_leaf)
    return leaves, leaf_vis, leaf_names, InputTree(treedef, tuple(keys))


def _public_leaves(tree):
    """spu.public around a subtree inside an argument (`{**v, "params": spu.public(p)}`)
    marks each of its leaves."""
    def spread(node):
        if isinstance(node, Public) and not jax.tree_util.treedef_is_leaf(
                jax.tree_util.tree_structure(node.value, is_leaf=_is_leaf)):
            return jax.tree_util.tree_map(Public, node.value, is_leaf=_is_leaf)
        return node
    return jax.tree_util.tree_map(spread, tree, is_leaf=_is_leaf)


def is_prng_key(x) -> bool:
    """A typed PRNG key (jax.random.key, the keys in flax nnx's Rngs)."""
    dt = getattr(x, "dtype", None)
    return dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key)


class InputTree:
    """The structure of the dynamic arguments, plus the typed PRNG keys (and flax nnx
    random-stream counters) among their leaves: (flat position, key). They are public
    inputs fixed when compiling: the program is traced with them as constants (a draw
    from one becomes a public constant, see compiler/lower/lower.py: dropout's mask is
    public), and is compiled again for other keys."""

    def __init__(self, treedef, keys):
        self.treedef, self.keys = treedef, keys
        self._id = (treedef, tuple((pos, _key_id(k)) for pos, k in keys))

    def __eq__(self, other):
        return isinstance(other, InputTree) and self._id == other._id

    def __hash__(self):
        return hash(self._id)

    def unflatten(self, leaves):
        """The arguments, with fresh copies of the keys and counters (a module that
        draws numbers advances its counter; the caller's stays as it was)."""
        leaves = list(leaves)
        for pos, k in self.keys:
            leaves.insert(pos, jax.tree_util.tree_map(lambda a: a, k))
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def _key_id(k):
    if is_prng_key(k):
        return str(k.dtype), k.shape, np.asarray(jax.random.key_data(k)).tobytes()
    v = np.asarray(jax.tree_util.tree_leaves(k)[0])       # an nnx counter's value
    return "counter", v.shape, v.tobytes()


def ir_type(leaf: np.ndarray, vis: str, field: int, fxp_bits: int) -> Type:
    kept = getattr(leaf, "ir_type", None)        # a Secret handle keeps its scale
    if kept is not None and kept.dtype.is_fxp and kept.dtype.bits == field:
        return Type(vis, kept.dtype, leaf.shape)
    if leaf.dtype == np.bool_:
        dt = DType("bool", field)
    elif np.issubdtype(leaf.dtype, np.integer):
        dt = DType("int", field)
    else:
        dt = DType("fxp", field, fxp_bits)
    return Type(vis, dt, leaf.shape)


def flat_function(fn, names, static, dyn, treedef, record=None):
    """fn as a function of the flat list of dynamic leaves (statics closed over).
    With a record (nnx_args.Mutations), changes to flax nnx arguments are returned
    too: (outputs, changed leaves)."""
    positions = [i for i, _ in dyn]
    sig = inspect.signature(fn)

    def flat_fn(*flat_leaves):
        dyn_vals = treedef.unflatten(flat_leaves)
        values = dict((i, v) for i, v in static.items())
        values.update(zip(positions, dyn_vals))
        arguments = {}
        for i, n in enumerate(names):
            if n.key is None:
                arguments[n.param] = values[i]
            elif isinstance(n.key, int):
                arguments.setdefault(n.param, []).append(values[i])
            else:
                arguments.setdefault(n.param, {})[n.key] = values[i]
        arguments = {k: tuple(v) if isinstance(v, list) else v for k, v in arguments.items()}
        bound = inspect.BoundArguments(sig, arguments)
        if record is None:
            return fn(*bound.args, **bound.kwargs)
        return nnx_args.watch(dyn_vals, _is_leaf, record, lambda: fn(*bound.args, **bound.kwargs),
                              [names[i] for i in positions])

    return flat_fn

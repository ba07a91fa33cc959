"""Tracing: from a Python function over pytrees to a ClosedJaxpr plus a flat,
typed signature the compiler understands, and back from flat outputs to pytrees."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import jax
import numpy as np

from compiler.ir import DType, Type, PUBLIC, SECRET

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


def as_leaf_array(x, where: str) -> np.ndarray:
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


def split_args(fn, args, kwargs, static_argnums, static_argnames, public_argnums):
    """Bind args to fn's parameters, separate static ones, mark public ones."""
    sig = inspect.signature(fn)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as e:
        raise InputError(f"bad arguments for {getattr(fn, '__name__', 'function')}: {e}") from None
    given = set(bound.arguments)
    bound.apply_defaults()
    names = list(bound.arguments)
    static, dyn, vis = {}, [], []
    for i, name in enumerate(names):
        v = bound.arguments[name]
        param = sig.parameters[name]
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InputError("*args/**kwargs parameters are not supported by spu.jit; "
                             "pass a tuple or dict instead")
        # Defaults the caller did not pass stay Python values (e.g. jnp.round's decimals,
        # jnp.linalg.norm's axis), as JAX's own jitted functions expect.
        if i in static_argnums or name in static_argnames or name not in given:
            static[i] = v
            continue
        is_public = isinstance(v, Public) or i in public_argnums
        dyn.append((i, v.value if isinstance(v, Public) else v))
        vis.append(PUBLIC if is_public else SECRET)
    return names, static, dyn, vis


def _is_leaf(x):
    return isinstance(x, (Secret, Public))


def flatten_inputs(dyn, vis, names):
    """Flat leaves (numpy arrays, or Secret handles) with their visibility and a
    readable name each (`params['w']`); `spu.public` may also mark single leaves."""
    leaves, leaf_vis, leaf_names = [], [], []
    for (i, v), vv in zip(dyn, vis):
        flat, _ = jax.tree_util.tree_flatten_with_path(v, is_leaf=_is_leaf)
        for path, leaf in flat:
            where = names[i] + jax.tree_util.keystr(path)
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
    return leaves, leaf_vis, leaf_names, treedef


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


def flat_function(fn, names, static, dyn, treedef):
    """fn as a function of the flat list of dynamic leaves (statics closed over)."""
    positions = [i for i, _ in dyn]
    sig = inspect.signature(fn)

    def flat_fn(*flat_leaves):
        dyn_vals = jax.tree_util.tree_unflatten(treedef, flat_leaves)
        values = dict((names[i], v) for i, v in static.items())
        values.update((names[i], v) for i, v in zip(positions, dyn_vals))
        bound = inspect.BoundArguments(sig, {n: values[n] for n in names})
        return fn(*bound.args, **bound.kwargs)

    return flat_fn

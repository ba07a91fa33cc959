"""flax nnx objects passed to spu.jit are updated in place, as nnx.jit updates them.

nnx's training loop mutates its arguments: `train_step(model, optimizer, x, y)` ends
with `optimizer.update(model, grads)` and returns only the loss. spu.jit traces the
function on copies of the arguments, so without this the caller's model would never
change -- a training loop that silently does not train. Instead the variables the
function changed come back as extra outputs of the program and are written into the
caller's objects after the run: revealed to the caller like any output, or left as
Secret handles with keep_secret=True (the next call takes them as secret inputs).
Only arguments holding nnx objects are watched; a change of structure (a new
attribute, a variable of another shape) is an error, as it is for nnx.jit.

Random streams advance too. An nnx.Rngs stream is a key and a counter; every draw
(dropout's mask, say) folds the counter into the key and adds one to it. Keys and
counters are public and fixed when compiling (frontend.InputTree), so a draw is a
public constant of the program; the counter's new value is one too, and comes back
with the changed variables. Without it every call would draw the same mask (a dropout
that silently never changes). Each new counter value compiles the program again: a
random draw that depends on an input has no rule (compiler/lower/lower.py).
"""
from __future__ import annotations

from typing import Callable, List, Tuple

import jax
import numpy as np
from flax import nnx

from .codec import InputError


_NODE = getattr(nnx, "Pytree", None) or nnx.Object     # Module, Optimizer, Rngs, ...


def _is_node(x) -> bool:
    return isinstance(x, _NODE)


def _nodes(tree) -> list:
    return [n for n in jax.tree_util.tree_leaves(tree, is_leaf=_is_node) if _is_node(n)]


def is_rng_counter(x) -> bool:
    """The counter of a flax nnx random stream (nnx.Rngs holds a key and a counter)."""
    t = type(x)
    return t.__name__ == "RngCount" and t.__module__.startswith("flax.")


def _is_key(x) -> bool:
    """A typed PRNG key: public and fixed when compiling, never an output."""
    dt = getattr(x, "dtype", None)
    return dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key)


def holds_nnx(x) -> bool:
    return bool(_nodes(x))


class Mutations:
    """Filled while tracing: which leaves of which dynamic argument the function
    changed, as (position in dyn, leaf index in that argument's leaves)."""

    def __init__(self):
        self.changed: List[Tuple[int, int]] = []
        self.wrapped = False      # the traced function returns (outputs, changed values)


def watch(dyn_vals, is_leaf: Callable, record: Mutations, call: Callable, names):
    """call() with the nnx arguments among dyn_vals watched; returns call()'s result,
    or (result, tuple of changed leaves) when an argument holds nnx objects."""
    before = [jax.tree_util.tree_leaves(v, is_leaf=is_leaf) if holds_nnx(v) else None
              for v in dyn_vals]
    counts = [None if b is None else [x.get_value() if is_rng_counter(x) else None for x in b]
              for b in before]
    out = call()
    if all(b is None for b in before):
        return out
    changed, values = [], []
    for k, (v, b) in enumerate(zip(dyn_vals, before)):
        if b is None:
            continue
        after = jax.tree_util.tree_leaves(v, is_leaf=is_leaf)
        if len(after) != len(b):
            raise InputError(f"argument {names[k]} (flax nnx objects) changed its structure "
                             f"inside the function: spu.jit can update variables in place, not "
                             f"add or remove them")
        for j, (x0, x1) in enumerate(zip(b, after)):
            if is_rng_counter(x1):           # advanced in place: same object, new value
                if x1.get_value() is not counts[k][j]:
                    changed.append((k, j))
                    values.append(x1.get_value())
            elif x1 is not x0 and not _is_key(x1):
                changed.append((k, j))
                values.append(x1)
    record.changed, record.wrapped = changed, True
    return out, tuple(values)


def _as_jax(v):
    return jax.numpy.asarray(v) if isinstance(v, np.ndarray) else v


def write_back(dyn, changed: List[Tuple[int, int]], values, is_leaf: Callable) -> None:
    """Write the changed leaves into the caller's nnx objects (dyn: [(index, arg)])."""
    by_arg = {}
    for (k, j), v in zip(changed, values):
        by_arg.setdefault(k, {})[j] = v
    for k, updates in by_arg.items():
        arg = dyn[k][1]
        leaves, treedef = jax.tree_util.tree_flatten(arg, is_leaf=is_leaf)
        for j, leaf in enumerate(leaves):
            if j in updates and is_rng_counter(leaf):     # the caller's own counter
                leaf.set_value(jax.numpy.asarray(updates.pop(j), leaf.get_value().dtype))
        # jax arrays, as nnx.jit leaves them: numpy's float32 total / int32 count of an
        # nnx metric computed a float64 average after the run
        leaves = [_as_jax(updates[j]) if j in updates else leaf for j, leaf in enumerate(leaves)]
        new = jax.tree_util.tree_unflatten(treedef, leaves)
        for old, fresh in zip(_nodes(arg), _nodes(new)):
            nnx.update(old, nnx.state(fresh))

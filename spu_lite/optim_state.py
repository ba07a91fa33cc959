"""Optimizer state encoded at the formats its moments need (docs/fixed-point.md).

An explicit rule, keyed on optax's state types: the leaves of ScaleByAdamState.mu
(adam, adamw: a first moment, an average of gradients) and of .nu (an average of
squared gradients), and of ScaleByRmsState.nu (rmsprop), are encoded at the state
formats of compiler/lower/wide.py (state_frac: 48 and 44 fractional bits at f = 18)
instead of f bits, so that a second moment of 1e-11 keeps its digits when the state is
passed into spu.jit (a training step called once per batch, an epoch's first call).
The compiler marks parameters at such formats as wide with the state bound (|mu| < 16,
|nu| < 256: the gradient bound GRAD_BITS it assumes anyway). Other state is untouched.

Step counters are public inputs: the `count` field of an optax state (adam's, the
schedule's, ...) is the number of steps taken, known to whoever runs them and
independent of the data. Kept secret it would make adam's bias correction
`m / (1 - b^count)` a secret division, which costs the moments their wide format
(updates off by up to 2600x on gradients of 1e-2); so spu.jit passes plain counters
public unless the caller hands in a Secret.

optax.inject_hyperparams: the numeric hyperparameters its state carries are public and
fixed when compiling (`fixed_hyperparams`), as the plain optimizer's constants are.

flax nnx: an nnx.Optimizer holds the same optax states (found by type); in the State
of nnx.state / nnx.split the types are gone and the keys decide (`_untyped`).
"""
from __future__ import annotations

import warnings
from typing import Dict, Set, Tuple

import jax
import numpy as np
import optax
from jax.tree_util import DictKey, GetAttrKey, keystr

from spu_lite.compiler.lower import wide

from spu_lite.compiler.ir import PUBLIC
from .secret import Secret

#: (state type, field) -> the bound of the averaged value (a gradient or its square)
MOMENTS = {
    (optax.ScaleByAdamState, "mu"): 2.0 ** wide.GRAD_BITS,
    (optax.ScaleByAdamState, "nu"): 2.0 ** (2 * wide.GRAD_BITS),
    (optax.ScaleByRmsState, "nu"): 2.0 ** (2 * wide.GRAD_BITS),
    (optax.ScaleByAmsgradState, "mu"): 2.0 ** wide.GRAD_BITS,
    (optax.ScaleByAmsgradState, "nu"): 2.0 ** (2 * wide.GRAD_BITS),
    (optax.ScaleByAmsgradState, "nu_max"): 2.0 ** (2 * wide.GRAD_BITS),
}

#: optimizer states with second moments that no rule keeps wide (measured: adafactor's
#: updates 87% off with no other sign); adabelief and yogi are warned by the compiler
NOT_KEPT = tuple(getattr(optax, n) for n in ("FactoredState", "ScaleByBeliefState",
                                               "ScaleByNovogradState", "ScaleBySM3State")
               if hasattr(optax, n))


def warn_unkept_states(dyn) -> None:
    """A PrecisionWarning for each optimizer state type in the arguments whose moments
    the compiler does not keep wide (its updates can be far from plaintext's)."""
    seen = set()
    for _, v in dyn:
        for node in jax.tree_util.tree_leaves(v, is_leaf=lambda n: isinstance(n, NOT_KEPT)):
            if isinstance(node, NOT_KEPT) and type(node) not in seen:
                seen.add(type(node))
                warnings.warn(f"optimizer state {type(node).__name__}: spu-lite keeps the moments "
                              f"of adam, adamw, rmsprop, nadam, lamb, lion, adagrad and amsgrad "
                              f"(also inside MultiSteps), not this "
                              f"one's; small second moments can round to 0 and updates be far "
                              f"too large: check the updates with spu.check (docs/fixed-point.md)",
                              wide.PrecisionWarning, stacklevel=5)


def _key_name(k):
    return getattr(k, "name", getattr(k, "key", getattr(k, "idx", None)))


#: fields of optax states that count steps (MultiSteps counts its mini-steps and steps)
COUNT_FIELDS = ("count", "mini_step", "gradient_step")


def _states(tree, path=()):
    """(path, node) of every optax state in tree, also those nested in another's fields
    (optax.MultiSteps holds the inner optimizer's state, inject_hyperparams too)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_optax_state)
    for sub, node in flat:
        if _is_optax_state(node):
            where = tuple(path) + tuple(sub)
            yield where, node
            for field in node._fields:
                yield from _states(getattr(node, field), where + (GetAttrKey(field),))


def _typed(names, dyn, fxp_bits: int, formats: Dict[str, int], counts: Set[str]) -> None:
    """optax state nodes (NamedTuples, also inside flax nnx.Optimizer objects)."""
    for i, v in dyn:
        for path, node in _states(v):
            fields = [(f, wide.state_frac(wide.state_bound(src), fxp_bits))
                      for (typ, f), src in MOMENTS.items() if isinstance(node, typ)]
            fields += [(f, None) for f in COUNT_FIELDS if f in node._fields]
            for field, frac in fields:
                leaves, _ = jax.tree_util.tree_flatten_with_path(getattr(node, field))
                for sub, _leaf in leaves:
                    name = names[i] + keystr(tuple(path) + (GetAttrKey(field),) + tuple(sub))
                    if frac is None:
                        counts.add(name)
                    else:
                        formats[name] = frac


def _untyped(names, dyn, fxp_bits: int, formats: Dict[str, int], counts: Set[str]) -> None:
    """nnx.state / nnx.split of an nnx.Optimizer: the optax types are gone, the keys stay
    (`['opt_state'][0]['mu']...`). By key: `count` is a counter, `mu` a first moment,
    `nu` a second one (adam's and rmsprop's; for another optimizer's `mu` / `nu` the
    state format is only a finer encoding: what no rule reads comes back to f bits)."""
    first = wide.state_frac(wide.state_bound(2.0 ** wide.GRAD_BITS), fxp_bits)
    second = wide.state_frac(wide.state_bound(2.0 ** (2 * wide.GRAD_BITS)), fxp_bits)
    for i, v in dyn:
        for path, _leaf in jax.tree_util.tree_flatten_with_path(v)[0]:
            keys = [_key_name(k) for k in path]
            if "opt_state" not in keys:
                continue
            j = keys.index("opt_state")
            field = keys[j + 2] if len(keys) > j + 2 and isinstance(keys[j + 1], int) else None
            name = names[i] + keystr(path)
            if field == "count":
                counts.add(name)
            elif field in ("mu", "nu"):
                formats.setdefault(name, first if field == "mu" else second)


def optimizer_leaves(names, dyn, fxp_bits: int) -> Tuple[Dict[str, int], Set[str]]:
    """({leaf name as frontend.flatten_inputs spells it: fractional bits} for every
    optimizer moment leaf, {names of step-count leaves}) in the dynamic arguments
    `dyn` [(index, pytree)]."""
    formats: Dict[str, int] = {}
    counts: Set[str] = set()
    _typed(names, dyn, fxp_bits, formats, counts)
    _untyped(names, dyn, fxp_bits, formats, counts)
    return formats, counts


def moment_formats(names, dyn, fxp_bits: int) -> Dict[str, int]:
    return optimizer_leaves(names, dyn, fxp_bits)[0]


def public_counts(leaves, leaf_vis, leaf_names, names, dyn) -> list:
    """leaf_vis with every plain integer scalar step count public (module docstring)."""
    counts = optimizer_leaves(names, dyn, 18)[1]
    return [PUBLIC if n in counts and not isinstance(l, Secret) and np.ndim(l) == 0 and
            np.issubdtype(np.asarray(l).dtype, np.integer) else v
            for l, v, n in zip(leaves, leaf_vis, leaf_names)]


def fixed_hyperparams(names, dyn) -> Set[str]:
    """Names of the numeric hyperparameters in optax.inject_hyperparams states (the
    learning rate, b1, b2, eps of `inject_hyperparams(optax.adam)(learning_rate=0.05)`):
    public and fixed when compiling, as the constants of the plain optimizer are, so
    adam's eps and bias correction are compiled as they are for `optax.adam(0.05)` (as
    secret inputs, eps = 1e-8 was 0 and `1 - b1^count` a secret divisor: updates off by
    10^4). A new value compiles again. Scheduled ones (in `hyperparams_states`) are
    recomputed from the public count inside the update and stay ordinary inputs."""
    out: Set[str] = set()
    for i, v in dyn:
        for path, node in _states(v):
            if "hyperparams" not in node._fields or not isinstance(node.hyperparams, dict):
                continue
            scheduled = set(getattr(node, "hyperparams_states", None) or ())
            for k, val in node.hyperparams.items():
                if k in scheduled:
                    continue
                for sub, _leaf in jax.tree_util.tree_flatten_with_path(val)[0]:
                    out.add(names[i] + keystr(tuple(path) + (GetAttrKey("hyperparams"), DictKey(k))
                                              + tuple(sub)))
    return out


def _is_optax_state(node) -> bool:
    t = type(node)
    return isinstance(node, tuple) and hasattr(t, "_fields") and t.__module__.startswith("optax")

"""Optimizer state encoded at the formats its moments need (docs/fixed-point.md).

An explicit rule, keyed on optax's state types: the leaves of ScaleByAdamState.mu
(adam, adamw: a first moment, an average of gradients) and of .nu (an average of
squared gradients), and of ScaleByRmsState.nu (rmsprop), are encoded at the state
formats of compiler/lower/wide.py (state_frac: 48 and 44 fractional bits at f = 18)
instead of f bits, so that a second moment of 1e-11 keeps its digits when the state is
passed into spu.jit (a training step called once per batch, an epoch's first call).
The compiler marks parameters at such formats as wide with the state bound (|mu| < 16,
|nu| < 256: the gradient bound GRAD_BITS it assumes anyway). Other state is untouched.
"""
from __future__ import annotations

from typing import Dict

import jax
import optax
from jax.tree_util import GetAttrKey, keystr

from spu_lite.compiler.lower import wide

#: (state type, field) -> the bound of the averaged value (a gradient or its square)
MOMENTS = {
    (optax.ScaleByAdamState, "mu"): 2.0 ** wide.GRAD_BITS,
    (optax.ScaleByAdamState, "nu"): 2.0 ** (2 * wide.GRAD_BITS),
    (optax.ScaleByRmsState, "nu"): 2.0 ** (2 * wide.GRAD_BITS),
}
_TYPES = tuple({t for t, _ in MOMENTS})


def moment_formats(names, dyn, fxp_bits: int) -> Dict[str, int]:
    """{leaf name as frontend.flatten_inputs spells it: fractional bits} for every
    optimizer moment leaf in the dynamic arguments `dyn` [(index, pytree)]."""
    out: Dict[str, int] = {}
    for i, v in dyn:
        states, _ = jax.tree_util.tree_flatten_with_path(v, is_leaf=lambda n: isinstance(n, _TYPES))
        for path, node in states:
            if not isinstance(node, _TYPES):
                continue
            for (typ, field), source in MOMENTS.items():
                if not isinstance(node, typ):
                    continue
                frac = wide.state_frac(wide.state_bound(source), fxp_bits)
                leaves, _ = jax.tree_util.tree_flatten_with_path(getattr(node, field))
                for sub, _leaf in leaves:
                    out[names[i] + keystr(tuple(path) + (GetAttrKey(field),) + tuple(sub))] = frac
    return out

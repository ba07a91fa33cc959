"""Party-owned inputs: `x = spu.party("alice")(load_fn)(*args)`.

The handle records who owns the value and how to make it; nothing runs yet. When a
jitted function on a networked cluster is called with the handle, the driver asks
alice's node to run the loader there (once per handle and cluster), and gets back
only metadata: the structure, shapes and dtypes the compiler needs. At run time
alice encodes the value, secret-shares it with her own randomness and sends each
party its share; the plaintext never leaves alice.

`load_fn` is either the NAME of a loader registered at alice's node (the safe path:
alice decides what code runs) or a Python callable, which is shipped with cloudpickle
and runs only if alice's entry in the cluster file says `trust_driver_code: true`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np


@dataclass(frozen=True)
class OwnedRef:
    """One array leaf of a party-owned input, as the job refers to it."""
    party: str
    handle: str
    leaf: int


class PartyInput:
    """Handle to a value that lives at one party (see module doc)."""

    def __init__(self, party: str, loader, args: Tuple, kwargs: Dict):
        if not (isinstance(loader, str) or callable(loader)):
            raise TypeError("spu.party(name)(loader): loader must be a registered loader "
                            "name or a callable")
        self.party, self.loader, self.args, self.kwargs = party, loader, args, kwargs
        self.id = uuid.uuid4().hex
        self.meta: Dict[int, Any] = {}          # id(cluster) -> metadata from the owner

    def __array__(self, *a, **k):
        raise TypeError(f"this input is owned by party {self.party!r} and cannot be read "
                        f"here: pass it (not marked public) to a function jitted on a "
                        f"networked cluster (spu.init(cluster=...))")

    def __repr__(self):
        name = self.loader if isinstance(self.loader, str) else getattr(
            self.loader, "__name__", "loader")
        return f"<input owned by {self.party!r}: {name}(...)>"


def party(name: str):
    """spu.party("alice")(load_fn)(*args) -> a handle to an input made and kept at alice."""
    def bind(loader):
        def make(*args, **kwargs) -> PartyInput:
            return PartyInput(name, loader, args, kwargs)
        return make
    return bind


# ---- the owner's value <-> metadata ---------------------------------------------------

def describe(value) -> Tuple[Any, List[np.ndarray]]:
    """At the owner: (metadata tree, leaves in the metadata's numbering)."""
    leaves: List[np.ndarray] = []

    def rec(v):
        if isinstance(v, dict):
            return {"d": {str(k): rec(v[k]) for k in v}}
        if isinstance(v, (list, tuple)):
            return {"t" if isinstance(v, tuple) else "l": [rec(x) for x in v]}
        a = np.asarray(v)
        if a.dtype == object or a.dtype.kind not in "biuf":
            raise TypeError(f"a loader returned a {type(v).__name__} of dtype {a.dtype}; "
                            f"return float, int or bool arrays (or dicts/lists of them)")
        leaves.append(a)
        return {"a": [a.dtype.str, list(a.shape), len(leaves) - 1]}

    return rec(value), leaves


def placeholders(meta, handle: PartyInput, owned: Dict[int, OwnedRef]):
    """At the driver: the value's structure with zero-memory stand-in arrays of the right
    shapes and dtypes; owned[id(array)] says which owner leaf each stands for."""
    if "d" in meta:
        return {k: placeholders(v, handle, owned) for k, v in meta["d"].items()}
    if "t" in meta:
        return tuple(placeholders(v, handle, owned) for v in meta["t"])
    if "l" in meta:
        return [placeholders(v, handle, owned) for v in meta["l"]]
    dt, shape, leaf = meta["a"]
    a = np.broadcast_to(np.zeros((), dt), tuple(shape))
    owned[id(a)] = OwnedRef(handle.party, handle.id, int(leaf))
    return a


def expand(cluster, args, kwargs):
    """Replace every PartyInput in args/kwargs (pytrees) by its placeholders.
    Returns (args, kwargs, owned); owned is empty when there are no handles."""
    import jax
    is_h = lambda x: isinstance(x, PartyInput)
    leaves = jax.tree_util.tree_leaves((args, kwargs), is_leaf=is_h)
    if not any(is_h(x) for x in leaves):
        return args, kwargs, {}
    if not hasattr(cluster, "load"):
        raise TypeError("party-owned inputs need a networked cluster: call "
                        "spu.init(cluster='cluster.yaml') or spu.jit(f, cluster=...)")
    owned: Dict[int, OwnedRef] = {}
    sub = lambda x: placeholders(cluster.load(x), x, owned) if is_h(x) else x
    args, kwargs = jax.tree_util.tree_map(sub, (args, kwargs), is_leaf=is_h)
    return args, kwargs, owned

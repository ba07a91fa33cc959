"""Model parameters as JSON: how a networked federation sends the global model to the
data owners' nodes (a named loader's arguments are JSON values)."""
from __future__ import annotations

import numpy as np


def params_to_json(tree) -> object:
    """A pytree of arrays as JSON-able nested dicts/lists (`{"__array__": ..., "dtype": ...}`)."""
    if isinstance(tree, dict):
        return {str(k): params_to_json(v) for k, v in tree.items()}
    a = np.asarray(tree)
    return {"__array__": a.tolist(), "dtype": a.dtype.name}


def params_from_json(obj) -> object:
    """Inverse of params_to_json."""
    if isinstance(obj, dict) and "__array__" in obj:
        return np.asarray(obj["__array__"], dtype=obj["dtype"])
    return {k: params_from_json(v) for k, v in obj.items()}

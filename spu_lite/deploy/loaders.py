"""Loaders: the code that makes a party-owned input at its owner.

Two ways for a node to get one, checked in this order:

1. By name (the safe path): the party decides what code runs. Names come from the
   party's cluster-file entry (`loaders: {patients: "hospital_io:load_patients"}`),
   from `spu-lite node --loader NAME=MODULE:FUNC`, or from Python code in the node's
   process (`@register_loader("patients")`). The driver sends only the name and JSON
   arguments (strings, numbers, lists, dicts): no code, nothing unpickled.
2. Code from the driver: a callable shipped with cloudpickle. Unpickling runs
   arbitrary code, so a node accepts it only if its entry says
   `trust_driver_code: true` (use between parties that trust the driver's code, e.g.
   one organisation running all parties, or for trying things out).
"""
from __future__ import annotations

import importlib
import json
from typing import Callable, Dict

_REGISTRY: Dict[str, Callable] = {}


class LoaderError(RuntimeError):
    """The node refuses or cannot find the loader."""


def register_loader(name: str, with_node: bool = False):
    """Decorator: make `fn` available to drivers as spu.party(me)("name")(*args).
    with_node: fn is called as fn(table, me, *args) (this node's loader table and name),
    for built-ins that run one of the node's own loaders."""
    def deco(fn):
        fn.with_node = with_node
        _REGISTRY[name] = fn
        return fn
    return deco


@register_loader("spu_lite.gaussian_noise")
def gaussian_noise(shapes, std: float):
    """Built in (touches no data): Gaussian noise N(0, std^2) shaped like `shapes` (a
    shape list, or a dict of them, nested), drawn at this node from a fresh AES-CTR key
    of the OS's randomness, so no one else ever sees the draw. Distributed DP noise for
    secure aggregation (spu_lite.fl.NetworkFederation)."""
    import numpy as np

    from spu_lite.runtime.prg import Prg, new_key
    from spu_lite.fl.dp import gaussian

    prg = Prg(new_key())
    std = float(std)
    if not np.isfinite(std) or std < 0:
        raise LoaderError(f"gaussian_noise: std must be finite and >= 0, not {std}")

    def make(s):
        if isinstance(s, dict):
            return {k: make(v) for k, v in s.items()}
        if not isinstance(s, list) or not all(isinstance(d, int) and d >= 0 for d in s):
            raise LoaderError(f"gaussian_noise: {s!r} is not a shape")
        return gaussian(prg, tuple(s), std).astype(np.float32)
    return make(shapes)


VALIDATED_UPDATE = "spu_lite.validated_update"


@register_loader(VALIDATED_UPDATE, with_node=True)
def validated_update(table: Dict[str, str], me: str, loader: str, params_json, max_abs: float,
                     max_norm=None, **kwargs):
    """Built in: run this node's own update loader `loader` (registered by its operator)
    on the global model and `kwargs`, then check the update exactly as an in-process data
    owner does (spu_lite/fl/validation.py): the model's structure and shapes, finite,
    |x| < max_abs, L2 norm below max_norm if set. A refusal names the rule only; the
    value goes to this node's log (logger spu_lite.fl.owner)."""
    import logging

    from spu_lite.fl.params_json import params_from_json
    from spu_lite.fl.validation import UpdateError, validate_update

    params = params_from_json(params_json)
    update = named(loader, table, me)(params_json, **kwargs)
    try:
        return validate_update(me, update, params, float(max_abs),
                               None if max_norm is None else float(max_norm))
    except UpdateError as e:
        logging.getLogger("spu_lite.fl.owner").warning("%s", e.detail)
        raise


def import_function(spec: str) -> Callable:
    mod, sep, fn = spec.partition(":")
    if not sep:
        raise LoaderError(f"loader {spec!r}: expected MODULE:FUNCTION")
    try:
        obj = importlib.import_module(mod)
        for part in fn.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise LoaderError(f"loader {spec!r}: {e}") from None
    return obj


def named(name: str, table: Dict[str, str], me: str) -> Callable:
    if name in table:
        return import_function(table[name])
    if name in _REGISTRY:
        return _REGISTRY[name]
    known = sorted(set(table) | set(_REGISTRY))
    raise LoaderError(f"party {me!r} has no loader named {name!r} "
                      f"(it has: {', '.join(known) or 'none'})")


def request_for(loader, args, kwargs):
    """At the driver: (header fields, payload) of a load request."""
    if isinstance(loader, str):
        try:
            json.dumps([args, kwargs])
        except TypeError as e:
            raise TypeError(f"arguments of the named loader {loader!r} must be JSON values "
                            f"(str, numbers, lists, dicts): {e}") from None
        return {"name": loader, "args": list(args), "kwargs": kwargs}, None
    import cloudpickle
    return {"pickled": True}, cloudpickle.dumps((loader, tuple(args), dict(kwargs)))


def run(header: dict, payload, table: Dict[str, str], trusted: bool, me: str):
    """At the owner: run the requested loader and return its value."""
    if header.get("pickled"):
        if not trusted:
            raise LoaderError(f"party {me!r} does not run code sent by the driver "
                              f"(trust_driver_code is false): register a loader by name "
                              f"and call spu.party({me!r})('NAME')(...)")
        import cloudpickle
        fn, args, kwargs = cloudpickle.loads(payload)
    else:
        fn = named(str(header.get("name")), table, me)
        args, kwargs = header.get("args") or [], header.get("kwargs") or {}
        if getattr(fn, "with_node", False) and fn is _REGISTRY.get(str(header.get("name"))):
            return fn(table, me, *args, **kwargs)
    return fn(*args, **kwargs)

"""The public API: spu.jit, spu.compile, spu.public, spu.profile.

    f = spu.jit(fn, protocol="aby3")   # or @spu.jit / @spu.jit(protocol=...)
    out = f(*args)                     # arrays / pytrees in, revealed numpy pytree out
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Dict, Optional, Sequence, Tuple

import jax
import numpy as np

from compiler import CompileError, CompileOptions, compile_jaxpr
from compiler.ir import Program
from runtime.cluster import ClusterConfig, InProcessCluster
from runtime.profile import Profile
from runtime.ring import RangeError, Ring

from .frontend import InputError, flat_function, flatten_inputs, ir_type, split_args
from .secret import Secret

_CLUSTER_KEYS = ("nparties", "field", "fxp_bits", "seed", "timeout", "net")
_clusters: Dict[Tuple, InProcessCluster] = {}
_clusters_lock = threading.Lock()
_last_profile: Optional[Profile] = None
_default_override = None      # a networked cluster set by spu.init(cluster=...)


def set_default_cluster(cluster) -> None:
    """Make `cluster` (e.g. a NetworkCluster) the one spu.jit uses unless given one."""
    global _default_override
    _default_override = cluster


def default_cluster(config: ClusterConfig) -> InProcessCluster:
    """The in-process cluster for a configuration (made on first use, then reused)."""
    key = (config.protocol, config.parties, config.field, config.fxp_bits, config.seed,
           config.timeout, tuple(sorted(config.options.items())), config.net)
    with _clusters_lock:
        c = _clusters.get(key)
        if c is None or c.hub.failed.is_set():
            c = _clusters[key] = InProcessCluster(config)
        return c


def profile() -> Optional[Profile]:
    """Per-op profile (seconds, bytes, rounds) of the last spu-lite call in this process."""
    return _last_profile


class Compiled:
    """A compiled program plus what is needed to call it."""

    def __init__(self, program: Program, out_tree, out_avals, in_vis):
        self.program = program
        self.out_tree = out_tree
        self.out_avals = out_avals
        self.in_vis = in_vis

    @property
    def text(self) -> str:
        return self.program.text

    def __str__(self):
        return self.text


class JitFunction:
    def __init__(self, fn, protocol: str = "aby3", static_argnums=(), static_argnames=(),
                 public_argnums=(), cluster=None, keep_secret=(), **config):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.static_argnums = _tuple(static_argnums)
        self.static_argnames = _tuple(static_argnames)
        self.public_argnums = _tuple(public_argnums)
        self.keep_secret = keep_secret if keep_secret is True else _tuple(keep_secret)
        self.reveal_to = config.pop("reveal_to", None)   # a party name: outputs go only there
        cluster_kw = {k: config.pop(k) for k in list(config) if k in _CLUSTER_KEYS}
        self.config = ClusterConfig(protocol=protocol, options=dict(config), **cluster_kw)
        self.config.parties  # validate early
        self.options = CompileOptions(self.config.field, self.config.fxp_bits)
        self._cluster = cluster
        self._cache: Dict[Tuple, Compiled] = {}
        self.last_profile: Optional[Profile] = None

    @property
    def cluster(self):
        return self._cluster or _default_override or default_cluster(self.config)

    # -- compile ---------------------------------------------------------------------
    def _prepare(self, args, kwargs):
        names, static, dyn, vis = split_args(self.fn, args, kwargs, self.static_argnums,
                                             self.static_argnames, self.public_argnums)
        leaves, leaf_vis, leaf_names, treedef = flatten_inputs(dyn, vis, names)
        key = (treedef, tuple((l.shape, np.dtype(l.dtype).str, str(getattr(l, "ir_type", ""))) for l in leaves),
               tuple(leaf_vis),
               tuple(sorted((i, _hashable(v)) for i, v in static.items())))
        return names, static, dyn, treedef, leaves, leaf_vis, leaf_names, key

    def _compile(self, names, static, dyn, treedef, leaves, leaf_vis, refine=True) -> Compiled:
        flat_fn = flat_function(self.fn, names, static, dyn, treedef)
        specs = [jax.ShapeDtypeStruct(l.shape, _jax_dtype(np.dtype(l.dtype))) for l in leaves]
        closed, out_shape = jax.make_jaxpr(flat_fn, return_shape=True)(*specs)
        out_avals, out_tree = jax.tree_util.tree_flatten(out_shape)
        in_types = [ir_type(l, v, self.options.field, self.options.fxp_bits)
                    for l, v in zip(leaves, leaf_vis)]
        program = compile_jaxpr(closed, in_types, self.options,
                                name=getattr(self.fn, "__name__", "main"),
                                refine=[refine and not isinstance(l, Secret) for l in leaves])
        return Compiled(program, out_tree, out_avals, leaf_vis)

    def _out_of_fine_range(self, compiled, leaves, owned) -> bool:
        """Whether a plaintext input with a finer format than fxp_bits exceeds its range
        (party-owned inputs are checked by their owners, at fxp_bits' range or this)."""
        for leaf, p in zip(leaves, compiled.program.params):
            dt = p.type.dtype
            if dt.is_fxp and dt.frac > self.options.fxp_bits and id(leaf) not in owned \
                    and not isinstance(leaf, Secret):
                a = np.asarray(leaf, np.float64)
                if a.size and np.isfinite(a).all() and \
                        np.abs(a).max() >= Ring(self.options.field).max_abs_real(dt.frac):
                    return True
        return False

    def lower(self, *args, **kwargs) -> Compiled:
        names, static, dyn, treedef, leaves, leaf_vis, _, key = self._prepare(args, kwargs)
        if key not in self._cache:
            self._cache[key] = self._compile(names, static, dyn, treedef, leaves, leaf_vis)
        return self._cache[key]

    # -- run ---------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        global _last_profile
        cluster = self.cluster
        networked = getattr(cluster, "networked", False)   # a deploy.NetworkCluster
        if networked:   # its cluster file decides field and fixed-point bits
            self._use_options(CompileOptions(cluster.config.field, cluster.config.fxp_bits))
        args, kwargs, owned = _expand_party_inputs(cluster, args, kwargs)
        names, static, dyn, treedef, leaves, leaf_vis, leaf_names, key = self._prepare(args, kwargs)
        if key not in self._cache:
            self._cache[key] = self._compile(names, static, dyn, treedef, leaves, leaf_vis)
        compiled = self._cache[key]
        if self._out_of_fine_range(compiled, leaves, owned):
            # an input too large for the finer input format (input_formats.py): the
            # program with every input at fxp_bits, cached separately
            key = key + ("coarse",)
            if key not in self._cache:
                self._cache[key] = self._compile(names, static, dyn, treedef, leaves, leaf_vis,
                                                 refine=False)
            compiled = self._cache[key]
        inputs = []
        for leaf, vis, where, param in zip(leaves, leaf_vis, leaf_names, compiled.program.params):
            # validate all, then share
            if isinstance(leaf, Secret):
                if leaf.cluster is not cluster:
                    raise InputError(f"input {where}: a Secret of another cluster")
                inputs.append(leaf.shares)
            elif id(leaf) in owned:    # party-owned: its owner encodes and shares it
                if vis != "secret":
                    raise InputError(f"input {where}: owned by party {owned[id(leaf)].party!r}, "
                                     f"it cannot be public")
                inputs.append(owned[id(leaf)])
            else:
                inputs.append(_encode(cluster.ring, leaf, param.type.dtype.frac, where))
        inputs = [cluster.share(x) if vis == "secret" and isinstance(x, np.ndarray) else x
                  for x, vis in zip(inputs, leaf_vis)]
        keep = self._kept_leaves(compiled)
        if networked:
            outs = cluster.run(compiled.program, inputs, keep=keep, options=self.config.options,
                               reveal_to=self.reveal_to, outputs=compiled)
        elif self.reveal_to is not None:
            raise ValueError("reveal_to needs a networked cluster (spu.init(cluster=...))")
        else:
            outs = cluster.run(compiled.program, inputs, keep=keep)
        self.last_profile = _last_profile = cluster.last_profile
        if self.reveal_to is not None:
            return outs          # a receipt: the values went to that party only
        flat = []
        for o, r, aval, k in zip(outs, compiled.program.results, compiled.out_avals, keep):
            if k and r.type.secret:
                flat.append(Secret(o, r.type, aval.shape, aval.dtype, cluster))
            else:
                flat.append(_decode(cluster.ring, o, r.type, aval))
        return jax.tree_util.tree_unflatten(compiled.out_tree, flat)

    def _kept_leaves(self, compiled: "Compiled"):
        """Which flat outputs stay secret (keep_secret: True, or top-level output indices)."""
        n = len(compiled.out_avals)
        if self.keep_secret is True:
            return [True] * n
        if not self.keep_secret:
            return [False] * n
        shaped = jax.tree_util.tree_unflatten(compiled.out_tree, list(range(n)))
        if not isinstance(shaped, (tuple, list)):
            raise ValueError("keep_secret with indices needs a function returning a tuple")
        mask = [False] * n
        for i in self.keep_secret:
            for leaf in jax.tree_util.tree_leaves(shaped[i]):
                mask[leaf] = True
        return mask

    def _use_options(self, options: CompileOptions) -> None:
        if (options.field, options.fxp_bits) != (self.options.field, self.options.fxp_bits):
            self.options, self._cache = options, {}


def _expand_party_inputs(cluster, args, kwargs):
    """Party-owned input handles -> placeholders (+ which owner leaf each stands for)."""
    from .deploy.handles import expand
    try:
        return expand(cluster, args, kwargs)
    except TypeError as e:
        raise InputError(str(e)) from None


def jit(fn=None, *, protocol: str = "aby3", static_argnums=(), static_argnames=(),
        public_argnums=(), keep_secret=(), **config):
    """Compile `fn` to run under MPC. Usable as @jit, @jit(...) or jit(fn, ...).

    Args:
      protocol: "aby3" (3 parties, default), "semi2k" (N parties + dealer) or "ref2k"
        (plaintext reference, no security).
      static_argnums / static_argnames: arguments that are Python values baked into
        the program (as in jax.jit). Parameters left at their defaults are static too
        (so spu.jit(jnp.linalg.norm) keeps norm's own static defaults).
      public_argnums: arguments that are public (not secret-shared); `spu.public(x)`
        marks one (or one leaf of a pytree) at the call site instead.
      keep_secret: True, or indices of the returned tuple, whose values are returned as
        `spu.Secret` handles that stay shared on the cluster (open with spu.reveal).
      **config: field (64 or 32), fxp_bits (18), nparties, seed, timeout,
        net ("rtt=20ms,bw=100mbit", "lan", "wan": emulated links of the in-process
        cluster, see runtime/link.py), and
        approximation modes of the runtime; reveal_to="bob" (networked clusters):
        outputs are revealed to that party only, the call returns a receipt.
    """
    if fn is None:
        return lambda f: JitFunction(f, protocol, static_argnums, static_argnames,
                                     public_argnums, keep_secret=keep_secret, **config)
    if isinstance(fn, JitFunction):
        fn = fn.fn
    return JitFunction(fn, protocol, static_argnums, static_argnames, public_argnums,
                       keep_secret=keep_secret, **config)


def compile(fn, *example_args, protocol: str = "aby3", **kwargs) -> Compiled:
    """Compile fn for example arguments (arrays or jax.ShapeDtypeStruct); `.text` is the IR."""
    jf = fn if isinstance(fn, JitFunction) else jit(fn, protocol=protocol, **kwargs)
    examples = jax.tree_util.tree_map(
        lambda x: np.zeros(x.shape, x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x,
        example_args)
    return jf.lower(*examples)


# ---- helpers ----------------------------------------------------------------------------

def _tuple(x) -> Tuple:
    if x is None:
        return ()
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def _hashable(v):
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


def _jax_dtype(dt):
    if dt == np.float64:
        return np.float32 if not jax.config.jax_enable_x64 else dt
    if dt == np.int64:
        return np.int32 if not jax.config.jax_enable_x64 else dt
    return dt


def _encode(ring: Ring, leaf: np.ndarray, frac: int, where: str) -> np.ndarray:
    try:
        if leaf.dtype == np.bool_ or np.issubdtype(leaf.dtype, np.integer):
            return ring.encode_int(leaf)
        return ring.encode(leaf, frac)
    except (RangeError, TypeError) as e:
        raise InputError(f"input {where}: {e}") from None


def _decode(ring: Ring, value: np.ndarray, type, aval) -> np.ndarray:
    dt = type.dtype
    if dt.is_fxp:
        out = ring.decode(value, dt.frac)
    elif dt.is_int:
        out = ring.decode_int(value)
    else:
        out = ring.decode_int(value) != 0
    return np.asarray(out).astype(aval.dtype).reshape(aval.shape)

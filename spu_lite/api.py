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

from spu_lite.compiler import CompileError, CompileOptions, compile_jaxpr
from spu_lite.compiler.ir import Program
from spu_lite.runtime.cluster import ClusterConfig, InProcessCluster
from spu_lite.runtime.profile import Profile
from spu_lite.runtime.ring import RangeError, Ring

from . import nnx_args, trace_errors
from .codec import InputError, decode, encode, jax_dtype
from .optim_state import moment_formats, public_counts, warn_unkept_states
from .frontend import (WeakScalar, flat_function, flatten_inputs, input_leaf as _input_leaf, ir_type,
                       is_prng_key, split_args)
from .secret import Secret
from .tools.float_reference import float_outputs_soon
from .tools.watch import WatchState, compare_with_float, default_mode, parse_mode, watch

_CLUSTER_KEYS = ("nparties", "field", "fxp_bits", "seed", "timeout", "net")
_CACHE_SIZE = 64        # compiled programs kept per spu.jit function (least recently used go)
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


def _runs(cluster, config: ClusterConfig) -> bool:
    """Whether a default set by set_default_cluster can run programs of `config`: a
    networked cluster (spu.init) always (its cluster file decides), an in-process one
    (an emulated link) only with the same protocol and ring."""
    if getattr(cluster, "networked", False):
        return True
    own = cluster.config
    return (own.protocol, own.field, own.fxp_bits) == \
        (config.protocol, config.field, config.fxp_bits)


def profile() -> Optional[Profile]:
    """Per-op profile (seconds, bytes, rounds) of the last spu-lite call in this process."""
    return _last_profile


class Compiled:
    """A compiled program plus what is needed to call it."""

    def __init__(self, program: Program, out_tree, out_avals, in_vis, mutations=(), jaxpr=None):
        self.program = program
        self.jaxpr = jaxpr                  # the traced function: the watch's float reference
        self.out_tree = out_tree
        self.out_avals = out_avals
        self.in_vis = in_vis
        #: flax nnx arguments the function changed: the program's outputs are then
        #: (outputs, changed leaves), written back after the run (nnx_args.py)
        self.mutations = list(mutations)
        self.watch_state = WatchState()     # which calls the fixed-point watch runs on
        self.constants = _constant_results(program)

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
        if "dealer" in config:
            protocol = _no_dealer(protocol, config.pop("dealer"))
        self.reveal_to = config.pop("reveal_to", None)   # a party name: outputs go only there
        self.check = parse_mode(config.pop("check", default_mode()))   # the fixed-point watch
        cluster_kw = {k: config.pop(k) for k in list(config) if k in _CLUSTER_KEYS}
        self.config = ClusterConfig(protocol=protocol, options=dict(config), **cluster_kw)
        self.config.parties  # validate early
        self.options = CompileOptions(self.config.field, self.config.fxp_bits)
        self._cluster = cluster
        self._cache: Dict[Tuple, Compiled] = {}
        self.last_profile: Optional[Profile] = None

    @property
    def cluster(self):
        if self._cluster is not None:
            return self._cluster
        if _default_override is not None and _runs(_default_override, self.config):
            return _default_override
        return default_cluster(self.config)

    # -- compile ---------------------------------------------------------------------
    def _prepare(self, args, kwargs):
        names, static, dyn, vis = split_args(self.fn, args, kwargs, self.static_argnums,
                                             self.static_argnames, self.public_argnums)
        leaves, leaf_vis, leaf_names, treedef = flatten_inputs(dyn, vis, names)
        leaf_vis = public_counts(leaves, leaf_vis, leaf_names, names, dyn)   # optax's counts
        key = (treedef, tuple((l.shape, np.dtype(l.dtype).str, str(getattr(l, "ir_type", "")),
                               isinstance(l, WeakScalar)) for l in leaves),
               tuple(leaf_vis),
               tuple(sorted((i, _hashable(v)) for i, v in static.items())))
        return names, static, dyn, treedef, leaves, leaf_vis, leaf_names, key

    def _compile(self, names, static, dyn, treedef, leaves, leaf_vis, leaf_names,
                 refine=True) -> Compiled:
        return compile_leaves(self.fn, names, static, dyn, treedef, leaves, leaf_vis,
                              self.options, refine, leaf_names=leaf_names)

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
        names, static, dyn, treedef, leaves, leaf_vis, leaf_names, key = self._prepare(args, kwargs)
        return self._cached(key, lambda: self._compile(names, static, dyn, treedef, leaves,
                                                       leaf_vis, leaf_names))

    def _cached(self, key, build) -> Compiled:
        """The compiled program for key, built on a miss; the least recently used of
        more than _CACHE_SIZE is dropped (a new PRNG key or nnx counter compiles again,
        so a training loop with dropout would otherwise keep one program per step)."""
        hit = self._cache.pop(key, None)
        if hit is None:
            hit = build()
            while len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
        self._cache[key] = hit
        return hit

    # -- run ---------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        global _last_profile
        cluster = self.cluster
        networked = getattr(cluster, "networked", False)   # a deploy.NetworkCluster
        if networked:   # its cluster file decides field and fixed-point bits
            self._use_options(CompileOptions(cluster.config.field, cluster.config.fxp_bits))
        args, kwargs, owned = _expand_party_inputs(cluster, args, kwargs)
        names, static, dyn, treedef, leaves, leaf_vis, leaf_names, key = self._prepare(args, kwargs)
        compiled = self._cached(key, lambda: self._compile(names, static, dyn, treedef, leaves,
                                                           leaf_vis, leaf_names))
        if self._out_of_fine_range(compiled, leaves, owned):
            # an input too large for the finer input format (input_formats.py): the
            # program with every input at fxp_bits, cached separately
            compiled = self._cached(key + ("coarse",), lambda: self._compile(
                names, static, dyn, treedef, leaves, leaf_vis, leaf_names, refine=False))
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
                inputs.append(encode(cluster.ring, leaf, param.type.dtype.frac, where))
        fn_name = getattr(self.fn, "__name__", "fn")
        watched = self.check is not False and all(isinstance(x, np.ndarray) for x in inputs) \
            and compiled.watch_state.wanted(self.check, inputs)
        if watched:
            # the caller holds every input in the clear (no party's own input, no kept
            # secret): run it once more in plaintext and warn before a wrong number
            # returns; with no finding, its outputs are compared with float JAX below
            watched = watch(fn_name, compiled.program, inputs, [v == "secret" for v in leaf_vis],
                            self.options.field, self.options.fxp_bits, self.config.options)
            reference = float_outputs_soon(compiled, leaves) if watched else None
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
        for i, (o, r, aval, k) in enumerate(zip(outs, compiled.program.results, compiled.out_avals, keep)):
            if i in compiled.constants:
                flat.append(np.broadcast_to(compiled.constants[i], aval.shape).astype(aval.dtype))
            elif k and r.type.secret:
                flat.append(Secret(o, r.type, aval.shape, aval.dtype, cluster))
            else:
                flat.append(decode(cluster.ring, o, r.type, aval))
        if watched:
            compare_with_float(fn_name, compiled, leaves,
                               [None if isinstance(v, Secret) else v for v in flat],
                               self.options.fxp_bits, reference.result())
        out = jax.tree_util.tree_unflatten(compiled.out_tree, flat)
        if compiled.mutations:
            out, changed = out
            nnx_args.write_back(dyn, compiled.mutations, changed, is_leaf=_input_leaf)
        return out

    def _kept_leaves(self, compiled: "Compiled"):
        """Which flat outputs stay secret (keep_secret: True, or top-level output indices)."""
        n = len(compiled.out_avals)
        if self.keep_secret is True:
            return [True] * n
        if not self.keep_secret:
            return [False] * n
        shaped = jax.tree_util.tree_unflatten(compiled.out_tree, list(range(n)))
        if compiled.mutations:
            shaped = shaped[0]              # changed nnx variables are revealed
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


def compile_leaves(fn, names, static, dyn, treedef, leaves, leaf_vis, options: CompileOptions,
                   refine: bool = True, opt: bool = True, leaf_names=None) -> Compiled:
    """Trace `fn` on the flat input leaves (from frontend.split_args / flatten_inputs)
    and compile it: what spu.jit and `spu-lite compile` share. Secret handles keep
    their format; other inputs may be refined (compiler/lower/input_formats.py)."""
    record = nnx_args.Mutations()
    flat_fn = flat_function(fn, names, static, dyn, treedef, record)
    specs = [jax.ShapeDtypeStruct(l.shape, jax_dtype(l.dtype), weak_type=isinstance(l, WeakScalar))
             for l in leaves]
    try:
        closed, out_shape = jax.make_jaxpr(flat_fn, return_shape=True)(*specs)
    except jax.errors.ConcretizationTypeError as e:
        names_ = leaf_names or [f"leaf {i}" for i in range(len(leaves))]
        raise trace_errors.explain(e, fn, names_, leaf_vis) from None
    if record.wrapped and not record.changed:       # (outputs, ()): nnx arguments unchanged
        out_shape = out_shape[0]
    out_avals, out_tree = jax.tree_util.tree_flatten(out_shape)
    returned_keys = [i for i, a in enumerate(out_avals) if is_prng_key(a)]
    if returned_keys:
        raise CompileError(f"`{getattr(fn, '__name__', 'the function')}` returns a PRNG key "
                           f"(output {returned_keys[0]}): keys are public and fixed when compiling; "
                           f"return jax.random.key_data(key) or keep the key outside spu.jit")
    in_types = [ir_type(l, v, options.field, options.fxp_bits) for l, v in zip(leaves, leaf_vis)]
    if refine and leaf_names is not None:    # optimizer moments at their state formats
        warn_unkept_states(dyn)
        fmt = moment_formats(names, dyn, options.fxp_bits) if options.field >= 64 else {}
        in_types = [t.replace(dtype=t.dtype.with_frac(fmt[n]))
                    if n in fmt and t.secret and t.dtype.is_fxp and not isinstance(l, Secret) else t
                    for t, n, l in zip(in_types, leaf_names, leaves)]
    program = compile_jaxpr(closed, in_types, options, name=getattr(fn, "__name__", "main"),
                            opt=opt, refine=[refine and not isinstance(l, Secret) for l in leaves])
    compiled = Compiled(program, out_tree, out_avals, leaf_vis,
                        record.changed if record.wrapped else (), jaxpr=closed)
    # traced again in float64 only where the watch doubts float32 JAX (float_reference.py)
    compiled.plain_fn = flat_function(fn, names, static, dyn, treedef, nnx_args.Mutations())
    return compiled


def _constant_results(program: Program) -> Dict[int, np.ndarray]:
    """{result index: value} of the results that are constants of the program (through
    scalar broadcasts): returned exactly, as JAX returns them, not decoded from their
    fixed-point encoding (0.05 came back 0.04999924, and an optax.inject_hyperparams
    rate passed back in compiled the program again)."""
    made: Dict[int, np.ndarray] = {}
    for op in program.ops:
        if op.name == "constant":
            made[id(op.out)] = np.asarray(op.attrs["value"])
        elif op.name == "broadcast" and np.ndim(made.get(id(op.inputs[0]), ())) == 0 \
                and id(op.inputs[0]) in made:
            made[id(op.out)] = made[id(op.inputs[0])]
    return {i: made[id(r)] for i, r in enumerate(program.results) if id(r) in made}


def _no_dealer(protocol: str, dealer) -> str:
    """dealer=None: semi2k's correlations come from the two parties (semi2k_ot)."""
    if dealer is not None or protocol not in ("semi2k", "semi2k_ot"):
        raise ValueError('dealer=None goes with protocol="semi2k" (two parties make their own '
                         'correlations by oblivious transfer); no other dealer value is accepted')
    return "semi2k_ot"


def jit(fn=None, *, protocol: str = "aby3", static_argnums=(), static_argnames=(),
        public_argnums=(), keep_secret=(), **config):
    """Compile `fn` to run under MPC. Usable as @jit, @jit(...) or jit(fn, ...).

    Args:
      protocol: "aby3" (3 parties, default), "semi2k" (N parties + dealer) or "ref2k"
        (plaintext reference, no security). protocol="semi2k", dealer=None (the same as
        protocol="semi2k_ot"): two parties and no dealer; they make semi2k's correlations
        themselves by oblivious transfer (docs/two-party.md).
      static_argnums / static_argnames: arguments that are Python values baked into
        the program (as in jax.jit). Parameters left at their defaults are static too
        (so spu.jit(jnp.linalg.norm) keeps norm's own static defaults).
      public_argnums: arguments that are public (not secret-shared); `spu.public(x)`
        marks one (or one leaf of a pytree) at the call site instead.
      keep_secret: True, or indices of the returned tuple, whose values are returned as
        `spu.Secret` handles that stay shared on the cluster (open with spu.reveal).
      **config: field (64 or 32), fxp_bits (default 18 at field 64, 9 at 32;
        docs/rings.md), nparties, seed, timeout, net ("rtt=20ms,bw=100mbit", "lan",
        "wan": emulated links of the in-process cluster, see runtime/link.py), and
        approximation modes of the runtime; reveal_to="bob" (networked clusters):
        outputs are revealed to that party only, the call returns a receipt;
        check="auto" (default; SPU_LITE_CHECK=auto|on|first|off sets it process-wide),
        "first", True or False: when the caller holds every input, run the program once
        more in plaintext fixed point and warn (spu.FixedPointWarning) about overflows
        and out-of-domain inputs at your lines, and (spu.ToleranceWarning) about outputs
        further from float JAX than rounding explains -- on calls 1, 2, 4, 8, ... of each
        compiled program and whenever an input is more than twice as large as before
        ("auto"), on the first call only, on every call, or never (docs/check.md).
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

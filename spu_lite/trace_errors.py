"""Errors from tracing the user's function, told in the user's terms.

JAX reports a Python branch on a traced value as a TracerBoolConversionError that
names spu-lite's internal flat function and its `flat_leaves[i]` parameter. Here that
becomes a CompileError naming the user's function, the argument (as the user wrote it:
`params['w']`), the file and line of the branch, and what to write instead.
"""
from __future__ import annotations

import os
import re
import traceback
from typing import Sequence

import jax

from spu_lite.compiler import CompileError

_JAX_DIR = os.path.dirname(jax.__file__)
_OWN_DIRS = tuple(os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep + d + os.sep
                  for d in ("spu_lite", "compiler", "runtime"))
_LEAF = re.compile(r"argument flat_leaves\[(\d+)\]")


def _user_frame(tb):
    """The deepest frame of the traceback in neither JAX nor spu-lite: the user's line."""
    frames = [f for f in traceback.extract_tb(tb)
              if not f.filename.startswith(_JAX_DIR) and not f.filename.startswith(_OWN_DIRS)]
    return frames[-1] if frames else None


def explain(e: jax.errors.ConcretizationTypeError, fn, leaf_names: Sequence[str],
            leaf_vis: Sequence[str]) -> CompileError:
    """A CompileError for a Python-level use of a traced input (if, bool(), int(), ...)."""
    fname = getattr(fn, "__name__", "the function")
    frame = _user_frame(e.__traceback__)
    where = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
    inside = f" (in {frame.name})" if frame and frame.name not in (fname, "<lambda>") else ""
    m = _LEAF.search(str(e))
    arg, public, kind = "an input", False, "traced"
    if m and int(m.group(1)) < len(leaf_names):
        i = int(m.group(1))
        arg, public = f"argument `{leaf_names[i]}`", leaf_vis[i] == "public"
        kind = "public" if public else "secret"
    if isinstance(e, jax.errors.TracerBoolConversionError):
        what = "a Python `if` / `while` / `and` / `or` / bool()"
        fix = ("under MPC no party sees the value, so the program cannot branch on it: "
               "compute both sides and pick with jnp.where(cond, a, b), or use "
               "jax.lax.cond(cond, true_fn, false_fn, ...)")
    else:
        what = "a Python int() / float() / index / shape"
        fix = ("under MPC no party sees the value, so Python cannot use it: keep it an "
               "array (jnp operations, jnp.where, jax.lax.dynamic_slice)")
    if public:
        fix += "; a value known when compiling can be passed as static_argnums / static_argnames"
    return CompileError(f"{what} on a {kind} value in `{fname}`{inside}{where}: it depends on "
                        f"{arg}; {fix}")

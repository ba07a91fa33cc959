"""spu-lite: run JAX/Flax programs under secure multi-party computation.

    import spu_lite as spu

    @spu.jit                      # in-process 3-party ABY3, 64-bit ring, 18 fractional bits
    def f(x, w):
        return jax.nn.relu(x @ w)

    f(x, w)                       # shares x and w, computes on shares, reveals the result
"""
from spu_lite.compiler import CompileError
from spu_lite.runtime.link import PeerError
from spu_lite.runtime.ring import RangeError

from .api import Compiled, JitFunction, compile, jit, profile
from .tools.check import check
from .tools.watch import FixedPointWarning, ToleranceWarning
from .frontend import InputError, Public, public
from .secret import Secret, reveal
from .deploy import init, party          # networked clusters: spu.init(cluster=...), spu.party

__version__ = "0.1.0"

__all__ = ["jit", "compile", "profile", "public", "Public", "Secret", "reveal", "Compiled", "JitFunction",
           "CompileError", "InputError", "RangeError", "PeerError", "__version__"]
__all__ += ["init", "party", "check", "FixedPointWarning", "ToleranceWarning"]

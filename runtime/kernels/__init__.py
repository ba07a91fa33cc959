"""IR op kernels: thin functions from IR ops to the fxp library and protocol kernels."""
from .registry import FUSED_WITH_TRUNC, KERNELS, KernelContext, kernel
from . import arith, layout, reduce, math, control  # noqa: F401 (registers kernels)
from . import bitwise, conv, secret_index  # noqa: F401

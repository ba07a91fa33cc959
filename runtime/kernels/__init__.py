"""IR op kernels: thin functions from IR ops to the fxp library and protocol kernels."""
from .registry import BATCHED, KERNELS, KernelContext, batched, kernel
from . import arith, layout, reduce, math, control  # noqa: F401 (registers kernels)
from . import batches, bitwise, conv, secret_index  # noqa: F401

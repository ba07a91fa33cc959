"""IR op kernels: thin functions from IR ops to the fxp library and protocol kernels."""
from .registry import KERNELS, KernelContext, kernel
from . import arith, layout, reduce, math, control  # noqa: F401 (registers kernels)

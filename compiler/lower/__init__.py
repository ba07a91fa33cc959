"""Lowering of jaxprs to the IR: one rule per JAX primitive."""
from .context import CompileError, CompileOptions, RULES
from .lower import lower_jaxpr, lower_eqns

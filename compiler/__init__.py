"""spu-lite compiler: jaxpr -> secret-op IR -> optimised IR.

Depends on nothing else of spu-lite. `compile_jaxpr` is the one entry point the
frontend uses; the pieces (ir, lower, passes, cost) are importable on their own.
"""
from .lower import CompileError, CompileOptions, lower_jaxpr
from .passes import optimize
from .passes.ring_limits import check_ring_limits


def compile_jaxpr(closed_jaxpr, in_types, options: CompileOptions = CompileOptions(),
                  name: str = "main", opt: bool = True, refine=None):
    """Lower a ClosedJaxpr with flat parameter types to an (optimised) Program.
    refine[i]: parameter i is a fresh input whose format the compiler may choose
    (lower/input_formats.py); encode inputs by the program's parameter types."""
    program = check_ring_limits(lower_jaxpr(closed_jaxpr, in_types, options, name, refine))
    return optimize(program) if opt else program

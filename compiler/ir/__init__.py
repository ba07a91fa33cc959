"""The secret-op IR: types, op table, program structure, text form."""
from .types import DType, Type, PUBLIC, SECRET, fxp, int_, bool_, join_vis, parse_type, parse_dtype
from .ops import OPS, OpDef, IRTypeError, infer, op_names
from .ops_fused import BATCH, BATCH_KINDS, FUSED, batch_error, batches
from . import ops_division  # noqa: F401  (registers int_div, fdiv, recip_parts)
from .program import Block, Op, Program, Value, NameGen
from .printer import print_program
from .parser import parse_program, IRParseError
from .liveness import last_uses, program_last_uses

"""IR passes. `optimize` runs them to a fixed point in a sensible order."""
from .simplify import simplify
from .truncation import sink_truncations
from .fold import fold_constants
from .cse import cse, dce
from .licm import hoist_loop_invariants
from .rewrite import renumber
from .rounds import schedule

PIPELINE = (simplify, fold_constants, cse, hoist_loop_invariants, sink_truncations, dce)


def optimize(program, max_rounds: int = 8):
    """Run the pipeline until nothing changes; returns the same (mutated) program."""
    for _ in range(max_rounds):
        changed = False
        for p in PIPELINE:
            changed |= bool(p(program))
        if not changed:
            break
    schedule(program)               # calls and fusion (rounds.py), once the ops are final
    renumber(program)
    return program

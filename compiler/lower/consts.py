"""What lowering rules can know about a value when compiling."""
from __future__ import annotations


def public_const_value(L, v):
    """The numpy value of `v` if it is a public constant (through broadcasts), else None."""
    op = L.producer(v)
    while op is not None and op.name == "broadcast":
        op = L.producer(op.inputs[0])
    if op is not None and op.name == "constant":
        return op.attrs["value"]
    return None

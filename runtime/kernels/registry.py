"""IR op -> kernel table. A kernel is fn(K, op, *inputs) -> value | [values], where K
is the executing party's KernelContext and inputs are public ring arrays or Shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from ..protocols.base import Protocol

KERNELS: Dict[str, Callable] = {}
#: op name -> fn(K, ops, inputs) -> [output per op]: the ops of one batch (the IR's
#: `batch` attribute, compiler/ir/ops_fused.py) as one protocol call; inputs[i] is the
#: list of ops[i]'s input values
BATCHED: Dict[str, Callable] = {}


def _registrar(table: Dict[str, Callable]):
    """A decorator factory: @reg("a", "b") puts the function in `table` under each name."""
    def register(*names):
        def deco(fn):
            for n in names:
                table[n] = fn
            return fn
        return deco
    return register


kernel = _registrar(KERNELS)
batched = _registrar(BATCHED)


@dataclass
class KernelContext:
    P: Protocol
    fxp_bits: int
    options: Dict[str, object] = field(default_factory=dict)
    #: fn(op, inputs, outputs) called by the executor after each op (spu.check's
    #: plaintext simulation); None in normal runs. Each member of a batch is reported
    #: as its own op; a fused op (mul_trunc) as itself: its product is never made
    observer: Optional[Callable] = None

    @property
    def ring(self):
        return self.P.ring

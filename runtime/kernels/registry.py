"""IR op -> kernel table. A kernel is fn(K, op, *inputs) -> value | [values], where K
is the executing party's KernelContext and inputs are public ring arrays or Shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from ..protocols.base import Protocol

KERNELS: Dict[str, Callable] = {}
#: op name -> fn(K, op, trunc_op, x, y): `op` followed by the `trunc` reading only it, as
#: one protocol call (the executor decides when a pair qualifies)
FUSED_WITH_TRUNC: Dict[str, Callable] = {}


def kernel(*names):
    def deco(fn):
        for n in names:
            KERNELS[n] = fn
        return fn
    return deco


@dataclass
class KernelContext:
    P: Protocol
    fxp_bits: int
    options: Dict[str, object] = field(default_factory=dict)
    #: fn(op, inputs, outputs) called by the executor after each op (spu.check's
    #: plaintext simulation); None in normal runs. inputs / outputs are lists of the
    #: op's values (an entry is None where a fused or batched call never made it)
    observer: Optional[Callable] = None

    @property
    def ring(self):
        return self.P.ring

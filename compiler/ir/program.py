"""SSA program structure: Value, Op, Block, Program.

A Program is one function: typed parameters, a flat list of ops (an op may own
nested blocks for loops and branches) and the returned values. Every Value is
defined exactly once; names are `%N`, unique within a Program.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .printer import print_program
from .types import Type


class Value:
    """An SSA value. Identity is the object; `name` is for printing."""
    __slots__ = ("name", "type")

    def __init__(self, name: str, type: Type):
        self.name = name
        self.type = type

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


@dataclass
class Op:
    name: str
    inputs: List[Value]
    outputs: List[Value]
    attrs: Dict[str, Any] = field(default_factory=dict)
    blocks: List["Block"] = field(default_factory=list)
    loc: Optional[str] = None      # user source line, for errors and the profile

    @property
    def out(self) -> Value:
        assert len(self.outputs) == 1, self.name
        return self.outputs[0]


@dataclass
class Block:
    """A region body: block parameters, ops, and yielded values."""
    params: List[Value]
    ops: List[Op]
    results: List[Value]


@dataclass
class Program:
    name: str
    params: List[Value]
    ops: List[Op]
    results: List[Value]
    field: int = 64
    fxp_bits: int = 18
    #: per block (by id of its op list): its ops and their last uses, filled by
    #: liveness.program_last_uses the first time an executor runs the block
    liveness: Dict[int, tuple] = dataclasses.field(default_factory=dict, repr=False,
                                                   compare=False)

    @property
    def body(self) -> Block:
        return Block(self.params, self.ops, self.results)

    def walk(self):
        """All ops, nested blocks included, in program order."""
        def rec(ops):
            for op in ops:
                yield op
                for b in op.blocks:
                    yield from rec(b.ops)
        yield from rec(self.ops)

    @property
    def text(self) -> str:
        return print_program(self)

    def __str__(self) -> str:
        return self.text


class NameGen:
    """Hands out fresh value names 0, 1, 2, ..."""

    def __init__(self, start: int = 0):
        self.next = start

    def __call__(self) -> str:
        n = self.next
        self.next += 1
        return str(n)

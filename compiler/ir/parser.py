"""Parse the text form written by `printer.print_program` back into a Program.

The parser re-derives every op's output types from the op table and checks them
against the printed ones, so a text program that parses is also well typed.
"""
from __future__ import annotations

import base64
import json
import re
from typing import Dict, List, Tuple

import numpy as np

from .ops import infer
from .ops_fused import batch_error
from .program import Block, Op, Program, Value
from .types import parse_dtype, parse_type

_CODES = {"f64": np.float64, "f32": np.float32, "i64": np.int64, "i32": np.int32,
          "bool": np.bool_, "u64": np.uint64, "u32": np.uint32}


class IRParseError(ValueError):
    pass


_HEADER = re.compile(r"^func @(\S+)\((.*)\) -> \((.*)\) attributes \{field=(\d+), fxp_bits=(\d+)\} \{$")
_OP = re.compile(r"^(.*?) = ([\w.]+)\((.*?)\)(?: (\{.*\}))? : (.*?)(?: loc\((\".*\")\))?( \{)?$")
_BLOCK = re.compile(r"^\^(\d+)\((.*)\):$")
_TYPE = r"(?:public|secret)<(?:fxp<\d+,\d+>|int<\d+>|bool)>\[[0-9,]*\]"


class _AttrReader:
    """Recursive-descent reader for one `{k=v, ...}` attribute dict."""

    _TOKEN = re.compile(r'\s*(array<\w+,\[[0-9,]*\]>|fxp<\d+,\d+>|int<\d+>|"(?:[^"\\]|\\.)*"|'
                        r'b64"[^"]*"|[\[\]{},=]|[^\s\[\]{},=]+)')

    def __init__(self, text: str, bits: int):
        self.toks = self._TOKEN.findall(text)
        self.i = 0
        self.bits = bits

    def _next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def _expect(self, t):
        got = self._next()
        if got != t:
            raise IRParseError(f"expected {t!r}, got {got!r}")

    def dict(self) -> dict:
        self._expect("{")
        out = {}
        while self.toks[self.i] != "}":
            k = self._next()
            self._expect("=")
            out[k] = self.value()
            if self.toks[self.i] == ",":
                self.i += 1
        self.i += 1
        return out

    def value(self):
        t = self._next()
        if t == "[":
            items = []
            while self.toks[self.i] != "]":
                items.append(self.value())
                if self.toks[self.i] == ",":
                    self.i += 1
            self.i += 1
            return items
        if t.startswith("array<"):
            return self._array(t)
        if t.startswith('"'):
            return json.loads(t)
        if t in ("true", "false"):
            return t == "true"
        if t == "none":
            return None
        if t.startswith(("fxp<", "int<")) or t == "bool":
            return parse_dtype(t, self.bits)
        if t in ("inf", "-inf", "nan"):
            return float(t)
        if re.fullmatch(r"-?\d+", t):
            return int(t)
        return float(t)

    def _array(self, head):
        m = re.fullmatch(r"array<(\w+),\[([0-9,]*)\]>", head)
        dtype = np.dtype(_CODES[m.group(1)])
        shape = tuple(int(d) for d in m.group(2).split(",")) if m.group(2) else ()
        if self.toks[self.i].startswith('b64"'):
            raw = base64.b64decode(self._next()[4:-1])
            return np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype).reshape(shape)
        vals = self.value()
        return np.array(vals, dtype=dtype).reshape(shape)


def _split_params(text: str) -> List[Tuple[str, str]]:
    return re.findall(r"%(\w+): (" + _TYPE + ")", text)


class _Parser:
    def __init__(self, lines: List[str]):
        self.lines = lines
        self.i = 0
        self.env: Dict[str, Value] = {}
        self.bits = 64

    def _line(self) -> str:
        line = self.lines[self.i].strip()
        self.i += 1
        return line

    def _define(self, name, type) -> Value:
        if name in self.env:
            raise IRParseError(f"%{name} defined twice")
        v = Value(name, type)
        self.env[name] = v
        return v

    def _use(self, name) -> Value:
        if name not in self.env:
            raise IRParseError(f"%{name} used before definition (line {self.i})")
        return self.env[name]

    def program(self) -> Program:
        m = _HEADER.match(self._line())
        if not m:
            raise IRParseError("expected `func @name(...) -> (...) attributes {...} {`")
        name, params, _, field, frac = m.groups()
        self.bits = int(field)
        pvals = [self._define(n, parse_type(t, self.bits)) for n, t in _split_params(params)]
        ops, results = self._ops(terminator="return")
        if self._line() != "}":
            raise IRParseError("expected `}` after return")
        return Program(name, pvals, ops, results, int(field), int(frac))

    def _ops(self, terminator: str):
        ops = []
        while True:
            line = self._line()
            if line.startswith(terminator):
                rest = line[len(terminator):].strip()
                names = re.findall(r"%(\w+)", rest)
                if batch_error(ops):
                    raise IRParseError(f"line {self.i}: {batch_error(ops)}")
                return ops, [self._use(n) for n in names]
            ops.append(self._op(line))

    def _op(self, line: str) -> Op:
        m = _OP.match(line)
        if not m:
            raise IRParseError(f"cannot parse line {self.i}: {line}")
        outs, name, ins, attrs, types, loc, opens = m.groups()
        inputs = [self._use(n) for n in re.findall(r"%(\w+)", ins)]
        attrs = _AttrReader(attrs, self.bits).dict() if attrs else {}
        out_types = [parse_type(t, self.bits) for t in re.findall(_TYPE, types)]
        blocks = []
        if opens:
            while self.lines[self.i].strip() != "}":
                bm = _BLOCK.match(self._line())
                if not bm:
                    raise IRParseError(f"expected a block header at line {self.i}")
                params = [self._define(n, parse_type(t, self.bits)) for n, t in _split_params(bm.group(2))]
                bops, bres = self._ops(terminator="yield")
                blocks.append(Block(params, bops, bres))
            self.i += 1
        if not blocks:
            derived = infer(name, [v.type for v in inputs], attrs)
            if derived != out_types:
                raise IRParseError(f"line {self.i}: {name} gives {[str(t) for t in derived]}, "
                                   f"text says {[str(t) for t in out_types]}")
        outputs = [self._define(n, t) for n, t in zip(re.findall(r"%(\w+)", outs), out_types)]
        return Op(name, inputs, outputs, attrs, blocks, json.loads(loc) if loc else None)


def parse_program(text: str) -> Program:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return _Parser(lines).program()

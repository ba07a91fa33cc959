"""Text form of a Program. `parser.parse_program` is its exact inverse.

    func @f(%0: secret<fxp<64,18>>[8,4], %1: public<int<64>>[]) -> (secret<fxp<64,18>>[8]) attributes {field=64, fxp_bits=18} {
      %2 = reduce_sum(%0) {axes=[1]} : secret<fxp<64,18>>[8] loc("model.py:12")
      %3, %4 = while(%1, %2) {max_trips=none} : public<int<64>>[], secret<fxp<64,18>>[8] {
      ^0(%5: public<int<64>>[], %6: secret<fxp<64,18>>[8]):
        ...
        yield %7
      ^1(...):
        ...
      }
      return %2
    }

Attribute values: ints, floats (repr, `inf`, `nan`), `true`/`false`, `none`, JSON strings,
lists `[a, b]`, dtypes (`fxp<64,18>`, `int<64>`, `bool`) and numpy arrays
`array<f64,[2,3]>[1.0, ...]` (small) or `array<f64,[2,3]>b64"..."` (raw little-endian bytes).
"""
from __future__ import annotations

import base64
import json
import math

from typing import TYPE_CHECKING

import numpy as np

from .types import DType

if TYPE_CHECKING:                       # annotations only: program.py imports this module
    from .program import Block, Op, Program

_ARRAY_CODES = {"float64": "f64", "float32": "f32", "int64": "i64", "int32": "i32",
                "bool": "bool", "uint64": "u64", "uint32": "u32"}
INLINE_ARRAY_MAX = 16


def format_attr(v) -> str:
    if isinstance(v, bool) or isinstance(v, np.bool_):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, DType):
        return str(v)
    if isinstance(v, np.ndarray):
        return _format_array(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_attr(x) for x in v) + "]"
    raise TypeError(f"cannot print attribute value {v!r}")


def _format_array(a: np.ndarray) -> str:
    code = _ARRAY_CODES[a.dtype.name]
    head = f"array<{code},[{','.join(map(str, a.shape))}]>"
    if a.size <= INLINE_ARRAY_MAX:
        return head + "[" + ", ".join(format_attr(x) for x in a.reshape(-1).tolist()) + "]"
    raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
    return head + 'b64"' + base64.b64encode(raw).decode() + '"'


def _format_attrs(attrs: dict) -> str:
    if not attrs:
        return ""
    return " {" + ", ".join(f"{k}={format_attr(attrs[k])}" for k in sorted(attrs)) + "}"


def _print_op(op: Op, indent: str, lines: list):
    outs = ", ".join(f"%{v.name}" for v in op.outputs)
    ins = ", ".join(f"%{v.name}" for v in op.inputs)
    types = ", ".join(str(v.type) for v in op.outputs)
    line = f"{indent}{outs} = {op.name}({ins}){_format_attrs(op.attrs)} : {types}"
    if op.loc:
        line += f" loc({json.dumps(op.loc)})"
    if op.blocks:
        lines.append(line + " {")
        for i, b in enumerate(op.blocks):
            _print_block(b, i, indent, lines)
        lines.append(indent + "}")
    else:
        lines.append(line)


def _print_block(b: Block, index: int, indent: str, lines: list):
    params = ", ".join(f"%{v.name}: {v.type}" for v in b.params)
    lines.append(f"{indent}^{index}({params}):")
    for op in b.ops:
        _print_op(op, indent + "  ", lines)
    lines.append(indent + "  yield " + ", ".join(f"%{v.name}" for v in b.results))


def print_program(p: Program) -> str:
    params = ", ".join(f"%{v.name}: {v.type}" for v in p.params)
    results = ", ".join(str(v.type) for v in p.results)
    lines = [f"func @{p.name}({params}) -> ({results}) "
             f"attributes {{field={p.field}, fxp_bits={p.fxp_bits}}} {{"]
    for op in p.ops:
        _print_op(op, "  ", lines)
    lines.append("  return " + ", ".join(f"%{v.name}" for v in p.results))
    lines.append("}")
    return "\n".join(lines) + "\n"

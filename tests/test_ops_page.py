"""docs/ops.md states every nonlinear function of the table, with its documented error."""
import pathlib

from spu_lite.compiler.ir.nonlinear import TABLE

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "ops.md"


def test_every_nonlinear_op_is_on_the_page_with_its_error():
    rows = {line.split("|")[1].strip(): line for line in PAGE.read_text().splitlines()
            if line.startswith("| `")}
    for row in TABLE:
        line = rows.get(f"`{row.op}`")
        assert line is not None, row.op
        assert row.error in line, (row.op, row.error)

"""Runs the tutorial notebooks and saves them with their outputs, so that they read as
tutorials on any code host. Run after notebooks/make_*.py:

    python notebooks/execute_notebooks.py [NAME.ipynb ...]

Outputs are kept small and stable: progress bars (stderr) and execution timestamps are
dropped, the notebook's temporary cell files are named <cell>, and every notebook fixes
its data seeds, so a rerun changes only measured times and the last digits of errors
(the shares' randomness is fresh, as it must be).
"""
import pathlib
import re
import sys

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
CELL_FILE = re.compile(r"/tmp/ipykernel_\d+/\d+\.py")     # differs on every run


def tidy(nb):
    """Drops what changes on every run without telling the reader anything."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs
                        if not (o.output_type == "stream" and o.name == "stderr")]
        for o in cell.outputs:
            if o.output_type == "stream":
                o.text = CELL_FILE.sub("<cell>", o.text)
    return nb


def execute(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    nbformat.write(tidy(nb), path)


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.name for p in HERE.glob("*.ipynb"))
    for name in names:
        print("executing", name, flush=True)
        execute(HERE / name)

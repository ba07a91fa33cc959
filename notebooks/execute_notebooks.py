"""Runs the tutorial notebooks and saves them with their outputs, so that they read as
tutorials on any code host. Run after notebooks/make_*.py:

    python notebooks/execute_notebooks.py [NAME.ipynb ...]

Outputs are kept small and stable: progress bars (stderr) and execution timestamps are
dropped, and every notebook fixes its seeds, so a rerun changes only measured times.
"""
import pathlib
import sys

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def tidy(nb):
    """Drops what changes on every run without telling the reader anything."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs
                        if not (o.output_type == "stream" and o.name == "stderr")]
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

"""Strip notebooks for committing: no outputs, no execution counts, no metadata but the kernelspec.

    python experiments/notebooks/strip_outputs.py              # every notebook beside this script
    python experiments/notebooks/strip_outputs.py NOTEBOOK ...  # these notebooks

What ``jupyter nbconvert --clear-output --inplace`` does, plus the metadata: cell metadata is dropped and the
notebook's is reduced to the ``python3`` kernelspec, so a notebook saved from any Jupyter setup commits the
same. ``tests/experiments/test_notebooks.py`` checks every committed notebook is stripped.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def stripped(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` (nbformat v4) without outputs, execution counts or cell metadata, whose notebook
    metadata is the kernelspec alone."""
    out = copy.deepcopy(notebook)
    out.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC})
    for cell in out.cells:
        cell.metadata = nbformat.from_dict({})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return out


def strip(path: Path) -> bool:
    """Rewrite the notebook at ``path`` stripped, if it is not already; True if it changed."""
    notebook = nbformat.read(path, as_version=4)
    clean = stripped(notebook)
    if clean == notebook:
        return False
    nbformat.write(clean, path)
    return True


def main(argv: list[str]) -> int:
    """Strip the notebooks named in ``argv`` (default: every ``*.ipynb`` beside this script); exit status 2
    when one does not exist."""
    paths = [Path(arg) for arg in argv] or sorted(Path(__file__).resolve().parent.glob("*.ipynb"))
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    for path in paths:
        print("stripped" if strip(path) else "already stripped", path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

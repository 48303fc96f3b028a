"""Execute notebooks in place at the small size, so the repository shows them with their outputs.

    python experiments/notebooks/execute.py              # every notebook beside this script (`make notebooks`)
    python experiments/notebooks/execute.py NOTEBOOK ...  # these notebooks

Each notebook runs top to bottom in an ipykernel of this interpreter, in a temporary working folder (nothing is
written into the repository but the notebook), at ``LENS_BIAS_NOTEBOOK_N=8`` (:data:`SMALL`; the first code cell
of every notebook reads it), with one torch thread (numbers do not depend on the machine's core count) and
figures drawn as small static PNGs (``LENS_BIAS_PLOTLY_RENDERER=png``: GitHub shows images, not plotly's
JavaScript). A notebook whose cell fails is left as it was (exit status 1). The executed notebook is written
normalised (:func:`normalised`): no cell metadata (execution timestamps), progress bars in their final state,
repository paths relative, notebook metadata the kernelspec plus
``lens_bias``: the size it ran at and the SHA-256 of its cells' sources, which
``tests/experiments/test_notebooks.py`` compares with the committed sources (an edited cell means: rerun this).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
#: The size knob every notebook reads in its first code cell, and the size the committed outputs come from.
SIZE_VARIABLE, SMALL = "LENS_BIAS_NOTEBOOK_N", "8"
#: The plotly renderer the first code cell reads (default there: interactive figures in Jupyter).
RENDERER_VARIABLE, RENDERER = "LENS_BIAS_PLOTLY_RENDERER", "png"
#: A guard against a hung cell, not a budget: at the small size no cell takes a minute on 2 idle cores.
CELL_TIMEOUT_S = 900
ROOT = Path(__file__).resolve().parents[2]


class ThisInterpreterKernel(AsyncKernelManager):
    """A kernel manager whose kernel, whatever name a notebook asks for, is an ipykernel of this interpreter
    (not the first ``python3`` kernelspec Jupyter finds). Asynchronous, as nbclient's default: several notebooks
    can then run at once in one event loop (``tests/experiments/test_notebooks.py``)."""

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python ({sys.executable})",
            language="python",
        )


def source_sha256(notebook: nbformat.NotebookNode) -> str:
    """The SHA-256 of the notebook's cells (type and source, in order): what its outputs were computed from."""
    cells = [[cell.cell_type, cell.source] for cell in notebook.cells]
    return hashlib.sha256(json.dumps(cells).encode("utf-8")).hexdigest()


def _terminal(text: str) -> str:
    """``text`` as a terminal shows it: each line the part after its last carriage return (a progress bar's final
    state), and paths inside this repository relative to it."""
    lines = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return "\n".join(lines).replace(f"{ROOT}{os.sep}", "")


def _streams(outputs: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """``outputs`` with each run of same-name stream outputs merged into one, shown as a terminal shows it."""
    merged: list[nbformat.NotebookNode] = []
    for output in outputs:
        last = merged[-1] if merged else None
        if output.output_type == "stream" and last is not None and last.get("name") == output.name:
            last.text += output.text
        else:
            merged.append(output)
    for output in merged:
        if output.output_type == "stream":
            output.text = _terminal(output.text)
    return [output for output in merged if output.output_type != "stream" or output.text.strip()]


def normalised(notebook: nbformat.NotebookNode, size: str) -> nbformat.NotebookNode:
    """A copy of an executed ``notebook`` without cell metadata, its stream outputs merged (:func:`_streams`),
    whose notebook metadata is the kernelspec and ``lens_bias`` (``size``: the ``LENS_BIAS_NOTEBOOK_N`` it ran
    at, ``source_sha256``)."""
    out = copy.deepcopy(notebook)
    for cell in out.cells:
        cell.metadata = nbformat.from_dict({})
        if cell.cell_type == "code":
            cell.outputs = _streams(cell.outputs)
    record = {"size": size, "source_sha256": source_sha256(out)}
    out.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "lens_bias": record})
    return out


def execute(path: Path, client_class: type[NotebookClient] = NotebookClient) -> nbformat.NotebookNode:
    """``path``'s notebook executed at the small size in a temporary folder (raises on a failing cell)."""
    notebook = nbformat.read(path, as_version=4)
    os.environ[SIZE_VARIABLE] = SMALL
    os.environ[RENDERER_VARIABLE] = RENDERER
    os.environ["OMP_NUM_THREADS"] = "1"  # torch's intra-op threads in the kernel
    os.environ["PYTHONWARNINGS"] = "ignore:IProgress not found"  # tqdm's text bars without ipywidgets: no warning
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    with tempfile.TemporaryDirectory() as folder:
        client = client_class(
            notebook,
            kernel_manager_class=ThisInterpreterKernel,  # the client starts and shuts down its kernel
            timeout=CELL_TIMEOUT_S,
            resources={"metadata": {"path": folder}},
        )
        client.execute()
    return normalised(notebook, SMALL)


def main(argv: list[str]) -> int:
    """Execute the notebooks named in ``argv`` (default: every ``*.ipynb`` beside this script) in place; exit
    status 2 when one does not exist, 1 when one fails (that one is left unchanged)."""
    paths = [Path(arg) for arg in argv] or sorted(Path(__file__).resolve().parent.glob("*.ipynb"))
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    failed = []
    for path in paths:
        print("executing", path, flush=True)
        try:
            nbformat.write(execute(path), path)
        except (CellExecutionError, CellTimeoutError) as error:
            print(f"error: {path}: a cell failed\n{error}", file=sys.stderr)
            failed.append(path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

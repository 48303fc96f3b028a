"""The notebooks of ``experiments/notebooks``: committed stripped, and each runs top to bottom in a real kernel.

The slow test executes every notebook with nbclient in an ipykernel of this interpreter (the ``.venv`` the tests
run in, not whichever ``python3`` kernelspec Jupyter would find), at the small size (``LENS_BIAS_NOTEBOOK_N``), in a
temporary working folder. A failing cell fails its notebook's test with the cell's source and traceback.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

FOLDER = Path(__file__).resolve().parents[2] / "experiments" / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
#: The size knob every notebook reads in its first code cell, and the size the tests run.
SIZE_VARIABLE, SMALL = "LENS_BIAS_NOTEBOOK_N", "8"
#: A guard against a hung cell, not a budget: at the small size no cell takes a minute on 2 idle cores.
CELL_TIMEOUT_S = 900
PLOTLY = "application/vnd.plotly.v1+json"
#: The colour codes of IPython tracebacks, left out of a failure's message.
ANSI_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def _strip_outputs():
    """The stripping script, loaded from its file (``experiments/notebooks`` is not a package)."""
    spec = importlib.util.spec_from_file_location("strip_outputs", FOLDER / "strip_outputs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


strip_outputs = _strip_outputs()


class ThisInterpreterKernel(KernelManager):
    """A kernel manager whose kernel, whatever name a notebook asks for, is an ipykernel of the interpreter
    running the tests (not the first ``python3`` kernelspec Jupyter finds)."""

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python ({sys.executable})",
            language="python",
        )


def _code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_notebooks_are_discovered():
    assert NOTEBOOKS, f"no notebooks in {FOLDER}"
    assert all(path.suffix == ".ipynb" for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_committed_stripped(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    cells = _code_cells(notebook)
    assert cells, f"{path.name} has no code cell"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in cells), (
        f"{path.name} has outputs: run `python experiments/notebooks/strip_outputs.py`"
    )
    assert notebook.metadata == {"kernelspec": strip_outputs.KERNELSPEC}
    assert strip_outputs.stripped(notebook) == notebook, f"{path.name} has cell metadata: strip it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_first_code_cell_holds_the_size_knob(path):
    first = _code_cells(nbformat.read(path, as_version=4))[0].source
    assert f'os.environ.get("{SIZE_VARIABLE}"' in first


def test_strip_outputs_clears_an_executed_notebook(tmp_path):
    executed = nbformat.read(NOTEBOOKS[0], as_version=4)
    cell = _code_cells(executed)[0]
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    cell.metadata = nbformat.from_dict({"execution": {"iopub.status.idle": "2025-01-01T00:00:00Z"}})
    executed.metadata.language_info = {"name": "python", "version": "3.12.3"}
    path = tmp_path / "executed.ipynb"
    nbformat.write(executed, path)

    script = FOLDER / "strip_outputs.py"
    run = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, check=True)
    assert run.stdout == f"stripped {path}\n"
    assert nbformat.read(path, as_version=4) == nbformat.read(NOTEBOOKS[0], as_version=4)
    again = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, check=True)
    assert again.stdout == f"already stripped {path}\n"


def test_strip_outputs_refuses_a_missing_notebook(tmp_path):
    missing = tmp_path / "missing.ipynb"
    run = subprocess.run(
        [sys.executable, str(FOLDER / "strip_outputs.py"), str(missing)], capture_output=True, text=True
    )
    assert run.returncode == 2 and run.stderr == f"error: no such notebook: {missing}\n"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv(SIZE_VARIABLE, SMALL)
    notebook = nbformat.read(path, as_version=4)
    committed = sorted(FOLDER.iterdir())
    client = NotebookClient(
        notebook,
        kernel_manager_class=ThisInterpreterKernel,  # the client starts and shuts down its kernel
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    failure = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as error:
        failure = ANSI_COLOURS.sub("", str(error))
    if failure is not None:
        pytest.fail(f"{path.name}: a cell failed\n{failure}", pytrace=False)
    outputs = [output for cell in _code_cells(notebook) for output in cell.outputs]
    assert any(PLOTLY in output.get("data", {}) for output in outputs), f"{path.name} showed no figure"
    assert sorted(FOLDER.iterdir()) == committed, "the notebook wrote into the repository"

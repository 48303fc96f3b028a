"""The notebooks of ``experiments/notebooks``: committed executed (outputs of the current source, at the small
size), and each runs top to bottom in a real kernel.

The committed outputs come from ``make notebooks`` (``experiments/notebooks/execute.py``): the fast tests check
that every code cell ran, in order, without an error, from the source committed beside it (the SHA-256 the script
records), and that the outputs stay small (static PNG figures, no script such as plotly.js). The slow test executes
every notebook afresh with nbclient in an ipykernel of this interpreter (the ``.venv`` the tests run in, not whichever
``python3`` kernelspec Jupyter would find), at the small size (``LENS_BIAS_NOTEBOOK_N``), in a temporary working
folder, with the interactive renderer, one kernel per core at a time. A failing cell fails its notebook's test with
the cell's source and traceback.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

FOLDER = Path(__file__).resolve().parents[2] / "experiments" / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
PLOTLY = "application/vnd.plotly.v1+json"
#: The colour codes of IPython tracebacks, left out of a failure's message.
ANSI_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
#: What one committed notebook may weigh (its PNG figures are about 50 kB each).
MAX_NOTEBOOK_BYTES = 1_500_000


def _execute_script():
    """The executing script, loaded from its file (``experiments/notebooks`` is not a package)."""
    spec = importlib.util.spec_from_file_location("execute", FOLDER / "execute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


execute = _execute_script()


def _code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_notebooks_are_discovered():
    assert NOTEBOOKS, f"no notebooks in {FOLDER}"
    assert all(path.suffix == ".ipynb" for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_committed_executed_from_its_source(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    rerun = f"{path.name}: run `make notebooks` (python experiments/notebooks/execute.py {path.name})"
    record = notebook.metadata.get("lens_bias", {})
    assert record.get("source_sha256") == execute.source_sha256(notebook), f"edited since its outputs: {rerun}"
    assert record.get("size") == execute.SMALL, rerun
    assert execute.normalised(notebook, execute.SMALL) == notebook, f"cell metadata left: {rerun}"
    cells = _code_cells(notebook)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), f"not run in order: {rerun}"
    outputs = [output for cell in cells for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"a cell failed: {rerun}"
    assert any("image/png" in output.get("data", {}) for output in outputs), f"{path.name} shows no figure"
    scripts = [o for o in outputs if "<script" in str(o.get("data", {}).get("text/html", ""))]
    assert not scripts, f"{path.name}: an HTML output with a script (plotly.js?)"
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_first_code_cell_holds_the_size_knob_and_the_renderer(path):
    first = _code_cells(nbformat.read(path, as_version=4))[0].source
    assert f'os.environ.get("{execute.SIZE_VARIABLE}"' in first
    assert f'os.environ.get("{execute.RENDERER_VARIABLE}"' in first


def test_normalised_records_the_source_and_drops_cell_metadata():
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    cell = _code_cells(notebook)[0]
    cell.metadata = nbformat.from_dict({"execution": {"iopub.status.idle": "2025-01-01T00:00:00Z"}})
    notebook.metadata.language_info = {"name": "python", "version": "3.12.3"}
    clean = execute.normalised(notebook, "8")
    assert all(c.metadata == {} for c in clean.cells)
    assert clean.metadata == {
        "kernelspec": execute.KERNELSPEC,
        "lens_bias": {"size": "8", "source_sha256": execute.source_sha256(notebook)},
    }
    edited = execute.normalised(notebook, "8")
    edited.cells[0].source += " "
    assert execute.source_sha256(edited) != clean.metadata.lens_bias.source_sha256  # an edit shows


def test_execute_refuses_a_missing_notebook(tmp_path):
    missing = tmp_path / "missing.ipynb"
    run = subprocess.run([sys.executable, str(FOLDER / "execute.py"), str(missing)], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr == f"error: no such notebook: {missing}\n"


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[Path, tuple[nbformat.NotebookNode, str | None]]:
    """Every notebook executed afresh, ``{path: (notebook with its outputs, a failed cell's message or None)}``:
    as many at once as there are cores, each kernel on one torch thread (the kernels are processes, so they run in
    parallel; the notebooks' work is mostly single-threaded, and on 2 cores two at once take ~0.6 of one by one)."""
    at_once = asyncio.Semaphore(max(1, os.cpu_count() or 1))

    async def run(path: Path) -> tuple[nbformat.NotebookNode, str | None]:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook,
            kernel_manager_class=execute.ThisInterpreterKernel,  # the client starts and shuts down its kernel
            timeout=execute.CELL_TIMEOUT_S,
            resources={"metadata": {"path": str(tmp_path_factory.mktemp(path.stem))}},
        )
        async with at_once:
            try:
                await client.async_execute()
            except (CellExecutionError, CellTimeoutError) as error:
                return notebook, ANSI_COLOURS.sub("", str(error))
        return notebook, None

    async def run_all() -> list[tuple[nbformat.NotebookNode, str | None]]:
        return await asyncio.gather(*(run(path) for path in NOTEBOOKS))

    with pytest.MonkeyPatch.context() as patch:  # what the kernels inherit
        patch.setenv(execute.SIZE_VARIABLE, execute.SMALL)
        patch.delenv(execute.RENDERER_VARIABLE, raising=False)  # the notebook's own: interactive figures
        patch.setenv("OMP_NUM_THREADS", "1")
        committed = sorted(FOLDER.iterdir())
        results = dict(zip(NOTEBOOKS, asyncio.run(run_all())))
    assert sorted(FOLDER.iterdir()) == committed, "a notebook wrote into the repository"
    return results


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(path, executed):
    notebook, failure = executed[path]
    if failure is not None:
        pytest.fail(f"{path.name}: a cell failed\n{failure}", pytrace=False)
    outputs = [output for cell in _code_cells(notebook) for output in cell.outputs]
    assert any(PLOTLY in output.get("data", {}) for output in outputs), f"{path.name} showed no figure"

"""Sweeps that resume: an experiment killed mid-run (SIGKILL, as a lost machine) and run again reuses every
finished cell, computes the rest, and saves exactly the result of an uninterrupted run; changing one
parameter recomputes only the cells it affects."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _kill_after_cells(argv: list[str], cells: Path, n_cells: int, result: Path) -> dict[str, int]:
    """Run ``python -m <argv>``, SIGKILL it once ``n_cells`` cells are saved (tensors and record); the saved cells'
    mtimes."""
    process = subprocess.Popen(
        [sys.executable, "-m", *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            # a cell is complete once its record (written after its tensors) is there: kill between cells, not
            # inside the write of one (a SIGKILL there leaves the temporary file no process can remove)
            if cells.is_dir() and len(list(cells.glob("*.safetensors.cache.json"))) >= n_cells:
                break
            time.sleep(0.02)
        assert process.poll() is None, f"the run ended before it was killed: {process.stderr.read().decode()[-2000:]}"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    assert not result.exists(), "killed mid-run: no result was saved"
    assert not list(cells.glob("*.tmp")) and not list(cells.glob(".*.tmp")), "no half-written cell"
    return {path.name: path.stat().st_mtime_ns for path in cells.glob("*.safetensors")}


def _untouched(before: dict[str, int], cells: Path) -> bool:
    return all((cells / name).stat().st_mtime_ns == mtime for name, mtime in before.items())


@pytest.mark.slow
def test_a_killed_steering_run_resumes_to_the_uninterrupted_result(steering_run, steering_argv, tmp_path):
    from experiments import steering

    _, uninterrupted = steering_run
    out = tmp_path / "steering"
    argv = [*steering_argv, "--out", str(out)]
    before = _kill_after_cells(["experiments.steering", *argv], out / "cells", 4, out / "steering.json")
    assert len(before) >= 4
    with pytest.warns(UserWarning, match="stale lock of pid"):  # the killed run's lock is taken over
        resumed = steering.main(argv)
    assert _untouched(before, out / "cells"), "finished cells are reused, not recomputed"
    assert len(list((out / "cells").glob("*.safetensors"))) > len(before)
    assert resumed.values == uninterrupted.values

    # another --n-neutral changes the fluency readout only: every other cell is reused
    cells = {path.name: path.stat().st_mtime_ns for path in (out / "cells").glob("*.safetensors")}
    changed = steering.main([*argv, "--n-neutral", "3"])
    new = {path.name for path in (out / "cells").glob("*.safetensors")} - set(cells)
    assert _untouched(cells, out / "cells")
    fluency_settings = len(changed.values["bias"]["gender"]["fluency"]) + len(changed.values["refusal"]["fluency"])
    assert len(new) == fluency_settings - 1, "one cell per setting; the unsteered one is shared by both vectors"
    assert (
        changed.values["bias"]["gender"]["likelihood_grid"] == uninterrupted.values["bias"]["gender"]["likelihood_grid"]
    )
    assert changed.values["bias"]["gender"]["fluency"] != uninterrupted.values["bias"]["gender"]["fluency"]


@pytest.mark.slow
def test_a_killed_audit_resumes_to_the_uninterrupted_result(tiny_long_dir, tmp_path):
    from experiments import audit

    sizes = ["--measures", "crows_pairs", "bbq", "--n-crows-pairs", "20", "--n-bbq", "1"]
    argv = ["--model", str(tiny_long_dir), *sizes, "--no-png"]
    uninterrupted = audit.main([*argv, "--out", str(tmp_path / "whole")])
    out = tmp_path / "resumed"
    before = _kill_after_cells(["experiments.audit", *argv, "--out", str(out)], out / "cells", 1, out / "audit.json")
    with pytest.warns(UserWarning, match="stale lock of pid"):
        resumed = audit.main([*argv, "--out", str(out)])
    assert _untouched(before, out / "cells")
    assert resumed.values == uninterrupted.values
    assert all((resumed.tensors[name] == tensor).all() for name, tensor in uninterrupted.tensors.items()), (
        "every row array equal"
    )

"""Every experiment runs as a module (``python -m experiments.NAME``): checked with ``--help`` for all of
them in one interpreter, each through ``runpy`` as ``__main__``."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import experiments

#: Every experiment module (all of ``experiments/`` but the shared flags of ``cli``).
MODULES = sorted(
    info.name for info in pkgutil.iter_modules(experiments.__path__) if info.name not in {"cli", "figure_index"}
)

SCRIPT = """
import contextlib, io, json, runpy, sys
outcome = {}
for module in sys.argv[1:]:
    sys.argv = [module, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_module(f"experiments.{module}", run_name="__main__", alter_sys=True)
        code = "no exit"
    except SystemExit as stop:
        code = stop.code
    outcome[module] = [code, out.getvalue()]
print(json.dumps(outcome))
"""


def test_every_experiment_runs_as_a_module():
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, *MODULES],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout.splitlines()[-1])
    for module in MODULES:
        code, printed = outcome[module]
        assert code in (0, None), (module, code, printed)
        assert printed.startswith("usage:"), (module, printed)

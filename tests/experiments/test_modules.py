"""Every experiment runs as a module (``python -m experiments.NAME``): checked with ``--help`` for all of
them in one interpreter, each through ``runpy`` as ``__main__``; and ``--help`` is fast: it loads neither torch
nor TransformerLens (each module in a fresh interpreter)."""

from __future__ import annotations

import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import experiments

#: Every experiment module (all of ``experiments/`` but the shared command line: config, flags, commands, lock,
#: error policy, saved results).
SHARED = {"cli", "config", "flags", "commands", "lock", "policy", "results"}
MODULES = sorted(info.name for info in pkgutil.iter_modules(experiments.__path__) if info.name not in SHARED)
ROOT = Path(__file__).resolve().parents[2]

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
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout.splitlines()[-1])
    for module in MODULES:
        code, printed = outcome[module]
        assert code in (0, None), (module, code, printed)
        assert printed.startswith("usage:"), (module, printed)


LIGHT = """
import contextlib, io, json, runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    with contextlib.redirect_stdout(io.StringIO()):
        runpy.run_module(f"experiments.{sys.argv[0]}", run_name="__main__", alter_sys=True)
    code = "no exit"
except SystemExit as stop:
    code = stop.code
print(json.dumps([code, sorted(m for m in ("torch", "transformer_lens") if m in sys.modules)]))
"""


@pytest.mark.parametrize("module", ["cli", *MODULES])
def test_help_loads_neither_torch_nor_transformer_lens(module):
    """``--help`` must be fast: an experiment imports the library inside its functions, not at the top."""
    if module == "cli":
        code = (
            "import sys, experiments.cli, experiments.commands, lens_bias, lens_bias.errors; print(sys.modules.keys())"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert "'torch'" not in done.stdout and "'transformer_lens'" not in done.stdout
        return
    done = subprocess.run([sys.executable, "-c", LIGHT, module], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    code, heavy = json.loads(done.stdout.splitlines()[-1])
    assert code == 0 and heavy == [], (module, code, heavy)


def test_every_module_of_experiments_is_at_most_150_lines():
    """Experiments are config, run, report; loops, statistics and plots belong in the library."""
    lengths = {path.name: len(path.read_text().splitlines()) for path in (ROOT / "experiments").glob("*.py")}
    assert {name: n for name, n in lengths.items() if n > 150} == {}


def test_every_model_an_experiment_loads_takes_its_dtype_flag():
    """``--dtype`` is a flag of every experiment (RunConfig): a model loaded without it would silently run in fp32."""
    calls = {
        f"{path.name}:{number}": line.strip()
        for path in sorted((ROOT / "experiments").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bload_model\(", line) and "import" not in line
    }
    assert calls and {where: line for where, line in calls.items() if "dtype=config.dtype" not in line} == {}

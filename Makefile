# Two entry points: `make demo` (main job on embedded data) and `make test`.
# Each creates its own virtual environment in .venv and installs what it needs;
# `make docs` builds the documentation (docs/_build/html) in the same environment.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= results

.PHONY: demo test test-all lint bench docs clean venv

venv: $(STAMP)

# A pure-Python package: nothing is compiled at install.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) benchmarks/reproduce_iccv.py --task all --profile quick --out $(OUT)/iccv

# Tests and the docstring examples of the package; slow tests (> ~20 s) run with test-all.
test: $(STAMP)
	$(PY) -m pytest -m "not slow" --doctest-modules deepinv_ei tests

test-all: $(STAMP)
	$(PY) -m pytest --doctest-modules deepinv_ei tests

lint: $(STAMP)
	$(VENV)/bin/ruff check deepinv_ei benchmarks tests

bench: $(STAMP)
	$(PY) benchmarks/bench_operators.py --json $(OUT)/bench_operators.json --plot $(OUT)/bench_operators.png

# The HTML documentation: Sphinx with warnings as errors, the examples gallery executed on the
# CPU, then a check of every internal link of the built pages. No network needed.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m sphinx -b html -W --keep-going -j 1 docs docs/_build/html
	$(PY) docs/_ext/check_links.py docs/_build/html

clean:
	rm -rf docs/_build docs/api/generated docs/auto_examples docs/gen_modules docs/sg_execution_times.rst
	rm -rf $(VENV) $(OUT) .pytest_cache build

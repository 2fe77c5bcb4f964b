# Everything from nothing: each target creates .venv and installs the package with
# the tested pins in constraints.txt (torch 2.13.0, a CPU build) before running.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: install demo test test-all lint bench docs clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,plot,bench,data]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sklearn-robust demo

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -n $(PYTEST_WORKERS) -q

test-all: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q

lint: $(STAMP)
	$(VENV)/bin/ruff check sklearn_robust tests examples benchmarks

bench: $(STAMP)
	$(PY) benchmarks/run_all.py --threads 1 --log benchmarks/last_run.log

# The docs get their own environment: Sphinx needs a newer `requests` than torchattacks
# (in the test extra) allows. The build runs the gallery's quick examples (docs/conf.py,
# GALLERY_RUN), one of which reads the MNIST file of the data extra.
DOCS_VENV ?= .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.installed

$(DOCS_STAMP): pyproject.toml constraints.txt
	test -x $(DOCS_VENV)/bin/python || $(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[docs,plot,data]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(DOCS_VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(DOCS_VENV) build *.egg-info docs/_build docs/api/generated

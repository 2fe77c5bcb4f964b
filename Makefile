# Everything from nothing: each target creates .venv and installs the package with
# the tested pins in constraints.txt (torch 2.13.0, a CPU build) before running.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: install demo test test-all lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,plot]'
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
	$(PY) benchmarks/bench_training.py --workload digits
	$(PY) benchmarks/bench_training.py --workload synthetic28 --epochs 1

clean:
	rm -rf $(VENV) build *.egg-info

# Everything from nothing: each target creates .venv and installs the package with
# the tested pins in constraints.txt (torch 2.13.0, a CPU build) before running.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: install demo test test-all lint bench gpu-check cifar10-smoke docs clean

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

# On a CUDA machine: TRADES on PreAct ResNet-18 with random CIFAR-shaped images, images per
# second of the estimator and of a plain PyTorch loop, peak GPU memory, AutoAttack points
# per second, as JSON (benchmarks/gpu_check.py). Exits 2 where there is no CUDA device.
# Options through GPU_CHECK_ARGS, e.g. GPU_CHECK_ARGS="--precision bf16 --channels-last".
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

# One epoch of examples/cifar10_trades.py on the CPU, on a stand-in CIFAR-10 folder of 512
# random images written to a temporary folder, with a narrow WideResNet-10-1 (the
# plumbing of the CIFAR-10 recipe, not its results; about 20 s on one core).
cifar10-smoke: $(STAMP)
	$(PY) examples/cifar10_trades.py --fake-data 512 --epochs 1 --module wideresnet \
		--depth 10 --widen-factor 1 --eval-n 128 --auto-n 32 --device cpu --threads 1

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

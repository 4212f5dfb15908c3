# wlearn: the course's commands. `make course` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.wlearn-installed
# pytest workers are not used: the notebooks train models and share the machine's cores.
PYTEST_ARGS ?=

.PHONY: help install course test unit notebooks lab slides bench lint clean

help:
	@echo "make course  - install, execute every lesson on the default data, write build/ (HTML + index)"
	@echo "make test    - install, run unit tests and execute every notebook with nbval"
	@echo "make lab     - install, register the kernel and open JupyterLab"
	@echo "make bench   - run the speed/memory benchmarks (ratios against a baseline)"
	@echo "make lint    - ruff over the package, tests and notebooks"

# Install once; re-running a target on a set-up machine does not reinstall.
# torch comes first and alone, pinned: on the course machines pip finds a local CPU wheel;
# elsewhere install the CPU wheel first (README) or pip takes the CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[lab,dev]"
	touch $(STAMP)

install: $(STAMP)

course: $(STAMP)
	$(PY) tools/build_course.py --out build

unit: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

notebooks: $(STAMP)
	MPLBACKEND=agg $(PY) -m pytest --nbval-lax notebooks/ -p no:cacheprovider $(PYTEST_ARGS)

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)
	MPLBACKEND=agg $(PY) -m pytest --nbval-lax notebooks/ -p no:cacheprovider $(PYTEST_ARGS)

lab: $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name wlearn --display-name "Python (wlearn)"
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check wlearn tests benchmarks data_scripts tools notebooks

clean:
	rm -rf build .pytest_cache
